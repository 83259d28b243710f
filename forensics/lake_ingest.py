"""`ingest --lake DIR` (SPEC §8): files spread over workers, one batch resolved into the lake.

Each worker (a Spark task, or this process with `--engine duckdb`) runs forensics' own
DuckDB ingest (`forensics.ingest.ingest`, its public entry point) over its share of the
files, in their order, into a private temporary store, and writes that store's tables as
Parquet beside the lake. Reading, the §2.4 rules, rejects and within-share duplicates are
therefore exactly the DuckDB path's. The driver then numbers the files in the order of the
whole run and resolves the batch against the lake (forensics.lake.write_batch): a file whose
content is already in the lake or earlier in the run is skipped, and an event whose key an
earlier file holds (in the lake, or in another share) is counted as a duplicate of its file.
Every file's accounting is then what one DuckDB ingest of the same files in the same order
reports: a key's first occurrence in the run is the first occurrence within some share, so
the shares' loaded rows hold every first occurrence, and the earliest of them wins.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import duckdb

from forensics.engines.base import EngineOptions, check_engine
from forensics.errors import StoreError
from forensics.ingest import (
    FileResult,
    IngestOptions,
    IngestReport,
    Progress,
    discover,
    ingest,
)
from forensics.lake import (
    COLUMNS,
    _copy,
    lake_lock,
    local_lake,
    parquet_files,
    stage_store_tables,
    write_batch,
)
from forensics.store import StoreOptions, engine_error, open_store

_STAGED = ("sources", "events", "grants", "accounts", "rejects")


def plan_shares(files: list[tuple[Path, bool]], n: int) -> list[list[int]]:
    """Indexes of `files` in `n` shares of about equal bytes, each in the run's order."""
    bins: list[tuple[int, list[int]]] = [(0, []) for _ in range(max(1, min(n, len(files))))]
    sizes = []
    for i, (f, _) in enumerate(files):
        try:
            sizes.append((f.stat().st_size, i))
        except OSError:
            sizes.append((0, i))
    for size, i in sorted(sizes, key=lambda t: (-t[0], t[1])):
        k = min(range(len(bins)), key=lambda j: (bins[j][0], j))
        bins[k] = (bins[k][0] + size, bins[k][1] + [i])
    return [sorted(b) for _, b in bins if b]


def ingest_share(
    task: int,
    files: list[tuple[str, bool]],
    options: IngestOptions,
    staging: str,
    threads: int | None = None,
    progress: Progress | None = None,
    memory_limit: str | None = None,
) -> list[dict[str, Any]]:
    """One worker's share: DuckDB ingest into a private store, its tables to `staging`.

    Runs on a Spark executor (it must be importable there) or in this process. Returns the
    files' results (FileResult fields) in the share's order. `memory_limit` is DuckDB's for
    the private store (--memory-limit: each share's DuckDB keeps to it).
    """
    with tempfile.TemporaryDirectory(prefix="forensics-task-") as tmp:
        given: list[str] = []
        back: dict[str, str] = {}
        for i, (path, walked) in enumerate(files):
            if walked:
                # found in a folder walk: given as a folder again, so that ingest applies the
                # same rules (other extensions are `skipped`, not `failed`)
                folder = Path(tmp, f"walk{i}")
                folder.mkdir()
                link = folder / os.path.basename(path)
                link.symlink_to(os.path.abspath(path))
                given.append(str(folder))
                back[str(link)] = path
            else:
                given.append(path)
        store = StoreOptions(Path(tmp, "share.duckdb"), memory_limit, threads)
        report = ingest(store, given, options, progress)
        results = []
        for r in report.files:
            d = asdict(r)
            d["path"] = back.get(r.path, r.path)
            if r.error:
                error = r.error
                for linked, original in back.items():
                    error = error.replace(linked, original)
                d["error"] = error
            results.append(d)
        con = open_store(store, read_only=True)
        try:
            stage_store_tables(con, "main")
            out = Path(staging, f"task{task:05d}")
            for table in _STAGED:
                _copy(
                    con,
                    f"select $task::integer as task, * from new_{table}",  # noqa: S608
                    out / f"{table}.parquet",
                    {"task": task},
                )
        except duckdb.Error as e:
            raise engine_error("ingest share", e) from None
        finally:
            con.close()
    return results


# What a finished share adds to the run's progress (ingest's events; see forensics.ingest).
_DONE = ("file", "bytes", "records", "rejects")


