"""The case lake (SPEC §8): the canonical tables as Parquet in one folder, read by any engine.

Layout (every table a folder of Parquet files; Spark and DuckDB read them in place):
    events/day=YYYY-MM-DD/hour=HH/bNNNNNN_*.parquet   partitioned by the UTC day and hour of ts
    grants/ accounts/ sources/ rejects/ batches/      bNNNNNN.parquet, one file per batch
A *batch* is one `export` of a store or one `ingest --lake`. Batches are numbered in the
order they were written; their source ids follow one another (batch 2's ids are all above
batch 1's), so "the earliest store, file and record win" (SPEC §2.4, §8) means: the lowest
(source_id, source_record). A batch is committed by its row in batches/, written last;
readers ignore rows whose source_id is above the last committed one, and the next writer
removes the files of a batch that never committed.

Each batch is resolved against the lake before it is written: a file whose SHA-256 is
already there is skipped, and an event whose de-duplication key is already there (or that
an earlier file of the batch holds) is counted as a duplicate of its file, so a lake never
holds the same event twice and every file keeps rows_read = loaded + rejected + duplicate.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from forensics import __version__
from forensics.errors import StoreError, UsageError
from forensics.store import StoreOptions, engine_error, open_store

TABLES = ("events", "grants", "accounts", "sources", "rejects", "batches")

# Columns of each lake table, in order, as DuckDB types (Parquet: timestamps are UTC
# microseconds, ids UTF-8 strings, extra the JSON text).
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "events": (
        ("ts", "timestamptz"),
        ("action", "varchar"),
        ("user_id", "varchar"),
        ("device_id", "varchar"),
        ("event_id", "varchar"),
        ("request_id", "varchar"),
        ("status", "integer"),
        ("extra", "varchar"),
        ("source_id", "integer"),
        ("source_record", "bigint"),
        ("dedup_key", "varchar"),
    ),
    "grants": (
        ("device_id", "varchar"),
        ("user_id", "varchar"),
        ("role", "varchar"),
        ("valid_from", "timestamptz"),
        ("valid_to", "timestamptz"),
        ("source_id", "integer"),
        ("source_record", "bigint"),
    ),
    "accounts": (
        ("user_id", "varchar"),
        ("email", "varchar"),
        ("name", "varchar"),
        ("locale", "varchar"),
        ("country", "varchar"),
        ("source_id", "integer"),
        ("source_record", "bigint"),
    ),
    "sources": (
        ("source_id", "integer"),
        ("path", "varchar"),
        ("kind", "varchar"),
        ("format", "varchar"),
        ("size_bytes", "bigint"),
        ("sha256", "varchar"),
        ("rows_read", "bigint"),
        ("rows_loaded", "bigint"),
        ("rows_rejected", "bigint"),
        ("rows_duplicate", "bigint"),
        ("ingested_at", "timestamptz"),
        ("tool_version", "varchar"),
        ("assume_tz", "varchar"),
        ("map_sha256", "varchar"),
        ("batch", "integer"),
    ),
    "rejects": (
        ("source_id", "integer"),
        ("source_record", "bigint"),
        ("reason", "varchar"),
        ("raw", "varchar"),
    ),
    "batches": (
        ("batch", "integer"),
        ("kind", "varchar"),
        ("origin", "varchar"),
        ("first_source_id", "integer"),
        ("last_source_id", "integer"),
        ("written_at", "timestamptz"),
        ("tool_version", "varchar"),
    ),
}

# The de-duplication key of SPEC §2.4 as exact text, the same in every engine and build:
# 'r' + request_id, else 'k' + the JSON array of the six fields (ts as epoch microseconds;
# JSON null for a missing value, so no two different keys can have the same text).
DEDUP_KEY = (
    "case when request_id is not null then 'r' || request_id else 'k' || to_json(["
    "epoch_us(ts)::varchar, action, user_id, device_id, event_id, status::varchar]) end"
)

_BATCH_FILE = re.compile(r"^b(\d{6})[_.]")


def is_remote(lake: str) -> bool:
    """A URI (s3a://, hdfs://, abfss://…): readable by Spark only."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", lake) is not None and not lake.startswith(
        "file://"
    )


def local_lake(lake: str) -> Path:
    if is_remote(lake):
        raise UsageError(
            "--lake",
            f"{lake} is not a local folder",
            "Only --engine spark reads a lake from a URI; exports and ingests write local folders",
        )
    return Path(lake.removeprefix("file://"))


