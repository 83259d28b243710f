"""Benchmark: forensics vs bare DuckDB and Polars, whole processes, on one generated incident.

    python bench/run.py --scale 1 --repeat 3

Data comes from `forensics sample` and is cached in bench/out/data-s<scale>/. Each timed
command is a separate process; the figure is the median wall time of --repeat runs and the
largest peak RSS seen (os.wait4's ru_maxrss of that process), with the median CPU time,
system time and minor page faults of those runs beside it. Writes bench/out/results.json
and exits 1 if any engine's exposure figures disagree with `forensics exposure --json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forensics import exposure
from forensics.store import cache_dir, key_dir, spill_dir
from forensics.window import parse_window

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PY = sys.executable
FORENSICS = [PY, "-m", "forensics"] if shutil.which("forensics") is None else ["forensics"]

BARE_PARQUET = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table t as select * from read_parquet(?)", [sys.argv[2:]])
print(con.execute("select count(*) from t").fetchone()[0])
"""

BARE_JSON = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute(
    "create table t as select * from read_json(?, format='newline_delimited',"
    " union_by_name=true, ignore_errors=true)", [sys.argv[2:]])
print(con.execute("select count(*) from t").fetchone()[0])
"""

# Export the store's canonical tables once, so Polars and DuckDB-in-place read the same
# clean, de-duplicated rows that forensics analyses (the raw NDJSON has malformed lines,
# mixed-type fields and duplicates that only ingest resolves).
EXPORT = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("set TimeZone='UTC'")
con.execute(
    "copy (select ts, action::varchar as action, user_id::varchar as user_id,"
    " device_id::varchar as device_id, event_id::varchar as event_id, status from events)"
    " to '" + sys.argv[2] + "' (format parquet)")
con.execute(
    "copy (select device_id::varchar as device_id, user_id::varchar as user_id,"
    " role::varchar as role, valid_from, valid_to from grants)"
    " to '" + sys.argv[3] + "' (format parquet)")
"""

# The random-order shape: the store's canonical events (the de-duplicated rows exposure
# reads), shuffled into two Parquet files, as a partitioned warehouse exports them.
SHUFFLE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("set TimeZone='UTC'")
h = "hash(source_id, source_record, 'bench shuffle')"
for part, out in enumerate(sys.argv[2:4]):
    con.execute(
        "copy (select ts, action::varchar as action, user_id::varchar as user_id,"
        " device_id::varchar as device_id, event_id::varchar as event_id,"
        " request_id::varchar as request_id, status from events"
        " where " + h + " % 2 = " + str(part) + " order by " + h + ")"
        " to '" + out + "' (format parquet)")
"""

POLARS = """
import json, sys
from datetime import datetime
import polars as pl
ev, gr = sys.argv[1], sys.argv[2]
ws = datetime.fromisoformat(sys.argv[3].replace("Z", "+00:00"))
we = datetime.fromisoformat(sys.argv[4].replace("Z", "+00:00"))
D, T, P = "thumbnail_delivered", "thumbnail_tapped", "video_played"
ts, act = pl.col("ts"), pl.col("action")
in_win = (ts >= ws) & (ts < we)
e = pl.scan_parquet(ev).filter(
    (pl.col("status").is_null() | pl.col("status").is_between(200, 299))
    & act.is_in([D, T, P]))
g = pl.scan_parquet(gr)
valid = ((pl.col("valid_from").is_null() | (pl.col("valid_from") <= ts))
         & (pl.col("valid_to").is_null() | (ts < pl.col("valid_to"))))
cand = e.filter((act == D) | (act.is_in([T, P]) & (ts >= ws))).with_row_index("rid")
authd = (cand.join(g.select("device_id", "user_id", "valid_from", "valid_to"),
                   on=["device_id", "user_id"], how="inner")
         .filter(valid).select("rid").unique())
