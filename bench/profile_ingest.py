"""Where ingest's time goes: wall time per SQL statement of one in-process `forensics ingest`.

    python bench/profile_ingest.py [--existing] [--memory-limit 4GB] STORE PATH...

Runs the ingest into STORE (which should not exist yet; with --existing, a store that does,
and that the ingest changes: give it a copy) exactly as the command does, with
every statement on its two store connections timed, and prints the total and the
statements that took longest (grouped by their first 70 characters, with how many times
each ran). A file is staged on one connection while the file before it is stored on the
other, so the statements' sum can exceed the total. Then how busy the process kept the
machine's cores (its CPU time, sampled every 50 ms) while each set of statements ran at
once, and while none did (Python reading and splitting files): where cores sit idle.
Timings from one process vary as the machine does; bench/run.py gives the figures to
compare.
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
_RUNNING: dict[int, str] = {}  # thread -> the statement it runs (its first 28 characters)


class _Timed:
    """A store connection whose execute() adds its wall time to `spent`."""

    def __init__(self, con: Any, spent: dict[str, list[float]]) -> None:
        self._con, self._spent = con, spent

    def execute(self, sql: str, *args: Any) -> Any:
        text = re.sub(r"\s+", " ", sql).strip()
        with _LOCK:
            _RUNNING[threading.get_ident()] = text[:28]
        t0 = time.perf_counter()
        try:
            return self._con.execute(sql, *args)
        finally:
            with _LOCK:
                _RUNNING.pop(threading.get_ident(), None)
                entry = self._spent[text[:70]]
                entry[0] += 1
                entry[1] += time.perf_counter() - t0

    def cursor(self) -> _Timed:
        """The second connection (ingest stages a file on it): timed as well."""
        return _Timed(self._con.cursor(), self._spent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class _CoreUse:
    """The process's CPU time, sampled with the statements running, every 50 ms."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, tuple[str, ...]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _CoreUse:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            cpu = time.process_time()  # user + system, every thread of the process
            with _LOCK:
                running = tuple(sorted(_RUNNING.values()))
            self.samples.append((time.perf_counter(), cpu, running))
            if self._stop.wait(0.05):
                return

    def by_state(self) -> list[tuple[str, float, float]]:
        """(what ran, wall seconds, CPU seconds), the longest first."""
        spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for (t1, c1, running), (t2, c2, _) in zip(self.samples, self.samples[1:], strict=False):
            entry = spent[" + ".join(running) or "(no statement: Python)"]
            entry[0] += t2 - t1
            entry[1] += c2 - c1
        return sorted(((k, w, c) for k, (w, c) in spent.items()), key=lambda r: -r[1])


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
    with _CoreUse() as cores:
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
    states = cores.by_state()
    cpu = sum(c for _, _, c in states)
    print(f"CPU {cpu:.2f} s over {total:.2f} s: {cpu / total:.2f} cores busy on average")
    print(f"{'wall s':>7} {'CPU s':>7} {'cores':>5}  statements running at once")
    for running, wall, used in states[:12]:
        print(f"{wall:7.2f} {used:7.2f} {used / wall if wall else 0:5.2f}  {running}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