def table_files(lake: Path, table: str) -> list[str]:
    """The Parquet files of a table, sorted (hidden and `_` names skipped, like Spark)."""
    root = lake / table
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        out.extend(
            os.path.join(dirpath, f)
            for f in sorted(filenames)
            if f.endswith(".parquet") and not f.startswith((".", "_"))
        )
    return out


def _empty_select(table: str) -> str:
    cols = ", ".join(f"null::{t} as {c}" for c, t in COLUMNS[table])
    return f"select {cols} where false"  # noqa: S608 - fixed names and types


def _table_select(lake: Path, table: str) -> str:
    """SQL reading one lake table's files in place (no rows if it has none)."""
    files = table_files(lake, table)
    if not files:
        return _empty_select(table)
    cols = ", ".join(f"{c}::{t} as {c}" for c, t in COLUMNS[table])
    return (
        f"select {cols} from read_parquet({parquet_files(files)}, "  # noqa: S608
        "hive_partitioning = false, union_by_name = true)"
    )


def parquet_files(files: list[str]) -> str:
    """A SQL list of Parquet files for read_parquet, each read as that one file: it expands
    globs, and a lake path may hold * ? [ (HOSTILE_INPUTS #8), so they are escaped."""
    return "[" + ", ".join("'" + glob.escape(f).replace("'", "''") + "'" for f in files) + "]"


