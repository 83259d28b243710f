"""What looking up one file's de-duplication key hashes costs, against how many are stored.

    python bench/probe_keys.py --stored 10000000 --stored 50000000 [--file-keys 600000] [--art]

For each store size N: a fresh DuckDB file holding N random 64-bit key hashes (as
`events.dkey` holds them), then the lookup ingest makes for each file (the stored rows
sharing a hash with the file's keys, as `stored_key_matches.sql` does), timed --repeat
times. With --art, also an ART index on the hashes: how long it takes to build, how much
it adds to the file, how long adding one file's keys to the indexed table takes, and
whether DuckDB uses it for the lookup. Timings only; nothing here is part of the suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

LOOKUP = (
    "create or replace temp table maybe as select e.rowid as rid from events e "
    "semi join file_keys s on e.dkey = s.dkey"
)


def timed(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    t0 = time.perf_counter()
    con.execute(sql)
    return time.perf_counter() - t0


def one_size(folder: Path, n: int, k: int, repeat: int, art: bool, memory: str) -> None:
    db = folder / f"keys-{n}.duckdb"
    con = duckdb.connect(str(db), config={"memory_limit": memory})
    con.execute(f"create table events as select hash(i) as dkey from range({n}) t(i)")
    con.execute("checkpoint")
    size = db.stat().st_size
    # Half the file's keys are stored already, half are new (a re-export that overlaps).
    con.execute(
        f"create temp table file_keys as select hash(i) as dkey from range({n - k // 2}, "
        f"{n + k - k // 2}) t(i)"
    )
    scans = [timed(con, LOOKUP) for _ in range(repeat)]
    found = con.execute("select count(*) from maybe").fetchone()
    print(
        f"{n:>12,} stored, {k:,} file keys: lookup {statistics.median(scans):.3f} s "
        f"(runs {', '.join(f'{s:.2f}' for s in scans)}; {found[0] if found else 0:,} found)"
    )
    if art:
        build = timed(con, "create index events_dkey on events (dkey)")
        con.execute("checkpoint")
        grown = db.stat().st_size - size
        plan = con.execute(
            "explain select rowid from events where dkey in (select dkey from file_keys)"
        ).fetchall()
        uses = "INDEX_SCAN" in str(plan).upper().replace(" ", "_")
        add = timed(
            con,
            f"insert into events select hash(i) from range({n + k}, {n + 2 * k}) t(i)",
        )
        print(
            f"{'':>12}  ART: built in {build:.1f} s, +{grown / n:.0f} bytes a key on disk, "
            f"{k:,} keys added in {add:.2f} s, lookup plan uses it: {uses}"
        )
    con.close()
    os.unlink(db)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stored", type=int, action="append", required=True)
    ap.add_argument("--file-keys", type=int, default=600_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--art", action="store_true")
    ap.add_argument("--memory-limit", default="4GB")
    ap.add_argument("--dir", default=None, help="where the scratch stores go")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in args.stored:
            one_size(Path(tmp), n, args.file_keys, args.repeat, args.art, args.memory_limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
