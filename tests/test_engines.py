"""SPEC §8: the case lake, and the same queries on DuckDB and Spark with the same answers.

Every failure found while bringing the queries to Spark was silent (a NULL, a wrong row), so
the engines are compared on every query, on data made to trip them.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from forensics.cli import app
from forensics.engines.base import EngineOptions
from forensics.engines.duckdb import DuckDBEngine
from forensics.engines.spark import to_spark
from forensics.errors import StoreError
from forensics.export import write_notifications
from forensics.exposure import (
    compute_breakdown,
    compute_figures,
    exposure_report,
    prepare_window,
    window_params,
)
from forensics.ingest import IngestOptions
from forensics.lake import export_store, open_lake_duckdb, table_files
from forensics.lake_ingest import ingest_lake
from forensics.queries import get_query, load_queries
from forensics.store import StoreOptions
from tests.helpers.engines import open_case
from tests.helpers.incident import Incident, at, model_figures, window
from tests.helpers.ingest import event, run, write_ndjson, write_parquet
from tests.test_exposure import STEPS, incidents_st

W = window(0, 60)
ODD_KEYS = (
    "cache.node",
    "a/b",
    "c~d",
    "~1",
    "q'uote",
    'dq"uote',
    "two words",
    "ключ",
    "节点",
    "emoji🙂",
    "back\\slash",
    "",
)


def odd_incident() -> Incident:
    """Every rule of §5 touched, and extra keys that JSON paths and pointers trip over."""
    inc = Incident()
    inc.grant("d1", "owner1", "owner")
    inc.grant("d1", "owner2", "owner", valid_from=at(30))
    inc.grant("d2", "owner3", "owner")
    inc.grant("d1", "friend", "shared", valid_from=at(10), valid_to=at(20))
    for i, key in enumerate(ODD_KEYS):
        # "d": numbers a double's text writes otherwise (Spark: 1.0E-4), and digits as text
        d = (0.0001, 1e22, -1.25e-7, 1e16, 1.2345678901234568e17, "7.2.1", "12", 3)[i % 8]
        extra = {
            key: f"v{i}",
            "n": i * 1.5,
            "nested": {"x": [1, None]},
            "flag": i % 2 == 0,
            "d": d,
        }
        inc.deliver(
            at(i + 1, seconds=0.25),
            f"user{i % 4}",
            "d1" if i % 3 else "d2",
            f"e{i}",
            extra=extra,
            request_id=None if i % 5 == 0 else "auto",
        )
        if i % 2:
            inc.tap(at(i + 2), f"user{i % 4}", "d1" if i % 3 else "d2", f"e{i}")
        if i % 4 == 1:
            inc.play(at(i + 3), f"user{i % 4}", "d1" if i % 3 else "d2", f"e{i}")
    inc.deliver(at(15), "friend", "d1", "e50")  # authorized by the share
    inc.deliver(at(-5), "user9", "d1", "e51")  # outside the window
    inc.deliver(at(70), "user9", "d1", "e52", extra={"cache.node": None})  # outside
    inc.tap(at(80), "user1", "d1", "e1")  # after the window, still linked
    inc.deliver(at(5), "user8", "d2", "e53", status=503)  # failed
    inc.deliver(at(6), "=cmd", "d2", "e54", extra={"app": "-x"})  # formula-looking ids
    for user, email, name in (
        ("user1", "u1@example.org", 'Zoë, "Z"'),
        ("owner1", None, "O"),
        ("user2", " ", None),
    ):
        inc.account(user, email, name, "fr", "FR")
    inc.account("user1", "later@example.org", "Zoë", "de", "DE")  # the later record wins
    return inc


def _norm(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()


def _types(table: pa.Table) -> list[tuple[str, str]]:
    """Column names and types, list element names and nullability aside."""
    out = []
    for f in table.schema:
        t = f.type
        out.append((f.name, f"list<{t.value_type}>" if pa.types.is_list(t) else str(t)))
    return out


def _sorted(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))


# --- transpiling: the one rewrite, without Spark ----------------------------------------


def test_json_pointer_lookup_becomes_a_map_lookup_on_spark() -> None:
    sql = to_spark(get_query("deliveries_by_field").sql)
    assert "GET_JSON_OBJECT" not in sql
    assert "ELEMENT_AT(FROM_JSON(e.extra, 'map<string,string>')" in sql
    assert "REGEXP_EXTRACT(SUBSTRING(e.extra, LOCATE(" in sql  # a number as written
    # the key is decoded back from the pointer: ~1 → / then ~0 → ~
    assert "REPLACE(REPLACE(SUBSTRING('/' || REPLACE(REPLACE(:field" in sql


def test_literal_pointer_is_decoded_and_nested_pointer_is_refused() -> None:
    assert "'a/b~'" in to_spark("select json_extract_string(x, '/a~1b~0') from t")
    assert "GET_JSON_OBJECT(x, '$.k')" in to_spark("select json_extract_string(x, '$.k') from t")
    with pytest.raises(StoreError):
        to_spark("select json_extract_string(x, '/a/b') from t")


def test_every_query_transpiles_with_named_parameters() -> None:
    for name, q in load_queries().items():
        sql = to_spark(q.sql)
        assert "$" not in sql.replace("'$", ""), name
        for p in q.params:
            assert f":{p}" in sql, (name, p)


# --- the lake ----------------------------------------------------------------------------


def test_export_partitions_events_by_utc_day_and_hour(tmp_path: Path) -> None:
    inc = Incident()
    inc.deliver(at(-1), "a", "d1", "e1")  # 08:59
    inc.deliver(at(0), "a", "d1", "e1")  # 09:00
    inc.deliver(at(24 * 60 + 1), "a", "d1", "e1")  # the next day, 09:01
    store = inc.write(tmp_path / "case.duckdb")
    export_store(StoreOptions(store), str(tmp_path / "lake"))
    parts = sorted(
        os.path.relpath(os.path.dirname(f), tmp_path / "lake" / "events")
        for f in table_files(tmp_path / "lake", "events")
    )
    assert parts == ["day=2024-02-16/hour=08", "day=2024-02-16/hour=09", "day=2024-02-17/hour=09"]


def test_a_batch_that_never_committed_is_ignored_then_removed(tmp_path: Path) -> None:
    import duckdb

    store = odd_incident().write(tmp_path / "case.duckdb")
    lake = tmp_path / "lake"
    export_store(StoreOptions(store), str(lake))
    # a writer stopped before its batches/ row: files of batch 2, nothing commits them
    stray = lake / "events" / "day=2024-02-16" / "hour=09" / "b000002_0.parquet"
    grants = lake / "grants" / "b000002.parquet"
    con = duckdb.connect()
    first = table_files(lake, "events")[0].replace("'", "''")
    con.execute(f"copy (select * replace (100 as source_id) from '{first}') to '{stray}'")
    first = table_files(lake, "grants")[0].replace("'", "''")
    con.execute(f"copy (select * replace (100 as source_id) from '{first}') to '{grants}'")
    con.close()
    with _closing(open_lake_duckdb(str(lake))) as lake_con:
        counts = lake_con.execute(
            "select (select count(*) from events), (select count(*) from grants)"
        ).fetchall()
    assert counts == [(len(odd_incident().events), len(odd_incident().grants))]
    # the next writer removes every file of a batch that never committed (and then writes
    # its own batch 2: here an empty one, as the lake already holds this store)
    export_store(StoreOptions(store), str(lake))
    assert not stray.exists()
    with _closing(open_lake_duckdb(str(lake))) as lake_con:
        assert lake_con.execute(
            "select count(*) from read_parquet($f)", {"f": str(grants)}
        ).fetchall() == [(0,)]


def test_the_same_store_exported_twice_adds_nothing(tmp_path: Path) -> None:
    store = odd_incident().write(tmp_path / "case.duckdb")
    first = export_store(StoreOptions(store), str(tmp_path / "lake"))
    again = export_store(StoreOptions(store), str(tmp_path / "lake"))
    assert [f.status for f in first.files] == ["loaded"] * 3
    assert [f.status for f in again.files] == ["skipped"] * 3
    assert again.events_written == 0
    con = open_lake_duckdb(str(tmp_path / "lake"))
    try:
        n = con.execute("select count(*) from events").fetchone()
        assert n is not None and n[0] == len(odd_incident().events)
    finally:
        con.close()


def test_a_missing_lake_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a case lake"):
        open_lake_duckdb(str(tmp_path / "nothing"))


def test_a_second_writer_is_refused_while_the_lake_is_locked(tmp_path: Path) -> None:
    import fcntl

    store = odd_incident().write(tmp_path / "case.duckdb")
    lake = tmp_path / "lake"
    lake.mkdir()
    fd = os.open(lake / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match="another export or ingest"):
            export_store(StoreOptions(store), str(lake))
    finally:
        os.close(fd)


def _ingest_files(folder: Path, name: str, records: list[dict[str, Any]]) -> Path:
    return write_ndjson(folder / name, records)


def _two_machines(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """Files for two machines with overlapping duplicates: the same request id in both
    (different content), the same six fields without request id, and one file on both."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    grants = write_ndjson(
        a / "grants.ndjson",
        [
            {"device_id": "d1", "user_id": "owner1", "role": "owner"},
        ],
    )
    shared = write_ndjson(
        a / "shared.ndjson",
        [
            event(ts="2024-02-16T09:05:00Z", user_id="x", request_id="s1"),
        ],
    )
    a1 = write_ndjson(
        a / "a1.ndjson",
        [
            event(ts="2024-02-16T09:01:00Z", user_id="u1", request_id="r1"),
            event(ts="2024-02-16T09:02:00Z", user_id="u2"),  # no request id
            event(ts="2024-02-16T09:03:00Z", user_id="u3", request_id="r3"),
            {"ts": "bad", "action": "x", "user_id": "u"},  # rejected
        ],
    )
    b_shared = b / "shared-copy.ndjson"
    b_shared.write_bytes(shared.read_bytes())
    b1 = write_ndjson(
        b / "b1.ndjson",
        [
            event(ts="2024-02-16T09:04:00Z", user_id="u9", request_id="r1"),  # dup of a1 (r1)
            event(ts="2024-02-16T09:02:00Z", user_id="u2"),  # dup of a1 (six fields)
            event(ts="2024-02-16T09:06:00Z", user_id="u4", request_id="r4"),
            event(ts="2024-02-16T09:06:00Z", user_id="u4", request_id="r4"),  # dup within b1
            event(ts="2024-02-16T09:07:00Z", user_id="u5", extra_key="k"),
        ],
    )
    return [grants, shared, a1], [b_shared, b1]