deliveries = e.filter((act == D) & in_win).select(pl.len())
u = cand.join(authd, on="rid", how="anti").select(
    "ts", "action", "user_id", "device_id", "event_id")
u, deliveries = pl.collect_all([u, deliveries])
deliveries = deliveries.item()
cad = u.filter((act == D) & in_win)
first = cad.group_by("user_id", "event_id").agg(ts.min().alias("t1"))
def linked(a):
    return (u.filter(act == a).join(first, on=["user_id", "event_id"])
            .filter(pl.col("t1") <= ts))
taps, plays = linked(T), linked(P)
owners = (cad.join(g.filter(pl.col("role") == "owner").collect(), on="device_id",
                   suffix="_g").filter(valid))
unauth_tp_in_win = u.filter(act.is_in([T, P]) & in_win).height
linked_in_win = taps.filter(in_win).height + plays.filter(in_win).height
print(json.dumps({
    "deliveries": deliveries,
    "cross_account_deliveries": cad.height,
    "recipients": cad["user_id"].n_unique(),
    "cross_account_taps": taps.height,
    "tappers": taps["user_id"].n_unique(),
    "cross_account_plays": plays.height,
    "video_viewers": plays["user_id"].n_unique(),
    "exposed_devices": cad["device_id"].drop_nulls().n_unique(),
    "exposed_owners": owners["user_id_g"].n_unique(),
    "unlinked_unauthorized_accesses": unauth_tp_in_win - linked_in_win,
    "cross_account_deliveries_outside_window": u.filter((act == D) & ~in_win).height,
}))
"""

DUCKDB_INPLACE = """
import json, sys, duckdb
ev, gr, ws, we = sys.argv[1:5]
con = duckdb.connect()
con.execute("set TimeZone='UTC'")
con.execute("set enable_progress_bar=false")  # stdout carries the figures as JSON
p = {"ev": ev, "gr": gr, "ws": ws, "we": we}
con.execute('''
create temp table u as
select e.ts, e.action, e.user_id, e.device_id, e.event_id
from read_parquet($ev) as e
anti join read_parquet($gr) as g
    on g.device_id = e.device_id and g.user_id = e.user_id
    and (g.valid_from is null or g.valid_from <= e.ts)
    and (g.valid_to is null or e.ts < g.valid_to)
where (e.status is null or e.status between 200 and 299)
  and (e.action = 'thumbnail_delivered'
       or (e.action in ('thumbnail_tapped', 'video_played') and e.ts >= $ws::timestamptz))
''', {"ev": ev, "gr": gr, "ws": ws})
con.execute('''
create temp table cad as select * from u
where action = 'thumbnail_delivered' and ts >= $ws::timestamptz and ts < $we::timestamptz
''', {"ws": ws, "we": we})
con.execute('''
create temp table linked as
select t.action, t.user_id, t.ts from u as t
join (select user_id, event_id, min(ts) as t1 from cad group by all) as f
  on f.user_id = t.user_id and f.event_id = t.event_id and f.t1 <= t.ts
where t.action in ('thumbnail_tapped', 'video_played')
''')
row = con.execute('''
select
  (select count(*) from read_parquet($ev)
   where action = 'thumbnail_delivered' and (status is null or status between 200 and 299)
     and ts >= $ws::timestamptz and ts < $we::timestamptz),
  (select count(*) from cad),
  (select count(distinct user_id) from cad),
  (select count(*) from linked where action = 'thumbnail_tapped'),
  (select count(distinct user_id) from linked where action = 'thumbnail_tapped'),
  (select count(*) from linked where action = 'video_played'),
  (select count(distinct user_id) from linked where action = 'video_played'),
  (select count(distinct device_id) from cad),
  (select count(distinct g.user_id) from cad as d join read_parquet($gr) as g
     on g.device_id = d.device_id and g.role = 'owner'
     and (g.valid_from is null or g.valid_from <= d.ts)
     and (g.valid_to is null or d.ts < g.valid_to)),
  (select count(*) from u where action in ('thumbnail_tapped', 'video_played')
     and ts >= $ws::timestamptz and ts < $we::timestamptz)
  - (select count(*) from linked where ts >= $ws::timestamptz and ts < $we::timestamptz),
  (select count(*) from u where action = 'thumbnail_delivered'
     and not (ts >= $ws::timestamptz and ts < $we::timestamptz))
''', p).fetchone()
keys = ["deliveries", "cross_account_deliveries", "recipients", "cross_account_taps",
        "tappers", "cross_account_plays", "video_viewers", "exposed_devices",
        "exposed_owners", "unlinked_unauthorized_accesses",
        "cross_account_deliveries_outside_window"]
