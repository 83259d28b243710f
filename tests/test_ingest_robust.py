"""SPEC §2.6: whatever goes wrong inside one file fails that file alone; the run goes on."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import forensics.ingest as ingest_package
from forensics.cli import app
from forensics.ingest import IngestHooks, IngestTuning, pipeline
from forensics.mapping import load_mapping
from tests.helpers.ingest import event, rows, run, write_ndjson, write_parquet

PERSONAL = "alice@example.com"  # personal data that must never reach an error message


def _three(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("a", "b", "c"):
        write_ndjson(logs / f"{name}.jsonl", [event(request_id=f"{name}{i}") for i in range(3)])
    return logs


EXCEPTIONS: list[BaseException] = [
    RuntimeError(f"bad state near {PERSONAL}"),
    RecursionError("maximum recursion depth exceeded"),
    MemoryError(),
    duckdb.InvalidInputException(f'Malformed JSON: Input: "{PERSONAL}"'),
    KeyError(PERSONAL),
]


def _hooks(stage: str, exc: BaseException) -> IngestHooks:
    """Hooks that make `stage` fail for b.jsonl only."""

    def boom(path: Path) -> None:
        if path.name == "b.jsonl":
            raise exc

    name = {"read": "after_read", "stage": "after_stage", "store": "before_commit"}[stage]
    return IngestHooks(**{name: boom})


@pytest.mark.parametrize("stage", ["read", "stage", "store"])
@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_an_unexpected_failure_fails_that_file_alone(
    tmp_path: Path, stage: str, exc: BaseException
) -> None:
    logs = _three(tmp_path)
    db = tmp_path / "s.duckdb"
    report = run(db, logs, hooks=_hooks(stage, exc))
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["b.jsonl"].status == "failed"
    error = by_name["b.jsonl"].error or ""
    assert error and "\n" not in error and PERSONAL not in error
    assert [by_name[n].status for n in ("a.jsonl", "c.jsonl")] == ["loaded", "loaded"]
    assert rows(db, "select count(*), count(distinct source_id) from events") == [(6, 2)]
    assert rows(db, "select count(*) from sources") == [(2,)]


def test_the_json_report_lists_the_failed_file_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = _three(tmp_path)
    real_ingest = pipeline.ingest

    def ingest(*a: Any, **k: Any) -> Any:  # the CLI's ingest, with the failing hook
        options = a[2]
        return real_ingest(
            a[0], a[1], replace(options, hooks=_hooks("stage", RecursionError())), *a[3:], **k
        )

    monkeypatch.setattr(ingest_package, "ingest", ingest)
    db = tmp_path / "s.duckdb"
    r = CliRunner().invoke(app, ["--db", str(db), "ingest", str(logs), "--json"])
    assert r.exit_code == 1
    files = {Path(f["path"]).name: f for f in json.loads(r.stdout)["files"]}
    assert files["b.jsonl"]["status"] == "failed"
    assert files["b.jsonl"]["error"].startswith("reading: ")
    assert files["a.jsonl"]["status"] == files["c.jsonl"]["status"] == "loaded"


def test_an_interrupt_still_stops_the_run(tmp_path: Path) -> None:
    logs = _three(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "s.duckdb", logs, hooks=_hooks("stage", KeyboardInterrupt()))


def test_a_fifty_thousand_deep_array_fails_alone(tmp_path: Path) -> None:
    logs = _three(tmp_path)
    (logs / "deep.json").write_text("[" * 50_000 + "]" * 50_000)
    (logs / "open.json").write_text("[" * 100_000)
    db = tmp_path / "s.duckdb"
    by_name = {Path(f.path).name: f for f in run(db, logs, kind="events").files}
    deep, unclosed = by_name["deep.json"], by_name["open.json"]
    assert (deep.status, deep.rows_read, deep.rows_rejected) == ("loaded", 1, 1)
    assert deep.reasons == {"nested too deep": 1}
    assert unclosed.status == "failed" and "not closed" in (unclosed.error or "")
    assert rows(db, "select count(*) from events") == [(9,)]


def test_only_path_missing_creates_no_store(tmp_path: Path) -> None:
    db = tmp_path / "case" / "s.duckdb"
    db.parent.mkdir()
    r = CliRunner().invoke(app, ["--db", str(db), "ingest", str(tmp_path / "nope.jsonl")])
    assert r.exit_code == 1
    assert list(db.parent.iterdir()) == []


def test_a_missing_path_beside_a_real_one_still_stores_the_real_one(tmp_path: Path) -> None:
    logs = _three(tmp_path)
    db = tmp_path / "s.duckdb"
    report = run(db, tmp_path / "nope.jsonl", logs / "a.jsonl")
    assert [f.status for f in report.files] == ["failed", "loaded"]
    assert db.exists()


# Regular by stat, but reading it from offset 0 is an I/O error (EIO), for root too: a real
# OSError from the system, where a test cannot make a permission error as root.
UNREADABLE = Path("/proc/self/mem")


def _unreadable_is_available() -> bool:
    try:
        with open(UNREADABLE, "rb") as f:
            f.read(1)
    except OSError:
        return True
    return False


def _good_file(path: Path) -> None:
    """A readable file of path's format holding three events."""
    events = [event(request_id=f"x{i}") for i in range(3)]
    if path.suffix == ".parquet":
        write_parquet(path, pa.Table.from_pylist(events))
    elif path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(json.dumps(events).encode()))
    else:
        path.write_text(json.dumps(events))


