"""What the store knows about its evidence: the sources table, rejects, re-verification."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from forensics.ingest import sha256_file
from forensics.store import StoreOptions, engine_error, open_store


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def list_sources(store: StoreOptions) -> list[dict[str, Any]]:
    """The sources table (SPEC §3), oldest first; times as ISO 8601 text."""
    con = open_store(store, read_only=True)
    try:
        # A store written before sources.notes existed has none to show.
        has_notes = con.execute(
            "select 1 from duckdb_columns() where table_name = 'sources' and column_name = 'notes'"
        ).fetchall()
        rows = _rows(
            con,
            "select source_id, path, kind, format, size_bytes, sha256, rows_read, rows_loaded, "  # noqa: S608, E501 - one of two fixed texts
            "rows_rejected, rows_duplicate, "
            "strftime(ingested_at, '%Y-%m-%dT%H:%M:%S.%fZ') as ingested_at, tool_version, "
            "assume_tz, map_sha256, notes from "
            + ("sources" if has_notes else "(select *, null::varchar as notes from sources)")
            + " order by source_id",
            {},
        )
    except duckdb.Error as e:
        raise engine_error("sources", e) from None
    finally:
        con.close()
    return rows


def list_rejects(store: StoreOptions, limit: int) -> list[dict[str, Any]]:
    """Rejected records with file, record number, reason and raw text, in file order."""
    con = open_store(store, read_only=True)
    try:
        return _rows(
            con,
            "select s.path as source_file, r.source_record, r.reason, r.raw "
            "from rejects r join sources s using (source_id) "
            "order by r.source_id, r.source_record limit $limit",
            {"limit": limit},
        )
    except duckdb.Error as e:
        raise engine_error("rejects", e) from None
    finally:
        con.close()


@dataclass(frozen=True)
class RejectsPage:
    """The first rejected records (in file order) and how many the store holds in all."""

    rows: list[dict[str, Any]]
    total: int


def rejects_page(store: StoreOptions, limit: int) -> RejectsPage:
    """Up to `limit` rejected records, and the total count, for "N of M shown"."""
    rows = list_rejects(store, limit)
    con = open_store(store, read_only=True)
    try:
        row = con.execute("select count(*) from rejects").fetchone()
    except duckdb.Error as e:
        raise engine_error("rejects", e) from None
    finally:
        con.close()
    return RejectsPage(rows, int(row[0]) if row else 0)


def verify_sources(store: StoreOptions) -> list[dict[str, Any]]:
    """Re-hash every source path: status ok, changed or missing for each."""
    con = open_store(store, read_only=True)
    try:
        rows = _rows(con, "select path, sha256 from sources order by source_id", {})
    except duckdb.Error as e:
        raise engine_error("verify", e) from None
    finally:
        con.close()
    out = []
    for r in rows:
        path = Path(r["path"])
        if not path.is_file():
            status = "missing"
        else:
            try:
                status = "ok" if sha256_file(path) == r["sha256"] else "changed"
            except OSError:
                status = "missing"
        out.append({"path": r["path"], "sha256": r["sha256"], "status": status})
    return out
