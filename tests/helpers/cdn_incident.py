"""One incident in two forms: canonical JSON lines, and what a CDN and two databases hand a
responder — CloudFront standard logs (W3C, gzip, one file per edge and time slice) and CSV
exports of grants and accounts (names with commas, quotes and line breaks) — to be read
through examples/maps/cloudfront.toml.

Both forms are written from the same records: the canonical tables of a store holding an
incident (e.g. `forensics sample`, ingested). CloudFront logs times to the second, so both
forms carry times truncated to the second.

Run as a script for the full-size figures:
    python -m tests.helpers.cdn_incident STORE.duckdb OUT_DIR [FILES]
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb

# The 33 CloudFront columns, as the example log's #Fields: directive names them.
_EXAMPLE = next((Path(__file__).resolve().parents[2] / "examples" / "cloudfront").glob("*.log"))
FIELDS = next(
    line
    for line in _EXAMPLE.read_text(encoding="utf-8").splitlines()
    if line.startswith("#Fields:")
).split()[1:]
VERB = {
    "thumbnail_delivered": "thumbnail.jpg",
    "thumbnail_tapped": "open",
    "video_played": "clip.m3u8",
}
EDGES = ("FRA56-P1", "LHR61-C2", "IAD89-P3", "NRT57-C1", "SYD1-C4", "GRU3-P2")
# Names a CSV export must quote; one in every HOSTILE_EVERY accounts gets one (in both forms).
HOSTILE_NAMES = (
    "Doe, Jane",
    'Marie "Mimi" Curie',
    "Line one\nline two",
    'Two\r\nlines, "q"',
    '=HYPERLINK("http://x")',
    ",",
    '"',
    "\n",
    " ",
    "Ünïcødé, 名前 \u202e",
)
HOSTILE_EVERY = 7


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.execute(sql).fetchall()


def _second(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(timezone.utc).replace(microsecond=0)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pg(t: datetime | None) -> str:
    """timestamptz as PostgreSQL's COPY writes it (`+00`, fraction only when there is one)."""
    if t is None:
        return ""
    t = t.astimezone(timezone.utc)
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    return t.strftime("%Y-%m-%d %H:%M:%S") + frac + "+00"


