"""SPEC §2.6: whatever goes wrong inside one file fails that file alone; the run goes on."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from forensics import ingest as ingest_mod
from forensics.cli import app
from tests.ingest_helpers import event, rows, run, write_ndjson

PERSONAL = "alice@example.com"  # personal data that must never reach an error message


def _three(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("a", "b", "c"):
        write_ndjson(logs / f"{name}.jsonl", [event(request_id=f"{name}{i}") for i in range(3)])
    return logs


def _raiser(exc: BaseException) -> Callable[[], None]:
    def boom() -> None:
        raise exc

    return boom


EXCEPTIONS: list[BaseException] = [
    RuntimeError(f"bad state near {PERSONAL}"),
    RecursionError("maximum recursion depth exceeded"),
    MemoryError(),
    duckdb.InvalidInputException(f'Malformed JSON: Input: "{PERSONAL}"'),
    KeyError(PERSONAL),
]


def _inject(monkeypatch: pytest.MonkeyPatch, stage: str, exc: BaseException) -> None:
    """Make `stage` fail for b.jsonl only."""
    if stage == "read":
        real_batches = ingest_mod._json_batches

        def batches(path: Path, *a: Any, **k: Any) -> Any:
            if path.name == "b.jsonl":
                _raiser(exc)()
            return real_batches(path, *a, **k)

        monkeypatch.setattr(ingest_mod, "_json_batches", batches)
    elif stage == "stage":
        real_add = ingest_mod._FileLoader.add_json

        def add_json(self: Any, lines: Any) -> None:
            if any(str(r).startswith("b") for r in
                   [json.loads(x).get("request_id") for x in lines.raw.to_pylist()]):
                _raiser(exc)()
            real_add(self, lines)

        monkeypatch.setattr(ingest_mod._FileLoader, "add_json", add_json)
    else:
        real_finish = ingest_mod._FileLoader.finish

        def finish(self: Any, source_row: dict[str, Any]) -> dict[str, int]:
            if str(source_row["path"]).endswith("b.jsonl"):
                _raiser(exc)()
            return real_finish(self, source_row)

        monkeypatch.setattr(ingest_mod._FileLoader, "finish", finish)


@pytest.mark.parametrize("stage", ["read", "stage", "store"])
@pytest.mark.parametrize("exc", EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_an_unexpected_failure_fails_that_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str, exc: BaseException
) -> None:
    logs = _three(tmp_path)
    _inject(monkeypatch, stage, exc)
    db = tmp_path / "s.duckdb"
    report = run(db, logs)
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
    _inject(monkeypatch, "stage", RecursionError())
    db = tmp_path / "s.duckdb"
    r = CliRunner().invoke(app, ["--db", str(db), "ingest", str(logs), "--json"])
    assert r.exit_code == 1
    files = {Path(f["path"]).name: f for f in json.loads(r.stdout)["files"]}
    assert files["b.jsonl"]["status"] == "failed"
    assert files["b.jsonl"]["error"].startswith("reading: ")
    assert files["a.jsonl"]["status"] == files["c.jsonl"]["status"] == "loaded"


def test_an_interrupt_still_stops_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = _three(tmp_path)
    _inject(monkeypatch, "stage", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "s.duckdb", logs)


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
