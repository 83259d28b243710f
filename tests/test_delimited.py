"""readers/delimited.py: CSV, TSV and W3C records, their line numbers, and what is rejected."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forensics.errors import InputError
from forensics.ingest.readers.delimited import (
    CSV,
    MALFORMED,
    NOT_DIRECTIVE,
    NUL,
    TOO_FEW,
    TOO_MANY,
    TSV,
    UNTERMINATED,
    W3C,
    Dialect,
    read_text_records,
)

Rows = list[tuple[int, dict[str, Any]]]
Rejects = list[tuple[int, str, str]]


def read(
    data: bytes, dialect: Dialect = CSV, chunk: int = 1 << 20, **kw: Any
) -> tuple[Rows, Rejects]:
    """Every record (line, {name: value}) and every reject, in file order; asserts that the
    Arrow path (on stretches of any length, or of 4 lines at least) and the line-by-line
    path agree."""
    out = []
    for fast, stretch in ((True, 1), (True, 4), (False, 1)):
        chunks = iter([data[i : i + chunk] for i in range(0, len(data), chunk)])
        rows: Rows = []
        rejects: Rejects = []
        for b in read_text_records(chunks, dialect, fast=fast, min_stretch=stretch, **kw):
            cols = [c.to_pylist() for c in b.columns]
            for j, rec in enumerate(b.rec.tolist()):
                rows.append((rec, {n: cols[i][j] for i, n in enumerate(b.names)}))
            rejects += b.rejects
        out.append((rows, sorted(rejects)))
    assert out[0] == out[1] == out[2]
    return out[0]


def names(data: bytes, dialect: Dialect = CSV) -> list[tuple[str, ...]]:
    return [b.names for b in read_text_records(iter([data]), dialect)]


# --------------------------------------------------------------------------- CSV


def test_csv_header_names_the_fields_and_records_are_numbered_by_line() -> None:
    rows, rejects = read(b"a,b\n1,2\n3,4\n")
    assert rows == [(2, {"a": "1", "b": "2"}), (3, {"a": "3", "b": "4"})]
    assert rejects == []


def test_every_value_is_text_never_guessed() -> None:
    rows, _ = read(b"id,n\n0123,1e0\n9007199254740993,\n")
    assert rows == [(2, {"id": "0123", "n": "1e0"}), (3, {"id": "9007199254740993", "n": None})]


def test_an_empty_value_is_missing_a_blank_one_is_text() -> None:
    rows, _ = read(b'a,b,c\n,"", \n')
    assert rows == [(2, {"a": None, "b": None, "c": " "})]


def test_quoted_delimiter_quote_and_newline_are_one_value() -> None:
    data = b'name,email\n"Doe, Jane",a@x\n"say ""hi""",b@x\n"two\nlines",c@x\nlast,d@x\n'
    rows, rejects = read(data)
    assert [r[1]["name"] for r in rows] == ["Doe, Jane", 'say "hi"', "two\nlines", "last"]
    # A record is numbered by the line it starts on; the line after a quoted newline counts.
    assert [r[0] for r in rows] == [2, 3, 4, 6]
    assert rejects == []


def test_crlf_line_ends_are_not_data_but_a_crlf_inside_quotes_is() -> None:
    rows, _ = read(b'a,b\r\n1,2\r\n"x\r\ny",3\r\n')
    assert rows == [(2, {"a": "1", "b": "2"}), (3, {"a": "x\r\ny", "b": "3"})]


@pytest.mark.parametrize("chunk", [1, 2, 5, 1 << 20])
def test_lone_cr_line_ends_are_line_breaks_when_the_first_break_is_one(chunk: int) -> None:
    # A classic Mac export: every CR ends a line, wherever the chunks are cut.
    lf = read(b'a,b\n1,2\n\n"x\ny",3\n4,5', chunk=chunk)
    assert read(b'a,b\r1,2\r\r"x\ry",3\r4,5', chunk=chunk) == lf
    assert read(b"\xef\xbb\xbfa,b\r1,2\r", chunk=chunk)[0] == [(2, {"a": "1", "b": "2"})]
    assert [r[0] for r in lf[0]] == [2, 4, 6]


