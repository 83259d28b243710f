"""Peak memory of ingesting one large JSON array file (SPEC §2.6: bounded memory).

    python bench/memory_json_array.py --size-gb 1 --memory-limit 512MB [--lines]

Writes a JSON array of event objects of about the given size (pretty-printed, one element
per line, some nested fields and escaped quotes; cached in bench/out/; with `--lines`, the
same records as JSON lines), then runs
`forensics ingest --kind events --memory-limit LIMIT --json` on it in a fresh store under
`/usr/bin/time -v`, and prints the wall time, the peak RSS and the rows loaded. With
`--also PYTHONPATH` the same ingest is run with another tree's code (e.g. an older commit
exported with `git archive`) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def write_array(path: Path, size: int, seed: int = 7, lines: bool = False) -> int:
    """A JSON array (or JSON lines) of about `size` bytes; returns the number of records."""
    rng = random.Random(seed)
    n = 0
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("" if lines else "[\n")
        while written < size:
            parts = []
            for _ in range(10_000):
                rec = {
                    "ts": f"2024-02-16T09:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z",
                    "action": rng.choice(["thumbnail_delivered", "thumbnail_tapped"]),
                    "user_id": f"u{rng.randrange(10**6)}",
                    "device_id": f"d{rng.randrange(10**5)}",
                    "event_id": f"e{n}",
                    "request_id": f"r{n}",
                    "status": 200,
                    "cache_node": 'edge-"7"',
                    "app": {"name": "ios", "v": [4, 2, {"build": "a\\b"}]},
                }
                sep = "\n" if lines else ",\n"
                parts.append(("" if n == 0 else sep) + json.dumps(rec))
                n += 1
            text = "".join(parts)
            f.write(text)
            written += len(text)
        f.write("\n" if lines else "\n]\n")
    return n


def measure(path: Path, limit: str, pythonpath: str | None = None) -> dict[str, object]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        cmd = [
            "/usr/bin/time",
            "-v",
            sys.executable,
            "-m",
            "forensics",
            "--db",
            str(Path(tmp) / "s.duckdb"),
            "ingest",
            "--kind",
            "events",
            "--memory-limit",
            limit,
            "--json",
            str(path),
        ]
        # Run from the temporary folder: `python -m` puts the working directory first on
        # sys.path, where a tree's own forensics/ would win over PYTHONPATH.
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=tmp)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time.*: (.+)", p.stderr)
    try:
        files = json.loads(p.stdout)["files"]
    except (ValueError, KeyError):
        files = []
    return {
        "exit": p.returncode,
        "peak_rss_mb": round(int(rss.group(1)) / 1024) if rss else None,
        "wall": wall.group(1).strip() if wall else None,
        "rows_loaded": files[0]["rows_loaded"] if files else None,
        "status": files[0]["status"] if files else None,
        "error": files[0]["error"] if files else p.stderr.strip().splitlines()[-1:],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--memory-limit", default="512MB")
    ap.add_argument("--also", metavar="PYTHONPATH", help="also run another tree's code")
    ap.add_argument("--lines", action="store_true", help="JSON lines instead of an array")
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / (f"lines-{a.size_gb:g}gb.ndjson" if a.lines else f"array-{a.size_gb:g}gb.json")
    if not path.exists():
        n = write_array(path, int(a.size_gb * (1 << 30)), lines=a.lines)
        print(f"wrote {path} ({path.stat().st_size / (1 << 20):.0f} MiB, {n} elements)")
    size_mb = path.stat().st_size / (1 << 20)
    print(f"{path.name}: {size_mb:.0f} MiB, --memory-limit {a.memory_limit}")
    print("this tree:", measure(path, a.memory_limit))
    if a.also:
        print(f"{a.also}:", measure(path, a.memory_limit, a.also))
    return 0


if __name__ == "__main__":
    sys.exit(main())
