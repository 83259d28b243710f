"""The case store: one DuckDB file holding the canonical tables, sources and rejects (SPEC §3).

`open_store` is the only way in: analysis opens read-only and never creates the file; every
connection is pinned to UTC, cannot load extensions, and spills to a private folder beside
the store. Engine errors become StoreError with no record contents in the message.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb

from forensics.errors import StoreError, StoreInUseError, UsageError, engine_message

SCHEMA_VERSION = "1"
DEFAULT_DB = "forensics.duckdb"

# SPEC §2.3: when a user appears more than once, the record ingested last wins. One text for
# the store's view and a lake's (DuckDB and Spark, transpiled).
ACCOUNTS_LATEST = """select user_id, email, name, locale, country
from accounts
qualify row_number() over (
    partition by user_id order by source_id desc, source_record desc) = 1"""

# Canonical tables. Times are TIMESTAMPTZ holding UTC instants (the session zone is pinned
# to UTC); ids are text. Every row keeps its provenance: source_id + 1-based source_record.
# Event and grant ids, and the accounts' user_id and email, are stored uncompressed:
# near-unique strings barely compress (about 2:1), and choosing and applying string
# compression was most of the cost of writing them (2-3x slower to write, slower to
# scan). The store is larger; ingest and analysis are faster.
SCHEMA = (
    """
create table if not exists meta (key varchar primary key, value varchar);
create sequence if not exists source_ids start 1;
create table if not exists sources (
    source_id integer primary key,
    path varchar not null,
    kind varchar not null,
    format varchar not null,
    size_bytes bigint not null,
    sha256 varchar not null,
    rows_read bigint not null,
    rows_loaded bigint not null,
    rows_rejected bigint not null,
    rows_duplicate bigint not null,
    ingested_at timestamptz not null,
    tool_version varchar not null,
    assume_tz varchar,
    map_sha256 varchar,
    notes varchar  -- what was done to read the file: columns converted or left out (§2.6)
);
create table if not exists rejects (
    source_id integer not null,
    source_record bigint not null,
    reason varchar not null,
    raw varchar
);
create table if not exists events (
    ts timestamptz not null,
    action varchar not null,
    user_id varchar not null using compression uncompressed,
    device_id varchar using compression uncompressed,
    event_id varchar using compression uncompressed,
    request_id varchar using compression uncompressed,
    status integer,
    extra json,
    source_id integer not null,
    source_record bigint not null,
    dkey ubigint  -- DKEY below; filled by ingest (see ensure_dedup_keys)
);
create table if not exists grants (
    device_id varchar not null using compression uncompressed,
    user_id varchar not null using compression uncompressed,
    role varchar not null,
    valid_from timestamptz,
    valid_to timestamptz,
    source_id integer not null,
    source_record bigint not null
);
create table if not exists accounts (
    user_id varchar not null using compression uncompressed,
    email varchar using compression uncompressed,
    name varchar,
    locale varchar,
    country varchar,
    source_id integer not null,
    source_record bigint not null
);
-- SPEC §2.3: when a user appears more than once, the record ingested last wins.
create or replace view accounts_latest as
"""
    + ACCOUNTS_LATEST
    + ";\n"
)

# De-duplication key (SPEC §2.4) as one 64-bit hash per event: of request_id, or of the six
# fields when there is none. Looking up a file's keys in a large store then scans 8 bytes a
# row instead of the ids; equal keys always have equal hashes, and the few stored rows
# whose hash matches are compared exactly (ingest), so a collision can never merge events.
# Each id is hashed twice, the second time one byte along ('#' || id): DuckDB's string
# hash() mixes a string 8 bytes at a time, and some id shapes collide far more often than
# 64 bits should: 5 pairs among 40M ids of 'req-' and 12 hex digits (the sample's request
# ids), where an even hash gives one pair in about 20,000 such sets (none among 40M UUIDs,
# or 20-, 24- or 32-character hex ids). Every collision sends a file down the slow, exact
# path; the shifted copy puts the block boundaries elsewhere.
DKEY = (
    "case when request_id is not null then hash(request_id, '#' || request_id) "
    "else hash(ts, action, user_id, '#' || user_id, device_id, '#' || device_id, "
    "event_id, '#' || event_id, status) end"
)
# DuckDB's hash() is only stable within one build: the store records what DKEY gives for
# these rows, and its keys are recomputed when another build (or another DKEY) differs.
_DKEY_PROBE = (
    f"select string_agg(({DKEY})::varchar, ':' order by i) from (values "  # noqa: S608
    "(1, 'req-1', timestamptz '2024-02-16 09:00:00+00', 'thumbnail_delivered', 'u', 'd', "
    "'e', 200), (2, null, timestamptz '2024-02-16 09:00:00+00', 'thumbnail_delivered', "
    "'u', 'd', 'e', 200), (3, null, timestamptz '2024-02-16 09:00:00+00', 'x', 'u', null, "
    "null, null)) t(i, request_id, ts, action, user_id, device_id, event_id, status)"
)

_PID = re.compile(r"PID (\d+)")


@dataclass(frozen=True)
class StoreOptions:
    """Where the store is and how DuckDB may use the machine."""

    path: Path
    memory_limit: str | None = None
    threads: int | None = None


def resolve_db_path(option: str | None) -> Path:
    """`--db`, else $FORENSICS_DB, else ./forensics.duckdb (SPEC §3)."""
    return Path(option or os.environ.get("FORENSICS_DB") or DEFAULT_DB)


def spill_dir(path: Path) -> Path:
    """DuckDB's temp/spill folder: beside the store, private."""
    return path.with_name(path.name + ".tmp")


