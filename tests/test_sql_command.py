"""`forensics sql`: read-only SQL over the store, locked down; table, CSV and JSON output."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from forensics.sandbox import to_json_value, to_text, unique_names
from forensics.window import format_time
from tests.helpers.cli import run_cli
from tests.helpers.incident import Incident, at


@pytest.fixture
def store(tmp_path: Path) -> Path:
    inc = Incident()
    inc.grant("d1", "owner1", "owner")
    inc.deliver(at(1, 7.25), "u1", "d1", "e1", extra={"cache_node": "c7", "note": 'a,"b"\nc'})
    inc.deliver(at(2), "u2", "d1", "e1", status=204)
    return inc.write(tmp_path / "case.duckdb")


def sql(store: Path, query: str, *opts: str) -> Any:
    return run_cli(["--db", str(store), "sql", query, *opts])


def test_csv_output_is_rfc4180_with_header_from_the_result(store: Path) -> None:
    r = sql(store, "select ts, user_id, status, extra from events order by ts", "--format", "csv")
    assert r.exit_code == 0, r.stderr
    out = r.stdout_bytes.decode("utf-8")  # .stdout would turn CRLF into LF
    assert out.startswith("ts,user_id,status,extra\r\n")
    rows = list(csv.reader(io.StringIO(out, newline="")))
    assert rows[1][:3] == ["2024-02-16T09:01:07.25Z", "u1", ""]
    assert json.loads(rows[1][3]) == {"cache_node": "c7", "note": 'a,"b"\nc'}
    assert rows[2][:3] == ["2024-02-16T09:02:00Z", "u2", "204"]
    assert len(rows) == 3


def test_csv_header_only_for_no_rows(store: Path) -> None:
    r = sql(store, "select user_id, ts from events where false", "--format", "csv")
    assert r.exit_code == 0
    assert r.stdout_bytes == b"user_id,ts\r\n"


def test_json_output_nests_json_columns_and_keeps_every_column(store: Path) -> None:
    r = sql(
        store,
        "select user_id, extra, status, 1 as x, 2 as x, [1, 2] as l, "
        "1.50::decimal(5, 2) as d from events order by ts",
        "--format",
        "json",
    )
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data[0] == {
        "user_id": "u1",
        "extra": {"cache_node": "c7", "note": 'a,"b"\nc'},
        "status": None,
        "x": 1,
        "x_2": 2,
        "l": [1, 2],
        "d": "1.50",
    }
    assert data[1]["extra"] is None


def test_json_empty_result_is_an_empty_array(store: Path) -> None:
    r = sql(store, "select 1 as a where false", "--format", "json")
    assert r.exit_code == 0
    assert json.loads(r.stdout) == []


def test_table_output_on_stdout_and_row_count_on_stderr(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    r = sql(store, "select action, count(*) as n from events group by action")
    assert r.exit_code == 0, r.stderr
    # not a terminal: plain lines, columns aligned, nothing after the last value
    assert r.stdout.splitlines() == ["action               n", "thumbnail_delivered  2"]
    assert r.stderr == "1 row\n"


def test_table_prints_data_literally(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    r = sql(
        store,
        "select '[bold]x[/bold] [link=https://evil.example]y[/link]' || chr(27) "
        "|| '[31m' as v, null as n",
    )
    assert r.exit_code == 0, r.stderr
    assert "[bold]x[/bold] [link=https://evil.example]y[/link]\\u001b[31m" in r.stdout
    assert "\x1b" not in r.stdout
    assert "NULL" in r.stdout


def test_query_from_stdin(store: Path) -> None:
    r = run_cli(
        ["--db", str(store), "sql", "-", "--format", "csv"],
        stdin="select count(*) as n from grants",
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes == b"n\r\n1\r\n"


@pytest.mark.parametrize(
    "query",
    [
        "copy events to '{tmp}/out.csv'",
        "copy (select * from accounts) to '{tmp}/out.parquet' (format parquet)",
        "export database '{tmp}/export'",
        "attach '{tmp}/other.duckdb' as other",
        "select * from read_csv('{tmp}/secret.csv')",
        "select * from '{tmp}/secret.csv'",
        "select * from read_text('/etc/hostname')",
        "select * from glob('{tmp}/*')",
        "install httpfs",
        "load httpfs",
        "set enable_external_access = true",
        "set lock_configuration = false",
        "set TimeZone = 'America/New_York'",
        "set memory_limit = '100GB'",
        "reset threads",
        "pragma enable_profiling",
    ],
)
def test_cannot_write_read_other_files_load_extensions_or_change_settings(
    store: Path, tmp_path: Path, query: str
) -> None:
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    r = sql(store, query.format(tmp=tmp_path))
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("forensics: error: sql: not allowed: ")
    assert r.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "query",
    [
        "insert into events select * from events",
        "delete from grants",
        "create table x as select 1",
        "drop table accounts",
        "update grants set role = 'owner'",
    ],
)
def test_cannot_modify_the_store(store: Path, query: str) -> None:
    before = store.read_bytes()
    r = sql(store, query)
    assert r.exit_code == 2
    assert r.stderr.startswith("forensics: error: sql: ")
    assert store.read_bytes() == before


def test_syntax_error_is_one_line_exit_2(store: Path) -> None:
    r = sql(store, "selec * from events")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("forensics: error: sql: Parser Error")
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "query",
    [
        "select cast(user_id || '@example.org' as integer) from events",
        "select strptime(user_id || '@example.org', '%Y') from events",
        "select json_transform_strict(to_json({'e': user_id || '@example.org'}),"
        ' \'{"e":"int"}\') from events',
    ],
)
def test_conversion_error_does_not_echo_the_value(store: Path, query: str) -> None:
    r = sql(store, query)
    assert r.exit_code == 2
    assert "example.org" not in r.stderr
    assert r.stderr.count("\n") == 1


def test_empty_query_is_a_usage_error(store: Path) -> None:
    r = sql(store, "   ")
    assert r.exit_code == 2
    assert "the query is empty" in r.stderr


def test_missing_store_is_exit_1_and_not_created(tmp_path: Path) -> None:
    db = tmp_path / "none.duckdb"
    r = run_cli(["--db", str(db), "sql", "select 1"])
    assert r.exit_code == 1
    assert r.stderr.startswith("forensics: error: case store")
    assert not db.exists()


def test_bad_format_is_exit_2(store: Path) -> None:
    r = sql(store, "select 1", "--format", "xml")
    assert r.exit_code == 2
    assert r.stdout == ""


def test_value_rendering() -> None:
    from datetime import date, datetime, timezone
    from decimal import Decimal

    t = datetime(2024, 2, 16, 9, 41, 7, 250000, tzinfo=timezone.utc)
    assert format_time(t) == "2024-02-16T09:41:07.25Z"
    assert format_time(t.replace(microsecond=0)) == "2024-02-16T09:41:07Z"
    assert format_time(datetime(2024, 2, 16, 9), naive_as_is=True) == "2024-02-16T09:00:00"
    assert to_text(None) == "" and to_text(3) == "3" and to_text(True) == "true"
    assert to_text(Decimal("1.50")) == "1.50"
    assert to_text(date(2024, 2, 16)) == "2024-02-16"
    assert to_text({"a": [1, None]}) == '{"a": [1, null]}'
    assert to_json_value(float("nan")) == "nan"
    assert to_json_value(b"\x00\xff") == "AP8="
    assert unique_names(["a", "a", "a_2", "b"]) == ["a", "a_2", "a_2_2", "b"]