def committed_source_id(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("select coalesce(max(last_source_id), 0) from lake_batches").fetchone()
    return int(row[0]) if row else 0


def attach_lake(con: duckdb.DuckDBPyConnection, lake: Path, prefix: str = "") -> int:
    """Create views `<prefix>events`, … over the lake's committed rows; returns the last
    committed source id. The views read the Parquet files in place."""
    con.execute(f"create or replace temp view lake_batches as {_table_select(lake, 'batches')}")
    last = committed_source_id(con)
    for table in TABLES:
        if table == "batches":
            continue
        sql = _table_select(lake, table)
        # readers see the canonical columns (dedup_key and batch are the lake's own), and
        # extra as JSON, as in a store
        cols = ", ".join(
            "extra::json as extra" if c == "extra" and not prefix else c
            for c, _ in COLUMNS[table]
            if prefix or c not in ("dedup_key", "batch")
        )
        con.execute(
            f"create or replace temp view {prefix}{table} as select {cols} "  # noqa: S608
            f"from ({sql}) where source_id <= {int(last)}"
        )
    return last


def open_lake_duckdb(lake: str, options: StoreOptions | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection whose tables events, grants, accounts, sources, rejects
    and view accounts_latest read the lake in place (the queries in queries/ run unchanged)."""
    from forensics.store import ACCOUNTS_LATEST

    path = local_lake(lake)
    if not (path / "batches").is_dir():
        raise StoreError(
            f"case lake {path}",
            "not found or not a case lake",
            "Run `forensics export DIR` or `forensics ingest --lake DIR` first",
        )
    con = duckdb.connect(
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    try:
        con.execute("set TimeZone = 'UTC'")
        if options is not None and options.memory_limit:
            con.execute("set memory_limit = $m", {"m": options.memory_limit})
        if options is not None and options.threads:
            con.execute("set threads = $t", {"t": int(options.threads)})
        attach_lake(con, path)
        con.execute(f"create or replace temp view accounts_latest as {ACCOUNTS_LATEST}")
    except duckdb.Error as e:
        con.close()
        raise engine_error(f"case lake {path}", e) from None
    return con


# --- writing ------------------------------------------------------------------------------


@contextlib.contextmanager
def lake_lock(lake: Path) -> Iterator[None]:
    """One writer at a time (several machines exporting into one shared folder take turns)."""
    if lake.exists() and not lake.is_dir():
        raise UsageError(f"case lake {lake}", "it is a file, not a folder")
    try:
        lake.mkdir(parents=True, exist_ok=True)
        for t in TABLES:
            (lake / t).mkdir(exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"case lake {lake}", f"cannot be created ({e.strerror or type(e).__name__})"
        ) from None
    fd = os.open(lake / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                f"case lake {lake}",
                "another export or ingest is writing it",
                "Wait for it to finish, then try again",
            ) from None
        # staging left by a writer that was stopped: nobody else writes while we hold the lock
        shutil.rmtree(lake / "_staging", ignore_errors=True)
        try:
            yield
        finally:
            # and this writer's own, committed or not (a 100M ingest stages gigabytes)
            shutil.rmtree(lake / "_staging", ignore_errors=True)
    finally:
        os.close(fd)


def _remove_uncommitted(lake: Path, last_batch: int) -> None:
    """Files of batches after the last committed one: left by a writer that was stopped."""
    for table in TABLES:
        for f in table_files(lake, table):
            m = _BATCH_FILE.match(os.path.basename(f))
            if m and int(m.group(1)) > last_batch:
                os.unlink(f)


@dataclass
class FileOutcome:
    """What a batch did with one file: its lake source id, status and accounting."""

    source_id: int
    path: str
    kind: str
    status: str  # loaded | skipped
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    error: str | None = None


@dataclass
class BatchResult:
    batch: int
    base: int  # the lake source id before the batch's first: batch-local id i is base + i
    files: list[FileOutcome]
    events_written: int


class BatchEvents:
    """Resolves a batch's events against the lake and writes the new ones: here on `con`
    (DuckDB); `forensics.engines.spark_batch` does the same on Spark, where the events of a
    batch and the lake's keys are too many for one machine. Files are resolved before it:
    batch_sources on `con` says which files' events count (same_as is null)."""

    # True when the batch's events are one store's (export): unique by key already, since
    # ingest kept one event per key (SPEC §2.4), so no key can repeat within the batch.
    unique = False

    def __init__(self, *, unique: bool = False) -> None:
        self.unique = unique

    def resolve(self, con: duckdb.DuckDBPyConnection, base: int) -> dict[int, int]:
        """Keep each new event whose dedup_key neither the lake nor an earlier file or record
        of the batch holds; return, per batch-local source id, how many events were lost.

        Only the lost rows are materialised (their provenance): batch_events is a view over
        the batch's own rows, so a batch of any size is resolved and written without a copy
        of its events (a store of 98M events would spill tens of GB).
        """
        con.execute(
            """
            create or replace temp view batch_kept as
            select e.* from new_events e
            join batch_sources s on s.source_id = e.source_id and s.same_as is null
            """
        )
        lost = []
        if base:  # keys the lake already holds are not written again
            lost.append(
                "select k.source_id, k.source_record from batch_kept k "
                "semi join lake_events l on l.dedup_key = k.dedup_key"
            )
        if not self.unique:  # a key's first copy in the batch wins, by source and record
            lost.append(
                "select source_id, source_record from batch_kept qualify row_number() "
                "over (partition by dedup_key order by source_id, source_record) > 1"
            )
        if lost:
            con.execute("create or replace temp table batch_lost as " + " union ".join(lost))
            con.execute(
                "create or replace temp view batch_events as select k.* from batch_kept k "
                "anti join batch_lost x "
                "on x.source_id = k.source_id and x.source_record = k.source_record"
            )
        else:
            con.execute("create or replace temp view batch_events as select * from batch_kept")
        rows = con.execute(
            """
            select e.source_id, count(*) - coalesce(max(b.n), 0)
            from new_events e
            left join (select source_id, count(*) as n from batch_events group by source_id) b
                on b.source_id = e.source_id
            group by e.source_id
            """
        ).fetchall()
        return {int(sid): int(n) for sid, n in rows}

    def write(self, con: duckdb.DuckDBPyConnection, dest: Path, stem: str, base: int) -> int:
        """Write the kept events under `dest` (day=/hour= folders, files `<stem>_*`), lake
        source ids (base + batch-local id); return how many."""
        return _copy(
            con,
            f"select {_cols('events', 'e.', {'source_id': 'e.source_id + $base'})}, "  # noqa: S608
            "strftime(e.ts, '%Y-%m-%d') as day, strftime(e.ts, '%H') as hour "
            "from batch_events e order by e.ts, e.source_id, e.source_record",
            dest,
            {"base": base},
            partition=True,
            stem=stem,
        )


def write_batch(
    con: duckdb.DuckDBPyConnection,
    lake: Path,
    kind: str,
    origin: str,
    events: BatchEvents | None = None,
) -> BatchResult:
    """Resolve the staged batch on `con` against the lake and write it; the caller holds the
    lock. `con` has temp views new_sources/new_events/new_grants/new_accounts/new_rejects with
    batch-local source ids 1..n in file order (new_events with dedup_key). `events` resolves
    and writes the events (default: on `con`)."""
    con.execute(f"create or replace temp view lake_batches as {_table_select(lake, 'batches')}")
    batches = con.execute("select coalesce(max(batch), 0) from lake_batches").fetchone()
    batch = int(batches[0]) + 1 if batches else 1
    _remove_uncommitted(lake, batch - 1)  # before the views list the table's files
    base = attach_lake(con, lake, prefix="lake_")
    p = {"base": base}
    events = events or BatchEvents()
    try:
        _resolve_sources(con, p)
        files = _file_outcomes(con, events.resolve(con, base))
        _record_counts(con, files)
        staging = lake / "_staging" / f"b{batch:06d}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        stem = f"b{batch:06d}"
        written = events.write(con, staging / "events", stem, base)
        _stage_rows(con, staging, stem, p, batch)
        last = max((f.source_id for f in files if f.status == "loaded"), default=base)
        _stage_batch_row(con, staging, stem, batch, kind, origin, first=base + 1, last=last)
    except duckdb.Error as e:
        raise engine_error(f"case lake {lake}", e) from None
    _move_into_place(lake, staging, stem)
    return BatchResult(batch, base, files, written)


def _resolve_sources(con: duckdb.DuckDBPyConnection, p: dict[str, Any]) -> None:
    """batch_sources (lake ids, same_as for content already held), a temp table on `con`."""
    # Files whose content the lake (or an earlier file of this batch) already holds.
    con.execute(
        """
        create or replace temp table batch_sources as
        select n.*, n.source_id + $base as lake_id,
            coalesce(l.path, (
                select min_by(e.path, e.source_id) from new_sources e
                where e.sha256 = n.sha256 and e.source_id < n.source_id
            )) as same_as
        from new_sources n
        left join (select sha256, min_by(path, source_id) as path from lake_sources
                   group by sha256) l on l.sha256 = n.sha256
        """,
        p,
    )


def _file_outcomes(con: duckdb.DuckDBPyConnection, lost: dict[int, int]) -> list[FileOutcome]:
    """One outcome per staged file in file order: skipped (same content) or loaded, with the
    events already in the lake or earlier in the batch (`lost`) counted as duplicates."""
    rows = con.execute(
        "select source_id, lake_id, path, kind, same_as, rows_read, rows_loaded, "
        "rows_rejected, rows_duplicate from batch_sources order by source_id"
    ).fetchall()
    files: list[FileOutcome] = []
    for sid, lake_id, path, kind, same_as, read, loaded, rejected, dup in rows:
        if same_as is not None:
            files.append(
                FileOutcome(
                    int(lake_id),
                    path,
                    kind,
                    "skipped",
                    0,
                    0,
                    0,
                    0,
                    f"same content as {same_as}",
                )
            )
            continue
        n_lost = int(lost.get(sid, 0))
        files.append(
            FileOutcome(
                int(lake_id),
                path,
                kind,
                "loaded",
                int(read),
                int(loaded) - n_lost,
                int(rejected),
                int(dup) + n_lost,
            )
        )
    return files


def _record_counts(con: duckdb.DuckDBPyConnection, files: list[FileOutcome]) -> None:
    """batch_counts on `con`: the loaded files' final loaded and duplicate counts."""
    con.execute(
        "create or replace temp table batch_counts (source_id integer, rows_loaded bigint,"
        " rows_duplicate bigint)"
    )
    counts = [(f.source_id, f.rows_loaded, f.rows_duplicate) for f in files if f.status == "loaded"]
    if counts:
        con.executemany("insert into batch_counts values (?, ?, ?)", counts)


def _stage_rows(
    con: duckdb.DuckDBPyConnection, staging: Path, stem: str, p: dict[str, Any], batch: int
) -> None:
    """Write the batch's grants, accounts, rejects and sources under `staging`."""
    keep = "join batch_sources s on s.source_id = t.source_id and s.same_as is null"
    for table in ("grants", "accounts", "rejects"):
        _copy(
            con,
            f"select {_cols(table, 't.', {'source_id': 't.source_id + $base'})} "  # noqa: S608
            f"from new_{table} t {keep} order by t.source_id, t.source_record",
            staging / table / f"{stem}.parquet",
            p,
        )
    _copy(
        con,
        f"select {_cols('sources', 's.', {'source_id': 's.lake_id', 'batch': '$batch', 'rows_loaded': 'c.rows_loaded', 'rows_duplicate': 'c.rows_duplicate'})} "  # noqa: E501, S608
        "from batch_sources s join batch_counts c on c.source_id = s.lake_id "
        "order by s.source_id",
        staging / "sources" / f"{stem}.parquet",
        {"batch": batch},
    )


def _stage_batch_row(
    con: duckdb.DuckDBPyConnection,
    staging: Path,
    stem: str,
    batch: int,
    kind: str,
    origin: str,
    *,
    first: int,
    last: int,
) -> None:
    """Write the batch's row of the batches table under `staging`."""
    _copy(
        con,
        "select $batch::integer as batch, $kind as kind, $origin as origin, "
        "$first::integer as first_source_id, $last::integer as last_source_id, "
        "$at::timestamptz as written_at, $version as tool_version",
        staging / "batches" / f"{stem}.parquet",
        {
            "batch": batch,
            "kind": kind,
            "origin": origin,
            "first": first,
            "last": last,
            "at": datetime.now(timezone.utc),
            "version": __version__,
        },
    )


def _move_into_place(lake: Path, staging: Path, stem: str) -> None:
    """Move the staged files into the lake: the batches row last, so that readers see the
    batch only when whole."""
    for table in TABLES:
        src = staging / table
        if table == "batches" or not src.exists():
            continue
        for f in sorted(src.rglob("*.parquet")):
            dest = lake / table / f.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
    os.replace(staging / "batches" / f"{stem}.parquet", lake / "batches" / f"{stem}.parquet")
    shutil.rmtree(staging, ignore_errors=True)


def _cols(table: str, alias: str, override: dict[str, str]) -> str:
    return ", ".join(
        f"({override[c]})::{t} as {c}" if c in override else f"{alias}{c}::{t} as {c}"
        for c, t in COLUMNS[table]
    )


def _copy(
    con: duckdb.DuckDBPyConnection,
    select: str,
    dest: Path,
    params: dict[str, Any],
    *,
    partition: bool = False,
    stem: str = "",
) -> int:
    """COPY a query's rows to Parquet (zstd); returns the row count."""
    used = {k: v for k, v in params.items() if f"${k}" in select}
    if partition:
        dest.mkdir(parents=True, exist_ok=True)
        options = (
            f"format parquet, compression zstd, partition_by (day, hour), "
            f"filename_pattern '{stem}_{{i}}', overwrite_or_ignore"
        )
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        options = "format parquet, compression zstd"
    target = str(dest).replace("'", "''")
    row = con.execute(f"copy ({select}) to '{target}' ({options})", used).fetchone()  # noqa: S608
    return int(row[0]) if row else 0


# --- export -------------------------------------------------------------------------------


def export_store(store: StoreOptions, lake: str) -> BatchResult:
    """Write the case store into the lake as one batch (SPEC §8 `forensics export DIR`)."""
    path = local_lake(lake)
    con = open_store(store, read_only=True)
    try:
        with lake_lock(path):
            try:
                stage_store_tables(con, "main")
            except duckdb.Error as e:
                raise engine_error(f"case store {store.path}", e) from None
            events = BatchEvents(unique=True)  # one store's events
            return write_batch(con, path, "export", str(store.path.resolve()), events)
    finally:
        con.close()


def stage_store_tables(con: duckdb.DuckDBPyConnection, schema: str) -> None:
    """The new_* views of a batch over a store's tables (`schema`: main or an attached one),
    its source ids renumbered 1..n in their order."""
    s = schema
    con.execute(
        f"create or replace temp table new_ids as select source_id as old_id, "  # noqa: S608
        f"row_number() over (order by source_id)::integer as source_id from {s}.sources"
    )
    con.execute(
        f"create or replace temp view new_sources as select i.source_id, s.* exclude "  # noqa: S608
        f"(source_id) from {s}.sources s join new_ids i on i.old_id = s.source_id"
    )
    con.execute(
        f"create or replace temp view new_events as select e.ts, e.action, e.user_id, "  # noqa: S608
        f"e.device_id, e.event_id, e.request_id, e.status, e.extra::varchar as extra, "
        f"i.source_id, e.source_record, {DEDUP_KEY} as dedup_key "
        f"from {s}.events e join new_ids i on i.old_id = e.source_id"
    )
    for table in ("grants", "accounts", "rejects"):
        con.execute(
            f"create or replace temp view new_{table} as select t.* exclude (source_id), "  # noqa: S608
            f"i.source_id from {s}.{table} t join new_ids i on i.old_id = t.source_id"
        )