def key_dir(path: Path) -> Path:
    """The key index folder of the store at `path` (forensics.ingest.key_index): beside
    it, private."""
    return path.with_name(path.name + ".keys")


def own_paths(path: Path) -> list[Path]:
    """What a store at `path` writes beside itself: never evidence to ingest."""
    wal = path.with_name(path.name + ".wal")
    return [path, wal, spill_dir(path), key_dir(path), cache_dir(path)]


def cache_dir(path: Path) -> Path:
    """The folder of analysis results kept beside the store at `path`
    (forensics.window_cache): private, deleted whenever the store is opened to write."""
    return path.with_name(path.name + ".cache")


# The folders spill_dir, key_dir and cache_dir name beside a store (a walk for evidence
# leaves them out beside any file, forensics.ingest.discover).
SIDE_FOLDERS = tuple(d(Path("x")).name[1:] for d in (spill_dir, key_dir, cache_dir))


def open_store(options: StoreOptions, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the case store; read-only never creates it. Raises StoreError / StoreInUseError."""
    path = options.path
    if path.is_dir():
        raise StoreError(
            f"case store {path}",
            "is a folder, not a store file",
            f"Pass the store file, e.g. --db {path / DEFAULT_DB}",
        )
    _check_file_kind(path, read_only)
    if read_only and not path.is_file():
        raise StoreError(
            f"case store {path}", "not found", "Run `forensics ingest` first, or pass --db"
        )
    created = False
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    }
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as e:
        raise _io_error(path, e) from None
    except duckdb.Error as e:
        raise StoreError(f"case store {path}", engine_message(e)) from None
    if created:
        # Private whatever the umask: the store holds personal data. It is still empty here.
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
    try:
        if not read_only:
            _check_not_foreign(con, path)  # before the spill folder is made beside it
        _configure(con, options)
        if not read_only:
            con.execute(SCHEMA)
            # Stores from before the column: it is added (NULL: nothing to note).
            con.execute("alter table sources add column if not exists notes varchar")
            con.execute(
                "insert into meta values ('schema_version', $v) on conflict do nothing",
                {"v": SCHEMA_VERSION},
            )
            # Names the store for what is kept beside it (forensics.ingest.key_index).
            con.execute(
                "insert into meta values ('store_id', uuid()::varchar) on conflict do nothing"
            )
            ensure_dedup_keys(con)
            # What analysis kept beside the store may not hold once it is written to.
            shutil.rmtree(cache_dir(path), ignore_errors=True)
        else:
            _check_schema(con, path)
    except duckdb.Error as e:
        con.close()
        raise StoreError(f"case store {path}", engine_message(e)) from None
    except StoreError:
        con.close()
        raise
    return con


def another_connection(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A second connection to the same open store, with the same session settings.

    It has its own transactions and temp tables; settings of the database (memory limit,
    threads, spill folder) are shared, the session's (time zone) are set here.
    """
    other = con.cursor()
    _session(other)
    return other


def _session(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("set TimeZone = 'UTC'")


def _configure(con: duckdb.DuckDBPyConnection, options: StoreOptions) -> None:
    _session(con)
    spill = spill_dir(options.path)
    with contextlib.suppress(OSError):
        spill.mkdir(mode=0o700)
        os.chmod(spill, 0o700)  # mkdir's mode is filtered by the umask; chmod's is not
    if spill.is_dir():
        con.execute("set temp_directory = $d", {"d": str(spill)})
    if options.memory_limit:
        try:
            con.execute("set memory_limit = $m", {"m": options.memory_limit})
        except duckdb.Error as e:
            raise UsageError("--memory-limit", engine_message(e)) from None
    if options.threads:
        con.execute("set threads = $t", {"t": int(options.threads)})


def ensure_dedup_keys(con: duckdb.DuckDBPyConnection) -> None:
    """Give every stored event its DKEY: stores from before it, rows written by other
    means, and a store whose keys another DuckDB build hashed differently."""
    has = con.execute(
        "select count(*) from duckdb_columns() where table_name = 'events' and column_name = 'dkey'"
    ).fetchone()
    if not has or not has[0]:
        con.execute("alter table events add column dkey ubigint")
    row = con.execute(_DKEY_PROBE).fetchone()
    probe = str(row[0]) if row else ""
    stored = con.execute("select value from meta where key = 'dkey_hash'").fetchone()
    if stored is not None and stored[0] != probe:
        con.execute(f"update events set dkey = {DKEY}")  # noqa: S608 - a fixed expression
    else:
        # Row groups without NULLs are skipped by their statistics: cheap on a full store.
        con.execute(f"update events set dkey = {DKEY} where dkey is null")  # noqa: S608
    con.execute("insert or replace into meta values ('dkey_hash', $v)", {"v": probe})


def _check_file_kind(path: Path, read_only: bool) -> None:
    """A path that exists must be a DuckDB database file (DuckDB's own errors for a SQLite
    or Parquet file, a FIFO or a device say something else). An empty file (`touch`,
    `mktemp`) is no store yet: written to, it is made one."""
    try:
        st = path.stat()
    except OSError:
        return  # missing (or unreachable): the callers say so
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"case store {path}", "is not a regular file")
    if st.st_size == 0:
        if read_only:
            raise StoreError(
                f"case store {path}", "is an empty file", "Run `forensics ingest` first"
            )
        with contextlib.suppress(OSError):
            path.unlink()  # DuckDB opens no empty file; nothing is lost
        return
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as e:
        raise StoreError(f"case store {path}", e.strerror or type(e).__name__) from None
    if head[8:12] != b"DUCK":
        raise StoreError(
            f"case store {path}",
            "is not a DuckDB database file",
            "Pass a forensics case store, or a new file, to --db",
        )


def _check_not_foreign(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse to write into another tool's database: a file with tables but not ours."""
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    if tables and not {"meta", "sources"} <= tables:
        raise StoreError(
            f"case store {path}",
            "not a forensics case store (it holds other tables); nothing was written to it",
            "Pass a new file, or a store forensics wrote, to --db",
        )


def _check_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    if not {"meta", "sources", "events", "grants", "accounts", "rejects"} <= tables:
        raise StoreError(f"case store {path}", "not a forensics case store")


def _io_error(path: Path, e: duckdb.Error) -> StoreError:
    msg = str(e)
    if "lock" in msg.lower():
        pid = _PID.search(msg)
        holder = f" (held by PID {pid.group(1)})" if pid else ""
        return StoreInUseError(
            f"case store {path}",
            f"store is in use by another process{holder}",
            "Wait for it to finish, then try again",
        )
    return StoreError(f"case store {path}", engine_message(e))


_UNITS = {
    "bytes": 1, "byte": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "pib": 2**50,
}  # fmt: skip


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int | None:
    """DuckDB's memory limit in bytes (it shows it rounded, e.g. '3.7 GiB'); None when it
    cannot be read as a size."""
    row = con.execute("select current_setting('memory_limit')").fetchone()
    m = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", str(row[0]) if row else "")
    if m is None or m.group(2).lower() not in _UNITS:
        return None
    try:
        limit = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    except ValueError:
        return None
    return limit if limit > 0 else None


_CTRL_C = threading.Event()


def remember_interrupts() -> None:
    """Have Ctrl-C (SIGINT) remembered by the process as well as raised.

    DuckDB runs Python's handler when the signal lands inside a query, then reports the
    interrupt as that query's error (RuntimeError "Query interrupted"): an error that a
    file's error handling would take for the file failing, or a cleanup statement's
    `suppress` would drop. What was pressed is known from `interrupted()` whatever became
    of the exception. Call from the main thread; Python's KeyboardInterrupt is kept.
    """

    def handler(signum: int, frame: object) -> None:
        _CTRL_C.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


def interrupted() -> bool:
    """Whether Ctrl-C was pressed since remember_interrupts()."""
    return _CTRL_C.is_set()


def is_interrupt(e: BaseException) -> bool:
    """Ctrl-C, as Python raises it or as DuckDB reports it when it lands inside a query,
    or any error that follows a Ctrl-C (which DuckDB may have turned into it)."""
    if isinstance(e, (KeyboardInterrupt, duckdb.InterruptException)) or interrupted():
        return True
    return type(e) is RuntimeError and str(e) == "Query interrupted"


def engine_error(what: str, e: BaseException) -> StoreError:
    """Wrap a duckdb.Error at the boundary into a domain error (no record contents)."""
    return StoreError(what, engine_message(e))