def test_two_stores_into_one_lake_equal_one_store_of_all_files(tmp_path: Path) -> None:
    files_a, files_b = _two_machines(tmp_path)
    run(tmp_path / "a.duckdb", *files_a)
    run(tmp_path / "b.duckdb", *files_b)
    whole = run(tmp_path / "all.duckdb", *files_a, *files_b)
    lake = tmp_path / "lake"
    first = export_store(StoreOptions(tmp_path / "a.duckdb"), str(lake))
    second = export_store(StoreOptions(tmp_path / "b.duckdb"), str(lake))
    exported = [
        (f.status, f.rows_read, f.rows_loaded, f.rows_rejected, f.rows_duplicate)
        for f in first.files + second.files
    ]
    expected = [
        (f.status, f.rows_read, f.rows_loaded, f.rows_rejected, f.rows_duplicate)
        for f in whole.files
    ]
    assert exported == expected
    assert second.files[1].rows_duplicate == 3  # r1 and the six fields across stores, r4
    window_ = window(0, 60)
    with _closing(open_lake_duckdb(str(lake))) as con:
        lake_figures = compute_figures(con, window_)
        stored = con.execute(
            "select user_id, source_id from events order by source_id, source_record"
        ).fetchall()
    with _closing(open_case(tmp_path / "all.duckdb")) as con:
        assert compute_figures(con, window_) == lake_figures
    # the earliest store, file and record win: r1 keeps machine a's user
    assert ("u1", 3) in stored and ("u9", 5) not in stored
    assert lake_figures["cross_account_deliveries"] == 6