def _run_share(
    args: tuple[int, list[tuple[str, bool]], IngestOptions, str, str | None],
    done: dict[str, Any],
) -> list[Any]:
    task, files, options, staging, memory_limit = args
    results = ingest_share(task, files, options, staging, 1, memory_limit=memory_limit)
    # counted when the task ends (Spark accumulators reach the driver with its result)
    done["file"].add(len(results))
    done["bytes"].add(sum(_size(path) for path, _ in files))
    done["records"].add(sum(int(r["rows_read"] or 0) for r in results))
    done["rejects"].add(sum(int(r["rows_rejected"] or 0) for r in results))
    return [task, results]


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def ingest_lake(
    engine: EngineOptions,
    paths: list[str],
    options: IngestOptions,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest `paths` into the lake as one batch; returns each file's outcome (SPEC §7).
    `progress` gets the events of a store ingest (files, bytes, records); on Spark, a share's
    are counted when its task ends."""
    check_engine(engine)
    lake = local_lake(engine.lake or "")
    files, failed = discover(paths, [lake])
    with lake_lock(lake):
        staging = lake / "_staging" / f"ingest-{uuid.uuid4().hex[:12]}"
        staging.mkdir(parents=True)
        shares: dict[int, list[dict[str, Any]]] = {}
        if files and engine.engine == "spark":
            shares = _ingest_on_spark(engine, files, options, staging, progress)
        elif files:
            shares = {
                0: ingest_share(
                    0,
                    [(str(f), w) for f, w in files],
                    options,
                    str(staging),
                    engine.threads,
                    progress,
                    engine.memory_limit,
                )
            }
            shares[0] = [dict(r, index=i) for i, r in enumerate(shares[0])]
        return _resolve(lake, files, failed, shares, staging, engine)


def _ingest_on_spark(
    engine: EngineOptions,
    files: list[tuple[Path, bool]],
    options: IngestOptions,
    staging: Path,
    progress: Progress | None = None,
) -> dict[int, list[dict[str, Any]]]:
    from forensics.engines.spark import _spark_error, spark_session

    spark = spark_session(engine.spark_master())
    sc = spark.sparkContext
    plan = plan_shares(files, max(1, int(sc.defaultParallelism)) * 2)
    work = [
        (
            t,
            [(str(files[i][0]), files[i][1]) for i in idx],
            options,
            str(staging),
            engine.memory_limit,
        )
        for t, idx in enumerate(plan)
    ]
    if progress:
        progress("files", len(files))
        progress("total_bytes", sum(_size(str(f)) for f, _ in files))
    done = {k: sc.accumulator(0) for k in _DONE}
    job = sc.parallelize(work, len(work)).map(lambda w: _run_share(w, done))
    try:
        collected = _collect_reporting(job, done, progress)
    except Exception as e:  # noqa: BLE001 - a failed task: one line, no data
        raise _spark_error("ingest on Spark", e) from None
    shares: dict[int, list[dict[str, Any]]] = {}
    for task, results in collected:
        shares[int(task)] = [dict(r, index=i) for i, r in zip(plan[task], results, strict=True)]
    return shares


def _collect_reporting(job: Any, done: dict[str, Any], progress: Progress | None) -> list[Any]:
    """`job.collect()`, passing on what the finished tasks counted while it runs."""
    if progress is None:
        return list(job.collect())
    out: list[Any] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            out.extend(job.collect())
        except BaseException as e:  # noqa: BLE001 - raised again below, in this thread
            failure.append(e)

    worker = threading.Thread(target=run, name="forensics-ingest-job", daemon=True)
    worker.start()
    seen = dict.fromkeys(_DONE, 0)
    while True:
        finished = not worker.is_alive()
        for key in _DONE:
            value = int(done[key].value)
            if value > seen[key]:
                progress(key, value - seen[key])
                seen[key] = value
        if finished:
            break
        worker.join(0.5)
    if failure:
        raise failure[0]
    return out


def _resolve(
    lake: Path,
    files: list[tuple[Path, bool]],
    failed: list[FileResult],
    shares: dict[int, list[dict[str, Any]]],
    staging: Path,
    engine: EngineOptions,
) -> IngestReport:
    """Number the shares' files in the run's order, resolve them into the lake, and give each
    file the accounting of one DuckDB ingest in that order."""
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    try:
        con.execute("set TimeZone = 'UTC'")
        if engine.memory_limit:
            con.execute("set memory_limit = $m", {"m": engine.memory_limit})
        if engine.threads:
            con.execute("set threads = $t", {"t": int(engine.threads)})
        by_index = {r["index"]: (task, r) for task, rs in shares.items() for r in rs}
        # (task, sha256) -> the file's place in the run: its batch-local source id
        con.execute("create temp table run_ids (task integer, sha256 varchar, source_id integer)")
        rows = [
            (task, r["sha256"], i + 1)
            for i, (task, r) in sorted(by_index.items())
            if r["status"] == "loaded"
        ]
        if rows:
            con.executemany("insert into run_ids values (?, ?, ?)", rows)
        _stage_views(con, staging)
        events = None
        if engine.engine == "spark" and shares:
            from forensics.engines.spark import spark_session
            from forensics.engines.spark_batch import SparkBatchEvents

            events = SparkBatchEvents(spark_session(engine.spark_master()), staging, lake)
        result = write_batch(con, lake, "ingest", f"ingest --engine {engine.engine}", events)
    except duckdb.Error as e:
        raise engine_error(f"case lake {lake}", e) from None
    finally:
        con.close()
    outcomes = {o.source_id - result.base: o for o in result.files}
    # The files this run has loaded so far, by recorded path: a later file with the same
    # content names one of them as it was given (as a store's ingest does); one the lake
    # held before is named as the lake records it.
    given: dict[str, str] = {}
    report: list[FileResult] = list(failed)
    # Content the lake held before this run: a later file of this run with the same content
    # (skipped in its share as the same as the first) is the same as what the lake holds.
    held: dict[str, str] = {}
    for i in range(len(files)):
        _, r = by_index[i]
        fr = FileResult(**{k: v for k, v in r.items() if k != "index"})
        o = outcomes.get(i + 1)
        if fr.status == "loaded" and o is not None:
            if o.status == "skipped":
                fr.status, fr.error, fr.reasons = "skipped", _given(o.error or "", given), {}
                fr.rows_read = fr.rows_loaded = fr.rows_rejected = fr.rows_duplicate = 0
                if fr.sha256:
                    held.setdefault(fr.sha256, fr.error)
            else:
                fr.rows_loaded, fr.rows_duplicate = o.rows_loaded, o.rows_duplicate
                given[str(files[i][0].resolve())] = str(files[i][0])
        elif fr.status == "loaded":
            raise StoreError(f"case lake {lake}", f"file {i + 1} of the run was not resolved")
        elif fr.status == "skipped" and fr.sha256 in held:
            fr.error = held[fr.sha256]
        report.append(fr)
    return IngestReport(report)


def _stage_views(con: duckdb.DuckDBPyConnection, staging: Path) -> None:
    """The new_* views of the batch over the shares' Parquet, with run-order source ids."""

    def files(table: str) -> str:
        return parquet_files([str(p) for p in sorted(staging.glob(f"task*/{table}.parquet"))])

    if not any(staging.glob("task*/sources.parquet")):
        for table in _STAGED:
            cols = [(c, t) for c, t in COLUMNS[table] if c != "batch"]
            con.execute(
                f"create or replace temp view new_{table} as select "  # noqa: S608
                + ", ".join(f"null::{t} as {c}" for c, t in cols)
                + " where false"
            )
        return
    con.execute(
        "create or replace temp table share_sources as select task, "  # noqa: S608
        f"source_id as local_id, sha256 from read_parquet({files('sources')})"
    )
    con.execute(
        "create or replace temp view new_sources as select m.source_id, "  # noqa: S608
        f"t.* exclude (task, source_id) from read_parquet({files('sources')}) t "
        "join run_ids m on m.task = t.task and m.sha256 = t.sha256"
    )
    for table in _STAGED[1:]:
        con.execute(
            f"create or replace temp view new_{table} as select "  # noqa: S608
            f"t.* exclude (task, source_id), m.source_id from read_parquet({files(table)}) t "
            "join share_sources l on l.task = t.task and l.local_id = t.source_id "
            "join run_ids m on m.task = l.task and m.sha256 = l.sha256"
        )


def _given(error: str, given: dict[str, str]) -> str:
    """`same content as <resolved path>` names the earlier file as this run was given it."""
    prefix = "same content as "
    if error.startswith(prefix) and error[len(prefix) :] in given:
        return prefix + given[error[len(prefix) :]]
    return error
