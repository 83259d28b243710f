"""Spark (local mode) against DuckDB on one machine: ingest, exposure and notify over a case
lake, and the store for reference. Each step is a separate `forensics` process (Python and,
for Spark, JVM start-up included), timed once per engine per --repeat; figures and the three
CSVs must agree across engines or the script exits 1. Results: bench/out/spark-results.json.

    python bench/spark.py --scale 1 --scale 9 --master 'local[*]'
    python bench/spark.py --scale 236 --data bench/out/data-s236   # a sample already written
    python bench/spark.py --scale 2378 --data bench/out/data-s2378 --skip-store
    python bench/spark.py --scale 2378 --data bench/out/data-s2378 --from-store STORE \
        --memory-limit 4GB

--from-store STORE leaves ingest out: the store (already ingested from --data) is exported to
a lake once (`forensics export`, timed), then exposure and notify run on the store and on that
lake with each engine.
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
import tempfile
import time
from pathlib import Path

from forensics.window import parse_window

OUT = Path(__file__).resolve().parent / "out"


def run(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB of the process tree's largest child, stdout). Exit 1 is
    accepted from `ingest` only (a file of the sample failed: it has such traps)."""
    # Output goes to files, not pipes: a child that writes more than a pipe holds (the
    # --json of a 100M export) would wait for a reader while this waits for it.
    with tempfile.TemporaryFile() as out_f, tempfile.TemporaryFile() as err_f:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out_f, stderr=err_f)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out_f.seek(0)
        err_f.seek(0)
        out, err = out_f.read().decode(), err_f.read().decode()
    code = os.waitstatus_to_exitcode(status)
    if code not in ((0, 1) if "ingest" in cmd else (0,)):
        sys.stderr.write(err[-2000:])
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024, out


def _events(exe: list[str], store: Path) -> int:
    """How many events a store holds (`forensics status --json`)."""
    _, _, out = run([*exe, "--db", str(store), "status", "--json"])
    return int(json.loads(out)["kinds"]["events"]["rows_loaded"])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, action="append", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--master", default="local[*]")
    ap.add_argument("--memory-limit", help="DuckDB's --memory-limit for every command, e.g. 4GB")
    ap.add_argument(
        "--data", type=Path, help="an existing `forensics sample` folder (one --scale only)"
    )
    ap.add_argument(
        "--skip-store", action="store_true", help="lakes only: no store ingest/exposure/notify"
    )
    ap.add_argument(
        "--from-store",
        type=Path,
        help="an existing store of --data: export it to one lake, then analyse (no ingest)",
    )
    args = ap.parse_args()
    if args.data and len(args.scale) != 1:
        ap.error("--data goes with exactly one --scale")
    if args.from_store and (not args.data or args.skip_store):
        ap.error("--from-store goes with --data, and not with --skip-store")
    exe = [sys.executable, "-m", "forensics"]
    on_spark = ["--engine", "spark", "--master", args.master]
    if args.memory_limit:
        exe += ["--memory-limit", args.memory_limit]
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
        # `sample` writes incident.toml; a shared copy may carry the window as incident.json.
        found = [data / n for n in ("incident.toml", "incident.json") if (data / n).is_file()]
        window = str(parse_window(f"@{found[0]}"))
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
        if args.from_store:
            store, lake_d = args.from_store.resolve(), work / "lake"
            lake_s = lake_d  # one lake, read by both engines
            step(
                "export store to lake",
                [*exe, "--db", str(store), "export", "--json", str(lake_d)],
                before=clean(lake_d),
            )
            n_events = _events(exe, store)
            same_ingest = True
        if not args.from_store and not args.skip_store:
            ing_store = step(
                "ingest store (duckdb)",
                [*exe, "--db", str(store), "ingest", "--json", *inputs],
                before=clean(store),
            )
        if not args.from_store:
            ing_d = step(
                "ingest --lake duckdb",
                [*exe, "ingest", "--lake", str(lake_d), "--json", *inputs],
                before=clean(lake_d),
            )
            ing_s = step(
                "ingest --lake spark",
                [*exe, "ingest", "--lake", str(lake_s), *on_spark, "--json", *inputs],
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
                [*exe, "exposure", "--lake", str(lake_s), *on_spark, "--window", window, "--json"],
            ),
        }
        same_figures = len({json.dumps(json.loads(v), sort_keys=True) for v in figs.values()}) == 1
        outs = {}
        for name, cmd in (
            ("store", ["--db", str(store), "notify"]),
            ("lake-duckdb", ["notify", "--lake", str(lake_d)]),
            ("lake-spark", ["notify", "--lake", str(lake_s), *on_spark]),
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