def read_incident(store: Path, every: int = 1) -> dict[str, list[tuple[Any, ...]]]:
    """The store's canonical rows, in ingest order, times truncated to the second; with
    `every` > 1, only the events of about one user in `every` (a smaller incident)."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        events = _rows(
            con,
            "select ts, action, user_id, device_id, event_id, request_id, "
            "status from events order by ts, source_id, source_record",
        )
        grants = _rows(
            con,
            "select device_id, user_id, role, valid_from, valid_to from grants "
            "order by source_id, source_record",
        )
        accounts = _rows(
            con,
            "select user_id, email, name, locale, country from accounts "
            "order by source_id, source_record",
        )
    finally:
        con.close()
    events = [
        (_second(e[0]), *e[1:]) for e in events if zlib.crc32(e[2].encode("utf-8")) % every == 0
    ]
    grants = [(*g[:3], _second(g[3]), _second(g[4])) for g in grants]
    # A validity that truncation made empty would reject in both forms: keep it valid.
    grants = [g for g in grants if g[3] is None or g[4] is None or g[3] < g[4]]
    accounts = [
        (
            a[0],
            a[1],
            HOSTILE_NAMES[(i // HOSTILE_EVERY) % len(HOSTILE_NAMES)]
            if i % HOSTILE_EVERY == 0
            else a[2],
            a[3],
            a[4],
        )
        for i, a in enumerate(accounts)
    ]
    return {"events": events, "grants": grants, "accounts": accounts}


def write_canonical(inc: dict[str, list[tuple[Any, ...]]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    names = {
        "events": ("ts", "action", "user_id", "device_id", "event_id", "request_id", "status"),
        "grants": ("device_id", "user_id", "role", "valid_from", "valid_to"),
        "accounts": ("user_id", "email", "name", "locale", "country"),
    }
    for kind, recs in inc.items():
        with open(out / f"{kind}.ndjson", "w", encoding="utf-8") as f:
            for r in recs:
                d = {
                    k: (_iso(v) if isinstance(v, datetime) else v)
                    for k, v in zip(names[kind], r, strict=True)
                }
                f.write(json.dumps(d, ensure_ascii=False) + "\n")


def _w3c_line(e: tuple[Any, ...], i: int) -> str:
    ts, action, user, device, event, request_id, status = e
    stem = "/v1/devices/{}/events/{}/{}".format(
        quote(device or "", safe=""),
        quote(event or "", safe=""),
        VERB.get(action, quote(action, safe="")),
    )
    v = dict.fromkeys(FIELDS, "-")
    v.update(
        {
            "date": ts.strftime("%Y-%m-%d"),
            "time": ts.strftime("%H:%M:%S"),
            "x-edge-location": EDGES[i % len(EDGES)],
            "sc-bytes": str(1000 + i % 50_000),
            "c-ip": f"198.51.100.{i % 250}",
            "cs-method": "GET",
            "cs(Host)": "d111111abcdef8.cloudfront.net",
            "cs-uri-stem": stem,
            "sc-status": "-" if status is None else str(status),
            "cs(User-Agent)": "CamApp/7.2.1%20(iPhone;%20iOS%2017.3)",
            "cs-uri-query": f"uid={quote(user, safe='')}&Expires=1708081200&Signature=Zm9v",
            "x-edge-result-type": "Hit",
            "x-edge-request-id": request_id or "-",
            "x-host-header": "media.camera.example",
            "cs-protocol": "https",
            "cs-protocol-version": "HTTP/2.0",
            "time-taken": "0.012",
        }
    )
    return "\t".join(v[f] for f in FIELDS)


def write_delivered(inc: dict[str, list[tuple[Any, ...]]], out: Path, files: int = 60) -> None:
    """CloudFront logs in `files` gzip files (time slices), grants and accounts as CSV."""
    (out / "cdn").mkdir(parents=True, exist_ok=True)
    (out / "exports").mkdir(parents=True, exist_ok=True)
    events = inc["events"]
    per = -(-len(events) // files) if events else 1
    head = "#Version: 1.0\n#Fields: " + " ".join(FIELDS) + "\n"
    for n in range(files):
        part = events[n * per : (n + 1) * per]
        stamp = part[0][0].strftime("%Y-%m-%d-%H") if part else "2024-02-16-00"
        body = "".join(_w3c_line(e, n * per + i) + "\n" for i, e in enumerate(part))
        name = f"E2EXAMPLE.{stamp}.{n:04d}.log.gz"
        (out / "cdn" / name).write_bytes(gzip.compress((head + body).encode("utf-8")))
    role = {"owner": "OWNER", "shared": "GUEST"}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["camera_id", "account_id", "access_level", "granted_at", "revoked_at"])
    for d, u, r, f, t in inc["grants"]:
        w.writerow([d, u, role.get(r, r), _pg(f), _pg(t)])
    (out / "exports" / "device_access.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(["account_id", "email", "display_name", "lang", "country_code"])
    w.writerows([["" if v is None else v for v in a] for a in inc["accounts"]])
    (out / "exports" / "accounts.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")


# The API calls an audit trail records rather than the CDN, and their CloudTrail names
# (examples/maps/cloudtrail.toml maps them back).
AUDITED = {"thumbnail_tapped": "OpenEvent"}


def split_audited(
    inc: dict[str, list[tuple[Any, ...]]],
) -> tuple[dict[str, list[tuple[Any, ...]]], list[tuple[Any, ...]]]:
    """The incident without the events an audit trail records, and those events."""
    cdn = [e for e in inc["events"] if e[1] not in AUDITED]
    audited = [e for e in inc["events"] if e[1] in AUDITED]
    return dict(inc, events=cdn), audited


def write_audit_trail(events: list[tuple[Any, ...]], path: Path) -> None:
    """Events as a CloudTrail-style audit file, `{"Records": [...]}`, gzip; indented, so that
    records span lines. A call whose HTTP status was not a success carries an errorCode."""
    records = []
    for ts, action, user, device, event, request_id, status in events:
        rec: dict[str, Any] = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "WebIdentityUser", "userName": user},
            "eventTime": _iso(ts),
            "eventSource": "camera.example.com",
            "eventName": AUDITED[action],
            "requestParameters": {"deviceId": device, "eventId": event},
            "responseElements": None,
        }
        if request_id is not None:
            rec["eventID"] = request_id
        if status is not None and not 200 <= status <= 299:
            rec["errorCode"] = "AccessDenied"
        records.append(rec)
    text = json.dumps({"Records": records}, indent=1, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode("utf-8")))


if __name__ == "__main__":
    incident = read_incident(Path(sys.argv[1]))
    target = Path(sys.argv[2])
    write_canonical(incident, target / "canonical")
    write_delivered(incident, target / "delivered", int(sys.argv[3]) if len(sys.argv) > 3 else 60)
