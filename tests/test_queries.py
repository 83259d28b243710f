"""Every file in queries/ and forensics/ingest/sql/: its header parses, declared params equal
used params, and it runs on an empty case store (ingest's, with an empty stage); the SPEC §5
queries do not depend on the session time zone."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from forensics.exposure import compute_breakdown, compute_figures, prepare_window
from forensics.ingest.json_sql import parsed
from forensics.ingest.stage import STAGE_COLUMNS
from forensics.ingest.store import SQL_DIR as INGEST_SQL_DIR
from forensics.queries import load_queries, parse_query, queries_dir, query_rows, run_query
from forensics.store import StoreOptions, open_store
from tests.helpers.incident import Incident, at, window

SQL_FILES = sorted(queries_dir().glob("*.sql"))
# A sample value for every parameter any query declares; a new parameter needs one here.
SAMPLE_PARAMS: dict[str, object] = {
    "window_start": datetime(2024, 2, 16, 9, tzinfo=timezone.utc),
    "window_end": datetime(2024, 2, 16, 13, tzinfo=timezone.utc),
    "field": "status",
    "coverage_start": datetime(2024, 2, 16, 8, tzinfo=timezone.utc),
    "coverage_end": datetime(2024, 2, 16, 14, tzinfo=timezone.utc),
    "limit": 10,
    "key_parts": 1,
    "key_part": 0,
}
_USED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def test_there_are_queries() -> None:
    assert {
        "unauthorized_accesses",
        "cross_account_deliveries",
        "cross_account_taps",
        "cross_account_plays",
        "figures",
        "timeline",
        "deliveries_by_field",
    } <= {p.stem for p in SQL_FILES}


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_header_parses_and_params_match(path: Path) -> None:
    q = parse_query(path)
    assert q.name == path.stem
    assert q.grain
    body = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("--"))
    assert set(q.params) == set(_USED.findall(body))
    missing = set(q.params) - SAMPLE_PARAMS.keys()
    assert not missing, f"add a sample value for {missing} to SAMPLE_PARAMS"


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_no_asof_join(path: Path) -> None:
    # ASOF checks only the latest-starting grant: wrong with overlapping grants (SPEC §5).
    body = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("--"))
    assert not re.search(r"\basof\b", body, re.IGNORECASE)


def test_every_query_runs_on_an_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "case.duckdb"
    open_store(StoreOptions(path), read_only=False).close()
    con = open_store(StoreOptions(path), read_only=True)
    try:
        pending = dict(load_queries())
        errors: dict[str, str] = {}
        # Queries read each other's temp tables: materialise in passes until none is left.
        while pending:
            progressed = False
            for name, q in list(pending.items()):
                params = {p: SAMPLE_PARAMS[p] for p in q.params}
                try:
                    con.execute(
                        f"create or replace temp table {name} as {q.sql.strip().rstrip(';')}",
                        params,
                    )
                except duckdb.CatalogException as e:
                    errors[name] = str(e).splitlines()[0]
                    continue
                rows = con.execute(f"select count(*) from {name}").fetchone()
                assert rows is not None
                if name in (
                    "figures",
                    "analysis_window",
                    "event_time_range",
                    "grant_time_range",
                    "window_event_count",
                    "deliveries_outside_window",
                    "rejects_total",
                ):
                    assert rows[0] == 1
                else:
                    assert rows[0] == 0, name
                pending.pop(name)
                progressed = True
            if not progressed:
                pytest.fail(f"queries that do not run on an empty store: {errors}")
    finally:
        con.close()


def test_query_rows_are_the_rows_of_the_arrow_table(tmp_path: Path) -> None:
    """query_rows (DuckDB's Python values, no Arrow) and run_query (an Arrow table) give
    equal rows for every query, on a store with cross-account accesses and an owner change."""
    inc = Incident()
    inc.grant("d1", "owner1", "owner", valid_to=at(50))
    inc.grant("d1", "owner2", "owner", valid_from=at(50))
    inc.account("stranger", "s@example.org", "Stan", "en", "GB")
    inc.deliver(at(5), "stranger", "d1", "e1", extra={"cache_node": "c1"}, status=200)
    inc.deliver(at(55), "stranger", "d1", "e2")
    inc.deliver(at(-30), "late", "d1", "e0")
    inc.tap(at(6), "stranger", "d1", "e1")
    inc.play(at(70), "stranger", "d1", "e2")
    path = inc.write(tmp_path / "case.duckdb")
    con = open_store(StoreOptions(path), read_only=True)
    try:
        prepare_window(con, window(0, 240))
        compared = 0
        for name, q in sorted(load_queries().items()):
            params = {p: SAMPLE_PARAMS[p] for p in q.params}
            arrow = run_query(con, name, params).to_pylist()
            got = query_rows(con, name, params)
            assert got == arrow, name
            assert [list(r) for r in got] == [list(r) for r in arrow], name  # column order
            compared += bool(arrow)
        assert compared >= 20
    finally:
        con.close()


def test_figures_do_not_depend_on_the_session_time_zone(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d1", "owner", "owner", valid_to=at(30))
    inc.grant("d1", "friend", "shared", valid_from=at(10), valid_to=at(40))
    for m in (0, 5, 10, 29, 30, 39, 40, 59, 60):
        inc.deliver(at(m), "friend", "d1", "e1", extra={"cache_node": f"c{m % 3}"})
        inc.tap(at(m, 30), "friend", "d1", "e1")
    path = inc.write(tmp_path / "case.duckdb")
    w = window(0, 60)
    results = []
    for zone in ("UTC", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham"):
        con = open_store(StoreOptions(path), read_only=True)
        try:
            con.execute("set TimeZone = $z", {"z": zone})
            prepare_window(con, w)
            results.append((compute_figures(con, w), compute_breakdown(con, w, "cache_node")))
        finally:
            con.close()
    assert all(r == results[0] for r in results)
    assert results[0][0]["cross_account_deliveries"] == 4  # at 0, 5, 40 and 59


# ------------------------------------------------------------- ingest's fixed statements

INGEST_SQL = sorted(INGEST_SQL_DIR.glob("*.sql"))
INGEST_SAMPLE_PARAMS: dict[str, object] = {
    "sid": 1,
    "limit": 100,
    "name": "stage",
    "block": 16,
    "per_group": 60,
    "source_id": 1,
    "path": "/x/e.ndjson",
    "kind": "events",
    "format": "ndjson",
    "size_bytes": 0,
    "sha256": "0" * 64,
    "rows_read": 0,
    "rows_loaded": 0,
    "rows_rejected": 0,
    "rows_duplicate": 0,
    "ingested_at": datetime(2024, 2, 16, tzinfo=timezone.utc),
    "tool_version": "0",
    "assume_tz": None,
    "map_sha256": None,
    "notes": None,
    "lo": datetime(2024, 2, 16, tzinfo=timezone.utc),
    "hi": datetime(2024, 2, 17, tzinfo=timezone.utc),
    "shift": 32,
    "mask": (1 << 32) - 1,
}
# The stage a statement reads; events unless named here.
STAGE_KIND = {
    "insert_grants": "grants",
    "insert_accounts": "accounts",
    "batch_insert_grants": "grants",
    "batch_insert_accounts": "accounts",
}


def test_ingest_has_its_statements_as_files_inside_the_package() -> None:
    assert {
        "insert_rejects",
        "insert_source",
        "file_keys",
        "stage_time_spread",
        "stage_counts",
    } <= {p.stem for p in INGEST_SQL}
    # The wheel holds the package folder whole (hatch `packages`): the statements with it.
    import forensics

    assert INGEST_SQL_DIR.is_relative_to(Path(forensics.__file__).resolve().parent)


@pytest.mark.parametrize("path", INGEST_SQL, ids=lambda p: p.name)
def test_ingest_statement_header_parses_and_params_match(path: Path) -> None:
    q = parse_query(path)
    assert q.name == path.stem and q.grain
    body = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("--"))
    assert set(q.params) == set(_USED.findall(body))
    missing = set(q.params) - INGEST_SAMPLE_PARAMS.keys()
    assert not missing, f"add a sample value for {missing} to INGEST_SAMPLE_PARAMS"


@pytest.mark.parametrize("kind", ["events", "grants", "accounts"])
def test_every_ingest_statement_runs_on_an_empty_store_and_stage(tmp_path: Path, kind: str) -> None:
    con = open_store(StoreOptions(tmp_path / "case.duckdb"), read_only=False)
    try:
        con.execute(
            f"create temp table stage (rec bigint, err varchar, raw varchar, {STAGE_COLUMNS[kind]})"
        )
        # A batch of small files: the same stage, its files' source ids, their sources rows.
        con.execute("create temp table bstage as select * from stage")
        con.execute("create temp table batch_files (file bigint, sid bigint)")
        con.execute("create temp table batch_sources as select * from sources limit 0")
        empty = "(select 1::bigint as rec, ''::varchar as raw, null::varchar as pre_err)"
        con.execute(f"create temp table held as select * from ({parsed(empty)}) limit 0")
        pending = {
            p.stem: parse_query(p) for p in INGEST_SQL if STAGE_KIND.get(p.stem, "events") == kind
        }
        assert pending
        errors: dict[str, str] = {}
        while pending:  # statements read each other's temp tables: run in passes
            progressed = False
            for name, q in list(pending.items()):
                try:
                    con.execute(q.sql, {p: INGEST_SAMPLE_PARAMS[p] for p in q.params})
                except duckdb.CatalogException as e:
                    errors[name] = str(e).splitlines()[0]
                    continue
                pending.pop(name)
                progressed = True
            if not progressed:
                pytest.fail(f"statements that do not run on an empty stage: {errors}")
        assert con.execute("select count(*) from rejects").fetchone() == (0,)
    finally:
        con.close()
