"""How long a later wave takes to read what an earlier wave listed and to compare a list of
deliveries against it, for N deliveries (default 1,000,000; 1 in 10 without request_id).

    python bench/waves_compare.py [N]

Prints the time and the peak RSS added. Uses forensics.waves' internals directly: a store
holding N cross-account deliveries is not needed to measure the comparison.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from forensics.export import EXPOSURES, OWNERS, RECIPIENTS
from forensics.wave_chain import Wave
from forensics.wave_delta import Delta, ListedView, _load

BASE = datetime(2024, 2, 16, 9, tzinfo=timezone.utc)


def main(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="waves-bench-"))
    with open(folder / "exposures.csv", "w", newline="", encoding="utf-8") as f:
        f.write(",".join(EXPOSURES.columns) + "\r\n")
        for i in range(n):
            t = (BASE + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")
            t = t.rstrip("0").rstrip(".") + "Z"
            rid = f"req-{i:012d}" if i % 10 else ""
            f.write(f"{t},user{i % 50000},dev{i % 9000},ev{i},o{i % 7000},,,{rid},/l/f,{i}\r\n")
    for spec in (RECIPIENTS, OWNERS):
        (folder / spec.file_name).write_text(",".join(spec.columns) + "\r\n", encoding="utf-8")
    wave = Wave(folder, 1, "0" * 64, {"sanitization": {"formula_prefix": True}}, None, None)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    view = ListedView(None, True)
    _load(wave, view)
    view.settle()
    t1 = time.perf_counter()
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    current = pa.table(
        {
            "delivered_at": pa.array(
                [BASE + timedelta(milliseconds=i) for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "recipient_id": [f"user{i % 50000}" for i in range(n)],
            "device_id": [f"dev{i % 9000}" for i in range(n)],
            "event_id": [f"ev{i}" for i in range(n)],
            "request_id": [f"req-{i:012d}" if i % 10 else None for i in range(n)],
        }
    )
    t2 = time.perf_counter()
    unlisted = Delta([view], None)._unlisted(current)
    t3 = time.perf_counter()
    print(
        f"read {n:,} listed deliveries: {t1 - t0:.1f} s, +{(rss1 - rss0) / 1024:.0f} MB peak RSS;"
        f" compare {n:,} current deliveries: {t3 - t2:.1f} s;"
        f" unlisted: {pc.sum(unlisted).as_py() or 0}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
