"""What a case store holds: `forensics status`, and the context around zero findings.

`describe_store` answers "what is in this case?" (files and rows per kind, the accounting
totals, the time range of events and grants, size, path, the tool versions that wrote it).
`window_coverage` says how many events a window holds and which range the events cover, so
that a window in the wrong year is never mistaken for "nobody affected". Nothing prints.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from forensics.engines.base import Engine, EngineOptions, open_case
from forensics.queries import query_rows
from forensics.store import StoreOptions, cache_dir, key_dir, open_store
from forensics.window import Window, format_instant

KINDS = ("events", "grants", "accounts")
_COUNTS = ("files", "size_bytes", "rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")


def _instant(value: datetime | None) -> str | None:
    return None if value is None else format_instant(value)


@dataclass(frozen=True)
class KindTotals:
    """The files of one kind and how their rows were accounted for (SPEC §3)."""

    kind: str
    files: int = 0
    size_bytes: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    last_ingested_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {k: getattr(self, k) for k in _COUNTS}
        data["last_ingested_at"] = _instant(self.last_ingested_at)
        return data


@dataclass(frozen=True)
class EventRange:
    """How many events are stored, and the first and last event time (None when empty)."""

    events: int
    first: datetime | None
    last: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "first": _instant(self.first), "last": _instant(self.last)}

    def __str__(self) -> str:
        if not self.events or self.first is None or self.last is None:
            return "no events"
        return f"{format_instant(self.first)} to {format_instant(self.last)}"


@dataclass(frozen=True)
class GrantRange:
    """How many grants are stored, their earliest start and latest end, the open-ended ones."""

    grants: int
    first_valid_from: datetime | None
    last_valid_to: datetime | None
    open_start: int
    open_end: int

    def to_json(self) -> dict[str, Any]:
        return {
            "grants": self.grants,
            "first_valid_from": _instant(self.first_valid_from),
            "last_valid_to": _instant(self.last_valid_to),
            "open_start": self.open_start,
            "open_end": self.open_end,
        }


@dataclass(frozen=True)
class ToolVersion:
    version: str
    files: int
    first_ingested_at: datetime | None
    last_ingested_at: datetime | None


@dataclass(frozen=True)
class StoreStatus:
    """What `forensics status` shows."""

    path: Path | str  # a store's file, or a case lake (a folder or a URI)
    size_bytes: int | None  # None: a lake on a URI, not measured
    kinds: tuple[KindTotals, ...]
    events: EventRange
    grants: GrantRange
    tool_versions: tuple[ToolVersion, ...]
    what: str = "case store"  # or "case lake"

    def totals(self) -> KindTotals:
        sums = {k: sum(getattr(t, k) for t in self.kinds) for k in _COUNTS}
        last = max((t.last_ingested_at for t in self.kinds if t.last_ingested_at), default=None)
        return KindTotals("total", **sums, last_ingested_at=last)

    @property
    def empty(self) -> bool:
        return self.totals().files == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "kinds": {t.kind: t.to_json() for t in self.kinds},
            "totals": self.totals().to_json(),
            "events": self.events.to_json(),
            "grants": self.grants.to_json(),
            "tool_versions": [
                {
                    "version": v.version,
                    "files": v.files,
                    "first_ingested_at": _instant(v.first_ingested_at),
                    "last_ingested_at": _instant(v.last_ingested_at),
                }
                for v in self.tool_versions
            ],
        }


@dataclass(frozen=True)
class WindowCoverage:
    """How many events a window holds, beside the range of all stored events."""

    window: Window
    in_window: int
    data: EventRange

    @property
    def empty_store(self) -> bool:
        return self.data.events == 0

    @property
    def holds_no_events(self) -> bool:
        return self.in_window == 0

    def where(self) -> str:
        """Where the window lies against the data: before, after, between, inside or empty."""
        first, last = self.data.first, self.data.last
        if self.empty_store or first is None or last is None:
            return "empty"
        if self.window.end <= first:
            return "before"
        if self.window.start > last:
            return "after"
        return "between" if self.holds_no_events else "inside"


_OFFSET = re.compile(r"[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$")


def window_without_offset(text: str) -> bool:
    """True when START, or END given as an instant, has no UTC offset (it is read as UTC)."""
    parts = text.strip().split("/")
    if len(parts) != 2 or text.strip().startswith("@"):
        return False
    return any(
        part.strip() and part.strip()[:1] not in "Pp" and not _OFFSET.search(part.strip())
        for part in parts
    )


def event_range(con: duckdb.DuckDBPyConnection | Engine) -> EventRange:
    row = query_rows(con, "event_time_range")[0]
    return EventRange(int(row["events"]), row["first_ts"], row["last_ts"])


def window_coverage(con: duckdb.DuckDBPyConnection | Engine, window: Window) -> WindowCoverage:
    """The events inside `window` (any action) and the range of every stored event (on a
    store, or a case lake through its engine)."""
    params = {"window_start": window.start, "window_end": window.end}
    row = query_rows(con, "window_event_count", params)[0]
    return WindowCoverage(window, int(row["events"]), event_range(con))


def describe_store(options: StoreOptions, engine: EngineOptions | None = None) -> StoreStatus:
    """Open the store read-only (or the case lake through `engine`) and describe it. Raises
    StoreError."""
    with open_case(options, engine) as con:
        by_kind = {r["kind"]: r for r in query_rows(con, "sources_by_kind")}
        kinds = tuple(
            KindTotals(
                kind,
                **{k: int(by_kind[kind][k] or 0) for k in _COUNTS},
                last_ingested_at=by_kind[kind]["last_ingested_at"],
            )
            if kind in by_kind
            else KindTotals(kind)
            for kind in (*KINDS, *sorted(set(by_kind) - set(KINDS)))
        )
        g = query_rows(con, "grant_time_range")[0]
        grants = GrantRange(
            int(g["grants"]),
            g["first_valid_from"],
            g["last_valid_to"],
            int(g["open_start"] or 0),
            int(g["open_end"] or 0),
        )
        versions = tuple(
            ToolVersion(
                str(v["tool_version"]),
                int(v["files"]),
                v["first_ingested_at"],
                v["last_ingested_at"],
            )
            for v in query_rows(con, "tool_versions")
        )
        events = event_range(con)
    if engine is not None and engine.lake is not None:
        return StoreStatus(
            engine.lake, lake_size(engine.lake), kinds, events, grants, versions, "case lake"
        )
    return StoreStatus(options.path, store_size(options.path), kinds, events, grants, versions)


def read_event_range(options: StoreOptions) -> EventRange:
    """The range of stored events, from the store opened read-only. Raises StoreError."""
    con = open_store(options, read_only=True)
    try:
        return event_range(con)
    finally:
        con.close()


def lake_size(lake: str) -> int | None:
    """Bytes of a local case lake's files (None for a lake on a URI: not measured)."""
    from forensics.lake import is_remote

    if is_remote(lake):
        return None
    total = 0
    for dirpath, _, filenames in os.walk(lake.removeprefix("file://")):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


def store_size(path: Path) -> int:
    """Bytes on disk: the store file, its write-ahead log, its key index (`STORE.keys/`,
    8 bytes a stored event) and the analysis results kept beside it (`STORE.cache/`). Not
    the spill folder `STORE.tmp/`, which holds nothing between commands."""
    beside: list[Path] = []
    for folder in (key_dir(path), cache_dir(path)):
        with contextlib.suppress(OSError):  # none yet, or deleted
            beside += [folder / name for name in os.listdir(folder)]
    total = 0
    for p in (path, path.with_name(path.name + ".wal"), *beside):
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total
