"""Small helpers for ingest tests: write evidence files, ingest them, read the store back."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from forensics.ingest import IngestOptions, IngestReport, ingest
from forensics.store import StoreOptions


def write_ndjson(path: Path, records: list[Any], *, gz: bool = False) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_parquet(path: Path, table: pa.Table | dict[str, Any], **kw: Any) -> Path:
    if isinstance(table, dict):
        table = pa.table(table)
    pq.write_table(table, path, **kw)
    return path


def run(db: Path, *paths: Path | str, **options: Any) -> IngestReport:
    return ingest(StoreOptions(db), [str(p) for p in paths], IngestOptions(**options))


def rows(db: Path, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def event(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": "2024-02-16T09:00:00Z",
        "action": "thumbnail_delivered",
        "user_id": "u1",
        "device_id": "d1",
        "event_id": "e1",
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def accounted(report: IngestReport) -> bool:
    return all(
        f.rows_read == f.rows_loaded + f.rows_rejected + f.rows_duplicate for f in report.files
    )
