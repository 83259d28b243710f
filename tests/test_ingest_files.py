"""SPEC §2.4–§3 at the file level: formats, broken files, discovery, de-duplication, store."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from forensics.errors import InputError, StoreInUseError
from forensics.ingest import IngestHooks, IngestOptions, IngestTuning, file_format
from forensics.ingest.readers import ReadContext, TableBatch, reader_for, source
from forensics.ingest.readers.json_lines import split_lines
from forensics.ingest.stage import in_pieces
from forensics.store import StoreOptions, open_store
from tests.helpers.ingest import accounted, event, rows, run, write_ndjson, write_parquet

GOOD = [event(request_id=f"r{i}", user_id=f"u{i}") for i in range(5)]


def _ndjson_bytes(records: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def _only(report):  # type: ignore[no-untyped-def]
    assert len(report.files) == 1
    assert accounted(report)
    return report.files[0]


# ----------------------------------------------------------------- JSON records


def test_malformed_records_are_rejected_with_their_line_numbers(tmp_path: Path) -> None:
    lines = [
        json.dumps(event(request_id="a")),
        '{"ts": "2024-02-16T09:00:00Z", "action": "x"',  # cut short
        json.dumps(event(request_id="b")) + " trailing",
        '{"user_id": "a", "user_id": "b", "ts": "2024-02-16T09:00:00Z", "action": "x"}',
        '{"ts": "2024-02-16T09:00:00Z", "action": "x", "user_id": "u", "n": NaN}',
        '{"ts": "2024-02-16T09:00:00Z", "action": "x", "user_id": "u", "n": -Infinity}',
        '{"ts": "2024-02-16T09:00:00Z", "action": "x", "user_id": "u", "n": [1,]}',
        "[]",
        '"x"',
        "42",
        "null",
        '{"ts": "2024-02-16T09:00:00Z", "action": "x", "user_id": "u", "s": "NaN, ]"}',
    ]
    f = tmp_path / "e.ndjson"
    f.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f))
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (12, 2, 10)
    got = rows(db, "select source_record, reason from rejects order by 1")
    assert got == [
        (2, "malformed JSON"),
        (3, "malformed JSON"),
        (4, "duplicate key"),
        (5, "not standard JSON (NaN, Infinity or a trailing comma)"),
        (6, "not standard JSON (NaN, Infinity or a trailing comma)"),
        (7, "not standard JSON (NaN, Infinity or a trailing comma)"),
        (8, "not a JSON object"),
        (9, "not a JSON object"),
        (10, "not a JSON object"),
        (11, "not a JSON object"),
    ]
    assert rows(db, "select raw from rejects where source_record = 2")[0][0] == lines[1]


@pytest.mark.parametrize("width", [0, 300])  # 300 keys: past the counting shortcut
@pytest.mark.parametrize("kind", ["events", "grants", "accounts"])
def test_duplicate_keys_reject_for_every_kind_and_width(
    tmp_path: Path, kind: str, width: int
) -> None:
    base = {
        "events": {"ts": "2024-02-16T09:00:00Z", "action": "x", "user_id": "u"},
        "grants": {"device_id": "d", "user_id": "u"},
        "accounts": {"user_id": "u"},
    }[kind]
    wide = {f"k{i}": i for i in range(width)}
    good = json.dumps({**base, **wide, "note": None})  # a JSON null is still a key
    # Lacks keys other records have: no duplicate key (another user, so no duplicate event).
    fewer = json.dumps(dict(base, user_id="w"))
    body = json.dumps({**base, **wide})[1:-1]
    dup_last = "{" + body + ', "user_id": "v"}'
    dup_null = "{" + body + ', "note": null, "note": null}'
    f = tmp_path / "x.ndjson"
    f.write_text("\n".join([good, dup_last, fewer, dup_null]) + "\n")
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f, kind=kind))
    assert (r.rows_loaded, r.rows_rejected) == (2, 2)
    assert rows(db, "select source_record, reason from rejects order by 1") == [
        (2, "duplicate key"),
        (4, "duplicate key"),
    ]


def test_crlf_blank_lines_bom_and_no_final_newline_count_right(tmp_path: Path) -> None:
    body = "\r\n".join(json.dumps(r) for r in GOOD[:2]) + "\r\n\r\n   \n" + json.dumps(GOOD[2])
    f = tmp_path / "e.ndjson"
    f.write_bytes(b"\xef\xbb\xbf" + body.encode())
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f))
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (3, 3, 0)
    assert rows(db, "select source_record from events order by 1") == [(1,), (2,), (5,)]


def test_only_space_tab_cr_and_lf_make_a_line_blank(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD[0]), "\t \t\r", "\f", " \u00a0 ", "", json.dumps(GOOD[1])]
    f = tmp_path / "e.ndjson"
    f.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f))
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (4, 2, 2)
    assert rows(db, "select source_record, reason from rejects order by 1") == [
        (3, "malformed JSON"),
        (4, "malformed JSON"),
    ]


def test_invalid_utf8_or_raw_nul_rejects_only_that_record(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_bytes(
        _ndjson_bytes(GOOD[:1])
        + b'{"ts":"2024-02-16T09:00:00Z","action":"x","user_id":"\xff\xfe"}\n'
        + b'{"ts":"2024-02-16T09:00:00Z","action":"x","user_id":"a\x00b"}\n'
        + _ndjson_bytes(GOOD[1:2])
    )
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f))
    assert (r.rows_read, r.rows_loaded, r.rows_rejected) == (4, 2, 2)
    assert rows(db, "select source_record, reason from rejects order by 1") == [
        (2, "invalid UTF-8"),
        (3, "malformed JSON"),
    ]


@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_a_record_too_large_for_the_memory_limit_is_rejected_alone(
    tmp_path: Path, suffix: str
) -> None:
    # DuckDB parses a record in several times its size: a 60 MB record under a 1 GB limit
    # failed its whole file (Out of Memory). Now one beyond 1/32 of the limit is rejected.
    from forensics.ingest import ingest

    big = dict(GOOD[1], note="A" * (3 << 20))  # 3 MiB; the limit below allows 2 MiB
    records = [GOOD[0], big, GOOD[2], dict(GOOD[3], note="B" * (1 << 20))]
    f = tmp_path / f"e{suffix}"
    if suffix == ".json":
        f.write_text(json.dumps(records))
    else:
        write_ndjson(f, records)
    db = tmp_path / "s.duckdb"
    report = ingest(StoreOptions(db, memory_limit="64MB"), [str(f)], IngestOptions())
    r = _only(report)
    assert (r.status, r.rows_loaded, r.rows_rejected) == ("loaded", 3, 1)
    assert rows(db, "select source_record, reason, length(raw) from rejects") == [
        (2, "record too large (2 MiB at most under this memory limit)", 1 << 20)
    ]


def test_a_file_with_no_utf8_record_says_so(tmp_path: Path) -> None:
    # A Latin-1 export: each line is invalid UTF-8. Before, the file failed saying that no
    # record is a JSON object.
    f = tmp_path / "a.jsonl"
    f.write_bytes(b'{"user_id":"u1","name":"Ann\xe9"}\n{"user_id":"u2","name":"Jos\xe9"}\n')
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f))
    assert r.status == "failed"
    assert r.error == (
        "kind: no record is UTF-8 text (the file looks like another encoding), so its kind "
        "cannot be told; pass --kind to keep its records as rejects"
    )
    r = _only(run(db, f, kind="accounts"))
    assert (r.status, r.rows_read, r.rows_rejected) == ("loaded", 2, 2)
    # one readable line that is not an object keeps the other reason
    g = tmp_path / "b.jsonl"
    g.write_bytes(b'{"user_id":"Ann\xe9"}\n[1]\n')
    assert "no record is a JSON object" in (_only(run(db, g)).error or "")


def test_utf16_file_fails_whole(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_bytes(_ndjson_bytes(GOOD).decode().encode("utf-16"))
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert r.status == "failed" and "UTF-8" in (r.error or "")
    assert rows(db, "select count(*) from sources") == [(0,)]


def test_deeply_nested_and_huge_records_do_not_crash(tmp_path: Path) -> None:
    deep = '{"ts":"2024-02-16T09:00:00Z","action":"x","user_id":"u","d":' + "[" * 5000 + "]" * 5000
    huge = json.dumps(event(request_id="big", blob="x" * (20 << 20)))
    f = tmp_path / "e.ndjson"
    f.write_text(deep + "}\n" + huge + "\n")
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f))
    assert r.rows_read == 2


@pytest.mark.parametrize(
    "name, text",
    [("e.jsonl", b"\n"), ("e.ndjson", b"\r\n"), ("e.json", b"\n  \n\t\n"), ("e.jsonl", b"")],
)
def test_a_json_file_of_blank_lines_only_is_loaded_with_no_record(
    tmp_path: Path, name: str, text: bytes
) -> None:
    f = tmp_path / name
    f.write_bytes(text)
    r = _only(run(tmp_path / "s.duckdb", f))
    assert (r.status, r.rows_read) == ("loaded", 0)


def test_json_array_files(tmp_path: Path) -> None:
    f = tmp_path / "e.json"
    f.write_text(json.dumps(GOOD, indent=2))
    db = tmp_path / "s.duckdb"
    r = _only(run(db, f))
    assert (r.rows_read, r.rows_loaded, r.format) == (5, 5, "json")
    empty = tmp_path / "empty.json"
    empty.write_text(" [ ] ")
    assert run(db, empty).files[0].rows_read == 0


@pytest.mark.parametrize(
    "text, why",
    [
        ('[{"a": 1}, {"b": 2}', "not closed"),
        ('[{"a": 1}, {"b": 2},', "not closed"),
        ('[{"a": 1}, {"b": 2},]', "trailing comma"),
        ('[{"a": 1}] x', "after the end"),
        ('[{"a": 1} {"b": 2}]', "element 1 of the array is not valid JSON"),
    ],
)
def test_broken_json_arrays_fail_whole(tmp_path: Path, text: str, why: str) -> None:
    f = tmp_path / "e.json"
    f.write_text(text)
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert r.status == "failed" and why in (r.error or "")
    assert rows(db, "select count(*) from events") == [(0,)]


def test_array_cut_after_a_comma_is_not_a_shorter_valid_file(tmp_path: Path) -> None:
    full = json.dumps(GOOD)
    cut = full[: full.index("}, {", 10) + 2]
    f = tmp_path / "e.json"
    f.write_text(cut)
    assert run(tmp_path / "s.duckdb", f).files[0].status == "failed"


# ----------------------------------------------------------------- compression


@pytest.fixture(params=["isal", "stdlib"])
def gzip_reader(request: pytest.FixtureRequest) -> IngestTuning:
    """Each gzip rule holds with ISA-L's reader and with the standard library's fallback."""
    return IngestTuning(isal=request.param == "isal")


def test_gzip_is_read_through_isal_when_it_is_installed() -> None:
    from isal import igzip

    assert source.gzip_reader(IngestTuning()) is igzip.IGzipFile
    assert source.gzip_reader(IngestTuning(isal=False)) is gzip.GzipFile


def test_gzip_and_zstd_and_multi_member_gzip(tmp_path: Path, gzip_reader: IngestTuning) -> None:
    a = tmp_path / "a.ndjson.gz"
    a.write_bytes(gzip.compress(_ndjson_bytes(GOOD[:2])) + gzip.compress(_ndjson_bytes(GOOD[2:3])))
    b = tmp_path / "b.jsonl.zst"
    b.write_bytes(zstandard.ZstdCompressor().compress(_ndjson_bytes(GOOD[3:])))
    db = tmp_path / "s.duckdb"
    report = run(db, a, b, tuning=gzip_reader)
    assert [(f.status, f.rows_loaded) for f in report.files] == [("loaded", 3), ("loaded", 2)]


def _batch_sizes(path: Path, tuning: IngestTuning) -> list[int]:
    fmt = file_format(path)
    assert fmt is not None
    ctx = ReadContext(tuning)
    return [len(b.rec) for b in reader_for(fmt[0]).read(path, fmt[1], ctx)]  # type: ignore[union-attr]


@pytest.mark.parametrize("gz", [False, True])
def test_the_rest_of_a_file_is_read_with_the_last_chunk_when_it_is_small(
    tmp_path: Path, gz: bool, gzip_reader: IngestTuning
) -> None:
    line = _ndjson_bytes([event()])
    tuning = replace(gzip_reader, chunk_bytes=len(line) * 64)  # 64 lines
    name = "e.ndjson.gz" if gz else "e.ndjson"
    for lines, batches in (
        (64, [64]),
        (80, [80]),
        (81, [64, 17]),
        (144, [64, 80]),
        (145, [64, 64, 17]),
    ):
        path = write_ndjson(tmp_path / name, [event()] * lines, gz=gz)
        assert _batch_sizes(path, tuning) == batches, lines


def test_a_gzip_trailer_that_understates_the_size_changes_only_where_batches_end(
    tmp_path: Path, gzip_reader: IngestTuning
) -> None:
    records = [event(request_id=f"r{i:03d}") for i in range(300)]
    line = len(_ndjson_bytes(records[:1]))
    tuning = replace(gzip_reader, chunk_bytes=line * 64)
    path = tmp_path / "e.ndjson.gz"  # the last member is one line: its trailer says so
    path.write_bytes(
        gzip.compress(_ndjson_bytes(records[:-1])) + gzip.compress(_ndjson_bytes(records[-1:]))
    )
    assert source.gzip_size(path) == line
    assert _batch_sizes(path, tuning) == [80, 64, 64, 64, 28]
    r = _only(run(tmp_path / "s.duckdb", path, tuning=tuning))
    assert (
        r.rows_loaded,
        rows(tmp_path / "s.duckdb", "select max(source_record) from events"),
    ) == (300, [(300,)])


@pytest.mark.parametrize("cut", [10, 30, -9, -4, -1])
def test_truncated_gzip_fails_whole(tmp_path: Path, cut: int, gzip_reader: IngestTuning) -> None:
    data = gzip.compress(_ndjson_bytes(GOOD * 20))
    f = tmp_path / "e.ndjson.gz"
    f.write_bytes(data[:cut])
    db = tmp_path / "s.duckdb"
    r = run(db, f, tuning=gzip_reader).files[0]
    assert r.status == "failed"
    assert rows(db, "select count(*) from events") == [(0,)]


def test_gzip_with_a_corrupt_crc_fails(tmp_path: Path, gzip_reader: IngestTuning) -> None:
    data = bytearray(gzip.compress(_ndjson_bytes(GOOD)))
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    f = tmp_path / "e.ndjson.gz"
    f.write_bytes(bytes(data))
    assert run(tmp_path / "s.duckdb", f, tuning=gzip_reader).files[0].status == "failed"


def test_plain_text_named_gz_fails(tmp_path: Path, gzip_reader: IngestTuning) -> None:
    f = tmp_path / "e.ndjson.gz"
    f.write_bytes(_ndjson_bytes(GOOD))
    r = run(tmp_path / "s.duckdb", f, tuning=gzip_reader).files[0]
    assert r.status == "failed" and "gzip" in (r.error or "")


def test_truncated_zstd_fails(tmp_path: Path) -> None:
    data = zstandard.ZstdCompressor(write_checksum=True).compress(_ndjson_bytes(GOOD * 50))
    f = tmp_path / "e.ndjson.zst"
    f.write_bytes(data[: len(data) // 2])
    assert run(tmp_path / "s.duckdb", f).files[0].status == "failed"


def test_zero_byte_file_is_reported_with_zero_records(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_bytes(b"")
    r = _only(run(tmp_path / "s.duckdb", f))
    assert (r.status, r.rows_read) == ("loaded", 0)


# ----------------------------------------------------------------- Parquet


def _parquet_bytes(tmp_path: Path) -> bytes:
    p = write_parquet(
        tmp_path / "good.parquet",
        pa.table(
            {
                "ts": ["2024-02-16T09:00:00Z"] * 2000,
                "action": ["x"] * 2000,
                "user_id": [f"u{i}" for i in range(2000)],
            }
        ),
        write_page_checksum=True,
        compression="none",
    )
    data = p.read_bytes()
    p.unlink()
    return data


@pytest.mark.parametrize("damage", ["footer", "zero", "magic", "page"])
def test_broken_parquet_fails_whole(tmp_path: Path, damage: str) -> None:
    data = _parquet_bytes(tmp_path)
    if damage == "footer":
        data = data[:-20]
    elif damage == "zero":
        data = b""
    elif damage == "magic":
        data = b"PAR1"
    else:
        b = bytearray(data)
        i = b.index(b"u1000")  # inside a data page
        b[i : i + 5] = b"XXXXX"
        data = bytes(b)
    f = tmp_path / "e.parquet"
    f.write_bytes(data)
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert r.status == "failed", r
    assert rows(db, "select count(*) from events") == [(0,)]


def _compressed(data: bytes, suffix: str) -> bytes:
    return gzip.compress(data) if suffix == ".gz" else zstandard.ZstdCompressor().compress(data)


@pytest.fixture
def temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder (TMPDIR) this test's ingest uses: empty, to be looked at."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr("tempfile.tempdir", None)  # TMPDIR is read again
    return folder


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_compressed_parquet_reads_as_the_plain_file_and_leaves_no_temporary_file(
    tmp_path: Path, suffix: str, temp: Path
) -> None:
    # SPEC §2.5: every format plain or compressed, Parquet too; found in a folder as well.
    table = {
        "ts": ["2024-02-16T09:00:00Z", "bad", "2024-02-16T09:00:01Z"],
        "action": ["x", "x", "x"],
        "user_id": ["u1", "u2", "u3"],
    }
    (tmp_path / "plain").mkdir()
    plain = write_parquet(tmp_path / "plain" / "e.parquet", table)
    packed = tmp_path / "logs" / ("e.parquet" + suffix)
    packed.parent.mkdir()
    packed.write_bytes(_compressed(plain.read_bytes(), suffix))
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    run(a, plain)
    r = _only(run(b, packed.parent))
    assert (r.status, r.format, r.rows_loaded, r.rows_rejected) == (
        "loaded",
        "parquet+" + ("gzip" if suffix == ".gz" else "zstd"),
        2,
        1,
    )
    assert r.sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()
    query = "select user_id, ts, source_record from events order by 1"
    assert rows(b, query) == rows(a, query)
    assert rows(b, "select source_record, reason from rejects") == [(2, "invalid ts")]
    assert list(temp.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "not parquet"])
def test_a_broken_compressed_parquet_fails_alone_and_leaves_no_temporary_file(
    tmp_path: Path, damage: str, temp: Path
) -> None:
    data = _parquet_bytes(tmp_path)
    packed = gzip.compress(data)[:-40] if damage == "truncated" else gzip.compress(data[:-20])
    bad = tmp_path / "bad.parquet.gz"
    bad.write_bytes(packed)
    good = write_ndjson(tmp_path / "e.ndjson", GOOD)
    db = tmp_path / "s.duckdb"
    report = run(db, bad, good)
    assert [f.status for f in report.files] == ["failed", "loaded"]
    assert report.files[0].error.startswith("gzip" if damage == "truncated" else "Parquet")
    assert rows(db, "select count(*) from events") == [(len(GOOD),)]
    assert list(temp.iterdir()) == []


# ----------------------------------------------------------------- discovery


def test_glob_characters_in_real_names_read_exactly_that_file(tmp_path: Path) -> None:
    names = ["x*.ndjson", "xa.ndjson", "l[1].ndjson", "l1.ndjson", 'it\'s "q" ?.ndjson']
    for i, n in enumerate(names):
        write_ndjson(tmp_path / n, [event(request_id=f"r{i}")])
    db = tmp_path / "s.duckdb"
    for i, n in enumerate(names):
        r = _only(run(db, tmp_path / n))
        assert r.status == "loaded"
        assert rows(
            db,
            "select request_id from events where source_id = (select max(source_id) from sources)",
        ) == [(f"r{i}",)]


def test_a_folder_holding_the_store_is_walked_without_the_stores_own_files(
    tmp_path: Path,
) -> None:
    # `forensics ingest .` where ./forensics.duckdb lives: its key index (a manifest.json),
    # spill folder and kept results (Parquet) are not evidence. Before, the second run
    # failed on forensics.duckdb.keys/manifest.json, and read STORE.cache/*.parquet.
    write_ndjson(tmp_path / "a.ndjson", GOOD[:2])
    db = tmp_path / "forensics.duckdb"
    run(db, tmp_path)
    for side in ("cache", "tmp"):
        (tmp_path / f"forensics.duckdb.{side}").mkdir(exist_ok=True)
        write_parquet(tmp_path / f"forensics.duckdb.{side}" / "r.parquet", {"user_id": ["x"]})
    write_ndjson(tmp_path / "b.ndjson", GOOD[2:])
    report = run(db, tmp_path)
    assert sorted((Path(f.path).name, f.status) for f in report.files) == [
        ("a.ndjson", "skipped"),
        ("b.ndjson", "loaded"),
    ]
    named = run(db, tmp_path / "forensics.duckdb.keys" / "manifest.json").files
    assert [(f.status, f.error) for f in named] == [
        ("failed", "is the case's own file, not evidence")
    ]
    assert rows(db, "select count(*) from sources") == [(2,)]


def test_a_lake_inside_the_folder_ingested_into_it_is_not_read(tmp_path: Path) -> None:
    from forensics.engines.base import EngineOptions
    from forensics.lake_ingest import ingest_lake

    write_ndjson(tmp_path / "a.ndjson", GOOD[:2])
    on = EngineOptions("duckdb", str(tmp_path / "lake"), "local[1]")
    ingest_lake(on, [str(tmp_path)], IngestOptions())
    write_ndjson(tmp_path / "b.ndjson", GOOD[2:])
    report = ingest_lake(on, [str(tmp_path)], IngestOptions())
    assert sorted((Path(f.path).name, f.status) for f in report.files) == [
        ("a.ndjson", "skipped"),
        ("b.ndjson", "loaded"),
    ]


def test_same_file_twice_or_via_symlink_is_read_once(tmp_path: Path) -> None:
    f = write_ndjson(tmp_path / "e.ndjson", GOOD)
    link = tmp_path / "link.ndjson"
    link.symlink_to(f)
    copy = tmp_path / "copy.ndjson"
    copy.write_bytes(f.read_bytes())
    db = tmp_path / "s.duckdb"
    report = run(db, f, f, link, copy)
    assert [x.status for x in report.files] == ["loaded", "skipped"]
    assert rows(db, "select count(*) from events") == [(5,)]


def test_folders_are_walked_and_hidden_files_skipped(tmp_path: Path) -> None:
    (tmp_path / "logs" / "sub").mkdir(parents=True)
    (tmp_path / "logs" / ".hidden").mkdir()
    write_ndjson(tmp_path / "logs" / "a.ndjson", GOOD[:2])
    write_ndjson(tmp_path / "logs" / "sub" / "b.jsonl", GOOD[2:])
    write_ndjson(tmp_path / "logs" / ".c.ndjson", [event(request_id="hidden")])
    write_ndjson(tmp_path / "logs" / ".hidden" / "d.ndjson", [event(request_id="hidden2")])
    (tmp_path / "logs" / "notes.txt").write_text("not a log")
    db = tmp_path / "s.duckdb"
    report = run(db, tmp_path / "logs")
    assert sorted((Path(f.path).name, f.status) for f in report.files) == [
        ("a.ndjson", "loaded"),
        ("b.jsonl", "loaded"),
        ("notes.txt", "skipped"),
    ]
    assert rows(db, "select count(*) from events") == [(5,)]


def test_a_walk_follows_linked_folders_once_and_ends_a_link_loop(tmp_path: Path) -> None:
    # A linked folder was passed over in silence (a glob with ** followed it).
    (tmp_path / "case").mkdir()
    (tmp_path / "elsewhere").mkdir()
    write_ndjson(tmp_path / "case" / "a.ndjson", GOOD[:2])
    write_ndjson(tmp_path / "elsewhere" / "b.ndjson", GOOD[2:])
    (tmp_path / "case" / "more").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "case" / "again").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "elsewhere" / "loop").symlink_to(tmp_path / "case")
    db = tmp_path / "s.duckdb"
    report = run(db, tmp_path / "case")
    assert sorted((Path(f.path).name, f.status) for f in report.files) == [
        ("a.ndjson", "loaded"),
        ("b.ndjson", "loaded"),
    ]
    assert rows(db, "select count(*) from events") == [(5,)]


def test_a_folder_a_walk_cannot_list_fails_named_and_the_rest_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It was passed over in silence, exit 0 (os.walk drops what it cannot list).
    (tmp_path / "logs" / "sub").mkdir(parents=True)
    write_ndjson(tmp_path / "logs" / "a.ndjson", GOOD[:2])
    write_ndjson(tmp_path / "logs" / "sub" / "b.ndjson", GOOD[2:])
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if Path(path).name == "sub":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = run(tmp_path / "s.duckdb", tmp_path / "logs")
    assert sorted((Path(f.path).name, f.status, f.error) for f in report.files) == [
        ("a.ndjson", "loaded", None),
        ("sub", "failed", "folder cannot be read (Permission denied)"),
    ]


class _FullDiskAtCheckpoint:
    """A store connection whose last checkpoint fails, as on a full disk."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "checkpoint":
            raise duckdb.IOException("Failed to create checkpoint: No space left on device")
        return self._con.execute(sql, *args)


