"""Where exposure's time goes: wall time, minor page faults and system time of each query.

    python bench/profile_exposure.py [--memory-limit 4GB] STORE WINDOW

Runs the figures of `forensics exposure` in process on STORE for WINDOW (an interval or
@FILE, as the command takes it), with the anti join run in full: like bench/run.py, it
removes STORE.cache/ first (a bench store's; never point it at a case you keep), so nothing
kept beside the store is read back. Prints the total and, for each query that took longer
than 50 ms, its wall time, the page faults it took (memory touched for the first time, or
again after it was handed back to the system) and the system time they cost; a key part of
the anti join is shown with its number. The process's own CPU is in the totals only: the
queries run on DuckDB's threads.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import forensics.exposure as exposure
from forensics import queries
from forensics.store import StoreOptions, open_store
from forensics.window import parse_window


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("window", help="an interval, or @FILE")
    ap.add_argument("--memory-limit", default=None)
    args = ap.parse_args()
    if not args.store.exists():
        print(f"profile_exposure: {args.store} does not exist", file=sys.stderr)
        return 2
    rows: list[tuple[str, float, int, float]] = []

    def timed(run: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(con: Any, name: str, params: Any = None, *a: Any, **k: Any) -> Any:
            before = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            try:
                return run(con, name, params, *a, **k)
            finally:
                after = resource.getrusage(resource.RUSAGE_SELF)
                part = params.get("key_part") if isinstance(params, dict) else None
                label = name if part is None else f"{name} (key part {part})"
                faults = after.ru_minflt - before.ru_minflt
                system = after.ru_stime - before.ru_stime
                rows.append((label, time.perf_counter() - t0, faults, system))

        return wrapper

    # What exposure.py calls: its own names for the two runners of queries/*.sql.
    exposure.materialize_query = timed(queries.materialize_query)  # type: ignore[assignment]
    exposure.query_rows = timed(queries.query_rows)  # type: ignore[assignment]
    shutil.rmtree(Path(f"{args.store}.cache"), ignore_errors=True)
    window = parse_window(args.window)
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    options = StoreOptions(args.store, memory_limit=args.memory_limit)
    with open_store(options, read_only=True) as con:
        figures = exposure.exposure_report(con, window).figures
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"total {time.perf_counter() - t0:.2f} s, CPU {after.ru_utime - before.ru_utime:.2f} s "
        f"user + {after.ru_stime - before.ru_stime:.2f} s system, "
        f"{after.ru_minflt - before.ru_minflt:,} page faults; "
        f"recipients {figures['recipients']:,}, tappers {figures['tappers']:,}"
    )
    print(f"{'s':>7} {'faults':>10} {'system s':>9}  query")
    for label, seconds, faults, system in rows:
        if seconds >= 0.05:
            print(f"{seconds:7.2f} {faults:10,d} {system:9.2f}  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
