"""Where ingest's time goes: wall time per SQL statement of one in-process `forensics ingest`.

    python bench/profile_ingest.py [--existing] [--memory-limit 4GB] STORE PATH...

Runs the ingest into STORE (which should not exist yet; with --existing, a store that does,
and that the ingest changes: give it a copy) exactly as the command does, with
every statement on its two store connections timed, and prints the total and the
statements that took longest (grouped by their first 70 characters, with how many times
each ran). A file is staged on one connection while the file before it is stored on the
other, so the statements' sum can exceed the total. Timings from one process vary as the
machine does; bench/run.py gives the figures to compare.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import forensics.ingest as ingest
from forensics.ingest import pipeline
from forensics.store import StoreOptions

_LOCK = threading.Lock()  # statements run on two threads


class _Timed:
    """A store connection whose execute() adds its wall time to `spent`."""

    def __init__(self, con: Any, spent: dict[str, list[float]]) -> None:
        self._con, self._spent = con, spent

    def execute(self, sql: str, *args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._con.execute(sql, *args)
        finally:
            with _LOCK:
                entry = self._spent[re.sub(r"\s+", " ", sql).strip()[:70]]
                entry[0] += 1
                entry[1] += time.perf_counter() - t0

    def cursor(self) -> _Timed:
        """The second connection (ingest stages a file on it): timed as well."""
        return _Timed(self._con.cursor(), self._spent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def main() -> int:
    args = sys.argv[1:]
    existing = "--existing" in args
    args = [a for a in args if a != "--existing"]
    limit = None
    if "--memory-limit" in args[:-1]:
        i = args.index("--memory-limit")
        limit = args[i + 1]
        del args[i : i + 2]
    if len(args) < 2:
        print(__doc__)
        return 2
    store, paths = Path(args[0]), args[1:]
    if store.exists() != existing:
        why = "exists; give a new store path" if not existing else "does not exist"
        print(f"profile_ingest: {store} {why}", file=sys.stderr)
        return 2
    spent: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    real_open = pipeline.open_store  # type: ignore[attr-defined]  # what ingest() calls

    def timed_open(*args: Any, **kwargs: Any) -> Any:
        return _Timed(real_open(*args, **kwargs), spent)

    pipeline.open_store = timed_open  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    report = ingest.ingest(
        StoreOptions(path=store, memory_limit=limit), paths, ingest.IngestOptions()
    )
    total = time.perf_counter() - t0
    in_sql = sum(t for _, t in spent.values())
    print(f"{len(report.files)} files, {report.totals()}")
    print(f"total {total:.2f} s, in SQL statements {in_sql:.2f} s")
    print(f"{'s':>7} {'runs':>5}  statement")
    for sql, (n, t) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:12]:
        print(f"{t:7.2f} {int(n):5d}  {sql}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