def test_a_store_failing_at_the_end_still_names_every_file_and_what_became_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, the whole report was lost: nothing on stdout with --json, one engine line.
    from forensics.ingest import pipeline
    from tests.helpers.cli import run_cli

    real = pipeline.open_store
    monkeypatch.setattr(
        pipeline, "open_store", lambda *a, **k: _FullDiskAtCheckpoint(real(*a, **k))
    )
    a = write_ndjson(tmp_path / "a.ndjson", GOOD[:2])
    b = write_ndjson(tmp_path / "b.ndjson", GOOD[2:])
    r = run_cli("--db", str(tmp_path / "s.duckdb"), "ingest", "--json", str(a), str(b))
    assert r.exit_code == 1
    got = json.loads(r.stdout)
    assert [(Path(f["path"]).name, f["status"]) for f in got["files"]] == [
        ("a.ndjson", "loaded"),
        ("b.ndjson", "loaded"),
    ]
    assert r.stderr.splitlines()[-1].startswith("forensics: error: case store ")
    assert "No space left on device" in r.stderr.splitlines()[-1]


def test_a_store_failing_mid_run_names_the_files_it_did_not_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forensics.ingest import pipeline
    from forensics.ingest.options import FileResult, IngestCutShort

    def overlap(con: Any, todo: list[Any], *rest: Any) -> Iterator[FileResult]:
        yield FileResult(str(todo[0][0]), status="loaded")
        raise duckdb.FatalException("database has been invalidated")

    monkeypatch.setattr(pipeline, "_overlap", overlap)
    files = [write_ndjson(tmp_path / f"{n}.ndjson", GOOD) for n in "abc"]
    with pytest.raises(IngestCutShort) as e:
        run(tmp_path / "s.duckdb", *files, tmp_path / "none.ndjson")
    assert [(Path(f.path).name, f.status) for f in e.value.report.files] == [
        ("none.ndjson", "failed"),
        ("a.ndjson", "loaded"),
        ("b.ndjson", "failed"),
        ("c.ndjson", "failed"),
    ]
    assert e.value.report.files[2].error == (
        "not stored: the case store failed (database has been invalidated)"
    )


