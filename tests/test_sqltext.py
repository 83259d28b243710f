"""sqltext.py: quoting that DuckDB reads back exactly; errors.engine_message's trimming."""

from __future__ import annotations

import duckdb
import pytest

from forensics import sqltext
from forensics.errors import engine_message, single_line

AWKWARD = [
    "plain",
    "it's",
    'say "hi"',
    "a\\vb",
    "tab\there",
    "line\nend",
    "\u000b",
    "é😀",
    "a/b~c",
    "",
    "--",
    "$x",
    "'; drop table t; --",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_a_literal_reads_back_as_its_text(text: str) -> None:
    con = duckdb.connect()
    assert con.execute(f"select {sqltext.literal(text)}").fetchone() == (text,)  # noqa: S608


@pytest.mark.parametrize("name", [n for n in AWKWARD if n])
def test_an_identifier_names_exactly_that_column(name: str) -> None:
    con = duckdb.connect()
    con.execute(f"create table t ({sqltext.ident(name)} varchar)")
    assert [r[0] for r in con.execute("describe t").fetchall()] == [name]


def test_trimming_with_the_blank_set_removes_only_blank_characters() -> None:
    con = duckdb.connect()
    blank = sqltext.literal(sqltext.BLANK_CHARS)
    got = con.execute(
        f"select trim($a, {blank}), trim($b, {blank})",
        {"a": " \t\n\r\u000b\u000c", "b": "v \u000bv"},
    ).fetchone()
    assert got == ("", "v \u000bv")


def test_json_pointers_reach_keys_with_slashes_and_tildes() -> None:
    con = duckdb.connect()
    doc = '{"a/b": {"~c": 1}, "a": {"b": 2}}'
    pointer = sqltext.json_pointer(["a/b", "~c"])
    got = con.execute("select json_extract($d, $p)::int", {"d": doc, "p": pointer})
    assert got.fetchone() == (1,)
    assert sqltext.pointer_key(sqltext.json_pointer(["a/b~c"])) == "a/b~c"


def test_a_struct_path_reads_a_nested_field() -> None:
    con = duckdb.connect()
    con.execute("""create table t ("a b" struct("it's" integer))""")
    con.execute("""insert into t values ({'it''s': 5})""")
    path = sqltext.struct_path("a b", ["it's"])
    assert con.execute(f"select {path} from t").fetchone() == (5,)  # noqa: S608


def test_only_the_parameters_a_statement_uses_are_passed() -> None:
    assert sqltext.used_params("select $a, $b", {"a": 1, "b": 2, "c": 3}) == {"a": 1, "b": 2}


def test_an_engine_message_keeps_its_first_line_without_the_record() -> None:
    e = duckdb.InvalidInputException(
        'Malformed JSON at byte 3 of input: unexpected character.  Input: "{"email":"x@y"}"\n'
        "LINE 1: select ..."
    )
    assert engine_message(e) == "Malformed JSON at byte 3 of input: unexpected character.  "
    assert engine_message(ValueError("x" * 300)) == "x" * 200
    assert engine_message(ValueError("x" * 300), limit=160) == "x" * 160
    assert engine_message(ValueError("  ")) == "ValueError"
    assert single_line(" a\n b\t c ") == "a b c"


def test_an_engine_message_never_quotes_the_value_it_could_not_convert() -> None:
    con = duckdb.connect()
    for sql in (
        "select 'ann@example.com'::integer",
        "select 100000000000000000000.5::decimal(38, 9)::bigint",
        "select 9223372036854775807::bigint * 2",
        "select 'Ann Example'::date",
        "select 'Ann Example'::timestamp",
        "select 'Ann Example'::decimal(10, 2)",
    ):
        with pytest.raises(duckdb.Error) as e:
            con.execute(sql)
        got = engine_message(e.value)
        assert got.startswith(("Conversion Error: ", "Out of Range Error: ")), got
        assert "…" in got
        assert "ann" not in got and "1000" not in got and "9223" not in got


def test_an_engine_message_cut_short_keeps_the_systems_reason() -> None:
    # What DuckDB said when a lake's export filled the disk: the reason after a long path.
    path = "/cases/lake/_staging/b000001-16c67ff1/events/day=2024-02-16/hour=12/b000001_0.parquet"
    e = duckdb.IOException(
        "IO Error: Async write failed for range [offset=229939827, size=121579]: "
        '{"exception_type":"IO","exception_message":"Could not write file \\"'
        + path
        + '\\": No space left on device","errno":"28"}'
    )
    got = engine_message(e)
    assert len(got) == 200
    assert got.startswith("IO Error: Async write failed for range")
    assert got.endswith("…: No space left on device")
    # within the limit, or without an error number, the message is only cut
    assert engine_message(e, limit=1000) == str(e)
    plain = duckdb.IOException("IO Error: " + "p" * 300)
    assert engine_message(plain) == ("IO Error: " + "p" * 300)[:200]


@pytest.mark.parametrize(
    "chars", [chr(0) + sqltext.BLANK_CHARS, "a", "ab", "abc", "acegx", "0123456789 z", "\t"]
)
def test_code_in_is_true_exactly_for_the_code_points_of_its_chars(chars: str) -> None:
    con = duckdb.connect()
    sql = sqltext.code_in("c", chars)
    got = con.execute(f"select c from range(0, 256) t(c) where {sql} order by c").fetchall()  # noqa: S608
    assert [r[0] for r in got] == sorted({ord(ch) for ch in chars})


def test_code_in_is_no_in_list_so_that_a_scan_keeps_its_order() -> None:
    # DuckDB turns an IN list of five or more constants into a join (rows out of order).
    sql = sqltext.code_in("ascii(s)", chr(0) + sqltext.BLANK_CHARS)
    assert " in (" not in sql
    plan = duckdb.connect().execute(
        f"explain select s from (select 'x' || i as s from range(10) t(i)) where {sql}"  # noqa: S608
    )
    assert "JOIN" not in str(plan.fetchall()).upper()
