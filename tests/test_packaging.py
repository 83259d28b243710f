"""The package as users get it: core modules load no terminal libraries; the built wheel
holds the SQL files and runs `forensics exposure` when installed."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers.incident import Incident, at

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "forensics"


def test_core_modules_load_no_typer_or_rich() -> None:
    probe = (
        "import sys\nimport forensics.ingest, forensics.exposure, forensics.export\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'typer', 'rich', 'click'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_cli_module_does_not_load_numpy_before_its_entry_point_runs() -> None:
    probe = "import sys\nimport forensics.cli\nprint('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_typer_only_in_cli_and_rich_only_in_the_terminal_modules(path: Path) -> None:
    imported = _imported(path)
    assert "click" not in imported  # typer vendors its own; its API is used
    in_cli = path.parent.name == "cli"
    if not in_cli:
        assert "typer" not in imported
    if not in_cli and path.name not in ("terminal.py", "screens.py"):
        assert "rich" not in imported


@pytest.mark.slow
def test_the_built_wheel_holds_the_queries_and_runs_exposure(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("forensics-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sql = {p.name for p in (ROOT / "queries").glob("*.sql")}
    assert sql and {f"forensics/queries/{n}" for n in sql} <= names

    target = tmp_path / "installed"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]

    inc = Incident()
    inc.grant("d1", "owner1", "owner")
    inc.deliver(at(1), "stranger", "d1", "e1")
    db = inc.write(tmp_path / "case.duckdb")
    # The installed package first on the path; its dependencies from this environment.
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import forensics.queries as q; print(q.queries_dir())"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(target)
    run = subprocess.run(
        [
            str(target / "bin" / "forensics"),
            "--db",
            str(db),
            "exposure",
            "--window",
            "2024-02-16T09:00:00Z/PT1H",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert (figures["cross_account_deliveries"], figures["recipients"]) == (1, 1)