def test_a_file_whose_name_is_not_utf8_fails_named_and_json_stays_utf8(tmp_path: Path) -> None:
    # Its store step failed on DuckDB's encoding error, and --json wrote the raw byte 0xE9.
    from tests.helpers.cli import run_cli

    (tmp_path / "logs").mkdir()
    write_ndjson(tmp_path / "logs" / "a.ndjson", GOOD)
    latin1 = os.path.join(os.fsencode(tmp_path / "logs"), b"caf\xe9.ndjson")
    with open(latin1, "wb") as out:
        out.write((tmp_path / "logs" / "a.ndjson").read_bytes().replace(b"r1", b"r9"))
    r = run_cli("--db", str(tmp_path / "s.duckdb"), "ingest", "--json", str(tmp_path / "logs"))
    assert r.exit_code == 1
    got = json.loads(r.stdout_bytes.decode("utf-8"))  # strict UTF-8
    by_name = {Path(f["path"]).name: f for f in got["files"]}
    assert by_name["a.ndjson"]["status"] == "loaded"
    bad = by_name["caf\udce9.ndjson"]
    assert bad["status"] == "failed" and bad["error"].startswith("its path is not valid UTF-8")


def test_globs_expand(tmp_path: Path) -> None:
    write_ndjson(tmp_path / "a.ndjson", GOOD[:2])
    write_ndjson(tmp_path / "b.ndjson", GOOD[2:])
    report = run(tmp_path / "s.duckdb", str(tmp_path / "*.ndjson"))
    assert [f.status for f in report.files] == ["loaded", "loaded"]