@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_a_lone_cr_after_the_first_line_break_is_data(chunk: int) -> None:
    # The first break is LF (or CRLF): a CR later is a value's character, as before.
    for head in (b"a,b\n", b"a,b\r\n"):
        rows, _ = read(head + b'1,"x\ry"\n', chunk=chunk)
        assert rows == [(2, {"a": "1", "b": "x\ry"})]


def test_bom_is_dropped_from_the_first_name() -> None:
    rows, _ = read(b"\xef\xbb\xbfa,b\n1,2\n")
    assert rows == [(2, {"a": "1", "b": "2"})]


def test_blank_lines_and_the_empty_trailing_line_are_not_records_but_count() -> None:
    rows, rejects = read(b"\na,b\n\n1,2\n\r\n3,4\n\n")
    assert [r[0] for r in rows] == [4, 6]
    assert rejects == []


def test_no_final_newline() -> None:
    rows, _ = read(b"a,b\n1,2")
    assert rows == [(2, {"a": "1", "b": "2"})]


def test_a_line_of_spaces_is_a_record_too_few_fields_in_a_wider_file() -> None:
    rows, rejects = read(b"a,b\n   \n1,2\n")
    assert rows == [(3, {"a": "1", "b": "2"})]
    assert rejects == [(2, TOO_FEW, "   ")]
    rows, rejects = read(b"a\n   \n")  # one column: a (blank) value, judged by SPEC §2.4
    assert rows == [(2, {"a": "   "})] and rejects == []


@pytest.mark.parametrize(
    "line, reason", [(b"1,2", TOO_FEW), (b"1,2,3,4", TOO_MANY), (b"1", TOO_FEW), (b",,,", TOO_MANY)]
)
def test_ragged_rows_are_rejected_with_their_line_and_the_rows_around_are_read(
    line: bytes, reason: str
) -> None:
    rows, rejects = read(b"a,b,c\n1,2,3\n" + line + b"\n4,5,6\n")
    assert [r[0] for r in rows] == [2, 4]
    assert rejects == [(3, reason, line.decode())]


def test_exactly_as_many_fields_as_the_header_is_a_record_empty_values_included() -> None:
    rows, rejects = read(b"a,b,c\n,,\n")
    assert rows == [(2, {"a": None, "b": None, "c": None})] and rejects == []


def test_unterminated_quote_rejects_its_line_and_reading_goes_on_at_the_next() -> None:
    data = b'a,b\n1,2\n"open,3\n4,5\n6,7\n'
    rows, rejects = read(data)
    assert [r[0] for r in rows] == [2, 4, 5]
    assert rejects == [(3, UNTERMINATED, '"open,3')]


def test_unterminated_quote_on_the_last_line() -> None:
    rows, rejects = read(b'a,b\n1,2\n3,"4')
    assert [r[0] for r in rows] == [2]
    assert rejects == [(3, UNTERMINATED, '3,"4')]


def test_a_broken_quoted_record_rejects_only_its_first_line() -> None:
    # The quote opened on line 3 closes on line 5 followed by text: not a record; line 3
    # is rejected, lines 4 (good) and 5 (its own quote never closes) are read again.
    data = b'a,b\n1,2\n"bad,x\n3,4\n5,"6\n7,8\n'
    rows, rejects = read(data)
    assert [r[0] for r in rows] == [2, 4, 6]
    assert rejects == [(3, MALFORMED, '"bad,x'), (5, UNTERMINATED, '5,"6')]


def test_text_after_a_closing_quote_is_malformed() -> None:
    rows, rejects = read(b'a,b\n"x"y,1\n"x" ,1\n2,3\n')
    assert rows == [(4, {"a": "2", "b": "3"})]
    assert [r[:2] for r in rejects] == [(2, MALFORMED), (3, MALFORMED)]


def test_a_quote_inside_an_unquoted_value_is_data() -> None:
    rows, rejects = read(b'a,b\n5" screen,x\nab"c"d,y\n')
    assert [r[1]["a"] for r in rows] == ['5" screen', 'ab"c"d'] and rejects == []


