"""Spark in a real `forensics` process: what reaches stderr (the JVM's own start-up lines must
not), checked end to end because the JVM writes to the process's file descriptors."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.lake import export_store
from forensics.store import StoreOptions
from tests.test_engines import odd_incident


@pytest.mark.spark
@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
    reason="pyspark or Java is not installed",
)
def test_spark_start_up_lines_never_reach_stderr(tmp_path: Path) -> None:
    store = odd_incident().write(tmp_path / "case.duckdb")
    lake = tmp_path / "lake"
    export_store(StoreOptions(store), str(lake))
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_SUBMIT_ARGS"}
    args = [sys.executable, "-m", "forensics", "exposure", "--lake", str(lake)]
    args += ["--engine", "spark", "--master", "local[1]", "--json"]
    r = subprocess.run(
        [*args, "--window", "2024-02-16T09:00:00Z/PT1H"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("{")
    # the JVM's notice and Spark's shell notice, which forensics silences
    assert "incubator" not in r.stderr
    assert "log level" not in r.stderr.lower()
    assert [ln for ln in r.stderr.splitlines() if not ln.startswith("forensics:")] == []


def _ingest_on_spark(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "e.jsonl"
    f.write_text(
        '{"ts":"2024-02-16T09:00:00Z","action":"thumbnail_delivered","user_id":"u",'
        '"device_id":"d","event_id":"e","request_id":"r1"}\n'
    )
    args = [sys.executable, "-m", "forensics", "ingest", "--lake", str(tmp_path / "lake")]
    args += ["--engine", "spark", "--master", "local[1]", str(f)]
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)


def _without_venv(overrides: dict[str, str]) -> dict[str, str]:
    """The environment with no `python3` on PATH that has forensics (only the system's
    folders, and Java's), as when forensics runs without its virtualenv activated."""
    java = shutil.which("java")
    folders = ["/usr/bin", "/bin"] + ([str(Path(java).parent)] if java else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "VIRTUAL_ENV")}
    return {**env, "PATH": os.pathsep.join(folders), **overrides}


@pytest.mark.spark
@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
    reason="pyspark or Java is not installed",
)
def test_local_spark_workers_run_forensics_own_interpreter(tmp_path: Path) -> None:
    # Before, PySpark started the first `python3` on PATH, which had no forensics.
    r = _ingest_on_spark(tmp_path, _without_venv({}))
    assert r.returncode == 0, r.stderr
    assert "1 loaded" in r.stderr


@pytest.mark.spark
@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None or shutil.which("java") is None,
    reason="pyspark or Java is not installed",
)
def test_a_failed_spark_task_is_one_line_on_stderr(tmp_path: Path) -> None:
    # A worker that cannot start: Spark's task logs (which may quote a record) stay out.
    r = _ingest_on_spark(tmp_path, _without_venv({"PYSPARK_PYTHON": "/bin/false"}))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        "forensics: error: ingest on Spark: Spark failed (Py4JJavaError)"
    ]


def test_other_jvm_stderr_lines_are_passed_on(capsys: pytest.CaptureFixture[str]) -> None:
    """Only the known start-up notice is dropped: anything else the JVM says still shows."""
    import io

    from forensics.engines.spark import _pass_stderr

    stream = io.BytesIO(
        b"WARNING: Using incubator modules: jdk.incubator.vector\n"
        b"spark: ERROR Executor: lost\n"
        b"WARNING: something else\n"
    )
    _pass_stderr(stream)
    assert capsys.readouterr().err == "spark: ERROR Executor: lost\nWARNING: something else\n"


def test_the_jvm_writes_its_own_warnings_to_stderr_not_stdout() -> None:
    """The JVM prints its warnings (`[123.456s][warning]…`) on stdout unless told otherwise;
    stdout carries forensics' data only."""
    import shlex

    from forensics.engines.spark import submit_args

    args = shlex.split(submit_args())
    java = shlex.split(args[args.index("--driver-java-options") + 1])
    assert java[java.index("-Xlog:disable") + 1] == "-Xlog:all=warning:stderr"
    assert any(a.startswith("-Dlog4j2.configurationFile=file:/") for a in java)
    assert args[-1] == "pyspark-shell"
