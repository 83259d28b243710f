"""The sample's files in the other formats of SPEC §2.5, as responders are handed them: a
CDN's W3C extended log (tab-separated, as CloudFront writes it), a CRM's CSV export of
accounts (as Excel saves "CSV UTF-8": a BOM, CRLF, RFC 4180 quoting) and an audit export of
grants as one wrapped JSON document (`{"Records": [...]}`, as CloudTrail writes it).

Each is written for the first chunk only, at a fixed size, so that the large scales the
benchmark generates keep their shapes. None changes a figure: the W3C log repeats records
stored elsewhere (duplicates by request_id, with the same values), and the CSV and JSON
files hold records moved out of the other files of their kind.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow as pa

from forensics.normalize import CANONICAL
from forensics.sample.constants import (
    ACTIONS,
    APPS,
    CACHE_NODES,
    MS,
    SPECIAL_BASE,
    WINDOW_END,
    WINDOW_START,
    Arr,
)
from forensics.sample.ids import Keys, fixed_width, iso_cols

# The CDN log: the first deliveries of one cache node in the window, as its edge logged them.
CDN_NODE = "cache-12"
CDN_RECORDS = 2_000
CDN_FILE = "events/cdn-cache-12-2024-02-16.log.gz"
CDN_FIELDS = (*CANONICAL["events"], "cache_node", "app")
# Moved out of their usual files, every EVERY-th record, up to MOVED of them.
CSV_FILE = "accounts/crm-export-2024-02-16.csv"
AUDIT_FILE = "grants/audit-2024-02-16.json.zst"
EVERY = 8
MOVED = 2_000


def cdn_rows(cols: dict[str, Arr]) -> Arr:
    """The events the CDN log repeats: deliveries by CDN_NODE in the window with a request
    id, a millisecond time (so every copy of them holds the same instant) and an ordinary
    user id (the 2^53 trap lives in JSON numbers), the first CDN_RECORDS in time order."""
    node = CACHE_NODES.index(CDN_NODE)
    pick = (
        (cols["node"] == node)
        & (cols["action"] == ACTIONS.index("thumbnail_delivered"))
        & (cols["req_fmt"] == 0)
        & (cols["status_fmt"] != 2)
        & (cols["ts"] >= WINDOW_START)
        & (cols["ts"] < WINDOW_END)
        & (cols["ts"] % MS == 0)
        & (cols["user"] < SPECIAL_BASE)
    )
    idx = np.flatnonzero(pick)
    return idx[np.lexsort((idx, cols["ts"][idx]))][:CDN_RECORDS]


def w3c_log(cols: dict[str, Arr], keys: Keys, req_text: pa.Array) -> bytes:
    """A W3C extended log of the events `cols` (already the CDN's rows): tab-separated
    values, `-` for an empty one, the directives CloudFront writes before them."""
    n = len(cols["ts"])
    iso = [t + "Z" for t in fixed_width(iso_cols(cols["ts"], 3)).to_pylist()]
    status = cols["status"]
    written = (status != 0) & (cols["status_fmt"] != 2)  # else missing or null: empty
    fields: dict[str, list[str]] = {
        "ts": iso,
        "action": [ACTIONS[a] for a in cols["action"]],
        "user_id": keys.user_text(cols["user"]).to_pylist(),
        "device_id": _or_empty(keys.device_text(np.maximum(cols["device"], 0)), cols["device"]),
        "event_id": _or_empty(keys.clip_text(np.maximum(cols["clip"], 0)), cols["clip"]),
        "request_id": req_text.to_pylist(),
        "status": [str(int(s)) if w else "-" for s, w in zip(status, written, strict=True)],
        "cache_node": [CACHE_NODES[i] for i in cols["node"]],
        "app": [APPS[i] for i in cols["app"]],
    }
    lines = [
        "#Version: 1.0",
        f"#Software: camera-cdn edge logger ({CDN_NODE})",
        "#Date: 2024-02-16 09:14:00",
        "#Fields: " + " ".join(CDN_FIELDS),
    ]
    for i in range(n):
        values = [fields[f][i] for f in CDN_FIELDS]
        if any(not v or "\t" in v or "\n" in v for v in values):
            raise ValueError("a W3C value must be non-empty text without tabs or newlines")
        lines.append("\t".join(values))
    return ("\n".join(lines) + "\n").encode()


def _or_empty(text: pa.Array, gid: Arr) -> list[str]:
    return ["-" if g < 0 else t for t, g in zip(text.to_pylist(), gid, strict=True)]


def moved(candidates: Arr) -> Arr:
    """Which of `candidates` (positions) move to the other format: every EVERY-th, from the
    fourth on, up to MOVED."""
    return candidates[3::EVERY][:MOVED]


def csv_export(table: pa.Table) -> bytes:
    """`table` as a spreadsheet saves it in "CSV UTF-8": a BOM, CRLF line ends, fields
    quoted where they hold a comma, quote or newline, an empty field for a missing value."""
    buf = io.StringIO(newline="")
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(table.column_names)
    for row in table.to_pylist():
        out.writerow(["" if v is None else v for v in row.values()])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def wrapped_json(lines: list[str]) -> bytes:
    """Records (each a JSON object's text) as one document whose only member is their
    array, a record a line, as an audit trail exports them."""
    return ('{"Records": [\n' + ",\n".join(lines) + "\n]}\n").encode("utf-8")
