"""Tiny hand-built incidents: rows inserted straight into a case store, and SPEC §5 in plain Python.

`Incident` writes events, grants and accounts into a store made by `open_store(...,
read_only=False)` (no ingest involved), numbering records per kind like ingest would.
`model_figures` is an independent, deliberately naive reading of SPEC §5 to compare with SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from forensics.store import StoreOptions, open_store
from forensics.window import Window, format_instant

BASE = datetime(2024, 2, 16, 9, 0, tzinfo=timezone.utc)
ANALYSED = ("thumbnail_delivered", "thumbnail_tapped", "video_played")
EVENTS_SOURCE, GRANTS_SOURCE, ACCOUNTS_SOURCE = 1, 2, 3


def at(minutes: float = 0, seconds: float = 0) -> datetime:
    """BASE (2024-02-16T09:00:00Z) plus an offset."""
    return BASE + timedelta(minutes=minutes, seconds=seconds)


def window(start_min: float, end_min: float) -> Window:
    return Window(at(start_min), at(end_min))


@dataclass
class Event:
    ts: datetime
    action: str
    user_id: str
    device_id: str | None
    event_id: str | None
    request_id: str | None = None
    status: int | None = None
    extra: dict[str, Any] | None = None
    source_id: int = EVENTS_SOURCE
    source_record: int = 0


@dataclass
class Grant:
    device_id: str
    user_id: str
    role: str = "owner"
    valid_from: datetime | None = None
    valid_to: datetime | None = None


@dataclass
class Incident:
    """Rows for one case store; `write(path)` creates it, `insert(con)` adds to an open one."""

    events: list[Event] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)
    accounts: list[tuple[str, str | None, str | None, str | None, str | None]] = field(
        default_factory=list
    )

    def event(
        self,
        ts: datetime,
        action: str,
        user_id: str,
        device_id: str | None,
        event_id: str | None,
        *,
        request_id: str | None = "auto",
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Event:
        n = len(self.events) + 1
        e = Event(
            ts,
            action,
            user_id,
            device_id,
            event_id,
            f"r{n}" if request_id == "auto" else request_id,
            status,
            extra,
            EVENTS_SOURCE,
            n,
        )
        self.events.append(e)
        return e

    def deliver(self, ts: datetime, user: str, device: str, event: str, **kw: Any) -> Event:
        return self.event(ts, "thumbnail_delivered", user, device, event, **kw)

    def tap(self, ts: datetime, user: str, device: str, event: str, **kw: Any) -> Event:
        return self.event(ts, "thumbnail_tapped", user, device, event, **kw)

    def play(self, ts: datetime, user: str, device: str, event: str, **kw: Any) -> Event:
        return self.event(ts, "video_played", user, device, event, **kw)

    def grant(
        self,
        device: str,
        user: str,
        role: str = "owner",
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
    ) -> Grant:
        g = Grant(device, user, role, valid_from, valid_to)
        self.grants.append(g)
        return g

    def account(
        self,
        user: str,
        email: str | None = None,
        name: str | None = None,
        locale: str | None = None,
        country: str | None = None,
    ) -> None:
        self.accounts.append((user, email, name, locale, country))

    def write(self, path: Path) -> Path:
        con = open_store(StoreOptions(path), read_only=False)
        try:
            self.insert(con)
        finally:
            con.close()
        return path

    def insert(self, con: duckdb.DuckDBPyConnection) -> None:
        """Insert every row into an open, writable store (sources rows included)."""
        con.execute("begin")
        for sid, kind, rows in (
            (EVENTS_SOURCE, "events", len(self.events)),
            (GRANTS_SOURCE, "grants", len(self.grants)),
            (ACCOUNTS_SOURCE, "accounts", len(self.accounts)),
        ):
            con.execute(
                "insert into sources (source_id, path, kind, format, size_bytes, sha256, "
                "rows_read, rows_loaded, rows_rejected, rows_duplicate, ingested_at, "
                "tool_version) values ($id, $path, $kind, 'jsonl', 0, $sha, $n, $n, 0, 0,"
                " now(), 'test') on conflict do nothing",
                {"id": sid, "path": f"{kind}.jsonl", "kind": kind, "sha": f"{sid:064x}", "n": rows},
            )
        if self.events:
            con.executemany(
                "insert into events (ts, action, user_id, device_id, event_id, request_id, "
                # json(): extra as ingest writes it (compact; numbers as DuckDB writes them)
                "status, extra, source_id, source_record) "
                "values (?, ?, ?, ?, ?, ?, ?, json(?), ?, ?)",
                [
                    (
                        e.ts,
                        e.action,
                        e.user_id,
                        e.device_id,
                        e.event_id,
                        e.request_id,
                        e.status,
                        None if e.extra is None else json.dumps(e.extra),
                        e.source_id,
                        e.source_record,
                    )
                    for e in self.events
                ],
            )
        if self.grants:
            con.executemany(
                "insert into grants values (?, ?, ?, ?, ?, ?, ?)",
                [
                    (g.device_id, g.user_id, g.role, g.valid_from, g.valid_to, GRANTS_SOURCE, i)
                    for i, g in enumerate(self.grants, 1)
                ],
            )
        if self.accounts:
            con.executemany(
                "insert into accounts values (?, ?, ?, ?, ?, ?, ?)",
                [(*a, ACCOUNTS_SOURCE, i) for i, a in enumerate(self.accounts, 1)],
            )
        con.execute("commit")


def clear_store(con: duckdb.DuckDBPyConnection) -> None:
    """Empty the canonical tables of an open, writable store (to reuse it between examples)."""
    for table in ("events", "grants", "accounts", "sources"):
        con.execute(f"delete from {table}")  # noqa: S608 - fixed table names


# --- SPEC §5 in plain Python --------------------------------------------------------------


def authorized(grants: Iterable[Grant], device: str | None, user: str, t: datetime) -> bool:
    return any(
        g.device_id == device
        and g.user_id == user
        and (g.valid_from is None or g.valid_from <= t)
        and (g.valid_to is None or t < g.valid_to)
        for g in grants
    )


def is_access(e: Event) -> bool:
    return e.action in ANALYSED and (e.status is None or 200 <= e.status <= 299)


def model_cross_account(
    events: list[Event], grants: list[Grant], w: Window
) -> tuple[list[Event], list[Event], list[Event]]:
    """(cross-account deliveries, taps, plays) by SPEC §5's words."""
    cad = [
        e
        for e in events
        if is_access(e)
        and e.action == "thumbnail_delivered"
        and w.contains(e.ts)
        and not authorized(grants, e.device_id, e.user_id, e.ts)
    ]

    def linked(action: str) -> list[Event]:
        return [
            e
            for e in events
            if is_access(e)
            and e.action == action
            and not authorized(grants, e.device_id, e.user_id, e.ts)
            and any(
                d.user_id == e.user_id and d.event_id == e.event_id and d.ts <= e.ts for d in cad
            )
        ]

    return cad, linked("thumbnail_tapped"), linked("video_played")