class _closing:
    def __init__(self, con: Any) -> None:
        self.con = con

    def __enter__(self) -> Any:
        return self.con

    def __exit__(self, *exc: object) -> None:
        self.con.close()


# --- both engines ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def odd_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("odd")
    store = odd_incident().write(folder / "case.duckdb")
    export_store(StoreOptions(store), str(folder / "lake"))
    return folder


@pytest.mark.spark
def test_every_query_gives_the_same_rows_on_both_engines(
    odd_lake: Path, spark_session: Any
) -> None:
    from forensics.engines.spark import SparkEngine

    params = {
        **window_params(W),
        "field": "cache.node",
        "coverage_start": W.start - timedelta(hours=1),
        "coverage_end": W.end + timedelta(hours=1),
        "limit": 2,
        "key_parts": 1,
        "key_part": 0,
    }
    store = open_case(odd_lake / "case.duckdb", "duckdb")
    lake_duck = DuckDBEngine.open_lake(EngineOptions("duckdb", str(odd_lake / "lake")))
    spark = SparkEngine.open_lake(str(odd_lake / "lake"), "local[1]")
    try:
        for con in (store, lake_duck, spark):
            prepare_window(con, W)
        compared = 0
        for name, q in load_queries().items():
            bound = {p: params[p] for p in q.params}
            want = DuckDBEngine(store).run_query(name, bound)  # type: ignore[arg-type]
            for con in (lake_duck, spark):
                got = con.run_query(name, bound)
                if re.search(r"^order by", q.sql, re.MULTILINE):
                    assert _norm(got) == _norm(want), (con.name, name)
                else:
                    assert _sorted(_norm(got)) == _sorted(_norm(want)), (con.name, name)
                assert _types(got) == _types(want), (con.name, name)
                compared += 1
        assert compared == 2 * len(load_queries())
        # unauthorized_rows in key parts: on each engine, the parts together are the whole
        # (each engine hashes user_ids its own way; only the case store's DuckDB runs parts)
        for con in (DuckDBEngine(store), lake_duck, spark):  # type: ignore[arg-type]
            whole = _sorted(_norm(con.run_query("unauthorized_rows", params)))
            parts = [
                r
                for part in range(3)
                for r in _norm(
                    con.run_query("unauthorized_rows", {**params, "key_parts": 3, "key_part": part})
                )
            ]
            assert whole and _sorted(parts) == whole, con.name
        keys = [k for k in ODD_KEYS if k]  # --by refuses an empty name
        for key in (*keys, "n", "nested", "flag", "status", "app", "d", "no-such-key"):
            want_rows = compute_breakdown(store, W, key) if key != "no-such-key" else None
            for con in (lake_duck, spark):
                if want_rows is None:
                    with pytest.raises(Exception, match="no stored event has the field"):
                        compute_breakdown(con, W, key)
                else:
                    assert compute_breakdown(con, W, key) == want_rows, (con.name, key)
        # the odd keys really are there, each on its own delivery
        rows = compute_breakdown(spark, W, "ключ").rows
        assert [(r.value, r.cross_account_deliveries) for r in rows] == [(None, 12), ("v7", 1)]
    finally:
        for con in (store, lake_duck, spark):
            con.close()


