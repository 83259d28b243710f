"""Ingest of CSV, TSV and W3C `.log` files (SPEC §2.5): formats and compression, text-only
columns through §2.4, reader rejects with line numbers, kind from the header, file failures,
and the CloudFront / CSV-export example map."""

from __future__ import annotations

import gzip
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import zstandard

from forensics.exposure import compute_figures
from forensics.ingest import IngestHooks
from forensics.mapping import load_mapping
from forensics.store import StoreOptions, open_store
from forensics.window import parse_window
from tests.helpers.ingest import accounted, rows, run

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CLOUDFRONT_MAP = EXAMPLES / "maps" / "cloudfront.toml"

EVENTS_CSV = (
    "ts,action,user_id,device_id,event_id,request_id,status,cache_node\n"
    "2024-02-16T09:00:00Z,thumbnail_delivered,u1,d1,e1,r1,200,c1\n"
    "2024-02-16 09:00:01+00,thumbnail_tapped,u1,d1,e1,r2,,c2\n"
)


def write(path: Path, text: str | bytes, compression: str | None = None) -> Path:
    data = text.encode() if isinstance(text, str) else text
    if compression == "gz":
        data = gzip.compress(data)
    elif compression == "zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def stored_events(db: Path) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "select source_record, ts, action, user_id, device_id, event_id, "
        "request_id, status, extra::varchar from events order by source_record",
    )


def rejects(db: Path) -> list[tuple[Any, ...]]:
    return rows(db, "select source_record, reason, raw from rejects order by source_record")


@pytest.mark.parametrize("compression", [None, "gz", "zst"])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "log"])
def test_each_format_plain_gzip_and_zstd_gives_the_same_rows(
    tmp_path: Path, fmt: str, compression: str | None
) -> None:
    text = EVENTS_CSV.replace(",", "\t") if fmt != "csv" else EVENTS_CSV
    if fmt == "log":
        head, _, body = text.partition("\n")
        text = "#Version: 1.0\n#Fields: " + head.replace("\t", " ") + "\n" + body
    name = f"e.{fmt}" + (f".{compression}" if compression else "")
    db = tmp_path / "s.duckdb"
    report = run(db, write(tmp_path / name, text, compression))
    f = report.files[0]
    assert (f.status, f.kind, f.rows_read, f.rows_loaded) == ("loaded", "events", 2, 2)
    assert f.format == fmt + ({"gz": "+gzip", "zst": "+zstd", None: ""}[compression])
    first = 3 if fmt == "log" else 2  # the record's line: after the header / directives
    assert stored_events(db) == [
        (
            first,
            datetime(2024, 2, 16, 9, tzinfo=UTC),
            "thumbnail_delivered",
            "u1",
            "d1",
            "e1",
            "r1",
            200,
            '{"cache_node":"c1"}',
        ),
        (
            first + 1,
            datetime(2024, 2, 16, 9, 0, 1, tzinfo=UTC),
            "thumbnail_tapped",
            "u1",
            "d1",
            "e1",
            "r2",
            None,
            '{"cache_node":"c2"}',
        ),
    ]


def test_reader_rejects_are_stored_with_line_and_raw_text_and_counted(tmp_path: Path) -> None:
    text = EVENTS_CSV + 'x,y\n"two\nlines",thumbnail_delivered,u2,d1,e1,r3,200,c\n"open,1\n'
    db = tmp_path / "s.duckdb"
    f = run(db, write(tmp_path / "e.csv", text)).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 2, 3)
    assert f.reasons == {"too few fields": 1, "unterminated quote": 1, "invalid ts": 1}
    got = rejects(db)
    assert got[0] == (4, "too few fields", "x,y")
    # A record rejected by SPEC §2.4 keeps its fields (as JSON), numbered by its first line.
    assert got[1][:2] == (5, "invalid ts") and '"two\\nlines"' in got[1][2]
    assert got[2] == (7, "unterminated quote", '"open,1')


