"""Spark (local mode) against DuckDB on one machine: ingest, exposure and notify over a case
lake, and the store for reference. Each step is a separate `forensics` process (Python and,
for Spark, JVM start-up included), timed once per engine per --repeat; figures and the three
CSVs must agree across engines or the script exits 1. Results: bench/out/spark-results.json.

    python bench/spark.py --scale 1 --scale 9 --master 'local[*]'
    python bench/spark.py --scale 236 --data bench/out/data-s236   # a sample already written
    python bench/spark.py --scale 2378 --data bench/out/data-s2378 --skip-store
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the process tree's largest child, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):  # 1: an input file failed (the sample has such traps)
        sys.stderr.write(err[-2000:])
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024, out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, action="append", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--master", default="local[*]")
    ap.add_argument(
        "--data", type=Path, help="an existing `forensics sample` folder (one --scale only)"
    )
    ap.add_argument(
        "--skip-store", action="store_true", help="lakes only: no store ingest/exposure/notify"
    )
    args = ap.parse_args()
    if args.data and len(args.scale) != 1:
        ap.error("--data goes with exactly one --scale")
    exe = [sys.executable, "-m", "forensics"]
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "master": args.master,
        "scales": {},
    }
    failed = False
    for scale in args.scale:
        work = OUT / f"spark-s{scale:g}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        data = work / "data"
        if args.data:
            data = args.data.resolve()
        else:
            run([*exe, "sample", str(data), "--seed", str(args.seed), "--scale", str(scale)])
        w = json.loads((data / "incident.json").read_text())["window"]
        window = f"{w['start']}/{w['end']}"
        inputs = [str(data / k) for k in ("events", "grants", "accounts")]
        rows: dict[str, dict[str, object]] = {}

        def step(
            name: str,
            cmd: list[str],
            rep: int = args.repeat,
            before: object = None,
            rows: dict[str, dict[str, object]] = rows,
            scale: float = scale,
        ) -> str:
            times, peaks, out = [], [], ""
            for _ in range(rep):
                if callable(before):
                    before()
                t, m, out = run(cmd)
                times.append(t)
                peaks.append(m)
            rows[name] = {
                "wall_s": round(sorted(times)[len(times) // 2], 2),
                "peak_rss_mb": round(max(peaks)),
                "runs_s": [round(t, 2) for t in times],
            }
            print(f"s{scale:g} {name:<28} {sorted(times)[len(times) // 2]:>8.2f} s", flush=True)
            return out

        store, lake_d, lake_s = work / "case.duckdb", work / "lake-duckdb", work / "lake-spark"

        def clean(*paths: Path) -> object:
            def go() -> None:
                for p in paths:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(
                        missing_ok=True
                    )

            return go

        ing_store = None
        if not args.skip_store:
            ing_store = step(
                "ingest store (duckdb)",
                [*exe, "--db", str(store), "ingest", "--json", *inputs],
                before=clean(store),
            )
        ing_d = step(
            "ingest --lake duckdb",
            [*exe, "ingest", "--lake", str(lake_d), "--json", *inputs],
            before=clean(lake_d),
        )
        ing_s = step(
            "ingest --lake spark",
            [
                *exe,
                "ingest",
                "--lake",
                str(lake_s),
                "--engine",
                "spark",
                "--master",
                args.master,
                "--json",
                *inputs,
            ],
            before=clean(lake_s),
        )
        same_ingest = json.loads(ing_d) == json.loads(ing_s)
        if ing_store is not None:
            same_ingest = same_ingest and json.loads(ing_store) == json.loads(ing_d)
        n_events = json.loads(ing_d)["totals"]["rows_loaded"]
        figs = {}
        if not args.skip_store:
            figs["store"] = step(
                "exposure store (duckdb)",
                [*exe, "--db", str(store), "exposure", "--window", window, "--json"],
            )
        figs |= {
            "lake-duckdb": step(
                "exposure --lake duckdb",
                [*exe, "exposure", "--lake", str(lake_d), "--window", window, "--json"],
            ),
            "lake-spark": step(
                "exposure --lake spark",
                [
                    *exe,
                    "exposure",
                    "--lake",
                    str(lake_s),
                    "--engine",
                    "spark",
                    "--master",
                    args.master,
                    "--window",
                    window,
                    "--json",
                ],
            ),
        }
        same_figures = len({json.dumps(json.loads(v), sort_keys=True) for v in figs.values()}) == 1
        outs = {}
        for name, cmd in (
            ("store", ["--db", str(store), "notify"]),
            ("lake-duckdb", ["notify", "--lake", str(lake_d)]),
            (
                "lake-spark",
                ["notify", "--lake", str(lake_s), "--engine", "spark", "--master", args.master],
            ),
        ):
            if name == "store" and args.skip_store:
                continue
            out = work / f"notify-{name}"
            step(f"notify {name}", [*exe, *cmd, "--window", window, "--out", str(out), "--force"])
            outs[name] = {
                c: sha(out / c) for c in ("recipients.csv", "owners.csv", "exposures.csv")
            }
        same_lists = len({json.dumps(v, sort_keys=True) for v in outs.values()}) == 1
        failed |= not (same_ingest and same_figures and same_lists)
        results["scales"][f"{scale:g}"] = {  # type: ignore[index]
            "events_loaded": n_events,
            "window": window,
            "steps": rows,
            "same_ingest_accounting": same_ingest,
            "same_figures": same_figures,
            "same_lists": same_lists,
        }
        print(
            f"s{scale:g}: {n_events:,} events; same accounting {same_ingest}, figures "
            f"{same_figures}, lists {same_lists}",
            flush=True,
        )
    OUT.mkdir(exist_ok=True)
    path = OUT / "spark-results.json"
    if path.exists():  # earlier scales kept, this run's replace theirs
        earlier = json.loads(path.read_text()).get("scales", {})
        results["scales"] = {**earlier, **results["scales"]}  # type: ignore[dict-item]
    path.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
