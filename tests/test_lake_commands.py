"""SPEC §7: sources, rejects, verify, status and sql take --lake/--engine and answer from a
case lake as they do from the store it was exported from, on DuckDB and on Spark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.lake import export_store
from forensics.store import StoreOptions
from tests.helpers.ingest import run
from tests.test_engines import GLOB_NAME, _ingest_inputs

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path]:
    """A store ingested from files with rejects, duplicates and a failure, and its lake."""
    store = tmp_path / "case.duckdb"
    run(store, *_ingest_inputs(tmp_path))
    lake = tmp_path / GLOB_NAME  # read literally by both engines
    export_store(StoreOptions(store), str(lake))
    return store, lake


def _both(
    runner: CliRunner, case: tuple[Path, Path], engine: str, *args: str
) -> tuple[object, object]:
    store, lake = case
    on_store = runner.invoke(app, ["--db", str(store), *args])
    on_lake = runner.invoke(
        app, [*args, "--lake", str(lake), "--engine", engine, "--master", "local[1]"]
    )
    assert on_store.exit_code == 0, on_store.stderr
    assert on_lake.exit_code == 0, on_lake.stderr
    return json.loads(on_store.stdout), json.loads(on_lake.stdout)


@pytest.mark.parametrize("engine", ENGINES)
def test_evidence_commands_read_a_lake_as_the_store(
    runner: CliRunner, case: tuple[Path, Path], engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "spark":
        request.getfixturevalue("spark_session")
    want, got = _both(runner, case, engine, "sources", "--json")
    assert want == got and len(got) >= 3  # type: ignore[arg-type]
    want, got = _both(runner, case, engine, "rejects", "--json", "--limit", "0")
    assert want == got == []
    want, got = _both(runner, case, engine, "rejects", "--json")
    assert want == got and len(got) == 1  # type: ignore[arg-type]
    want, got = _both(runner, case, engine, "verify", "--json")
    assert want == got and {r["status"] for r in got} == {"ok"}  # type: ignore[union-attr, index]
    want, got = _both(runner, case, engine, "status", "--json")
    assert isinstance(want, dict) and isinstance(got, dict)
    assert got.pop("path") == str(case[1]) and want.pop("path") == str(case[0])
    assert got.pop("size_bytes") > 0 and want.pop("size_bytes") > 0
    assert want == got and got["totals"]["files"] >= 3
    query = "select count(*) as n, min(ts) as first, max(user_id) as u from events"
    want, got = _both(runner, case, engine, "sql", "--format", "json", query)
    assert want == got and got[0]["n"] > 0  # type: ignore[index]


@pytest.mark.parametrize("engine", ENGINES)
def test_verify_on_a_lake_sees_a_changed_source(
    runner: CliRunner, case: tuple[Path, Path], engine: str, request: pytest.FixtureRequest
) -> None:
    if engine == "spark":
        request.getfixturevalue("spark_session")
    _, lake = case
    rows = json.loads(runner.invoke(app, ["sources", "--json", "--lake", str(lake)]).stdout)
    Path(rows[0]["path"]).write_bytes(b"changed\n")
    r = runner.invoke(
        app, ["verify", "--lake", str(lake), "--engine", engine, "--master", "local[1]"]
    )
    assert r.exit_code == 1
    assert r.stderr.strip().endswith(
        f"1 of {len(rows):,} source files changed, missing or unreadable"
    )


def test_status_names_the_lake(runner: CliRunner, case: tuple[Path, Path]) -> None:
    r = runner.invoke(app, ["status", "--lake", str(case[1])])
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"case lake {case[1]}")


@pytest.mark.parametrize(
    "query",
    [
        "copy (select 1) to 'x.parquet'",
        "select 1; copy events to 'x.csv'",
        "create table t as select 1",
        "attach 'other.duckdb'",
    ],
)
def test_sql_on_a_duckdb_lake_runs_select_only(
    runner: CliRunner, case: tuple[Path, Path], query: str, tmp_path: Path
) -> None:
    before = sorted(p.name for p in case[1].rglob("*"))
    r = runner.invoke(app, ["sql", "--lake", str(case[1]), query])
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith("forensics: error: sql: not allowed")
    assert sorted(p.name for p in case[1].rglob("*")) == before


def test_sql_on_a_duckdb_lake_cannot_read_other_files(
    runner: CliRunner, case: tuple[Path, Path]
) -> None:
    store, lake = case
    r = runner.invoke(app, ["sql", "--lake", str(lake), f"select * from '{store}'"])
    assert r.exit_code == 2 and "not allowed" in r.stderr
    ok = runner.invoke(app, ["sql", "--lake", str(lake), "select count(*) from grants"])
    assert ok.exit_code == 0, ok.stderr


@pytest.mark.parametrize(
    "query",
    [
        "insert into events select * from events",
        "drop view events",
        "select * from parquet.`/etc`",
        "select * from read_parquet('/etc/x.parquet')",
        "select reflect('java.lang.System', 'exit', 1)",
        "select * from other.events",
        "select 1; select 2",
    ],
)
def test_sql_on_spark_refuses_anything_but_one_select_of_the_case(query: str) -> None:
    from forensics.engines.spark import check_user_query
    from forensics.errors import UsageError

    with pytest.raises(UsageError, match="not allowed|cannot parse"):
        check_user_query(query)


def test_sql_on_spark_allows_a_select_with_its_own_ctes() -> None:
    from forensics.engines.spark import check_user_query

    sql = check_user_query(
        "with d as (select user_id from events where action = 'deliver') "
        "select count(*) from d join accounts_latest a using (user_id)"
    )
    assert sql.upper().startswith("WITH D AS")


@pytest.mark.parametrize(
    "args",
    [
        ["sources"],
        ["rejects"],
        ["verify"],
        ["status"],
        ["sql", "select 1"],
        ["exposure", "--window", "2024-02-16T09:00:00Z/PT1H"],
        ["notify", "--window", "2024-02-16T09:00:00Z/PT1H", "--out", "OUT"],
        ["report", "--window", "2024-02-16T09:00:00Z/PT1H", "--out", "OUT"],
        ["ingest", "IN"],
    ],
)
@pytest.mark.parametrize("where", ["global", "own"])
def test_db_and_lake_together_are_a_usage_error(
    runner: CliRunner, case: tuple[Path, Path], args: list[str], where: str, tmp_path: Path
) -> None:
    # Before, --db was silently ignored and the lake read (or written).
    store, lake = case
    args = [str(tmp_path / "out") if a == "OUT" else str(store) if a == "IN" else a for a in args]
    db = ["--db", str(store)]
    argv = (
        [*db, *args, "--lake", str(lake)]
        if where == "global"
        else [*args, *db, "--lake", str(lake)]
    )
    r = runner.invoke(app, argv)
    assert r.exit_code == 2, r.stderr
    assert r.stderr.splitlines() == [
        "forensics: error: --lake: give --db or --lake, not both "
        "(--db names a case store, --lake a case lake)"
    ]
    assert not (tmp_path / "out").exists()


def test_a_lake_that_is_a_file_is_a_usage_error(
    runner: CliRunner, case: tuple[Path, Path], tmp_path: Path
) -> None:
    store, _ = case
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv in (
        ["--db", str(store), "export", str(afile)],
        ["ingest", "--lake", str(afile), str(store)],
    ):
        r = runner.invoke(app, argv)
        assert r.exit_code == 2, r.stderr
        assert r.stderr.splitlines() == [
            f"forensics: error: case lake {afile}: it is a file, not a folder"
        ]
    assert afile.read_text() == "x"
