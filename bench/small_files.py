"""Many small files: the shape a CDN or load balancer delivers (one small gzip file per edge
every few minutes), cut from the sample's own NDJSON lines.

    python bench/small_files.py --scale 236 --files 3000 --per-file 100 --repeat 3
    python bench/run.py --scale 236 --small-files 3000       # the same step, from run.py

Times, side by side in one run (separate processes, median wall time, taking turns):
- bare DuckDB `create table as select * from read_json('DIR/*.ndjson.gz')` over the folder;
- `forensics ingest DIR` into a new store;
- `forensics ingest DIR` again into that store (every file already stored: all skipped);
- the same three for the same events as W3C `.log.gz` files (`--w3c-files`, through
  examples' CloudFront-like columns; bare DuckDB: read_csv over the glob).
Checks the figures: the bare table's row count equals the lines written, and forensics'
rows_read equals it too; the re-ingest reports every file skipped. Prints each target of
issue 21 as met or missed with its ratio.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import FORENSICS, OUT, PY, Engine, fresh, run_process  # noqa: E402

BARE_GLOB_JSON = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("set enable_progress_bar = false")
con.execute(
    "create table t as select * from read_json(?, format='newline_delimited',"
    " union_by_name=true, ignore_errors=true)", [sys.argv[2]])
print(con.execute("select count(*) from t").fetchone()[0])
"""

BARE_GLOB_W3C = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("set enable_progress_bar = false")
con.execute(
    "create table t as select * from read_csv(?, delim='\\t', header=false, skip=2,"
    " auto_detect=false, columns=?, quote='', escape='', union_by_name=false)",
    [sys.argv[2], {c: 'VARCHAR' for c in sys.argv[3].split(',')}])
print(con.execute("select count(*) from t").fetchone()[0])
"""

W3C_FIELDS = ("ts", "action", "user_id", "device_id", "event_id", "request_id", "status", "app")

# Targets of issue 21 (ratios to the bare DuckDB load of the same glob).
INGEST_TARGET = 5.0
REINGEST_TARGET = 2.0


def sample_lines(data: Path, n: int) -> Iterator[bytes]:
    """The first n non-blank lines of the sample's NDJSON event files, in file order."""
    files = sorted(
        p for p in (data / "events").iterdir() if p.name.endswith((".ndjson.gz", ".ndjson"))
    )
    left = n
    for p in files:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                yield line if line.endswith(b"\n") else line + b"\n"
                left -= 1
                if not left:
                    return
    if left:
        raise SystemExit(f"bench: the sample has fewer than {n} NDJSON lines")


def write_ndjson(data: Path, out: Path, files: int, per_file: int) -> int:
    """`files` gzip NDJSON files of `per_file` lines each; returns the lines written."""
    out.mkdir(parents=True, exist_ok=True)
    lines = sample_lines(data, files * per_file)
    for i in range(files):
        chunk = b"".join(next(lines) for _ in range(per_file))
        # mtime=0: the same bytes on every run, so the folder is reproducible.
        (out / f"edge-{i:05d}.ndjson.gz").write_bytes(gzip.compress(chunk, 6, mtime=0))
    return files * per_file


def w3c_value(v: object) -> str:
    s = "-" if v is None or v == "" else str(v)
    return s.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def write_w3c(data: Path, out: Path, files: int, per_file: int) -> int:
    """The same kind of events as gzip W3C files (tab-separated, `-` empty), only lines that
    are JSON objects; returns the records written."""
    out.mkdir(parents=True, exist_ok=True)
    lines = sample_lines(data, files * per_file * 2)
    head = "#Version: 1.0\n#Fields: " + " ".join(W3C_FIELDS) + "\n"
    written = 0
    for i in range(files):
        rows: list[str] = []
        while len(rows) < per_file:
            try:
                rec = json.loads(next(lines))
            except ValueError:
                continue  # the sample's malformed lines have no W3C form
            if not isinstance(rec, dict):
                continue
            rows.append("\t".join(w3c_value(rec.get(f)) for f in W3C_FIELDS))
        text = head + "\n".join(rows) + "\n"
        (out / f"edge-{i:05d}.log.gz").write_bytes(gzip.compress(text.encode(), 6, mtime=0))
        written += len(rows)
    return written


@dataclass
class Step:
    name: str
    base: float
    ingest: float
    reingest: float
    cpu: tuple[float, float, float]  # CPU seconds (user + system) of the three, median

    def lines(self) -> list[str]:
        r1, r2 = self.ingest / self.base, self.reingest / self.base
        ok1 = "met" if r1 <= INGEST_TARGET else "MISSED"
        ok2 = "met" if r2 <= REINGEST_TARGET else "MISSED"
        c0, c1, c2 = self.cpu
        return [
            f"{self.name}: bare duckdb {self.base:.3f} s (cpu {c0:.2f} s)",
            f"  ingest {self.ingest:.3f} s = {r1:.2f}x (target <= {INGEST_TARGET:g}x: {ok1})"
            f" (cpu {c1:.2f} s = {c1 / c0:.2f}x)",
            f"  re-ingest {self.reingest:.3f} s = {r2:.2f}x"
            f" (target <= {REINGEST_TARGET:g}x: {ok2}) (cpu {c2:.2f} s = {c2 / c0:.2f}x)",
        ]


