"""Count a written sample's recipients and tappers from its files, with DuckDB over them.

A small reading of SPEC §2.4 and §5 of its own (the SQL in forensics/sample/queries/), apart
from forensics.ingest and forensics.exposure, so that a generator that writes the wrong
records shows up as a wrong count rather than as the figure it was built to give. It reads
the layout `write_sample` writes: events/ and grants/, Parquet, JSON lines (plain or gzip),
JSON documents (plain, gzip or zstd) and W3C logs of tab-separated values (plain or gzip).
"""

from __future__ import annotations

import gzip
import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import zstandard

from forensics.errors import OutputError
from forensics.queries import Query, parse_query

QUERIES = Path(__file__).resolve().parent / "queries"
_JSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
_DOCUMENT_SUFFIXES = (".json", ".json.gz", ".json.zst")
_W3C_SUFFIXES = (".log", ".log.gz")
# The fields each kind's JSON query reads, in the order it reads them (v[1], v[2], ...).
_JSON_PATHS = {
    "events": ["ts", "action", "user_id", "device_id", "event_id", "request_id", "status"],
    "grants": ["device_id", "user_id", "valid_from", "valid_to"],
}


@dataclass(frozen=True)
class SampleCounts:
    recipients: int
    tappers: int


def count_sample(root: Path, window_start_us: int, window_end_us: int) -> SampleCounts:
    """Recipients and tappers (SPEC §5) of the sample in `root` over [start, end), in µs.

    Raises OutputError if a file written there cannot be read back.
    """
    with tempfile.TemporaryDirectory(prefix="forensics-sample-count-") as spill:
        return _count(root, window_start_us, window_end_us, Path(spill))


def _count(root: Path, window_start_us: int, window_end_us: int, spill: Path) -> SampleCounts:
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute("set preserve_insertion_order = false")
        # Large scales do not fit in memory: spill to a private folder, not the working one.
        con.execute("set temp_directory = $dir", {"dir": str(spill)})
        con.execute(_query("count_macros").sql)
        con.execute(
            "create temp table count_events (file_no integer, ts bigint, action varchar,"
            " user_id varchar, device_id varchar, event_id varchar, request_id varchar,"
            " status bigint)"
        )
        con.execute(
            "create temp table count_grants (device_id varchar, user_id varchar,"
            " valid_from bigint, valid_to bigint)"
        )
        for file_no, path in enumerate(_files(root / "events")):
            _insert(con, "count_events", path, "events", {"file_no": file_no})
        for path in _files(root / "grants"):
            _insert(con, "count_grants", path, "grants", {})
        q = _query("count_figures")
        params = {"window_start": window_start_us, "window_end": window_end_us}
        rows = con.execute(q.sql, params).fetchall()
    except duckdb.Error as e:
        # The engine's message may quote a record: name the failure only.
        why = f"the files written could not be read back to count them ({type(e).__name__})"
        raise OutputError(f"output folder {root}", why) from None
    finally:
        con.close()
    recipients, tappers = rows[0]
    return SampleCounts(int(recipients), int(tappers))


def _files(folder: Path) -> list[Path]:
    """The files of a folder in the order ingest reads a folder (sorted paths)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, path: Path, kind: str, params: dict[str, int]
) -> None:
    """Insert the accepted records of one file into `table`."""
    if path.name.endswith(".parquet"):
        con.read_parquet(str(path)).create_view("count_parquet", replace=True)
        q = _query(f"count_parquet_{kind}")
    elif path.name.endswith(_JSON_SUFFIXES + _DOCUMENT_SUFFIXES + _W3C_SUFFIXES):
        if path.name.endswith(_DOCUMENT_SUFFIXES):
            lines = con.from_arrow(pa.table({"line": _document_records(path)}))
        elif path.name.endswith(_W3C_SUFFIXES):
            lines = con.from_arrow(pa.table({"line": _w3c_records(path)}))
        else:
            # One line a row, as text: a delimiter and quote that JSON lines never hold.
            lines = con.read_csv(
                str(path),
                header=False,
                sep="\x01",
                quotechar="",
                escapechar="",
                columns={"line": "VARCHAR"},
                auto_detect=False,
                strict_mode=False,
            )
        lines.create_view("count_lines", replace=True)
        records = _query("count_json_records").sql
        paths = [f"$.{name}" for name in _JSON_PATHS[kind]]
        con.execute(f"create or replace temp table count_records as {records}", {"paths": paths})  # noqa: S608 - SQL from a file
        q = _query(f"count_json_{kind}")
    else:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        con.execute(f"insert into {table} {q.sql}", params)  # noqa: S608 - a fixed table name


def _text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data.decode("utf-8-sig")


def _w3c_records(path: Path) -> list[str]:
    """The records of a W3C extended log (names from `#Fields:`, tab-separated values, `-`
    for a missing one), each as a JSON object of its text values."""
    names: list[str] = []
    out = []
    for line in _text(path).splitlines():
        if line.startswith("#Fields:"):
            names = line.split()[1:]
        elif line and not line.startswith("#"):
            values = line.split("\t")
            if len(values) != len(names):
                raise OutputError(
                    f"output folder {path.parent}", "a W3C record does not fit #Fields"
                )
            pairs = zip(names, values, strict=True)
            out.append(json.dumps({k: v for k, v in pairs if v != "-"}, ensure_ascii=False))
    return out


def _document_records(path: Path) -> list[str]:
    """The records of a JSON document (`.json`, plain, gzip or zstd): an array, or an object
    whose one member is the array; each as its JSON text."""
    doc = json.loads(_text(path))
    if isinstance(doc, dict) and len(doc) == 1:
        doc = next(iter(doc.values()))
    if not isinstance(doc, list):
        raise OutputError(f"output folder {path.parent}", "a JSON document holds no array")
    return [json.dumps(r, ensure_ascii=False) for r in doc]


def _query(name: str) -> Query:
    return parse_query(QUERIES / f"{name}.sql")