print(json.dumps(dict(zip(keys, row))))
"""

FIGURE_KEYS = list(exposure.FIGURE_KEYS)  # SPEC §5's keys, as `exposure --json` gives them


class EngineFailed(Exception):
    """A baseline process that did not finish (e.g. killed for memory); recorded, not fatal."""

    def __init__(self, returncode: int, wall: float, peak_mb: float, tail: str) -> None:
        super().__init__(f"exit {returncode}")
        self.returncode, self.wall, self.peak_mb, self.tail = returncode, wall, peak_mb, tail


@dataclass(frozen=True)
class Run:
    """One finished process: its wall time and what os.wait4 says it used."""

    wall: float  # seconds
    peak_mb: float  # peak RSS
    cpu_s: float  # user + system CPU seconds
    sys_s: float  # system CPU seconds (page faults, reads, ...)
    faults: int  # minor page faults: memory touched for the first time, mostly
    stdout: str


def run_process(cmd: list[str], *, may_fail: bool = False) -> Run:
    """Run one process to its end.

    A failing process stops the benchmark, unless `may_fail` (baselines): then EngineFailed.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        if proc.returncode not in (0,):
            tail = err.read().decode()[-2000:]
            if may_fail:
                raise EngineFailed(proc.returncode, wall, usage.ru_maxrss / 1024, tail)
            raise SystemExit(f"bench: command failed ({proc.returncode}): {cmd[:4]}...\n{tail}")
    return Run(
        wall,
        usage.ru_maxrss / 1024,
        usage.ru_utime + usage.ru_stime,
        usage.ru_stime,
        usage.ru_minflt,
        stdout,
    )


def run_once(cmd: list[str], *, may_fail: bool = False) -> tuple[float, float, str]:
    """Run one process; return (wall seconds, peak RSS MB, stdout)."""
    r = run_process(cmd, may_fail=may_fail)
    return r.wall, r.peak_mb, r.stdout


@dataclass
class Engine:
    """One engine of a step: its command, what resets its output, and how a failure counts."""

    name: str
    cmd: list[str]
    setup: Callable[[], None] | None = None
    may_fail: bool = False  # a baseline: its failure is recorded, not fatal
    runs: list[Run] = field(default_factory=list)
    rss: float = 0.0
    stdout: str = ""
    failed: EngineFailed | None = None

    @property
    def walls(self) -> list[float]:
        return [r.wall for r in self.runs]

    def median(self, what: Callable[[Run], float]) -> float:
        return statistics.median(what(r) for r in self.runs)


def timed(engines: list[Engine], repeat: int) -> list[Engine]:
    """Run each engine `repeat` times, taking turns (one run of each per round), so that a
    machine that speeds up or slows down during the step shifts every engine alike."""
    for _ in range(repeat):
        for e in engines:
            if e.failed is not None:
                continue
            if e.setup:
                e.setup()
            try:
                r = run_process(e.cmd, may_fail=e.may_fail)
            except EngineFailed as failure:
                e.failed = failure
                continue
            e.stdout = r.stdout
            e.runs.append(r)
            e.rss = max(e.rss, r.peak_mb)
    return engines