def test_every_column_is_text_never_typed(tmp_path: Path) -> None:
    text = (
        "ts,action,user_id,device_id,event_id,status\n"
        "1708074061,login,0123,9007199254740993,1e0,0200\n"
        "2024-02-16T09:00:00Z,login,u, ,e, 200\n"
    )
    db = tmp_path / "s.duckdb"
    f = run(db, write(tmp_path / "e.csv", text)).files[0]
    # Epoch seconds as text are read as §2.4 numbers are not: a string of digits is no time.
    assert rows(db, "select reason from rejects order by source_record") == [
        ("invalid ts",),
        ("invalid status",),
    ]
    assert f.rows_loaded == 0
    text = text.replace("1708074061", "2024-02-16T09:00:00Z").replace(", 200", ",200")
    db2 = tmp_path / "t.duckdb"
    run(db2, write(tmp_path / "e2.csv", text))
    assert rows(
        db2, "select user_id, device_id, event_id, status from events order by source_record"
    ) == [("0123", "9007199254740993", "1e0", 200), ("u", None, "e", 200)]


def test_w3c_dash_is_a_missing_value(tmp_path: Path) -> None:
    text = (
        "#Fields: ts action user_id device_id event_id request_id status\n"
        "2024-02-16T09:00:00Z\tthumbnail_delivered\tu1\td1\te1\t-\t-\n"
        "2024-02-16T09:00:00Z\tthumbnail_delivered\t-\td1\te1\tr9\t200\n"
    )
    db = tmp_path / "s.duckdb"
    run(db, write(tmp_path / "e.log", text))
    assert rows(db, "select request_id, status from events") == [(None, None)]
    assert rows(db, "select source_record, reason from rejects") == [(3, "missing user_id")]