def check_ingest(stdout: str, expect_rows: int | None, expect_files: int, status: str) -> None:
    totals = json.loads(stdout)["totals"]
    if totals[status] != expect_files:
        raise SystemExit(f"bench: expected {expect_files} files {status}, got {totals}")
    if expect_rows is not None and totals["rows_read"] != expect_rows:
        raise SystemExit(f"bench: forensics read {totals['rows_read']} rows, wrote {expect_rows}")


def measure(
    name: str,
    folder: Path,
    bare_cmd: list[str],
    rows: int,
    files: int,
    work: Path,
    repeat: int,
    also: str | None = None,
) -> list[Step]:
    """Bare load, ingest and re-ingest of one folder, side by side, figures checked; with
    `also` (a PYTHONPATH), the same ingest and re-ingest by that tree's code in the same
    turns (a before/after under the same load)."""
    bare_db, db = work / f"bare-{name}.duckdb", work / f"ingest-{name}.duckdb"
    ingest = [*FORENSICS, "--db", str(db), "ingest", "--json", str(folder)]
    engines = [
        Engine("bare duckdb", [*bare_cmd[:3], str(bare_db), *bare_cmd[3:]], fresh(bare_db)),
        Engine("forensics ingest", ingest, fresh(db)),
        # Runs right after the ingest above, into the store it made.
        Engine("forensics re-ingest", ingest),
    ]
    if also:
        other_db = work / f"also-{name}.duckdb"
        other = [
            "env",
            f"PYTHONPATH={also}",
            PY,
            "-P",  # else `-m` puts the working directory, this tree, before PYTHONPATH
            "-m",
            "forensics",
            "--db",
            str(other_db),
            "ingest",
            "--json",
            str(folder),
        ]
        engines += [Engine("also ingest", other, fresh(other_db)), Engine("also re-ingest", other)]
    for _ in range(repeat):  # taking turns, as run.timed does
        for e in engines:
            if e.setup:
                e.setup()
            r = run_process(e.cmd)
            e.stdout = r.stdout
            e.runs.append(r)
    bare = engines[0]
    if int(bare.stdout.strip()) != rows:
        raise SystemExit(f"bench: bare duckdb loaded {bare.stdout.strip()} rows, wrote {rows}")
    steps = []
    for label, k in [("", 1), (f" [PYTHONPATH={also}]", 3)][: 2 if also else 1]:
        first, again = engines[k], engines[k + 1]
        # NDJSON blank or malformed lines are records too (rejected): rows_read is the lines.
        check_ingest(first.stdout, rows, files, "loaded")
        check_ingest(again.stdout, 0, files, "skipped")
        steps.append(
            Step(
                name + label,
                statistics.median(bare.walls),
                statistics.median(first.walls),
                statistics.median(again.walls),
                (
                    bare.median(lambda r: r.cpu_s),
                    first.median(lambda r: r.cpu_s),
                    again.median(lambda r: r.cpu_s),
                ),
            )
        )
    return steps


def small_files(
    scale: float, files: int, per_file: int, w3c_files: int, repeat: int, also: str | None = None
) -> tuple[list[Step], bool]:
    """Generate the folders (cached under bench/out/), time them; returns steps and all met."""
    data = OUT / f"data-s{scale:g}"
    work = OUT / f"work-small-s{scale:g}"
    work.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    if files:
        nd = work / f"ndjson-{files}x{per_file}"
        marker = nd / ".complete"
        if not marker.exists():
            rows = write_ndjson(data, nd, files, per_file)
            marker.write_text(str(rows))
        rows = int(marker.read_text())
        glob = str(nd / "*.ndjson.gz")
        steps.extend(
            measure(
                f"{files} gzip NDJSON x {per_file}",
                nd,
                [PY, "-c", BARE_GLOB_JSON, glob],
                rows,
                files,
                work,
                repeat,
                also,
            )
        )
    if w3c_files:
        w3 = work / f"w3c-{w3c_files}x{per_file}"
        marker = w3 / ".complete"
        if not marker.exists():
            marker_rows = write_w3c(data, w3, w3c_files, per_file)
            marker.write_text(str(marker_rows))
        wrows = int(marker.read_text())
        steps.extend(
            measure(
                f"{w3c_files} gzip W3C x {per_file}",
                w3,
                [PY, "-c", BARE_GLOB_W3C, str(w3 / "*.log.gz"), ",".join(W3C_FIELDS)],
                wrows,
                w3c_files,
                work,
                repeat,
                also,
            )
        )
    met = all(
        s.ingest / s.base <= INGEST_TARGET and s.reingest / s.base <= REINGEST_TARGET
        for s in steps
        if "[PYTHONPATH=" not in s.name
    )
    return steps, met


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=236)
    ap.add_argument("--files", type=int, default=3000)
    ap.add_argument("--per-file", type=int, default=100)
    ap.add_argument("--w3c-files", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--also", default=None, help="PYTHONPATH of another tree, timed alike")
    args = ap.parse_args()
    steps, met = small_files(
        args.scale, args.files, args.per_file, args.w3c_files, args.repeat, args.also
    )
    print(f"small files, median of {args.repeat}:")
    for s in steps:
        for line in s.lines():
            print("  " + line)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