def test_a_quoted_record_up_to_the_limit_spans_lines_beyond_it_is_unterminated() -> None:
    value = "x\n" * 10  # the record '"x\nx\n...",1' spans 11 lines
    line = f'"{value}",1\n'
    data = ("a,b\n" + line + "2,3\n").encode()
    rows, rejects = read(data, max_record=len(line))
    assert [r[1]["a"] for r in rows] == [value, "2"] and rejects == []
    rows, rejects = read(data, max_record=len(line) - 1)
    assert rejects[0] == (2, UNTERMINATED, '"x')
    assert rows[-1] == (13, {"a": "2", "b": "3"})


def test_a_long_single_line_is_not_limited() -> None:
    rows, _ = read(b'a,b\n"' + b"y" * 5000 + b'",1\n', max_record=100)
    assert rows[0][1]["a"] == "y" * 5000


def test_records_are_the_same_whatever_the_chunks() -> None:
    data = b'\xef\xbb\xbfa,b\r\n"x,\r\n1",2\r\n\r\n3,4\r\n"q""",5\r\n6,"7\r\n'
    expected = read(data)
    for chunk in (1, 2, 3, 5, 8):
        assert read(data, chunk=chunk) == expected


def test_records_are_the_same_whatever_the_blocks_of_lines() -> None:
    data = b'a,b\r\n"x,\r\n1",2\r\n\r\n3,4\r\n"q""",5\r\n6,"7\r\n' * 40
    expected = read(data)
    assert len(expected[0]) == 159 and len(expected[1]) == 40
    for block in (1, 7, 30, 1000):
        for chunk in (3, 64):
            assert read(data, chunk=chunk, block_bytes=block) == expected


def test_batches_split_at_batch_rows_without_losing_a_record() -> None:
    data = b"a\n" + b"".join(b"%d\n" % i for i in range(10)) + b"1,2\n"
    batches = list(read_text_records(iter([data]), CSV, batch_rows=4))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    assert sum(len(b.rejects) for b in batches) == 1
    rows, rejects = read(data, batch_rows=4)
    assert [r[0] for r in rows] == list(range(2, 12)) and rejects == [(12, TOO_MANY, "1,2")]


def test_duplicate_header_names_fail_the_file_without_echoing_them() -> None:
    with pytest.raises(InputError) as e:
        read(b"secret@x.com,b,secret@x.com\n1,2,3\n")
    assert "columns 1 and 3" in e.value.one_line()
    assert "secret" not in e.value.one_line()


def test_header_names_differing_in_case_are_two_columns() -> None:
    rows, _ = read(b"a,A\n1,2\n")
    assert rows == [(2, {"a": "1", "A": "2"})]


def test_an_empty_header_name_is_the_columns_place_on_both_paths() -> None:
    notes: list[str] = []
    rows, _ = read(b"a,,c,\n1,2,3,\n", notes=notes)
    assert rows == [(2, {"a": "1", "column2": "2", "c": "3", "column4": None})]
    assert notes[:2] == [
        "column 2 of line 1 has no name: read as column2",
        "column 4 of line 1 has no name: read as column4",
    ]


@pytest.mark.parametrize(
    "dialect, header, label",
    [(CSV, b"a;b;c", "';'"), (CSV, b"a|b", "'|'"), (CSV, b"a\tb", "tabs"), (TSV, b"a,b", "','")],
)
def test_a_one_column_header_holding_another_separator_fails_the_file(
    dialect: Dialect, header: bytes, label: str
) -> None:
    with pytest.raises(InputError, match=f"line 1 is one column holding {label}"):
        read(header + b"\n1\n", dialect)


def test_a_separator_inside_one_of_several_names_or_a_plain_one_column_header_is_read() -> None:
    assert read(b"a;b,c\n1,2\n")[0] == [(2, {"a;b": "1", "c": "2"})]
    assert read(b"user_id\nu;1\n")[0] == [(2, {"user_id": "u;1"})]
    assert read(b"a b\nx\n", TSV)[0] == [(2, {"a b": "x"})]


