"""`ingest --lake` batch after batch: duplicates across batches, across the files of one
batch and within one file are resolved the same on DuckDB, on Spark and in a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from forensics.engines.base import EngineOptions
from forensics.ingest import IngestOptions
from forensics.lake import open_lake_duckdb, table_files
from forensics.lake_ingest import ingest_lake
from tests.helpers.ingest import event, run, write_ndjson
from tests.test_engines import _two_machines

_EVENTS = (
    "select ts, action, user_id, device_id, event_id, request_id, status, extra::varchar, "
    "source_record from events order by all"
)


def _batches(tmp_path: Path) -> tuple[list[str], list[str]]:
    first, second = _two_machines(tmp_path)
    b2 = write_ndjson(
        tmp_path / "b" / "b2.ndjson",
        [
            event(ts="2024-02-16T09:06:00Z", user_id="u7", request_id="r4"),  # dup of b1 (r4)
            event(ts="2024-02-16T09:03:30Z", user_id="u3", request_id="r3"),  # dup of a1 (r3)
            event(ts="2024-02-16T10:08:00Z", user_id="u8", request_id="r8"),
            event(ts="2024-02-16T10:08:00Z", user_id="u8", request_id="r8"),  # dup within b2
        ],
    )
    return [str(p) for p in first], [str(p) for p in (*second, b2)]


@pytest.mark.parametrize("engine_name", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_duplicates_across_and_within_batches_account_like_a_store(
    tmp_path: Path, engine_name: str, request: pytest.FixtureRequest
) -> None:
    if engine_name == "spark":
        request.getfixturevalue("spark_session")
    first, second = _batches(tmp_path)
    lake = tmp_path / "lake"
    on = EngineOptions(engine_name, str(lake), "local[1]")
    store = tmp_path / "case.duckdb"
    for batch in (first, second):
        want = run(store, *batch)
        got = ingest_lake(on, batch, IngestOptions())
        assert got.to_json() == want.to_json()
    dup = {Path(f.path).name: f.rows_duplicate for f in got.files}
    assert dup == {"shared-copy.ndjson": 0, "b1.ndjson": 3, "b2.ndjson": 3}
    con = open_lake_duckdb(str(lake))
    try:
        import duckdb

        with duckdb.connect(str(store), read_only=True) as s:
            rows = con.execute(_EVENTS).fetchall()
            assert rows == s.execute(_EVENTS).fetchall()
        assert len(rows) == 7  # 14 read, 1 rejected, 6 duplicates
    finally:
        con.close()
    names = [Path(f).name for f in table_files(lake, "events")]
    assert names and all(n.startswith(("b000001_", "b000002_")) for n in names)
    # the second batch's events sit in their UTC day and hour
    hours = {Path(f).parent.name for f in table_files(lake, "events") if "b000002_" in f}
    assert hours == {"hour=09", "hour=10"}


@pytest.mark.parametrize("engine_name", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_copies_of_content_the_lake_holds_are_named_like_a_store_names_them(
    tmp_path: Path, engine_name: str, request: pytest.FixtureRequest
) -> None:
    # Before, a.ndjson (held by the lake since the first run) was reported as the same as
    # b.ndjson, its copy earlier in the second run, which was itself skipped.
    if engine_name == "spark":
        request.getfixturevalue("spark_session")
    a = write_ndjson(tmp_path / "a.ndjson", [event(request_id="r1")])
    b = tmp_path / "b.ndjson"
    b.write_bytes(a.read_bytes())
    (tmp_path / "sub").mkdir()
    c = tmp_path / "sub" / "c.ndjson"
    c.write_bytes(a.read_bytes())
    new = write_ndjson(tmp_path / "new.ndjson", [event(request_id="r2")])
    again = tmp_path / "sub" / "new-again.ndjson"
    again.write_bytes(new.read_bytes())
    on = EngineOptions(engine_name, str(tmp_path / "lake"), "local[1]")
    store = tmp_path / "case.duckdb"
    for batch in ([str(a)], [str(b), str(a), str(new), str(tmp_path / "sub")]):
        want = run(store, *batch)
        got = ingest_lake(on, batch, IngestOptions())
        assert got.to_json() == want.to_json()
    errors = {Path(f.path).name: f.error for f in got.files}
    assert errors == {
        "b.ndjson": f"same content as {a}",
        "a.ndjson": f"same content as {a}",
        "new.ndjson": None,
        "c.ndjson": f"same content as {a}",
        "new-again.ndjson": f"same content as {new}",
    }