@pytest.mark.skipif(not _unreadable_is_available(), reason="needs Linux's /proc/self/mem")
@pytest.mark.parametrize("name", ["x.parquet", "x.json", "x.json.gz"])
@pytest.mark.parametrize("readable", [False, True], ids=["io-error", "readable"])
def test_a_file_the_system_cannot_read_fails_alone_with_its_reason(
    tmp_path: Path, name: str, readable: bool
) -> None:
    logs = _three(tmp_path)
    if readable:
        _good_file(logs / name)
    else:
        (logs / name).symlink_to(UNREADABLE)
    db = tmp_path / "s.duckdb"
    r = CliRunner().invoke(app, ["--db", str(db), "ingest", str(logs), "--json"])
    files = {Path(f["path"]).name: f for f in json.loads(r.stdout)["files"]}
    assert [files[n]["status"] for n in ("a.jsonl", "b.jsonl", "c.jsonl")] == ["loaded"] * 3
    if readable:
        assert r.exit_code == 0
        assert (files[name]["status"], files[name]["rows_loaded"]) == ("loaded", 3)
        assert rows(db, "select count(*) from sources") == [(4,)]
        return
    assert r.exit_code == 1
    assert files[name]["status"] == "failed"
    assert files[name]["error"] == "file: cannot be read (Input/output error)"
    assert rows(db, "select count(*), count(distinct source_id) from events") == [(9, 3)]
    # For a person: the file's one-line error on stderr, among the summary.
    r = CliRunner().invoke(app, ["--db", str(tmp_path / "t.duckdb"), "ingest", str(logs)])
    assert r.exit_code == 1 and r.stdout == ""
    assert [line for line in r.stderr.splitlines() if "error" in line] == [
        f"forensics: error: {logs / name}: file: cannot be read (Input/output error)"
    ]


def _fails_after_many_batches(logs: Path, how: str) -> str:
    """A file that fails only at its end, after several batches were staged."""
    if how == "unclosed array":
        elements = [json.dumps(event(request_id=f"bad{i}")) for i in range(400)]
        (logs / "a.json").write_text("[\n" + ",\n".join(elements) + "\n")
        return "a.json"
    # Lines that are no JSON object: their kind is unknown, so they are held aside until a
    # record tells it; the gzip stream is cut short, found at its end.
    data = gzip.compress("".join(f"not json {i}\n" for i in range(2000)).encode())
    (logs / "a.ndjson.gz").write_bytes(data[: len(data) - 8])
    return "a.ndjson.gz"