def test_remote_missing_fifo_and_directory_paths_are_reported(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.ndjson"
    os.mkfifo(fifo)
    report = run(
        tmp_path / "s.duckdb", "http://example.com/x.ndjson", tmp_path / "nope.ndjson", fifo
    )
    assert [f.status for f in report.files] == ["failed", "failed", "failed"]
    assert "local" in (report.files[0].error or "")
    assert "regular" in (report.files[2].error or "")


def test_kind_is_inferred_or_an_error(tmp_path: Path) -> None:
    e = write_ndjson(tmp_path / "e.ndjson", GOOD)
    g = write_ndjson(tmp_path / "g.ndjson", [{"device_id": "d", "user_id": "u"}])
    a = write_ndjson(tmp_path / "a.ndjson", [{"user_id": "u", "email": "x@y"}])
    x = write_ndjson(tmp_path / "x.ndjson", [{"what": 1}])
    report = run(tmp_path / "s.duckdb", e, g, a, x)
    assert [(f.kind, f.status) for f in report.files] == [
        ("events", "loaded"),
        ("grants", "loaded"),
        ("accounts", "loaded"),
        (None, "failed"),
    ]
    assert "x.ndjson" in report.files[3].path and "kind" in (report.files[3].error or "")
    forced = run(tmp_path / "s2.duckdb", x, kind="accounts").files[0]
    assert (forced.status, forced.rows_rejected) == ("loaded", 1)


# ----------------------------------------------------------------- duplicates and the store


def test_duplicates_by_request_id_across_files_and_runs(tmp_path: Path) -> None:
    a = write_ndjson(tmp_path / "a.ndjson", GOOD + [GOOD[0]])
    changed = dict(GOOD[1], ts="2024-02-16T10:00:00Z")  # same request_id, other content
    b = write_ndjson(tmp_path / "b.ndjson", [changed, event(request_id="new")])
    db = tmp_path / "s.duckdb"
    ra = _only(run(db, a))
    assert (ra.rows_loaded, ra.rows_duplicate) == (5, 1)
    rb = _only(run(db, b))
    assert (rb.rows_loaded, rb.rows_duplicate) == (1, 1)
    again = run(db, a, b)
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    assert rows(db, "select count(*) from events") == [(6,)]


def test_a_repeated_request_id_is_found_beside_records_without_one(tmp_path: Path) -> None:
    no_id = event()
    f = write_ndjson(tmp_path / "e.ndjson", [no_id, GOOD[0], GOOD[0]])
    r = _only(run(tmp_path / "s.duckdb", f))
    assert (r.rows_loaded, r.rows_duplicate) == (2, 1)
    g = write_ndjson(tmp_path / "g.ndjson", [GOOD[1], no_id, dict(no_id)])
    r = _only(run(tmp_path / "t.duckdb", g))
    assert (r.rows_loaded, r.rows_duplicate) == (2, 1)


def _tamper(db: Path, *sql: str) -> None:
    import duckdb

    con = duckdb.connect(str(db))
    try:
        for q in sql:
            con.execute(q)
    finally:
        con.close()


def _dkey_select(source: str = "", **exprs: str) -> str:
    """SQL selecting store.DKEY of event() with some fields given as SQL expressions
    (over `source`, e.g. a VALUES list)."""
    from forensics.store import DKEY

    values = {
        "request_id": "null::varchar",
        "ts": "'2024-02-16 09:00:00+00'::timestamptz",
        "action": "'thumbnail_delivered'",
        "user_id": "'u1'",
        "device_id": "'d1'",
        "event_id": "'e1'",
        "status": "null::integer",
    }
    values.update(exprs)
    cols = ", ".join(f"{v} as {k}" for k, v in values.items())
    return f"select {DKEY} from (select {cols} {source})"  # noqa: S608 - test literals


def _dkey_of(request_id: str | None, user_id: str) -> str:
    """store.DKEY of event(request_id=..., user_id=...), as a SQL scalar."""
    rid = "null::varchar" if request_id is None else f"'{request_id}'"
    return "(" + _dkey_select(request_id=rid, user_id=f"'{user_id}'") + ")"


def test_a_key_hash_collision_never_merges_two_events(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    first = write_ndjson(tmp_path / "a.ndjson", [GOOD[0], event()])
    _only(run(db, first))
    # Make the stored events' hashes equal those of the next file's different events.
    _tamper(
        db,
        "update events set dkey = case when request_id is null "
        f"then {_dkey_of(None, 'u9')} else {_dkey_of('other', 'u1')} end",
    )
    second = write_ndjson(tmp_path / "b.ndjson", [event(request_id="other"), event(user_id="u9")])
    r = _only(run(db, second))
    assert (r.rows_loaded, r.rows_duplicate) == (2, 0)
    assert rows(db, "select count(*) - count(distinct dkey) from events") == [(2,)]
    # The second file's events (stored with their true hashes) are found again.
    third = write_ndjson(tmp_path / "c.ndjson", [event(user_id="u9"), event(request_id="other")])
    r = _only(run(db, third))
    assert (r.rows_loaded, r.rows_duplicate) == (0, 2)


@pytest.mark.parametrize(
    "damage",
    [
        # A store from before the key column existed.
        ("alter table events drop column dkey", "delete from meta where key = 'dkey_hash'"),
        # Keys hashed by another DuckDB build (its probe value differs).
        ("update events set dkey = 0", "update meta set value = 'x' where key = 'dkey_hash'"),
        # Rows written without a key.
        ("update events set dkey = null",),
    ],
)
def test_stored_keys_are_recomputed_before_they_are_used(
    tmp_path: Path, damage: tuple[str, ...]
) -> None:
    db = tmp_path / "s.duckdb"
    _only(run(db, write_ndjson(tmp_path / "a.ndjson", [GOOD[0], event()])))
    _tamper(db, *damage)
    r = _only(run(db, write_ndjson(tmp_path / "b.ndjson", [GOOD[0], event(), GOOD[1]])))
    assert (r.rows_loaded, r.rows_duplicate) == (1, 2)
    assert rows(db, "select count(*) from events where dkey is null") == [(0,)]


def test_the_key_staged_with_an_event_is_the_key_of_its_stored_values(tmp_path: Path) -> None:
    from forensics.store import DKEY

    base = 1_708_074_000  # numbers and strings the stored values are converted from
    records = [
        event(
            ts=base + i,
            status=str(200 + i % 3),
            user_id=f"u{i % 4}",
            request_id=f"r{i}" if i % 2 else None,
        )
        for i in range(40)
    ]
    files = [
        write_ndjson(tmp_path / "e.ndjson", records),
        write_parquet(tmp_path / "e.parquet", pa.Table.from_pylist(records)),
    ]
    for f in files:
        db = tmp_path / f"{f.suffix[1:]}.duckdb"
        assert _only(run(db, f)).rows_loaded == 40
        assert rows(db, f"select count(*) from events where dkey is distinct from ({DKEY})") == [
            (0,)
        ]


def test_duplicates_without_request_id_compare_all_six_fields(tmp_path: Path) -> None:
    base = event()
    recs = [
        base,
        dict(base),
        dict(base, status=200),
        dict(base, status=200),
        dict(base, device_id=None),
        dict(base, ts="2024-02-16T09:00:00.000001Z"),
    ]
    f = write_ndjson(tmp_path / "e.ndjson", recs)
    r = _only(run(tmp_path / "s.duckdb", f))
    # device_id null on an analysed action rejects; the others differ in one field each.
    assert (r.rows_loaded, r.rows_rejected, r.rows_duplicate) == (3, 1, 2)


def test_sources_record_hash_counts_and_provenance(tmp_path: Path) -> None:
    import hashlib

    f = write_ndjson(tmp_path / "e.ndjson", GOOD)
    db = tmp_path / "s.duckdb"
    run(db, f)
    (path, kind, fmt, size, sha, read, loaded) = rows(
        db, "select path, kind, format, size_bytes, sha256, rows_read, rows_loaded from sources"
    )[0]
    assert (kind, fmt, size, read, loaded) == ("events", "ndjson", f.stat().st_size, 5, 5)
    assert sha == hashlib.sha256(f.read_bytes()).hexdigest()
    assert path == str(f.resolve())
    assert rows(db, "select min(source_record), max(source_record) from events") == [(1, 5)]


def test_a_failing_file_leaves_nothing_and_others_are_stored(tmp_path: Path) -> None:
    good = write_ndjson(tmp_path / "a.ndjson", GOOD)
    bad = tmp_path / "b.parquet"
    bad.write_bytes(b"PAR1garbage")
    db = tmp_path / "s.duckdb"
    report = run(db, good, bad)
    assert [f.status for f in report.files] == ["loaded", "failed"]
    assert rows(db, "select count(*) from sources") == [(1,)]


def test_checkpoints_keep_the_row_groups_each_ingest_wrote(tmp_path: Path) -> None:
    # Merging partly filled row groups would read back and rewrite the stored rows of
    # earlier runs at every ingest; ingest only appends, so there is nothing to reclaim.
    db = tmp_path / "s.duckdb"
    for name in ("a", "b", "c"):
        many = [event(request_id=f"{name}{i}", user_id=f"u{i}") for i in range(3000)]
        _only(run(db, write_ndjson(tmp_path / f"{name}.ndjson", many)))
    assert rows(
        db,
        "select row_group_id, max(count) from pragma_storage_info('events') group by 1 order by 1",
    ) == [(0, 3000), (1, 3000), (2, 3000)]


def test_second_writer_gets_store_in_use(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    run(db, write_ndjson(tmp_path / "a.ndjson", GOOD))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); print('ok', flush=True); "
            "time.sleep(30)",
            str(db),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(StoreInUseError) as e:
            open_store(StoreOptions(db), read_only=False)
        assert "in use" in e.value.one_line() and str(holder.pid) in e.value.one_line()
        # Ingest starts reading its files before it opens the store; it stops reading.
        with pytest.raises(StoreInUseError):
            run(db, write_ndjson(tmp_path / "b.ndjson", GOOD * 50))
        assert not [t for t in threading.enumerate() if t.name.startswith("forensics-")]
    finally:
        holder.kill()
        holder.wait()


def test_store_file_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "s.duckdb"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "forensics",
                "--db",
                str(db),
                "ingest",
                str(write_ndjson(tmp_path / "a.ndjson", GOOD)),
            ],
            capture_output=True,
            text=True,
        )
    finally:
        os.umask(old)
    assert proc.returncode == 0, proc.stderr
    assert (db.stat().st_mode & 0o777) == 0o600


