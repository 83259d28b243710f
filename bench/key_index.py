"""Times lookups in a store's key index (forensics.ingest.key_index), warm and in process.

    python bench/key_index.py STORE [--keys 3000 --keys 600000]

Random 64-bit hashes (so none is found, as for a file of new events) looked up three times
each among the runs the index's manifest names; prints the runs, the stored hashes and
each lookup's milliseconds. The store must have been ingested into (its index written).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from forensics.ingest import IngestTuning
from forensics.ingest.key_index import KeyIndex, Run
from forensics.private_files import MANIFEST
from forensics.store import key_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--keys", type=int, action="append", help="hashes per lookup (repeatable)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    doc = json.loads((key_dir(args.store) / MANIFEST).read_text(encoding="utf-8"))
    index = KeyIndex(args.store, IngestTuning())
    index.runs = [Run(**r) for r in doc["runs"]]
    print(f"{len(index.runs)} runs, {sum(r.keys for r in index.runs):,} hashes")
    rng = np.random.default_rng(args.seed)
    for n in args.keys or [3_000, 50_000, 600_000]:
        keys = np.sort(rng.integers(0, 2**64 - 1, n, dtype=np.uint64))
        times = []
        for _ in range(3):
            t = time.perf_counter()
            found = index.stored(keys)
            times.append((time.perf_counter() - t) * 1000)
        hits = int(found.sum()) if found is not None else "unknown"
        print(f"{n:>10,} hashes: " + " / ".join(f"{x:.0f}" for x in times) + f" ms, found {hits}")


if __name__ == "__main__":
    main()