def test_export_then_exposure_on_the_lake_gives_the_stores_figures(
    tmp_path: Path, engine: str
) -> None:
    store = odd_incident().write(tmp_path / "case.duckdb")
    with _closing(open_case(store, "duckdb")) as con:
        want = exposure_report(con, W, "cache.node").to_json()
    with _closing(open_case(store)) as con:  # exported to a lake first on Spark
        assert exposure_report(con, W, "cache.node").to_json() == want
    with _closing(open_case(store, "duckdb-lake")) as con:
        assert exposure_report(con, W, "cache.node").to_json() == want


def test_notify_lists_are_byte_identical_on_every_engine(tmp_path: Path, engine: str) -> None:
    store = odd_incident().write(tmp_path / "case.duckdb")
    outs = {}
    for name in dict.fromkeys(("duckdb", "duckdb-lake", engine)):
        out = tmp_path / f"out-{name}"
        with _closing(open_case(store, name)) as con:
            write_notifications(con, W, out)
        outs[name] = out
    for csv in ("recipients.csv", "owners.csv", "exposures.csv"):
        want = (outs["duckdb"] / csv).read_bytes()
        assert want.count(b"\r\n") > 1, csv
        for name, out in outs.items():
            assert (out / csv).read_bytes() == want, (name, csv)


