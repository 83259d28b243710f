"""A window's unauthorized accesses, kept beside the case store for the next command.

`exposure`, `notify` and `report` each begin with the same anti join of every access with
every grant (queries/unauthorized_rows.sql, then unauthorized_accesses.sql): at 100M events
it is most of their time, and its result is small (the accesses nobody was authorized for,
a few per cross-account delivery). The first of these commands on a store and window start
keeps that result in `STORE.cache/`, private like the store; the next one reads it back
when, and only when, nothing it was computed from has changed. The entry's name is a hash
of all of that:
- the store file and its write-ahead log: device, inode, size and modification time, read
  while this read-only connection holds the store (no writer can have it open);
- what was ingested: each `sources` row's id, SHA-256, counts and time; the numbers of
  events and grants; the store's id, schema version and key hash;
- the text of both queries, the DuckDB version, and this module's FORMAT;
- the window's start (taps and plays before it are left out of the join; the window's end
  is applied by the queries after it).
So a changed store or query gives another name, and an entry is never read for a state it
was not made in. Failing to read or write an entry only means the join is run; a store
opened to write (ingest) loses the folder (forensics.store.open_store). Lakes (engines) are
not cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from forensics.queries import get_query
from forensics.sqltext import literal
from forensics.store import cache_dir
from forensics.window import Window

FORMAT = 1
QUERIES = ("unauthorized_rows", "unauthorized_accesses")
TABLE = "unauthorized_accesses"  # the temp table kept (what the later queries read)
KEEP = 8  # entries kept for one store state (window starts), the most recent


@dataclass(frozen=True)
class Entry:
    """Where the unauthorized accesses of one store state and window start are kept."""

    con: duckdb.DuckDBPyConnection  # the store's, read-only
    folder: Path
    state: str  # hash of the store's state, the queries and the versions
    start: str  # hash of the window's start

    @property
    def path(self) -> Path:
        return self.folder / f"{self.state}-{self.start}.parquet"

    def load(self) -> bool:
        """Make the temp table from the entry; False (nothing made) when there is none or
        it cannot be read (then it is removed)."""
        if not self.path.is_file():
            return False
        try:
            self.con.execute(
                f"create or replace temp table {TABLE} as "  # noqa: S608 - constant and a quoted path
                f"select * from read_parquet({literal(str(self.path))})"
            )
        except duckdb.Error:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        return True

    def save(self) -> None:
        """Write the temp table as the entry (written whole, then renamed into place), and
        remove the entries of other store states. Nothing is raised: without the entry the
        next command runs the join."""
        tmp = self.folder / f".{self.path.name}.{os.getpid()}.tmp"
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            os.chmod(self.folder, 0o700)  # mkdir's mode is filtered by the umask
            self.con.execute(f"copy {TABLE} to {literal(str(tmp))} (format parquet)")
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
            self._prune()
        except (OSError, duckdb.Error):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _prune(self) -> None:
        mine: list[tuple[int, Path]] = []
        for p in self.folder.iterdir():
            if p.name.startswith("."):
                continue  # an entry another command is writing
            if p.name.startswith(f"{self.state}-"):
                mine.append((p.stat().st_mtime_ns, p))
            else:
                p.unlink()  # made in another state of the store: never read again
        for _, p in sorted(mine, reverse=True)[KEEP:]:
            p.unlink()


def entry(con: duckdb.DuckDBPyConnection, window: Window) -> Entry | None:
    """The entry for this store's present state and `window`'s start; None unless `con`
    has a store file open read-only whose state can be read."""
    row = con.execute(
        "select path, readonly from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    if not row or not row[0] or not row[1]:
        return None  # not a file, or open to write: its state can change under the entry
    store = Path(str(row[0]))
    try:
        files = [_stat(store), _stat(Path(f"{store}.wal"))]
    except OSError:
        return None
    if files[0] is None:
        return None
    tables = con.execute(
        "select (select count(*) from events), (select count(*) from grants), "
        "(select count(*) from sources), "
        "(select md5(coalesce(string_agg(concat_ws('|', source_id, sha256, rows_read, "
        "rows_loaded, rows_rejected, rows_duplicate, ingested_at), ',' order by source_id), "
        "'')) from sources), "
        "(select string_agg(key || '=' || value, ',' order by key) from meta "
        "where key in ('store_id', 'schema_version', 'dkey_hash'))"
    ).fetchone()
    state = {
        "format": FORMAT,
        "files": files,
        "tables": [str(v) for v in tables or ()],
        "duckdb": duckdb.__version__,
        "queries": [get_query(n).sql for n in QUERIES],
    }
    return Entry(
        con,
        cache_dir(store),
        _digest(json.dumps(state, sort_keys=True))[:32],
        _digest(window.start.isoformat())[:16],
    )


def _stat(path: Path) -> list[int] | None:
    try:
        s = path.stat()
    except FileNotFoundError:
        return None
    return [s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