def test_header_only_file_is_loaded_with_its_kind(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    report = run(
        db,
        write(tmp_path / "g.csv", "device_id,user_id,role\r\n"),
        write(tmp_path / "a.tsv", "user_id\temail\n"),
        write(tmp_path / "e.log", "#Version: 1.0\n#Fields: ts action user_id\n"),
    )
    assert [(f.status, f.kind, f.rows_read) for f in report.files] == [
        ("loaded", "grants", 0),
        ("loaded", "accounts", 0),
        ("loaded", "events", 0),
    ]


def test_empty_file_is_loaded_with_no_records(tmp_path: Path) -> None:
    f = run(tmp_path / "s.duckdb", write(tmp_path / "e.csv", "")).files[0]
    assert (f.status, f.rows_read) == ("loaded", 0)


def test_kind_that_the_header_cannot_tell_fails_the_file_unless_given(tmp_path: Path) -> None:
    p = write(tmp_path / "x.csv", "foo,bar\n1,2\n")
    f = run(tmp_path / "s.duckdb", p).files[0]
    assert f.status == "failed" and "kind" in (f.error or "")
    f = run(tmp_path / "t.duckdb", p, kind="accounts").files[0]
    assert (f.status, f.rows_rejected, f.reasons) == ("loaded", 1, {"missing user_id": 1})


@pytest.mark.parametrize(
    "name, text, why",
    [
        ("dup.csv", "user_id,email,user_id\nu,e,v\n", "names a column twice (columns 1 and 3)"),
        ("quote.csv", '"user_id,email\n', "line 1 cannot be read (unterminated quote)"),
        ("semi.csv", "user_id;email\r\nu;e\r\n", "line 1 is one column holding ';'"),
        ("nofields.log", "#Version: 1.0\nu1 x\n", "line 2 holds a record before any #Fields:"),
        ("utf16.csv", "user_id\nu1\n".encode("utf-16"), "not UTF-8"),
        ("rec.csv", "user_id,__rec\nu,1\n", "a column is named __rec"),
    ],
)
def test_files_that_cannot_be_read_fail_whole_with_one_line(
    tmp_path: Path, name: str, text: str | bytes, why: str
) -> None:
    db = tmp_path / "s.duckdb"
    report = run(db, write(tmp_path / name, text), write(tmp_path / "ok.csv", "user_id\nu9\n"))
    bad, ok = report.files
    assert bad.status == "failed" and why in (bad.error or "")
    assert "\n" not in (bad.error or "")
    assert ok.status == "loaded" and ok.rows_loaded == 1
    assert rows(db, "select user_id from accounts") == [("u9",)]


def test_columns_without_a_name_are_extra_fields_named_by_their_place(tmp_path: Path) -> None:
    # A data frame's index (first header cell empty) and a spreadsheet's trailing empty cells
    # (`,,`) are extra fields (SPEC §2.6): the file loads, and the sources row says so.
    text = (
        ",ts,action,user_id,device_id,event_id,request_id, ,note,,\r\n"
        "0,2024-02-16T09:00:00Z,thumbnail_delivered,u1,d1,e1,r1,a,,,\r\n"
        "1,2024-02-16T09:00:01Z,thumbnail_delivered,u1,d1,e1,r2,,hi,,x\r\n"
    )
    db = tmp_path / "s.duckdb"
    f = run(db, write(tmp_path / "e.csv", text)).files[0]
    assert (f.status, f.kind, f.rows_loaded) == ("loaded", "events", 2)
    assert rows(db, "select request_id, extra::varchar from events order by 1") == [
        ("r1", '{"column1":"0","column8":"a","note":null,"column10":null,"column11":null}'),
        ("r2", '{"column1":"1","column8":null,"note":"hi","column10":null,"column11":"x"}'),
    ]
    assert rows(db, "select notes from sources") == [
        (
            "column 1 of line 1 has no name: read as column1; "
            "column 8 of line 1 has no name: read as column8; "
            "column 10 of line 1 has no name: read as column10; "
            "column 11 of line 1 has no name: read as column11",
        )
    ]


def test_a_file_of_lone_cr_line_ends_loads_every_record(tmp_path: Path) -> None:
    # Read as one line, its header took the records as names: 0 records, "loaded".
    db = tmp_path / "s.duckdb"
    f = run(db, write(tmp_path / "a.csv", "user_id,email\ru1,a@x\ru2,b@x\r")).files[0]
    assert (f.status, f.kind, f.rows_read, f.rows_loaded) == ("loaded", "accounts", 2, 2)
    assert rows(db, "select user_id, email, source_record from accounts order by 1") == [
        ("u1", "a@x", 2),
        ("u2", "b@x", 3),
    ]


def test_a_generated_column_name_never_takes_a_name_the_header_has(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    text = "user_id,,column2,column2_2\nu1,a,b,c\n"
    f = run(db, write(tmp_path / "a.csv", text), kind="accounts").files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert rows(db, "select notes from sources") == [
        ("column 2 of line 1 has no name: read as column2_3",)
    ]
    # A name the header gives is never replaced, blank-edged or not: no note.
    f = run(db, write(tmp_path / "b.csv", "user_id, x \nu2,y\n"), kind="accounts").files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert rows(db, "select notes from sources where path like '%b.csv'") == [(None,)]


def test_a_corrupt_gzip_fails_the_csv_file(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(EVENTS_CSV.encode()))
    data[-8] ^= 0xFF  # the CRC
    f = run(tmp_path / "s.duckdb", write(tmp_path / "e.csv.gz", bytes(data))).files[0]
    assert f.status == "failed" and "gzip" in (f.error or "")


def test_a_truncated_zstd_fails_the_log_file(tmp_path: Path) -> None:
    text = "#Fields: user_id email\n" + "".join(f"u{i} e{i}\n" for i in range(2000))
    data = zstandard.ZstdCompressor().compress(text.encode())
    f = run(tmp_path / "s.duckdb", write(tmp_path / "a.log.zst", data[:-20])).files[0]
    assert f.status == "failed" and "truncated" in (f.error or "")


def test_a_fields_directive_changing_mid_file_switches_columns(tmp_path: Path) -> None:
    text = (
        "#Fields: ts action user_id edge\n"
        "2024-02-16T09:00:00Z login u1 FRA\n"
        "#Fields: ts user_id action app\n"
        "2024-02-16T09:00:01Z u2 login ios\n"
    )
    db = tmp_path / "s.duckdb"
    run(db, write(tmp_path / "e.log", text))
    assert rows(
        db, "select source_record, user_id, action, extra::varchar from events order by 1"
    ) == [(2, "u1", "login", '{"edge":"FRA"}'), (4, "u2", "login", '{"app":"ios"}')]


def test_bom_crlf_quoted_newlines_and_many_batches(tmp_path: Path) -> None:
    body = "".join(f'u{i},"Name {i}, with ""quotes""\r\nand a newline"\r\n' for i in range(3000))
    text = "\ufeffuser_id,name\r\n" + body + "u-last,\r\n"
    db = tmp_path / "s.duckdb"
    f = run(db, write(tmp_path / "a.csv", text)).files[0]
    assert (f.kind, f.rows_loaded, f.rows_rejected) == ("accounts", 3001, 0)
    got = rows(db, "select source_record, user_id, name from accounts order by source_record")
    assert got[0] == (2, "u0", 'Name 0, with "quotes"\r\nand a newline')
    assert got[-1] == (6002, "u-last", None)


# --------------------------------------------------------------------------- the example map


def _example_store(tmp_path: Path, compress: bool = False) -> Path:
    src = tmp_path / "in"
    shutil.copytree(EXAMPLES / "cloudfront", src / "cloudfront")
    shutil.copytree(EXAMPLES / "exports", src / "exports")
    if compress:
        for p in (src / "cloudfront").iterdir():
            p.with_name(p.name + ".gz").write_bytes(gzip.compress(p.read_bytes()))
            p.unlink()
    db = tmp_path / "s.duckdb"
    report = run(db, src, mapping=load_mapping(CLOUDFRONT_MAP))
    assert [f.status for f in report.files] == ["loaded"] * 3, report.to_json()
    assert accounted(report)
    return db


@pytest.mark.parametrize("compress", [False, True])
def test_the_cloudfront_example_ingests_through_its_map(tmp_path: Path, compress: bool) -> None:
    db = _example_store(tmp_path, compress)
    assert rows(db, "select action, count(*) from events group by 1 order by 1") == [
        ("thumbnail_delivered", 4),
        ("thumbnail_tapped", 2),
        ("video_played", 1),
    ]
    assert rows(
        db,
        "select user_id, device_id, event_id, request_id, status from events "
        "where source_record = 6",
    ) == [("u-77", "cam-17", "ev-902", "aXJlcS0wMDA0LWxocg==", 200)]
    assert rows(db, "select ts from events where source_record = 3") == [
        (datetime(2024, 2, 16, 9, 20, 1, tzinfo=UTC),)
    ]
    # The app asset carries no uid: rejected, not taken for a delivery.
    assert rows(db, "select source_record, reason from rejects") == [(10, "missing user_id")]
    assert rows(
        db,
        "select device_id, user_id, role, valid_from, valid_to from grants order by source_record",
    ) == [
        ("cam-17", "u-42", "owner", datetime(2023, 5, 1, 10, tzinfo=UTC), None),
        ("cam-17", "u-55", "shared", datetime(2023, 11, 20, 17, 30, 0, 500000, tzinfo=UTC), None),
        ("cam-23", "u-42", "owner", datetime(2022, 1, 9, 8, tzinfo=UTC), None),
        (
            "cam-23",
            "u-77",
            "shared",
            datetime(2023, 1, 1, tzinfo=UTC),
            datetime(2023, 6, 1, tzinfo=UTC),
        ),
    ]
    assert rows(db, "select user_id, email, name from accounts order by source_record") == [
        ("u-42", "jane@example.com", "Doe, Jane"),
        ("u-55", "mimi@example.org", 'Marie "Mimi" Curie'),
        ("u-77", None, "Line one\r\nline two"),
        ("u-88", "kim@example.net", '=HYPERLINK("http://x")'),
    ]
    con = open_store(StoreOptions(db), read_only=True)
    try:
        figures = compute_figures(con, parse_window("2024-02-16T09:00:00Z/PT1H"))
    finally:
        con.close()
    got = {
        k: figures[k]
        for k in (
            "deliveries",
            "cross_account_deliveries",
            "recipients",
            "cross_account_taps",
            "tappers",
            "exposed_owners",
        )
    }
    assert got == {
        "deliveries": 3,
        "cross_account_deliveries": 1,
        "recipients": 1,
        "cross_account_taps": 1,
        "tappers": 1,
        "exposed_owners": 1,
    }


def test_example_accounts_csv_reads_back_with_the_csv_module() -> None:
    import csv

    with open(EXAMPLES / "exports" / "accounts.csv", encoding="utf-8", newline="") as f:
        names = [r["display_name"] for r in csv.DictReader(f)]
    assert names == [
        "Doe, Jane",
        'Marie "Mimi" Curie',
        "Line one\r\nline two",
        '=HYPERLINK("http://x")',
    ]


@pytest.mark.parametrize("hook", ["after_read", "after_stage"])
def test_a_csv_file_changed_while_read_fails(tmp_path: Path, hook: str) -> None:
    f = write(tmp_path / "e.csv", EVENTS_CSV)

    def appending(path: Path) -> None:
        with open(path, "ab") as fh:
            fh.write(b"2024-02-16T09:00:02Z,login,u9,,,,,\n")

    db = tmp_path / "s.duckdb"
    r = run(db, f, hooks=IngestHooks(**{hook: appending})).files[0]
    assert r.status == "failed" and "changed" in (r.error or "")
    assert rows(db, "select count(*) from events") == [(0,)]