def _append_newline(path: Path) -> None:
    with open(path, "ab") as fh:
        fh.write(b"\n")


@pytest.mark.parametrize("fmt", ["ndjson", "parquet"])
def test_file_changed_while_read_fails(tmp_path: Path, fmt: str) -> None:
    # Written to after its records are staged: the stage's own check, for every reader.
    f = (
        write_ndjson(tmp_path / "e.ndjson", GOOD)
        if fmt == "ndjson"
        else write_parquet(tmp_path / "e.parquet", pa.Table.from_pylist(GOOD))
    )
    db = tmp_path / "s.duckdb"
    r = run(db, f, hooks=IngestHooks(after_stage=_append_newline)).files[0]
    assert r.status == "failed" and "changed" in (r.error or "")
    assert rows(db, "select count(*) from events") == [(0,)]


def _read_all(path: Path, ctx: ReadContext) -> tuple[int, str]:
    """Records a reader gives for the file, and the SHA-256 it returns."""
    fmt = file_format(path)
    assert fmt is not None
    batches = reader_for(fmt[0]).read(path, fmt[1], ctx)
    n = 0
    while True:
        try:
            b = next(batches)
        except StopIteration as done:
            return n, done.value.sha256
        n += b.rows.num_rows if isinstance(b, TableBatch) else len(b.rec)


