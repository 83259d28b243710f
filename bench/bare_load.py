"""The floor under `forensics ingest`: bare DuckDB loads of a sample's files, nothing checked.

    python bench/bare_load.py bench/out/data-s2378 [--memory-limit 4GB]

For each kind (events, grants, accounts) and each format (Parquet; JSON lines, gzipped or
not), one `create table as select * from read_parquet(...)` / `read_json(...)` over all of
that group's files, into one new DuckDB file, each timed; then the total. No de-duplication,
no provenance, no rejects: what ingest does beyond this is what it costs beyond this. The
files are read from the page cache when the machine has room (run it after the bench built
the same data, or twice). Prints rows and seconds per group, and the total.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb

JSON_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")


def groups(data: Path) -> list[tuple[str, str, list[str]]]:
    """(table, reader, files) for each kind and format found under data/."""
    out: list[tuple[str, str, list[str]]] = []
    for kind in ("events", "grants", "accounts"):
        files = sorted(p for p in (data / kind).iterdir() if p.is_file())
        parquet = [str(p) for p in files if p.name.endswith(".parquet")]
        json = [str(p) for p in files if p.name.endswith(JSON_SUFFIXES)]
        out += [(f"{kind}_parquet", "parquet", parquet)] if parquet else []
        out += [(f"{kind}_json", "json", json)] if json else []
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="a sample folder (events/, grants/, accounts/)")
    ap.add_argument("--memory-limit", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bare.duckdb"))
        if args.memory_limit:
            con.execute("set memory_limit = $m", {"m": args.memory_limit})
        total = 0.0
        for table, reader, files in groups(args.data):
            source = (
                "read_parquet($f, union_by_name = true)"
                if reader == "parquet"
                else "read_json($f, format = 'newline_delimited', union_by_name = true, "
                "ignore_errors = true)"
            )
            t0 = time.perf_counter()
            con.execute(f"create table {table} as select * from {source}", {"f": files})  # noqa: S608
            seconds = time.perf_counter() - t0
            total += seconds
            n = (con.execute(f"select count(*) from {table}").fetchone() or (0,))[0]  # noqa: S608
            print(f"{table:18s} {len(files):4d} files {n:>12,d} rows {seconds:8.1f} s", flush=True)
        print(f"total {total:.1f} s")
        con.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
