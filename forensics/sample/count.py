"""Count a written sample's recipients and tappers from its files, with DuckDB over them.

A small reading of SPEC §2.4 and §5 of its own (the SQL in forensics/sample/queries/), apart
from forensics.ingest and forensics.exposure, so that a generator that writes the wrong
records shows up as a wrong count rather than as the figure it was built to give. It reads
the layout `write_sample` writes: events/ and grants/, Parquet and JSON lines, plain or gzip.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import duckdb

from forensics.errors import OutputError
from forensics.queries import Query, parse_query

QUERIES = Path(__file__).resolve().parent / "queries"
_JSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
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
    elif path.name.endswith(_JSON_SUFFIXES):
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


def _query(name: str) -> Query:
    return parse_query(QUERIES / f"{name}.sql")
