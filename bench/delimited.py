"""Delimited text: why forensics reads CSV as it does, and how fast.

    python bench/delimited.py --rows 1000000 --repeat 3

1. Hostile files through three engines — DuckDB's read_csv (explicit dialect, all VARCHAR,
   store_rejects), pyarrow.csv (newlines_in_values, invalid_row_handler) and forensics'
   reader (forensics/ingest/readers/delimited.py) — printing, per case, the records each
   returns and the line numbers it rejects. The expected answer is the README's.
2. Ingest of the same N events as CSV, W3C and NDJSON by `forensics ingest` (separate
   processes, median wall time), against a bare DuckDB read_csv of the CSV into a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from forensics.ingest.readers.delimited import CSV, read_text_records

HOSTILE: dict[str, bytes] = {
    "ragged rows": b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n",
    "quoted newline then ragged": b'a,b,c\n"x\ny",2,3\n4,5\n6,7,8\n',
    "unterminated quote mid-file": b'a,b,c\n1,2,3\n"open,5,6\n7,8,9\n10,11,12\n',
    "text after closing quote": b'a,b,c\n"x"y,2,3\n4,5,6\n',
    "duplicate header names": b"a,b,a\n1,2,3\n",
    "crlf, bom, blank lines": b"\xef\xbb\xbfa,b,c\r\n\r\n1,2,3\r\n\r\n4,5,6\r\n",
}

BARE_CSV = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
cols = {c: 'VARCHAR' for c in sys.argv[3].split(',')}
con.execute("create table t as select * from read_csv(?, delim=',', quote='\\"', escape='\\"',"
            " header=true, auto_detect=false, columns=?, store_rejects=true)",
            [sys.argv[2], cols])
print(con.execute("select count(*) from t").fetchone()[0])
"""


def duckdb_case(path: Path) -> str:
    con = duckdb.connect()
    header = path.read_bytes().lstrip(b"\xef\xbb\xbf").splitlines()[0].decode().split(",")
    try:
        cols = {c: "VARCHAR" for c in header}
        if len(cols) < len(header):
            return "error: duplicate names collapse in the columns map"
        con.execute(
            "create table t as select * from read_csv(?, delim=',', quote='\"', escape='\"', "
            "header=true, auto_detect=false, columns=?, store_rejects=true)",
            [str(path), cols],
        )
        n = con.execute("select count(*) from t").fetchone()
        lines = [
            r[0] for r in con.execute("select line from reject_errors order by line").fetchall()
        ]
        return f"{n[0] if n else '?'} rows, rejects at lines {lines}"
    except duckdb.Error as e:
        return f"error: {str(e).splitlines()[0][:70]}"


def pyarrow_case(path: Path) -> str:
    bad: list[Any] = []

    def handler(row: Any) -> str:
        bad.append(row.number)
        return "skip"

    try:
        t = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(column_types={}, strings_can_be_null=False),
        )
        return f"{t.num_rows} rows, rejects at rows {bad}"
    except pa.ArrowInvalid as e:
        return f"error: {str(e).splitlines()[0][:70]}"


def forensics_case(data: bytes) -> str:
    try:
        n, lines = 0, []
        for b in read_text_records(iter([data]), CSV):
            n += b.num_rows
            lines += [r[0] for r in b.rejects]
        return f"{n} rows, rejects at lines {lines}"
    except Exception as e:  # noqa: BLE001 - reported, this is a comparison
        return f"file fails: {e}"


def hostile() -> None:
    with tempfile.TemporaryDirectory() as d:
        for name, data in HOSTILE.items():
            p = Path(d) / "h.csv"
            p.write_bytes(data)
            print(f"{name}:")
            print(f"  duckdb    {duckdb_case(p)}")
            print(f"  pyarrow   {pyarrow_case(p)}")
            print(f"  forensics {forensics_case(data)}")


FIELDS = ("ts", "action", "user_id", "device_id", "event_id", "request_id", "status", "app")


def write_inputs(d: Path, n: int) -> dict[str, Path]:
    rng = random.Random(1)
    actions = ("thumbnail_delivered",) * 8 + ("thumbnail_tapped", "video_played")
    apps = ("ios/7.2.1", "android/7.1.9", "web, beta", 'tv "lr"')  # half of them quoted in CSV
    paths = {"csv": d / "events.csv", "w3c": d / "events.log", "ndjson": d / "events.ndjson"}
    with (
        open(paths["csv"], "w", newline="") as c,
        open(paths["w3c"], "w") as w,
        open(paths["ndjson"], "w") as j,
    ):
        c.write(",".join(FIELDS) + "\n")
        w.write("#Version: 1.0\n#Fields: " + " ".join(FIELDS) + "\n")
        for i in range(n):
            s = 1708070400 + i // 20
            rec = [
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s)),
                rng.choice(actions),
                f"usr_{rng.randrange(200_000):06d}",
                f"cam_{rng.randrange(40_000):05d}",
                f"evt_{rng.randrange(10**9):09d}",
                f"req-{i:09d}",
                "200",
                rng.choice(apps),
            ]
            c.write(
                ",".join(
                    f'"{v.replace(chr(34), 2 * chr(34))}"' if any(x in v for x in ',"') else v
                    for v in rec
                )
                + "\n"
            )
            w.write("\t".join(rec) + "\n")
            j.write(json.dumps(dict(zip(FIELDS, rec, strict=True))) + "\n")
    return paths


def run(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: failed: {cmd[:6]}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024


def speed(n: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        paths = write_inputs(Path(d), n)
        db = Path(d) / "s.duckdb"
        engines = {
            "bare duckdb read_csv": [
                sys.executable,
                "-c",
                BARE_CSV,
                str(db),
                str(paths["csv"]),
                ",".join(FIELDS),
            ],
            **{
                f"forensics {k}": [
                    sys.executable,
                    "-m",
                    "forensics",
                    "--db",
                    str(db),
                    "ingest",
                    str(p),
                ]
                for k, p in paths.items()
            },
        }
        walls: dict[str, list[float]] = {k: [] for k in engines}
        rss: dict[str, float] = dict.fromkeys(engines, 0.0)
        for _ in range(repeat):
            for k, cmd in engines.items():
                db.unlink(missing_ok=True)
                wall, peak = run(cmd)
                walls[k].append(wall)
                rss[k] = max(rss[k], peak)
        base = statistics.median(walls["bare duckdb read_csv"])
        sizes = {k: p.stat().st_size / 2**20 for k, p in paths.items()}
        print(
            f"{n:,} events (CSV {sizes['csv']:.0f} MiB, W3C {sizes['w3c']:.0f} MiB, "
            f"NDJSON {sizes['ndjson']:.0f} MiB), median of {repeat}:"
        )
        for k, w in walls.items():
            m = statistics.median(w)
            print(f"  {k:<22}{m:8.2f} s{m / base:8.2f}x{rss[k]:8.0f} MB peak RSS")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    hostile()
    speed(args.rows, args.repeat)


if __name__ == "__main__":
    main()
