"""What the case knows about its evidence: the sources table, rejects, re-verification.

Each reads a case store, or a case lake through an engine (`engine`, SPEC §7-§8), with the
same named queries; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from forensics.engines.base import EngineOptions, open_case
from forensics.ingest import sha256_file
from forensics.queries import run_query
from forensics.store import StoreOptions, engine_error


def _iso(value: Any) -> Any:
    """A time as ISO 8601 UTC text with microseconds (`2024-02-16T09:00:00.000000Z`)."""
    if isinstance(value, datetime):
        utc = value.astimezone(timezone.utc)
        return f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%S.%fZ")
    return value


def _notes(con: Any) -> dict[int, str | None]:
    """sources.notes by source id, on a store that has the column (a lake has none)."""
    if not isinstance(con, duckdb.DuckDBPyConnection):
        return {}
    try:
        if not con.execute(
            "select 1 from duckdb_columns() where table_name = 'sources' and column_name = 'notes'"
        ).fetchall():
            return {}
        return dict(con.execute("select source_id, notes from sources").fetchall())
    except duckdb.Error as e:
        raise engine_error("sources", e) from None


def list_sources(store: StoreOptions, engine: EngineOptions | None = None) -> list[dict[str, Any]]:
    """The sources table (SPEC §3), oldest first; times as ISO 8601 text."""
    with open_case(store, engine) as con:
        rows: list[dict[str, Any]] = run_query(con, "ingested_sources").to_pylist()
        notes = _notes(con)
    for r in rows:
        r["ingested_at"] = _iso(r["ingested_at"])
        r["notes"] = notes.get(r["source_id"])
    return rows


@dataclass(frozen=True)
class RejectsPage:
    """The first rejected records (in file order) and how many the case holds in all."""

    rows: list[dict[str, Any]]
    total: int


def rejects_page(
    store: StoreOptions, limit: int, engine: EngineOptions | None = None
) -> RejectsPage:
    """Up to `limit` rejected records, and the total count, for "N of M shown"."""
    with open_case(store, engine) as con:
        rows = run_query(con, "rejected_records", {"limit": limit}).to_pylist()
        total = run_query(con, "rejects_total").to_pylist()[0]["rejects"]
    return RejectsPage(rows, int(total or 0))


def list_rejects(
    store: StoreOptions, limit: int, engine: EngineOptions | None = None
) -> list[dict[str, Any]]:
    """Rejected records with file, record number, reason and raw text, in file order."""
    return rejects_page(store, limit, engine).rows


def verify_sources(
    store: StoreOptions, engine: EngineOptions | None = None
) -> list[dict[str, Any]]:
    """Re-hash every source path: status ok, changed, missing or unreadable (there, but the
    system will not read it) for each (paths as recorded at ingest, read on this machine)."""
    with open_case(store, engine) as con:
        rows = run_query(con, "input_files").to_pylist()
    out = []
    for r in rows:
        path = Path(r["path"])
        try:
            if not path.is_file():
                status = "missing"
            else:
                status = "ok" if sha256_file(path) == r["sha256"] else "changed"
        except OSError:  # the file, or a folder on its path (stat fails: EACCES)
            status = "unreadable"
        out.append({"path": r["path"], "sha256": r["sha256"], "status": status})
    return out