def fresh(path: Path) -> Callable[[], None]:
    def setup() -> None:
        for p in (path, Path(str(path) + ".wal")):
            p.unlink(missing_ok=True)
        for folder in (spill_dir(path), key_dir(path), cache_dir(path)):
            shutil.rmtree(folder, ignore_errors=True)

    return setup


def no_entries(path: Path) -> Callable[[], None]:
    """Remove what an analysis kept beside the store (forensics.window_cache), so that the
    command timed next runs the whole anti join itself."""

    def setup() -> None:
        shutil.rmtree(cache_dir(path), ignore_errors=True)

    return setup


def exposure_step(
    db: Path, fopts: list[str], window: str, inputs: list[str], baselines: bool
) -> list[Engine]:
    """`forensics exposure --json` over the store `db`, then (with `baselines`) Polars and
    DuckDB in place over `inputs`: events Parquet, grants Parquet, window start and end."""
    mine = Engine(
        "forensics",
        [*FORENSICS, "--db", str(db), *fopts, "exposure", "--window", window, "--json"],
        no_entries(db),  # every run joins, as the first command on a store does
    )
    if not baselines:
        return [mine]
    return [
        mine,
        Engine("polars", [PY, "-c", POLARS, *inputs], may_fail=True),
        Engine("duckdb in place", [PY, "-c", DUCKDB_INPLACE, *inputs], may_fail=True),
    ]


def figures_of(step: str, engines: list[Engine]) -> dict[str, dict[str, Any]]:
    """Each engine's `--json` figures that finished, keyed `<step>: <engine>`."""
    return {f"{step}: {e.name}": json.loads(e.stdout) for e in engines if e.failed is None}


def probe_file(ev_dir: Path) -> Path:
    """The event file whose ingest is timed into an empty store and into the full one: the
    last by name (the sample writes no duplicates of it elsewhere)."""
    files = [p for p in sorted(ev_dir.iterdir()) if p.is_file() and "reexport" not in p.name]
    return files[-1]


def stored_events(store: Path) -> int:
    """How many events the store holds (a separate process: the store is not kept open)."""
    _, _, out = run_once(
        [
            PY,
            "-c",
            "import sys, duckdb; print(duckdb.connect(sys.argv[1], read_only=True)"
            ".execute('select count(*) from events').fetchone()[0])",
            str(store),
        ]
    )
    return int(out)


def shuffled_events(store: Path, folder: Path) -> list[Path]:
    """The store's events in random time order as 2 Parquet files, made once per scale."""
    files = [folder / "events-0.parquet", folder / "events-1.parquet"]
    if all(f.is_file() for f in files):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    tmp = [f.with_suffix(".parquet.tmp") for f in files]
    run_once([PY, "-c", SHUFFLE, str(store), *map(str, tmp)])
    for t, f in zip(tmp, files, strict=True):
        t.replace(f)
    return files


# Issue 21's targets, and "no ratio worse than today": the ratios of the latest 10M run
# recorded in bench/README.md before this work (e5d8a80).
TODAY = {"ingest parquet": 0.87, "ingest ndjson": 1.55, "exposure": 0.55}
JOB_LIMIT_S = 240.0  # the whole job at 100M events, on 2 cores
RSS_MARGIN_MB = 1024.0  # peak RSS may exceed --memory-limit by this much
SAME_COST = 1.2  # the last file may take this much longer than the first


def memory_mb(limit: str | None) -> float | None:
    """--memory-limit (as DuckDB takes it: 4GB, 512MB, 2GiB) in MB, or None."""
    if not limit:
        return None
    units = {
        "kb": 1e-3,
        "mb": 1.0,
        "gb": 1e3,
        "tb": 1e6,
        "kib": 2**10 / 1e6,
        "mib": 2**20 / 1e6,
        "gib": 2**30 / 1e6,
    }
    text = limit.strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz ")
    return float(number) * units.get(text[len(number) :].strip(), 1.0)