def test_an_unreadable_header_fails_the_file() -> None:
    with pytest.raises(InputError, match="header"):
        read(b'"a,b\n')


def test_header_only_gives_one_empty_batch_with_its_names() -> None:
    assert names(b"user_id,email\r\n") == [("user_id", "email")]
    assert read(b"user_id,email\n") == ([], [])


def test_an_empty_file_has_no_batch() -> None:
    assert names(b"") == []
    assert names(b"\n\n") == []


def test_invalid_utf8_rejects_that_record_only() -> None:
    rows, rejects = read(b"a,b\n1,\xff\n2,3\n")
    assert rows == [(3, {"a": "2", "b": "3"})]
    assert rejects == [(2, "invalid UTF-8", "1,\ufffd")]


def test_invalid_utf8_inside_a_quoted_record_rejects_it() -> None:
    rows, rejects = read(b'a,b\n"x\n\xff",1\n2,3\n')
    assert rows[-1] == (4, {"a": "2", "b": "3"})
    assert rejects[0][:2] == (2, MALFORMED) or rejects[0][:2] == (2, "invalid UTF-8")


@pytest.mark.parametrize("head", [b"\xff\xfea\x00,\x00", b"\xfe\xff\x00a", b"a\x00,\x00"])
def test_utf16_fails_the_file(head: bytes) -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        read(head + b"\n")


def test_a_nul_character_rejects_the_record() -> None:
    rows, rejects = read(b"a,b\n1,x\x00y\n2,3\n")
    assert rows == [(3, {"a": "2", "b": "3"})]
    assert rejects == [(2, NUL, "1,x\x00y")]


# --------------------------------------------------------------------------- TSV


def test_tsv_splits_on_tabs_and_quotes_are_data() -> None:
    rows, rejects = read(b'a\tb\n"x, y"\tz\n1\t\n', TSV)
    assert rows == [(2, {"a": '"x, y"', "b": "z"}), (3, {"a": "1", "b": None})]
    assert read(b"a\tb\n1\t2\t3\n", TSV)[1] == [(2, TOO_MANY, "1\t2\t3")]


# --------------------------------------------------------------------------- W3C

CLOUDFRONT = (
    b"#Version: 1.0\n"
    b"#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
    b"sc-status cs(Referer)\n"
    b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net"
    b"\t/index.html\t200\t-\n"
    b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\n"
)


def test_w3c_fields_directive_names_tab_separated_columns_and_dash_is_empty() -> None:
    rows, rejects = read(CLOUDFRONT, W3C)
    assert rows == [
        (
            3,
            {
                "date": "2019-12-04",
                "time": "21:02:31",
                "x-edge-location": "LAX1",
                "sc-bytes": "392",
                "c-ip": "192.0.2.100",
                "cs-method": "GET",
                "cs(Host)": "d111111abcdef8.cloudfront.net",
                "cs-uri-stem": "/index.html",
                "sc-status": "200",
                "cs(Referer)": None,
            },
        )
    ]
    assert rejects == [(4, TOO_FEW, "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET")]


def test_w3c_space_separated_as_iis_writes_it_and_other_directives_are_skipped() -> None:
    data = (
        b"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
        b"#Date: 2024-02-16 09:00:00\n#Fields: date time cs-uri-stem cs-username\n"
        b"2024-02-16 09:00:01 /a u1\n#Remark: anything\n2024-02-16 09:00:02 /b -\n"
    )
    rows, rejects = read(data, W3C)
    assert rows == [
        (5, {"date": "2024-02-16", "time": "09:00:01", "cs-uri-stem": "/a", "cs-username": "u1"}),
        (7, {"date": "2024-02-16", "time": "09:00:02", "cs-uri-stem": "/b", "cs-username": None}),
    ]
    assert rejects == []


def test_a_dash_is_empty_only_as_a_whole_value() -> None:
    rows, _ = read(b"#Fields: a b c\n-x\t-\t\n", W3C)
    assert rows == [(2, {"a": "-x", "b": None, "c": None})]