def model_owners(grants: list[Grant], delivery: Event) -> list[str]:
    return sorted(
        {
            g.user_id
            for g in grants
            if g.role == "owner" and authorized([g], delivery.device_id, g.user_id, delivery.ts)
        }
    )


def model_figures(events: list[Event], grants: list[Grant], w: Window) -> dict[str, Any]:
    """Every key of `exposure --json` (SPEC §5), computed naively."""
    cad, taps, plays = model_cross_account(events, grants, w)
    linked = {id(e) for e in taps + plays}
    unlinked = [
        e
        for e in events
        if is_access(e)
        and e.action in ("thumbnail_tapped", "video_played")
        and w.contains(e.ts)
        and not authorized(grants, e.device_id, e.user_id, e.ts)
        and id(e) not in linked
    ]
    outside = [
        e
        for e in events
        if is_access(e)
        and e.action == "thumbnail_delivered"
        and not w.contains(e.ts)
        and not authorized(grants, e.device_id, e.user_id, e.ts)
    ]
    minutes: dict[datetime, list[Event]] = {}
    for d in cad:
        minutes.setdefault(d.ts.replace(second=0, microsecond=0), []).append(d)
    return {
        "window": w.to_json(),
        "deliveries": sum(
            1
            for e in events
            if is_access(e) and e.action == "thumbnail_delivered" and w.contains(e.ts)
        ),
        "cross_account_deliveries": len(cad),
        "recipients": len({d.user_id for d in cad}),
        "cross_account_taps": len(taps),
        "tappers": len({e.user_id for e in taps}),
        "cross_account_plays": len(plays),
        "video_viewers": len({e.user_id for e in plays}),
        "exposed_devices": len({d.device_id for d in cad}),
        "exposed_owners": len({o for d in cad for o in model_owners(grants, d)}),
        "unlinked_unauthorized_accesses": len(unlinked),
        "cross_account_deliveries_outside_window": len(outside),
        "timeline": [
            {
                "minute": format_instant(m),
                "cross_account_deliveries": len(ds),
                "recipients": len({d.user_id for d in ds}),
            }
            for m, ds in sorted(minutes.items())
        ],
    }