def check_targets(
    rows: list[dict[str, object]],
    per_file: dict[str, dict[str, object]],
    job: dict[str, object],
    memory_limit: str | None,
) -> list[dict[str, object]]:
    """Each target with the measured value and whether it is met."""
    ratio = {(x["step"], x["engine"]): x.get("ratio") for x in rows}
    out: list[dict[str, object]] = []

    def add(target: str, value: object, met: bool) -> None:
        out.append({"target": target, "value": value, "met": met})

    for step, limit in (
        ("ingest random", 1.5),
        ("exposure random", 0.6),
        ("ingest ndjson", 1.3),
        *TODAY.items(),
    ):
        r = ratio.get((step, "forensics"))
        if r is not None:
            add(f"{step} <= {limit}x", f"{r}x", float(r) <= limit)  # type: ignore[arg-type]
    first, last = per_file["first"], per_file["last"]
    grow = float(last["seconds"]) / float(first["seconds"])  # type: ignore[arg-type]
    add(f"last file <= {SAME_COST}x first file", f"{grow:.2f}x", grow <= SAME_COST)
    total = float(job["total_s"])  # type: ignore[arg-type]
    add(f"whole job < {JOB_LIMIT_S:.0f} s", f"{total:.1f} s", total < JOB_LIMIT_S)
    mb = memory_mb(memory_limit)
    if mb is not None:
        peak = float(job["peak_rss_mb"])  # type: ignore[arg-type]
        add(
            f"peak RSS <= --memory-limit + {RSS_MARGIN_MB:.0f} MB",
            f"{peak:.0f} MB",
            peak <= mb + RSS_MARGIN_MB,
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory-limit", default=None, help="passed to forensics")
    ap.add_argument(
        "--skip",
        default="",
        type=lambda v: {x.strip() for x in v.split(",") if x.strip()},
        help="comma-separated: parquet, ndjson (ingest steps), random (the random-order "
        "shape), polars (the exposure baselines)",
    )
    ap.add_argument("--small-files", type=int, default=0, help="also N small gzip NDJSON files")
    ap.add_argument("--small-w3c", type=int, default=0, help="and N small gzip W3C files")
    ap.add_argument("--small-only", action="store_true", help="only the small-files step")
    args = ap.parse_args()
    data = OUT / f"data-s{args.scale:g}"
    work = OUT / f"work-s{args.scale:g}"
    # `sample` writes incident.toml; a shared copy may carry the window as incident.json.
    found = [data / n for n in ("incident.toml", "incident.json") if (data / n).is_file()]
    if not found:
        print(f"generating sample at scale {args.scale:g} into {data} ...", file=sys.stderr)
        subprocess.run(
            [*FORENSICS, "sample", str(data), "--scale", str(args.scale), "--seed", str(args.seed)],
            check=True,
        )
    if args.small_files or args.small_w3c:
        # Many small files cut from this sample (bench/small_files.py), side by side.
        import small_files

        steps, met = small_files.small_files(
            args.scale, args.small_files, 100, args.small_w3c, args.repeat
        )
        print(f"small files, median of {args.repeat}:")
        for step in steps:
            print("\n".join("  " + line for line in step.lines()))
        if args.small_only:
            return 0 if met else 1

    work.mkdir(parents=True, exist_ok=True)
    found = [data / n for n in ("incident.toml", "incident.json") if (data / n).is_file()]
    incident = parse_window(f"@{found[0]}")  # as `--window @FILE` reads it
    window, w = incident.to_json(), str(incident)
    ev_dir = data / "events"
    pq = sorted(str(p) for p in ev_dir.glob("*.parquet"))
    nd = sorted(
        str(p)
        for p in ev_dir.iterdir()
        if p.name.endswith((".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz"))
    )
    fopts = ["--memory-limit", args.memory_limit] if args.memory_limit else []
    rows: list[dict[str, object]] = []

    def record(step: str, base: str | None, engines: list[Engine], notes: dict[str, str]) -> None:
        for e in engines:
            note = notes.get(e.name, "")
            if e.failed is not None:
                # A baseline that cannot finish here (Polars runs out of memory at 100M
                # events) is a result too: how long it ran and how much memory it held.
                f = e.failed
                why = "killed (out of memory?)" if f.returncode < 0 else f"exit {f.returncode}"
                print(f"bench: {e.name} failed: {why}; {f.tail.strip()[-300:]}", file=sys.stderr)
                rows.append(
                    {
                        "step": step,
                        "engine": e.name,
                        "seconds": None,
                        "failed_after_s": round(f.wall, 3),
                        "peak_rss_mb": round(f.peak_mb, 1),
                        "baseline": base,
                        "note": f"FAILED: {why}",
                    }
                )
                continue
            cpu, sys_s = e.median(lambda r: r.cpu_s), e.median(lambda r: r.sys_s)
            faults = e.median(lambda r: r.faults)
            print(
                f"bench: {step}, {e.name}: {', '.join(f'{w:.2f}' for w in e.walls)} s, "
                f"peak RSS {e.rss:.0f} MB, CPU {cpu:.2f} s ({sys_s:.2f} s system), "
                f"{faults / 1000:.0f}k page faults",
                file=sys.stderr,
                flush=True,
            )
            rows.append(
                {
                    "step": step,
                    "engine": e.name,
                    "seconds": round(statistics.median(e.walls), 3),
                    "runs_s": [round(w, 3) for w in e.walls],
                    "cpu_s": round(cpu, 3),
                    "system_s": round(sys_s, 3),
                    "minor_faults": int(faults),
                    "peak_rss_mb": round(e.rss, 1),
                    "baseline": base,
                    "note": note,
                }
            )

    repeat = args.repeat
    db = work / "ingest.duckdb"
    bare = work / "bare.duckdb"
    if "parquet" not in args.skip:
        # 1. Parquet ingest
        record(
            "ingest parquet",
            "bare duckdb",
            timed(
                [
                    Engine("bare duckdb", [PY, "-c", BARE_PARQUET, str(bare), *pq], fresh(bare)),
                    Engine(
                        "forensics", [*FORENSICS, "--db", str(db), *fopts, "ingest", *pq], fresh(db)
                    ),
                ],
                repeat,
            ),
            {},
        )
    if "ndjson" not in args.skip:
        # 2. NDJSON ingest
        record(
            "ingest ndjson",
            "bare duckdb",
            timed(
                [
                    Engine("bare duckdb", [PY, "-c", BARE_JSON, str(bare), *nd], fresh(bare)),
                    Engine(
                        "forensics", [*FORENSICS, "--db", str(db), *fopts, "ingest", *nd], fresh(db)
                    ),
                ],
                repeat,
            ),
            {"bare duckdb": "read_json ignore_errors, no dedup"},
        )
    # The full store (all events, grants, accounts) for exposure and notify, built once and
    # timed: every file but one in one ingest, then that one alone into the full store
    # ("last"); the same file alone into an empty store ("first"). What a file costs
    # should not grow with what is stored: last ~ first.
    last = probe_file(ev_dir)
    store = work / "store.duckdb"
    fresh(store)()
    others = [str(p) for p in sorted(ev_dir.iterdir()) if p.is_file() and p != last]
    build = [
        run_once(
            [*FORENSICS, "--db", str(store), *fopts, "ingest", *others]
            + [str(data / "grants"), str(data / "accounts")]
        )
    ]
    print(
        f"bench: store built from every file but {last.name}: {build[0][0]:.1f} s, "
        f"peak RSS {build[0][1]:.0f} MB",
        file=sys.stderr,
        flush=True,
    )
    one_db = work / "first.duckdb"
    fresh(one_db)()
    per_file = {}
    for name, db_path in (("first", one_db), ("last", store)):
        wall, peak, out = run_once(
            [*FORENSICS, "--db", str(db_path), *fopts, "ingest", "--json", str(last)]
        )
        if db_path == store:
            build.append((wall, peak, out))
        f = json.loads(out)["files"][0]
        per_file[name] = {
            "file": last.name,
            "seconds": round(wall, 3),
            "rows_read": f["rows_read"],
            "peak_rss_mb": round(peak, 1),
        }
        print(f"bench: {name} file: {per_file[name]}", file=sys.stderr, flush=True)
    fresh(one_db)()
    per_file["last"]["events_stored_before"] = stored_events(store) - per_file["last"]["rows_read"]
    evp, grp = work / "events.parquet", work / "grants.parquet"
    if not {"polars", "random"} <= args.skip:  # the baselines read this export
        run_once([PY, "-c", EXPORT, str(store), str(evp), str(grp)])
    # 3. exposure
    inputs = [str(evp), str(grp), window["start"], window["end"]]
    baselines = "polars" not in args.skip
    exposure_engines = timed(exposure_step(store, fopts, w, inputs, baselines), repeat)
    record(
        "exposure",
        "polars",
        exposure_engines,
        {
            "polars": "lazy, over exported store tables",
            "duckdb in place": "SQL over exported Parquet",
        },
    )
    want = {k: json.loads(exposure_engines[0].stdout)[k] for k in FIGURE_KEYS}
    figures = figures_of("exposure", exposure_engines)
    # 4. notify
    notify = [
        *FORENSICS,
        "--db",
        str(store),
        *fopts,
        "notify",
        "--window",
        w,
        "--out",
        str(work / "notices"),
        "--force",
    ]
    # After exposure, as a responder runs them: notify reads the unauthorized accesses that
    # exposure kept beside the store (forensics.window_cache). Then notify alone on the
    # store, with nothing kept: the whole anti join in each run.
    notify_engines = timed([Engine("forensics", notify)], repeat)
    record("notify", None, notify_engines, {"forensics": "after exposure"})
    alone = timed([Engine("forensics", notify, no_entries(store))], repeat)
    record("notify alone", None, alone, {"forensics": "nothing kept beside the store"})
    # 5. The same events in random time order, as 2 Parquet files (cached beside the data).
    if "random" not in args.skip:
        rnd = shuffled_events(store, OUT / f"random-s{args.scale:g}")
        rdb = work / "random.duckdb"
        record(
            "ingest random",
            "bare duckdb",
            timed(
                [
                    Engine(
                        "bare duckdb",
                        [PY, "-c", BARE_PARQUET, str(bare), *map(str, rnd)],
                        fresh(bare),
                    ),
                    Engine(
                        "forensics",
                        [*FORENSICS, "--db", str(rdb), *fopts, "ingest", *map(str, rnd)],
                        fresh(rdb),
                    ),
                ],
                repeat,
            ),
            {"bare duckdb": "CTAS over the 2 shuffled files"},
        )
        run_once([*FORENSICS, "--db", str(rdb), *fopts, "ingest", str(data / "grants")])
        rinputs = [str(rnd[0].parent / "events-*.parquet"), str(grp), *inputs[2:]]
        random_engines = timed(exposure_step(rdb, fopts, w, rinputs, baselines), repeat)
        record(
            "exposure random",
            "polars",
            random_engines,
            {"polars": "lazy, over the 2 shuffled files", "duckdb in place": "SQL over them"},
        )
        figures.update(figures_of("exposure random", random_engines))

    secs: dict[tuple[object, object], object] = {
        (x["step"], x["engine"]): x["seconds"] for x in rows
    }
    for x in rows:
        base = secs.get((x["step"], x["baseline"])) if x["baseline"] else None
        mine = x["seconds"]
        ok = isinstance(base, float) and base > 0 and isinstance(mine, float)
        x["ratio"] = round(mine / base, 2) if ok else None  # type: ignore[operator]

    disagree = {
        eng: {k: (f.get(k), want[k]) for k in FIGURE_KEYS if f.get(k) != want[k]}
        for eng, f in figures.items()
    }
    disagree = {k: v for k, v in disagree.items() if v}

    print(
        f"scale {args.scale:g}: {len(pq)} parquet + {len(nd)} ndjson event files, window {w}, "
        f"median of {repeat}"
    )
    print(
        f"{'step':<16}{'engine':<18}{'median s':>10}{'ratio':>8}{'CPU s':>8}{'system s':>10}"
        f"{'faults':>8}{'peak RSS MB':>13}"
    )
    for x in rows:
        ratio = f"{x['ratio']:.2f}x" if x["ratio"] is not None else "-"
        secs_s = f"{x['seconds']:>10.3f}" if x["seconds"] is not None else f"{'FAILED':>10}"
        use = f"{'-':>8}{'-':>10}{'-':>8}"  # a failed baseline's use is not known
        if "cpu_s" in x:
            faults = float(x["minor_faults"]) / 1000  # type: ignore[arg-type]
            use = f"{x['cpu_s']:>8.2f}{x['system_s']:>10.2f}{faults:>7.0f}k"
        print(
            f"{x['step']:<16}{x['engine']:<18}{secs_s}{ratio:>8}{use}"
            f"{x['peak_rss_mb']:>13.1f}  {x['note']}"
        )
    for name in ("first", "last"):
        f = per_file[name]
        stored = f.get("events_stored_before", 0)
        print(
            f"{f['file']} ({f['rows_read']:,} records) into a store of {stored:,} events: "
            f"{f['seconds']:.3f} s (one process, {name} file)"
        )
    job: dict[str, Any] = {
        "ingest_s": round(sum(b[0] for b in build), 3),
        "exposure_s": secs.get(("exposure", "forensics")),
        "notify_s": secs.get(("notify", "forensics")),
        "notify_alone_s": secs.get(("notify alone", "forensics")),
        "peak_rss_mb": round(
            max([b[1] for b in build] + [e.rss for e in exposure_engines[:1] + notify_engines]),
            1,
        ),
    }
    parts = ("ingest_s", "exposure_s", "notify_s")
    job["total_s"] = round(sum(float(job[k] or 0) for k in parts), 3)
    job["total_notify_alone_s"] = round(
        job["total_s"] - float(job["notify_s"] or 0) + float(job["notify_alone_s"] or 0), 3
    )
    print(
        f"whole job: ingest {job['ingest_s']:.1f} s (every file, grants and accounts), "
        f"exposure {job['exposure_s']} s, notify {job['notify_s']} s (after exposure): "
        f"{job['total_s']:.1f} s, peak RSS {job['peak_rss_mb']:.0f} MB; with notify alone "
        f"({job['notify_alone_s']} s): {job['total_notify_alone_s']:.1f} s"
    )
    print("figures agree" if not disagree else f"FIGURES DISAGREE: {disagree}")
    failed = [str(x["engine"]) for x in rows if x["seconds"] is None]
    if failed:
        print(f"baselines that did not finish: {', '.join(failed)}")
    targets = check_targets(rows, per_file, job, args.memory_limit)
    for t in targets:
        print(f"target {t['target']}: {t['value']} -> {'met' if t['met'] else 'MISSED'}")

    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "nproc": os.cpu_count(),
            "platform": platform.platform(),
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "load_avg": os.getloadavg(),
        },
        "scale": args.scale,
        "seed": args.seed,
        "repeat": repeat,
        "window": window,
        "event_files": {"parquet": len(pq), "ndjson": len(nd)},
        "results": rows,
        "per_file": per_file,
        "job": job,
        "targets": targets,
        "figures": figures,
        "disagreements": disagree,
    }
    (OUT / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