# A lake folder named with every character DuckDB's or Hadoop's globs expand.
GLOB_NAME = "lake [1] {a,b} *?"


def _ingest_inputs(tmp_path: Path) -> list[str]:
    """Files that exercise the accounting: duplicates within and across files (with and
    without request id), rejects, a failed file, a skipped copy, a folder with other files."""
    folder = tmp_path / "in"
    (folder / "more").mkdir(parents=True)
    files_a, files_b = _two_machines(tmp_path)
    for f in files_a + files_b:
        (folder / f.name).write_bytes(f.read_bytes())
    (folder / "more" / "notes.txt").write_text("not a log")  # walked: skipped
    (folder / "more" / "broken.json").write_text('[{"ts": 1}, ')  # unclosed array: failed
    write_parquet(
        folder / "more" / "p.parquet",
        {
            "ts": ["2024-02-16T09:10:00Z", "2024-02-16T09:11:00Z"],
            "action": ["thumbnail_delivered"] * 2,
            "user_id": ["u1", "u7"],
            "device_id": ["d1", "d1"],
            "event_id": ["e1", "e2"],
            "request_id": ["r1", "p2"],  # r1 is a duplicate of a1's
        },
    )
    return [str(folder), str(tmp_path / "missing.ndjson")]


@pytest.mark.parametrize("engine_name", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_ingest_into_a_lake_accounts_like_a_store_ingest(
    tmp_path: Path, engine_name: str, request: pytest.FixtureRequest
) -> None:
    if engine_name == "spark":
        request.getfixturevalue("spark_session")
    paths = _ingest_inputs(tmp_path)
    want = run(tmp_path / "case.duckdb", *paths)
    # Both engines expand globs in the paths they read: the lake's own must be taken literally.
    lake_dir = str(tmp_path / GLOB_NAME)
    got = ingest_lake(EngineOptions(engine_name, lake_dir, "local[1]"), paths, IngestOptions())
    assert got.to_json() == want.to_json()
    statuses = {f.status for f in got.files}
    assert statuses == {"loaded", "skipped", "failed"}
    assert sum(f.rows_duplicate for f in got.files) >= 4
    again = ingest_lake(EngineOptions(engine_name, lake_dir, "local[1]"), paths, IngestOptions())
    assert {f.status for f in again.files} == {"skipped", "failed"}
    with (
        _closing(open_lake_duckdb(lake_dir)) as lake,
        _closing(open_case(tmp_path / "case.duckdb", "duckdb")) as con,
    ):
        for table in ("events", "grants", "accounts", "rejects"):
            cols = (
                "*"
                if table != "events"
                else (
                    "ts, action, user_id, device_id, event_id, request_id, status, "
                    "extra::varchar, source_record"
                )
            )
            q = f"select {cols} from {table} order by all"  # noqa: S608
            if table in ("grants", "accounts", "rejects"):
                q = f"select * exclude (source_id) from {table} order by all"  # noqa: S608
            assert lake.execute(q).fetchall() == con.execute(q).fetchall(), table
        assert compute_figures(lake, W) == compute_figures(con, W)


def test_a_lake_ingest_keeps_to_the_memory_limit_and_removes_its_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensics.lake_ingest as lake_ingest

    limits: list[str | None] = []
    real = lake_ingest.ingest

    def spy(store: StoreOptions, *args: Any, **kwargs: Any) -> Any:
        limits.append(store.memory_limit)
        return real(store, *args, **kwargs)

    monkeypatch.setattr(lake_ingest, "ingest", spy)
    lake = tmp_path / "lake"
    options = EngineOptions("duckdb", str(lake), memory_limit="256MB")
    got = ingest_lake(options, _ingest_inputs(tmp_path), IngestOptions())
    assert {f.status for f in got.files} == {"loaded", "skipped", "failed"}
    assert limits == ["256MB"]  # the share's private store, not only the resolution
    assert (lake / "batches").is_dir() and not (lake / "_staging").exists()


@pytest.mark.spark
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(inc=incidents_st(), bounds=st.tuples(STEPS, st.integers(1, 4)))
def test_spark_equals_the_model(
    tmp_path_factory: pytest.TempPathFactory,
    spark_session: Any,
    inc: Incident,
    bounds: tuple[int, int],
) -> None:
    w = window(bounds[0] * 5, (bounds[0] + bounds[1]) * 5)
    store = inc.write(tmp_path_factory.mktemp("prop") / "case.duckdb")
    with _closing(open_case(store, "spark")) as con:
        assert compute_figures(con, w) == model_figures(inc.events, inc.grants, w)


# --- the command line --------------------------------------------------------------------


def test_cli_export_then_exposure_on_the_lake(tmp_path: Path, runner: CliRunner) -> None:
    store = odd_incident().write(tmp_path / "case.duckdb")
    lake = str(tmp_path / "lake")
    r = runner.invoke(app, ["--db", str(store), "export", lake, "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["batch"] == 1
    assert "batch 1" in r.stderr and "user" not in r.stderr
    w = "2024-02-16T09:00:00Z/PT1H"
    on_lake = runner.invoke(app, ["exposure", "--lake", lake, "--window", w, "--json"])
    on_store = runner.invoke(app, ["--db", str(store), "exposure", "--window", w, "--json"])
    assert on_lake.exit_code == on_store.exit_code == 0
    assert on_lake.stdout == on_store.stdout
    for quiet in (
        ["-q", "--db", str(store), "export", lake],
        ["--db", str(store), "export", lake, "-q"],
    ):
        r = runner.invoke(app, quiet)
        assert r.exit_code == 0 and r.stderr == ""


def test_cli_spark_without_a_lake_is_a_usage_error(tmp_path: Path, runner: CliRunner) -> None:
    window = "2024-02-16T00:00:00Z/PT1H"
    r = runner.invoke(app, ["exposure", "--engine", "spark", "--window", window])
    assert r.exit_code == 2
    assert r.stderr.startswith("forensics: error: --engine spark: reads a case lake")
    assert r.stderr.count("\n") == 1 and r.stdout == ""


def test_cli_missing_pyspark_or_java_names_the_fix(
    tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = odd_incident().write(tmp_path / "case.duckdb")
    lake = str(tmp_path / "lake")
    export_store(StoreOptions(store), lake)
    window = "2024-02-16T00:00:00Z/PT1H"
    args = ["exposure", "--lake", lake, "--engine", "spark", "--window", window]
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    assert "pyspark is not installed" in r.stderr and "pip install 'forensics[spark]'" in r.stderr
    assert r.stderr.count("\n") == 1
    monkeypatch.setattr(importlib.util, "find_spec", real)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    assert "Java was not found" in r.stderr and "Java 17" in r.stderr
    assert r.stderr.count("\n") == 1


def test_cli_lake_on_a_uri_needs_spark(tmp_path: Path, runner: CliRunner) -> None:
    r = runner.invoke(
        app, ["exposure", "--lake", "s3a://bucket/case", "--window", "2024-02-16/PT1H"]
    )
    assert r.exit_code == 2
    assert "only --engine spark reads a lake from a uri" in r.stderr.lower()


def test_cli_ingest_into_a_lake_reports_like_a_store_ingest(
    tmp_path: Path, runner: CliRunner
) -> None:
    paths = _ingest_inputs(tmp_path)
    store = runner.invoke(app, ["--db", str(tmp_path / "case.duckdb"), "ingest", "--json", *paths])
    lake = runner.invoke(app, ["ingest", "--lake", str(tmp_path / "lake"), "--json", *paths])
    assert store.exit_code == lake.exit_code == 1  # a file failed: exit 1 on both
    assert json.loads(lake.stdout) == json.loads(store.stdout)
    assert lake.stderr == store.stderr


def test_the_batches_row_says_how_the_batch_was_written(tmp_path: Path) -> None:
    """`export` and `ingest --lake` batches are told apart in batches/ (not by a file's kind)."""
    import duckdb

    store = odd_incident().write(tmp_path / "case.duckdb")
    lake = tmp_path / "lake"
    export_store(StoreOptions(store), str(lake))
    kinds = duckdb.sql(
        "select kind from read_parquet($p)", params={"p": str(lake / "batches" / "*.parquet")}
    ).fetchall()
    assert kinds == [("export",)]