def test_w3c_fields_changing_mid_file_switch_the_columns_from_there_on() -> None:
    data = b"#Fields: a b\n1 2\n#Fields: a b c\n3 4 5\n6 7\n#Fields: a b c\n8 9 10\n"
    got = list(read_text_records(iter([data]), W3C))
    assert [b.names for b in got] == [("a", "b"), ("a", "b", "c")]
    rows, rejects = read(data, W3C)
    assert rows == [
        (2, {"a": "1", "b": "2"}),
        (4, {"a": "3", "b": "4", "c": "5"}),
        (7, {"a": "8", "b": "9", "c": "10"}),
    ]
    assert rejects == [(5, TOO_FEW, "6 7")]


def test_a_hash_line_that_is_no_directive_is_rejected_not_skipped() -> None:
    rows, rejects = read(b"#Fields: a b\n#x 1\n#Remark: skipped\n# 2\n3 4\n", W3C)
    assert rows == [(5, {"a": "3", "b": "4"})]
    assert [r[:2] for r in rejects] == [(2, NOT_DIRECTIVE), (4, NOT_DIRECTIVE)]


def test_directive_names_may_hold_spaces_and_a_comment_before_fields_is_skipped() -> None:
    # A Windows Firewall log: `#Time Format: Local`; a comment line in the header block.
    data = b"#Version: 1.0\n# written by hand\n#Time Format: Local\n#Fields: a b\n1 2\n"
    assert read(data, W3C) == ([(5, {"a": "1", "b": "2"})], [])
    # After #Fields:, a line of that shape is a directive too; `# x` is still rejected.
    rows, rejects = read(b"#Fields: a b\n#Time Format: UTC\n# x\n3 4\n", W3C)
    assert rows == [(4, {"a": "3", "b": "4"})]
    assert [r[:2] for r in rejects] == [(3, NOT_DIRECTIVE)]


def test_w3c_record_before_any_fields_directive_fails_the_file() -> None:
    with pytest.raises(InputError, match="line 2 .*#Fields"):
        read(b"#Version: 1.0\n1 2\n#Fields: a b\n", W3C)


def test_w3c_with_directives_only_or_nothing_has_no_records() -> None:
    assert read(b"#Version: 1.0\n", W3C) == ([], [])
    assert names(b"#Version: 1.0\n#Fields: a b\n", W3C) == [("a", "b")]


def test_w3c_duplicate_field_names_fail_the_file() -> None:
    with pytest.raises(InputError, match="twice"):
        read(b"#Fields: a b a\n1 2 3\n", W3C)


def test_w3c_lines_without_a_tab_in_a_tab_file_are_split_on_spaces() -> None:
    rows, rejects = read(b"#Fields: a b\n1\t2 3\n4 5\n6\n", W3C)
    assert rows == [(2, {"a": "1", "b": "2 3"}), (3, {"a": "4", "b": "5"})]
    assert rejects == [(4, TOO_FEW, "6")]


# --------------------------------------------------------------------------- property

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(1, 4),
    data=st.data(),
    crlf=st.booleans(),
    chunk=st.integers(1, 64),
)
def test_csv_written_by_the_csv_module_reads_back_exactly(
    width: int, data: st.DataObject, crlf: bool, chunk: int
) -> None:
    header = [f"c{i}" for i in range(width)]
    body = data.draw(st.lists(st.lists(_TEXT, min_size=width, max_size=width), max_size=6))
    # A one-column record that is empty writes an empty line, which is not a record.
    body = [r for r in body if width > 1 or r[0] != ""]
    if not crlf:
        # The csv module quotes only the characters of its line terminator: with LF, a lone CR
        # would be written bare (not RFC 4180), and read back as the end of a line.
        body = [[v.replace("\r", "") for v in r] for r in body]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(header)
    w.writerows(body)
    rows, rejects = read(buf.getvalue().encode(), chunk=chunk)
    assert rejects == []
    assert [list(r[1].values()) for r in rows] == [[v or None for v in r] for r in body]