@pytest.mark.parametrize(
    "name", ["e.ndjson", "e.ndjson.gz", "e.json", "e.parquet", "e.csv", "e.log.gz"]
)
def test_a_reader_fails_a_file_written_to_while_its_bytes_are_read(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    if name == "e.json":
        path.write_text(json.dumps(GOOD))
    elif name == "e.parquet":
        write_parquet(path, pa.Table.from_pylist(GOOD))
    elif name in ("e.csv", "e.log.gz"):
        sep = "," if name == "e.csv" else "\t"
        head = ",".join(GOOD[0]) if name == "e.csv" else "#Fields: " + " ".join(GOOD[0])
        text = "\n".join([head, *(sep.join(r.values()) for r in GOOD)]) + "\n"
        path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    else:
        write_ndjson(path, GOOD, gz=name.endswith(".gz"))
    assert _read_all(path, ReadContext()) == (5, source.sha256_file(path))
    calls: list[Path] = []

    def written_to(p: Path) -> None:
        calls.append(p)
        _append_newline(p)

    changed = ReadContext(hooks=IngestHooks(after_read=written_to))
    if name == "e.parquet":  # no check of its own: the stage's covers it (see above)
        assert _read_all(path, changed)[0] == 5 and calls == [path]
        return
    with pytest.raises(InputError, match="changed while it was being read"):
        _read_all(path, changed)
    assert calls == [path]


def test_parquet_table_round_trip_counts(tmp_path: Path) -> None:
    t = pa.table(
        {
            "ts": ["2024-02-16T09:00:00Z"] * 3,
            "action": ["x"] * 3,
            "user_id": ["a", "", "c"],
            "request_id": ["1", "2", "1"],
        }
    )
    f = tmp_path / "e.parquet"
    pq.write_table(t, f)
    r = _only(run(tmp_path / "s.duckdb", f))
    assert (r.rows_read, r.rows_loaded, r.rows_rejected, r.rows_duplicate) == (3, 1, 1, 1)


# ----------------------------------------------------------------- reading ahead


def _mixed_files(tmp_path: Path) -> list[Path]:
    """Good multi-batch files between every kind of file that fails or is passed over."""
    many = [event(request_id=f"m{i}", user_id=f"u{i % 7}") for i in range(300)]
    (tmp_path / "fifo.ndjson").unlink(missing_ok=True)
    os.mkfifo(tmp_path / "fifo.ndjson")
    (tmp_path / "cut.ndjson.gz").write_bytes(gzip.compress(_ndjson_bytes(GOOD))[:-12])
    return [
        write_ndjson(tmp_path / "a.ndjson", many[:100]),
        tmp_path / "fifo.ndjson",
        tmp_path / "cut.ndjson.gz",
        write_ndjson(tmp_path / "kind.ndjson", [{"what": i} for i in range(50)]),
        tmp_path / "missing.ndjson",
        write_ndjson(tmp_path / "b.ndjson.gz", many[100:200] + ["{bad"], gz=True),
        write_parquet(tmp_path / "c.parquet", pa.Table.from_pylist(GOOD)),
        write_ndjson(tmp_path / "same-as-a.jsonl", many[:100]),
        write_ndjson(tmp_path / "d.json", many[200:]),
    ]


def _per_file(report) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """What the run reported for each file, by name."""
    return [
        (
            Path(f.path).name,
            f.status,
            f.kind,
            f.rows_read,
            f.rows_loaded,
            f.rows_rejected,
            f.rows_duplicate,
            f.error,
        )
        for f in report.files
    ]


def _outcome(db: Path, report) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    files = _per_file(report)
    stored = rows(
        db,
        "select s.path, e.source_record, e.request_id, e.user_id from events e "
        "join sources s using (source_id) order by 1, 2",
    )
    rejected = rows(
        db,
        "select s.path, r.source_record, r.reason from rejects r "
        "join sources s using (source_id) order by 1, 2",
    )
    return files, stored, rejected


@pytest.mark.parametrize("depth", [1, 3])
def test_reading_ahead_changes_nothing_that_is_stored_or_reported(
    tmp_path: Path, depth: int
) -> None:
    small = IngestTuning(chunk_bytes=512)  # every good file spans many batches
    files = _mixed_files(tmp_path)
    ahead_db, direct_db = tmp_path / "ahead.duckdb", tmp_path / "direct.duckdb"
    ahead = _outcome(ahead_db, run(ahead_db, *files, tuning=replace(small, read_ahead=depth)))
    # The same files read on the staging thread, one after the other.
    direct = _outcome(direct_db, run(direct_db, *files, tuning=replace(small, read_ahead=0)))
    assert ahead == direct
    statuses = [(name, status) for name, status, *_ in ahead[0]]
    assert statuses == [  # a path that does not exist is reported by discovery, first
        ("missing.ndjson", "failed"),
        ("a.ndjson", "loaded"),
        ("fifo.ndjson", "failed"),
        ("cut.ndjson.gz", "failed"),
        ("kind.ndjson", "failed"),
        ("b.ndjson.gz", "loaded"),
        ("c.parquet", "loaded"),
        ("same-as-a.jsonl", "skipped"),
        ("d.json", "loaded"),
    ]
    assert len(ahead[1]) == 305 and ahead[2] and ahead[2][0][2] == "malformed JSON"


def test_a_file_changed_while_read_ahead_fails_alone(tmp_path: Path) -> None:
    a = write_ndjson(tmp_path / "a.ndjson", GOOD[:2])
    b = write_ndjson(tmp_path / "b.ndjson", GOOD[2:])
    threads: list[str] = []

    def written_to(path: Path) -> None:
        # a.ndjson is written to just after the thread read its last byte.
        threads.append(threading.current_thread().name)
        if path.name == "a.ndjson":
            _append_newline(path)

    db = tmp_path / "s.duckdb"
    report = run(db, a, b, hooks=IngestHooks(after_read=written_to))
    assert threads == ["forensics-read-ahead"] * 2
    assert [f.status for f in report.files] == ["failed", "loaded"]
    assert "changed while it was being read" in (report.files[0].error or "")
    assert rows(db, "select count(*) from events") == [(3,)]


def _interrupt(path: Path) -> None:
    raise KeyboardInterrupt


def test_the_read_ahead_thread_stops_when_ingest_is_interrupted(tmp_path: Path) -> None:
    files = [write_ndjson(tmp_path / f"{i}.ndjson", GOOD * 20) for i in range(5)]
    # Interrupted once the first file is staged, while the thread reads the next ones.
    with pytest.raises(KeyboardInterrupt):
        run(
            tmp_path / "s.duckdb",
            *files,
            tuning=IngestTuning(chunk_bytes=256),
            hooks=IngestHooks(after_stage=_interrupt),
        )
    assert not [t for t in threading.enumerate() if t.name == "forensics-read-ahead"]


# ----------------------------------------------------------------- staging while storing


def _overlapping_files(tmp_path: Path) -> list[Path]:
    """Each file repeats events of the one before it (by request_id, and without one), and
    one repeats a whole earlier file: what a file may store depends on the file before."""
    no_id = [event(user_id=f"n{i}", ts=f"2024-02-16T09:00:0{i}Z") for i in range(4)]
    ids = [event(request_id=f"q{i}", user_id=f"u{i % 5}") for i in range(60)]
    return [
        write_ndjson(tmp_path / "a.ndjson", ids[:30] + no_id[:2]),
        write_ndjson(tmp_path / "b.ndjson.gz", ids[20:45] + no_id[1:3] + ["{bad"], gz=True),
        write_parquet(tmp_path / "c.parquet", pa.Table.from_pylist(ids[40:55])),
        write_ndjson(tmp_path / "d.jsonl", ids[:30] + no_id[:2]),  # the same bytes as a
        write_ndjson(tmp_path / "e.ndjson", ids[50:] + no_id),
    ]


def test_storing_while_the_next_file_is_staged_gives_what_one_file_at_a_time_gives(
    tmp_path: Path,
) -> None:
    small = IngestTuning(chunk_bytes=256)  # many batches per file
    files = _overlapping_files(tmp_path)
    together = tmp_path / "together.duckdb"
    report = run(together, *files, tuning=small)
    assert accounted(report)
    apart = tmp_path / "apart.duckdb"
    one_by_one = [f for path in files for f in run(apart, path, tuning=small).files]
    assert _outcome(together, report) == _outcome(apart, type(report)(one_by_one))
    assert [(f.status, f.rows_loaded, f.rows_duplicate) for f in report.files] == [
        ("loaded", 32, 0),
        ("loaded", 16, 11),
        ("loaded", 10, 5),
        ("skipped", 0, 0),
        ("loaded", 6, 8),
    ]


def test_a_file_that_fails_to_be_stored_leaves_the_next_files_unharmed(tmp_path: Path) -> None:
    import duckdb

    files = _overlapping_files(tmp_path)

    def failing(path: Path) -> None:
        # The rows of b.ndjson.gz are written, then its transaction fails.
        if path.name == "b.ndjson.gz":
            raise duckdb.IOException("disk full")

    db = tmp_path / "s.duckdb"
    report = run(db, *files, hooks=IngestHooks(before_commit=failing))
    assert [f.status for f in report.files] == ["loaded", "failed", "loaded", "skipped", "loaded"]
    assert "disk full" in (report.files[1].error or "")
    # Nothing of b is stored; c, staged while b was being stored, now keeps b's events.
    assert [(f.rows_loaded, f.rows_duplicate) for f in report.files[2:]] == [
        (15, 0),
        (0, 0),
        (7, 7),
    ]
    assert rows(db, "select count(*) from sources where path like '%b.ndjson.gz'") == [(0,)]
    per_file = rows(
        db,
        "select s.rows_loaded, (select count(*) from events e "
        "where e.source_id = s.source_id) from sources s",
    )
    assert all(a == b for a, b in per_file) and len(per_file) == 3


def test_an_interrupt_while_staging_leaves_whole_files_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    files = _overlapping_files(tmp_path)

    def interrupted(path: Path) -> None:
        if path.name == "c.parquet":  # while b.ndjson.gz is being stored
            raise KeyboardInterrupt

    db = tmp_path / "s.duckdb"
    with pytest.raises(KeyboardInterrupt):
        run(db, *files, hooks=IngestHooks(after_stage=interrupted))
    assert not [t for t in threading.enumerate() if t.name.startswith("forensics-")]
    # a and b were staged before the interrupt: both are stored whole, in order.
    assert rows(
        db,
        "select path.split('/')[-1], rows_loaded, rows_duplicate from sources order by source_id",
    ) == [("a.ndjson", 32, 0), ("b.ndjson.gz", 16, 11)]
    again = run(db, *files)
    assert [f.status for f in again.files] == ["skipped", "skipped", "loaded", "skipped", "loaded"]
    assert rows(db, "select count(*) from events") == [(64,)]


@pytest.fixture
def ctrl_c(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Presses Ctrl-C as DuckDB sees it inside a query: Python's handler has run (the
    process remembers it), and the query fails with "Query interrupted" or, when a
    cleanup statement's error is dropped, not at all."""
    import forensics.store

    event = threading.Event()
    monkeypatch.setattr(forensics.store, "_CTRL_C", event)
    yield event.set


@pytest.mark.parametrize("hook", ["after_stage", "before_commit"])
def test_ctrl_c_that_duckdb_reports_as_a_query_error_stops_the_ingest(
    tmp_path: Path, hook: str, ctrl_c: Callable[[], None]
) -> None:
    # Before, the file was reported as failed ("failed unexpectedly (RuntimeError)") and
    # the ingest went on with the next files.
    files = _overlapping_files(tmp_path)

    def pressed(path: Path) -> None:
        if path.name == "b.ndjson.gz":
            ctrl_c()
            raise RuntimeError("Query interrupted")

    db = tmp_path / "s.duckdb"
    with pytest.raises(KeyboardInterrupt):
        run(db, *files, hooks=IngestHooks(**{hook: pressed}))
    assert not [t for t in threading.enumerate() if t.name.startswith("forensics-")]
    _stored_whole_before(db, "b.ndjson.gz")


def _stored_whole_before(db: Path, name: str) -> None:
    """The store holds whole files only, and none from `name` on (a.ndjson, staged before
    Ctrl-C, is stored if its turn came before it)."""
    stored = [r[0] for r in rows(db, "select path.split('/')[-1] from sources order by 1")]
    assert name == "b.ndjson.gz" and stored in ([], ["a.ndjson"])
    assert rows(db, "select coalesce(sum(rows_loaded), 0) from sources") == rows(
        db, "select count(*) from events"
    )


def test_ctrl_c_whose_query_error_was_dropped_stops_at_the_next_file(
    tmp_path: Path, ctrl_c: Callable[[], None]
) -> None:
    # Before, the interrupt was lost and every file was stored (exit 0).
    files = _overlapping_files(tmp_path)

    def pressed(path: Path) -> None:
        if path.name == "b.ndjson.gz":
            ctrl_c()

    db = tmp_path / "s.duckdb"
    with pytest.raises(KeyboardInterrupt):
        run(db, *files, hooks=IngestHooks(after_stage=pressed))
    _stored_whole_before(db, "b.ndjson.gz")


# ----------------------------------------------------------------- storage order


def _stored_order(db: Path) -> list[int]:
    return [r[0] for r in rows(db, "select source_record from events order by rowid")]


def _timed(order: list[int]) -> list[dict[str, object]]:
    base = 1_708_074_000  # 2024-02-16T09:00:00Z
    return [event(ts=base + t, request_id=f"r{t}", user_id=f"u{t % 13}") for t in order]


# Runs of 16 records and groups of 960: a few thousand records test both sizes. Staged as
# one piece, so that "as staged" is the file's order (several pieces staged on two threads
# come back in the order the threads finish them: README, "Storage").
SMALL_BLOCKS = IngestTuning(in_order_block=16, in_order_group=960, min_split_rows=1 << 20)


@pytest.mark.parametrize("case", ["sorted", "jitter", "groups permuted"])
def test_a_file_in_time_order_is_stored_as_it_is(tmp_path: Path, case: str) -> None:
    n = 5760  # six groups
    order = {
        "sorted": list(range(n)),
        "jitter": [i + 1 if i % 2 == 0 else i - 1 for i in range(n)],  # neighbours swapped
        # Each group of 960 in order, the groups in any order: every row group is narrow.
        "groups permuted": [g * 960 + i for g in (3, 0, 5, 1, 4, 2) for i in range(960)],
    }[case]
    db = tmp_path / "s.duckdb"
    _only(run(db, write_ndjson(tmp_path / "e.ndjson", _timed(order)), tuning=SMALL_BLOCKS))
    assert _stored_order(db) == list(range(1, n + 1))


def _out_of_order(case: str, n: int) -> list[int]:
    import random

    runs = random.Random(7).sample(range(n // 16), n // 16)
    return {
        "shuffled": random.Random(7).sample(range(n), n),
        # Each run of 16 in order, the runs scattered: narrow runs, but every group of
        # 960 spans the whole file.
        "blocks permuted": [b * 16 + i for b in runs for i in range(16)],
        # Two writers' logs, hours apart, a line of each in turn.
        "two interleaved logs": [t for i in range(n // 2) for t in (i, i + 10 * n)],
    }[case]


@pytest.mark.parametrize("case", ["shuffled", "blocks permuted", "two interleaved logs"])
def test_a_file_out_of_time_order_is_stored_in_its_own_order(tmp_path: Path, case: str) -> None:
    # Not sorted by time: the sort cost more at ingest than it saved in analysis.
    n = 5760
    db = tmp_path / "s.duckdb"
    records = _timed(_out_of_order(case, n))
    _only(run(db, write_ndjson(tmp_path / "e.ndjson", records), tuning=SMALL_BLOCKS))
    assert _stored_order(db) == list(range(1, n + 1))


@pytest.mark.parametrize("case", ["sorted", "jitter"])
def test_a_file_in_time_order_that_repeats_a_key_is_stored_by_time(
    tmp_path: Path, case: str
) -> None:
    # Its first records are picked by a window, whose output is in no order: the rows are
    # put back in time order, by buckets. 5,760 records in all (the repeat counted) fill
    # six groups of 960, as the 5,759 stored do.
    n = 5759
    order = list(range(n)) if case == "sorted" else [i ^ 1 for i in range(n)]
    records = _timed(order)
    records.append(dict(records[n // 2]))  # record n + 1 repeats one: a duplicate
    db = tmp_path / "s.duckdb"
    result = _only(run(db, write_ndjson(tmp_path / "e.ndjson", records), tuning=SMALL_BLOCKS))
    assert (result.rows_loaded, result.rows_duplicate) == (n, 1)
    _assert_in_time_buckets(db, order)


def test_a_file_out_of_time_order_that_repeats_a_key_keeps_every_first_record(
    tmp_path: Path,
) -> None:
    n = 5760
    records = _timed(_out_of_order("shuffled", n))
    records.append(dict(records[0]))
    db = tmp_path / "s.duckdb"
    result = _only(run(db, write_ndjson(tmp_path / "e.ndjson", records), tuning=SMALL_BLOCKS))
    assert (result.rows_loaded, result.rows_duplicate) == (n, 1)
    assert sorted(_stored_order(db)) == list(range(1, n + 1))


def _assert_in_time_buckets(db: Path, order: list[int]) -> None:
    """Stored by time in as many equal buckets as the file fills row groups (960 records
    here): every record once, the buckets in order, so that each row group spans at most
    two buckets' time (an exact sort would give one)."""
    stored = _stored_order(db)
    assert sorted(stored) == list(range(1, len(order) + 1))
    micros = [(1_708_074_000 + order[rec - 1]) * 10**6 for rec in stored]  # storage order
    groups = -(-len(order) // 960)
    width = -(-((max(order) - min(order)) * 10**6 + 1) // groups)
    buckets = [us // width for us in micros]
    assert buckets == sorted(buckets)
    for g in range(0, len(micros), 960):
        run_ = micros[g : g + 960]
        assert max(run_) - min(run_) <= 2 * width


# Pieces small enough that DuckDB stages a file on all its threads at once.
PIECES = IngestTuning(parquet_piece_rows=1024, piece_rows=1024, min_split_rows=512)


def _kind_record(kind: str, i: int) -> dict[str, object]:
    if kind == "grants":
        return {"device_id": f"d{i}", "user_id": f"u{i % 97}", "role": "owner"}
    if kind == "accounts":
        return {"user_id": f"u{i}", "email": f"p{i}@example.org", "name": f"P {i}"}
    return event(ts=1_708_074_000 + i, request_id=f"r{i}", user_id=f"u{i % 97}")


@pytest.mark.parametrize("fmt", ["parquet", "ndjson"])
@pytest.mark.parametrize("kind", ["events", "grants", "accounts"])
def test_rows_staged_on_all_threads_keep_their_record_numbers(
    tmp_path: Path, kind: str, fmt: str
) -> None:
    # The stage's rows come back in whatever order DuckDB's threads finish their pieces,
    # and grants and accounts are stored as staged (README, "Storage"): each row must still
    # carry its own record's number.
    n = 40_000
    records = [_kind_record(kind, i) for i in range(n)]
    f = tmp_path / f"{kind}.{fmt}"
    if fmt == "parquet":
        write_parquet(f, pa.Table.from_pylist(records))
    else:
        write_ndjson(f, records)
    db = tmp_path / "s.duckdb"
    _only(run(db, f, kind=kind, tuning=PIECES))
    field = {"events": "request_id", "grants": "device_id", "accounts": "email"}[kind]
    stored = rows(db, f"select source_record, {field} from {kind} order by 1")  # noqa: S608
    assert stored == [(i + 1, records[i][field]) for i in range(n)]


# ----------------------------------------------------------------- a batch's keys


def _everything(db: Path, report) -> tuple[object, ...]:  # type: ignore[no-untyped-def]
    files = _per_file(report)
    tables = {
        t: rows(db, f"select * exclude (source_id) from {t} order by all")  # noqa: S608
        for t in ("events", "grants", "accounts", "rejects")
    }
    return files, tables


DEFAULT_TUNING = IngestTuning()


def _keys_sampled_and_whole(  # type: ignore[no-untyped-def]
    tmp_path: Path, *files: Path, tuning: IngestTuning = DEFAULT_TUNING
):
    """Ingest with a sample of two records (every 10,000th after them), then with every
    record in the sample; both outcomes, to compare."""
    sampled_tuning = replace(tuning, key_sample_head=2, key_sample_every=10_000)
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    sampled = _everything(a, run(a, *files, tuning=sampled_tuning))
    whole = _everything(b, run(b, *files, tuning=replace(sampled_tuning, key_sample_head=1 << 40)))
    return sampled, whole


def test_a_key_outside_the_sample_is_found_and_kept(tmp_path: Path) -> None:
    records = [event(request_id=f"r{i}", user_id=f"u{i}") for i in range(40)]
    records[30]["cache_node"] = "c7"  # the only record with this key, far past the sample
    records[35] = {"user_id": "u", "user_id ": "x", **records[35]}  # a near-duplicate key
    f = write_ndjson(tmp_path / "e.ndjson", records)
    sampled, whole = _keys_sampled_and_whole(tmp_path, f)
    assert sampled == whole
    events = sampled[1]["events"]  # type: ignore[index]
    assert len(events) == 40 and not sampled[1]["rejects"]  # type: ignore[index]
    # A record's extra holds the keys it has: none, none at all (NULL).
    extras = sorted(e[7] for e in events if e[7] is not None)
    assert extras == ['{"cache_node":"c7"}', '{"user_id ":"x"}']


def test_a_duplicate_key_outside_the_sample_still_rejects(tmp_path: Path) -> None:
    good = [json.dumps(event(request_id=f"r{i}")) for i in range(20)]
    good[12] = good[12][:-1] + ', "request_id": "again"}'
    f = tmp_path / "e.ndjson"
    f.write_text("\n".join(good) + "\n")
    sampled, whole = _keys_sampled_and_whole(tmp_path, f)
    assert sampled == whole
    assert [(r[0], r[1]) for r in sampled[1]["rejects"]] == [(13, "duplicate key")]  # type: ignore[index]
    assert all(e[7] is None for e in sampled[1]["events"])  # type: ignore[index]


def test_the_kind_is_decided_from_every_key_not_the_sample(tmp_path: Path) -> None:
    # The first records alone look like accounts; the later ones make the file events.
    records: list[dict[str, object]] = [{"user_id": f"u{i}", "email": "a@b"} for i in range(5)]
    records += [event(request_id=f"r{i}") for i in range(20)]
    f = write_ndjson(tmp_path / "e.ndjson", records)
    sampled, whole = _keys_sampled_and_whole(tmp_path, f)
    assert sampled == whole
    assert sampled[0][0][2] == "events"  # type: ignore[index]
    assert len(sampled[1]["events"]) == 20  # type: ignore[index]
    assert {r[1] for r in sampled[1]["rejects"]} == {"missing ts"}  # type: ignore[index]


def test_sampled_keys_across_many_batches_and_kinds(tmp_path: Path) -> None:
    many = [event(request_id=f"m{i}", user_id=f"u{i % 7}") for i in range(120)]
    for i in range(0, 120, 17):
        many[i][f"k{i % 3}"] = i  # keys that come and go between batches
    files = [
        write_ndjson(tmp_path / "a.ndjson", many),
        write_ndjson(
            tmp_path / "g.ndjson",
            [
                {"device_id": f"d{i}", "user_id": f"u{i}", **({"role": "x"} if i == 9 else {})}
                for i in range(30)
            ],
        ),
        write_ndjson(
            tmp_path / "acc.ndjson",
            [{"user_id": f"u{i}", **({"email": "e"} if i % 11 == 5 else {})} for i in range(30)],
        ),
        write_ndjson(tmp_path / "b.ndjson", ["{bad"] * 5 + many[:10]),
        write_ndjson(
            tmp_path / "c.ndjson",
            [{"user_id": "u", "email": "e"}] * 3
            + [{"device_id": "d", "user_id": "u", "email": "e"}],
        ),
    ]
    small = IngestTuning(chunk_bytes=700)  # a few records a batch
    sampled, whole = _keys_sampled_and_whole(tmp_path, *files, tuning=small)
    assert sampled == whole
    assert [f[1] for f in sampled[0]] == ["loaded", "loaded", "loaded", "loaded", "loaded"]  # type: ignore[index]


# ----------------------------------------------------------------- reading lines


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        # Any bytes but NUL (a NUL at the start is refused as UTF-16, as is a BOM of it).
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\0", b"")),
        min_size=1,
        max_size=30,
    ),
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(0, 2000), max_size=12),
)
def test_lines_are_split_alike_wherever_the_chunks_end(
    lines: list[bytes], final_newline: bool, cuts: list[int]
) -> None:
    """Chunk ends anywhere (inside a line, a UTF-8 character or at a newline; a line over
    several chunks) give the lines, line numbers and invalid-UTF-8 flags of a plain split."""
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    assume(not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")))
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = iter([data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)])
    got = [
        (int(rec), raw, err)
        for part in split_lines(chunks)
        for rec, raw, err in zip(
            part.rec, part.raw.to_pylist(), part.pre_err.to_pylist(), strict=True
        )
    ]
    in_file = data.split(b"\n")
    if in_file[-1] == b"":  # after the final newline, or an empty file
        in_file.pop()
    expect = []
    for i, b in enumerate(in_file, start=1):
        try:
            expect.append((i, b.decode() + "\n", None))
        except UnicodeDecodeError:
            expect.append((i, b.decode(errors="replace") + "\n", "invalid UTF-8"))
    assert got == expect


def test_a_batch_shared_among_threads_is_stored_as_a_whole_one(tmp_path: Path) -> None:
    """The record batches DuckDB's threads share change nothing stored, rejected or counted:
    duplicates, rejects and extras across pieces, in record order."""
    records: list[object] = []
    for i in range(3000):
        r = event(request_id=f"r{i % 2500}", user_id=f"u{i % 7}", ts=1_708_074_000 + i)
        if i % 97 == 0:
            r["cache_node"] = f"n{i}"
        records.append(r if i % 101 else {"ts": "not a time", "action": "x"})
    f = write_ndjson(tmp_path / "e.ndjson", records)
    whole_db, split_db = tmp_path / "whole.duckdb", tmp_path / "split.duckdb"
    whole = _outcome(whole_db, run(whole_db, f, tuning=IngestTuning(min_split_rows=10**9)))
    split_tuning = IngestTuning(min_split_rows=16, piece_rows=97)
    split = _outcome(split_db, run(split_db, f, tuning=split_tuning))
    assert split == whole
    # read, loaded, rejected (every 101st), duplicate (a request id seen 2,500 records
    # before, unless either record is rejected)
    assert whole[0][0][3:7] == (3000, 2480, 30, 490)


def test_pieces_are_views_in_a_multiple_of_the_threads() -> None:
    t = pa.table({"rec": list(range(1_000_003))})
    for threads, pieces in ((1, 1), (2, 8), (3, 9), (8, 8)):
        got = in_pieces(t, threads, IngestTuning()).to_batches()
        assert len(got) == pieces
        assert pa.Table.from_batches(got).equals(t)
    small = pa.table({"rec": list(range(100))})
    assert len(in_pieces(small, 2, IngestTuning()).to_batches()) == 1
    assert len(in_pieces(small, 2, IngestTuning(min_split_rows=100)).to_batches()) == 2


def test_the_hash_alongside_is_the_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "b.bin"
    path.write_bytes(os.urandom(100_003))
    h = source.HashAlongside(open(path, "rb"), chunk=4096)  # noqa: SIM115 - it closes it
    assert h.result() == source.sha256_file(path) and h.error() is None


def test_a_cancelled_hash_gives_no_result(tmp_path: Path) -> None:
    path = tmp_path / "b.bin"
    path.write_bytes(os.urandom(1_000_000))
    h = source.HashAlongside(open(path, "rb"), chunk=16)  # noqa: SIM115 - it closes it
    h.cancel()
    with pytest.raises(RuntimeError, match="cancelled"):
        h.result()


def test_a_failed_staging_insert_reports_its_own_error_and_rollback_restores_the_order() -> None:
    from forensics.ingest.stage import insert_unordered
    from forensics.ingest.store import rollback

    con = duckdb.connect()
    con.execute("create temp table stage (x integer)")
    con.execute("begin transaction")
    with pytest.raises(duckdb.ConversionException):  # not "transaction is aborted"
        insert_unordered(con, "insert into stage select 'x'::integer", {})
    rollback(con)
    assert con.execute("select current_setting('preserve_insertion_order')").fetchall() == [(True,)]


# Pairs of 16-character ids that DuckDB's hash() maps to one value (found among the sample's
# 10M request ids): the key hash tells them apart, so neither sends a file down the slow path.
_HASH_TWINS = [("req-68682c973caa", "req-d2202c97edf6"), ("req-45a6f2802798", "req-45adf280279f")]


@pytest.mark.parametrize("twins", _HASH_TWINS)
def test_ids_that_collide_in_duckdbs_hash_have_different_key_hashes(
    twins: tuple[str, str],
) -> None:

    def keys(column: str) -> set[int]:
        sql = _dkey_select("from (values ($a), ($b)) t(v)", **{column: "v"})
        return {int(r[0]) for r in duckdb.execute(sql, {"a": twins[0], "b": twins[1]}).fetchall()}

    plain = duckdb.execute("select distinct hash(unnest($t))", {"t": list(twins)}).fetchall()
    assert len(plain) == 1  # what the key hash must not inherit
    for column in ("request_id", "user_id", "device_id", "event_id"):
        assert len(keys(column)) == 2, column
