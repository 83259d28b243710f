"""A hand-made incident as evidence files, ingested the way a case grows: grants and accounts
with the first batch of events, later event files in later ingest runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from forensics.store import StoreOptions, open_store
from tests.helpers.incident import Event, Incident
from tests.helpers.ingest import run, write_ndjson


def _event_record(e: Event) -> dict[str, Any]:
    record: dict[str, Any] = {
        "ts": e.ts.isoformat(),
        "action": e.action,
        "user_id": e.user_id,
        "device_id": e.device_id,
        "event_id": e.event_id,
    }
    if e.request_id is not None:
        record["request_id"] = e.request_id
    if e.status is not None:
        record["status"] = e.status
    return record


def ingest_events(db: Path, folder: Path, name: str, events: Sequence[Event]) -> None:
    """Write `events` to folder/name.ndjson and ingest it as events (nothing when empty)."""
    if not events:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = write_ndjson(folder / f"{name}.ndjson", [_event_record(e) for e in events])
    report = run(db, path, kind="events")
    assert all(f.error is None for f in report.files), [f.error for f in report.files]


def ingest_reference(db: Path, folder: Path, inc: Incident) -> None:
    """Create the store; write and ingest the incident's grants and accounts."""
    open_store(StoreOptions(db), read_only=False).close()
    folder.mkdir(parents=True, exist_ok=True)
    grants = [
        {
            k: v
            for k, v in {
                "device_id": g.device_id,
                "user_id": g.user_id,
                "role": g.role,
                "valid_from": g.valid_from.isoformat() if g.valid_from else None,
                "valid_to": g.valid_to.isoformat() if g.valid_to else None,
            }.items()
            if v is not None
        }
        for g in inc.grants
    ]
    accounts = [
        {
            k: v
            for k, v in {"user_id": a[0], "email": a[1], "name": a[2], "locale": a[3]}.items()
            if v is not None
        }
        for a in inc.accounts
    ]
    for kind, records in (("grants", grants), ("accounts", accounts)):
        if records:
            path = write_ndjson(folder / f"{kind}.ndjson", records)
            report = run(db, path, kind=kind)
            assert all(f.error is None for f in report.files), [f.error for f in report.files]


def part(inc: Incident, events: Sequence[Event]) -> Incident:
    """The same incident with only `events` (what a store holds after some of the files)."""
    return Incident(events=list(events), grants=inc.grants, accounts=inc.accounts)