@pytest.mark.parametrize("how", ["unclosed array", "truncated gzip of malformed lines"])
@pytest.mark.parametrize("mapped", [False, True], ids=["plain", "mapped"])
def test_a_file_failing_after_many_batches_leaves_nothing_for_the_next_ones(
    tmp_path: Path, how: str, mapped: bool
) -> None:
    """A file is staged one batch per transaction: when it fails after several batches,
    what they staged is dropped, and the files staged after it on the same connection
    (every other file) hold only their own records."""
    logs = tmp_path / "logs"
    logs.mkdir()
    bad = _fails_after_many_batches(logs, how)
    for name, n in (("b", 5), ("c", 7), ("d", 3)):
        write_ndjson(logs / f"{name}.jsonl", [event(request_id=f"{name}{i}") for i in range(n)])
    options: dict[str, Any] = {"tuning": IngestTuning(chunk_bytes=4096, min_split_rows=8)}
    if mapped:
        m = tmp_path / "map.toml"
        m.write_text('[events]\naction = { sql = "lower(action)" }\n')
        options["mapping"] = load_mapping(m)
    db = tmp_path / "s.duckdb"
    report = run(db, logs, **options)
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name[bad].status == "failed"
    assert [
        (by_name[n].status, by_name[n].rows_read, by_name[n].rows_loaded)
        for n in ("b.jsonl", "c.jsonl", "d.jsonl")
    ] == [("loaded", 5, 5), ("loaded", 7, 7), ("loaded", 3, 3)]
    assert rows(db, "select count(*) from events") == [(15,)]
    assert rows(db, "select count(*) from rejects") == [(0,)]


@pytest.mark.skipif(not _unreadable_is_available(), reason="needs Linux's /proc/self/mem")
@pytest.mark.parametrize("readable", [False, True], ids=["io-error", "readable"])
def test_verify_tells_a_source_it_cannot_read_from_a_missing_one(
    tmp_path: Path, readable: bool
) -> None:
    logs = _three(tmp_path)
    db = tmp_path / "s.duckdb"
    assert CliRunner().invoke(app, ["--db", str(db), "ingest", str(logs)]).exit_code == 0
    a = logs / "a.jsonl"
    if not readable:
        a.unlink()
        a.symlink_to(UNREADABLE)  # there, but reading it is an I/O error
    r = CliRunner().invoke(app, ["--db", str(db), "verify", "--json"])
    status = {Path(x["path"]).name: x["status"] for x in json.loads(r.stdout)}
    if readable:
        assert r.exit_code == 0 and set(status.values()) == {"ok"}
        return
    assert r.exit_code == 1
    assert status == {"a.jsonl": "unreadable", "b.jsonl": "ok", "c.jsonl": "ok"}
    assert "1 of 3 source files changed, missing or unreadable" in r.stderr


def test_verify_tells_a_source_in_a_folder_it_cannot_enter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = _three(tmp_path)
    db = tmp_path / "s.duckdb"
    assert CliRunner().invoke(app, ["--db", str(db), "ingest", str(logs)]).exit_code == 0
    real = Path.is_file

    def is_file(self: Path) -> bool:
        if self.name == "a.jsonl":  # as stat() in a folder without search permission
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "is_file", is_file)
    r = CliRunner().invoke(app, ["--db", str(db), "verify", "--json"])
    assert r.exit_code == 1
    status = {Path(x["path"]).name: x["status"] for x in json.loads(r.stdout)}
    assert status == {"a.jsonl": "unreadable", "b.jsonl": "ok", "c.jsonl": "ok"}


def test_an_engine_error_while_staging_is_labelled_staging_not_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The error line names where the file failed; a staging failure said "store:".
    from forensics.ingest import pipeline
    from forensics.ingest.options import IngestOptions

    f = tmp_path / "e.ndjson"
    f.write_text('{"ts":"2024-02-16T09:00:00Z","action":"x","user_id":"u"}\n')

    def boom(*args: object, **kw: object) -> None:
        raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")

    con = duckdb.connect(str(tmp_path / "s.duckdb"))
    monkeypatch.setattr(pipeline, "read_into_stage", boom)
    try:
        staged = pipeline.stage_file(con, f, IngestOptions(), None)
    finally:
        con.close()
    assert staged.result.error == "staging: Out of Memory Error: failed to allocate"
