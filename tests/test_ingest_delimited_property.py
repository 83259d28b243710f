"""Property: random records written as CSV, TSV, W3C, a wrapped JSON document
(`{"Records": [...]}`) and a JSON array, ingested through a map, are stored and rejected
exactly as the same records written as JSON lines (the canonical reading)."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.mapping import load_mapping
from tests.helpers.ingest import accounted, rows, run

MAP = """
[events]
ts = "time"
action = "verb"
user_id = "account"
device_id = "camera"
event_id = "clip"
request_id = "req"
status = "code"
records = "Records"
[events.actions]
thumbnail = "thumbnail_delivered"
tap = "thumbnail_tapped"
"""
FIELDS = ("time", "verb", "account", "camera", "clip", "req", "code")

TIMES = st.sampled_from(
    [
        "2024-02-16T09:00:00Z",
        "2024-02-16 09:00:01+00",
        "2024-02-16T09:00:02.5-05",
        "2024-02-16 09:00:03+19",
        "2024-02-30T00:00:00Z",
        "1708074061",
        "x",
        "",
    ]
)
VERBS = st.sampled_from(["thumbnail", "tap", "login", "", " "])
CODES = st.sampled_from(["200", "404", "0200", "", " 200", "x", "2e2"])
# Text of any kind, for CSV (quoted when needed); TSV and W3C values cannot hold a tab or
# a line break, and W3C's `-` is its empty value.
ANY_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=6,
)
ID_CHOICES = st.sampled_from(["u1", "u2", "d1", "e1", "r1", "0123", " ", 'ü,"x"', "a b"])


def _ids(fmt: str) -> st.SearchStrategy[str]:
    free = (
        ANY_TEXT
        if fmt in ("csv", "wrapped", "array")
        else ANY_TEXT.filter(lambda s: not any(c in s for c in "\t\n\r") and s != "-")
    )
    return st.one_of(ID_CHOICES, free)


@st.composite
def records(draw: st.DrawFn, fmt: str) -> list[list[str]]:
    ids = _ids(fmt)
    n = draw(st.integers(0, 8))
    out = []
    for _ in range(n):
        rec = [
            draw(TIMES),
            draw(VERBS),
            draw(ids),
            draw(ids),
            draw(ids),
            draw(st.sampled_from(["r1", "r2", ""])),
            draw(CODES),
        ]
        if fmt == "w3c":
            rec = [v.replace(" ", "+") if i < 2 else v for i, v in enumerate(rec)]
        out.append(rec)
    return out


def write_text(fmt: str, recs: list[list[str]], layout: dict[str, Any] | None = None) -> bytes:
    """The records in format `fmt`; a JSON document is laid out by `layout` (json.dumps
    options, and whether the wrapping object has another member besides Records)."""
    if fmt in ("wrapped", "array"):
        layout = dict(layout or {})
        other = layout.pop("other_member", False)
        objs = [_canonical(r) for r in recs]
        doc: Any = objs
        if fmt == "wrapped":
            doc = {"Records": objs, "region": "eu-west-1"} if other else {"Records": objs}
        return json.dumps(doc, **layout).encode()
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(FIELDS)
        w.writerows(recs)
        return buf.getvalue().encode()
    if fmt == "tsv":
        return "".join("\t".join(r) + "\n" for r in [list(FIELDS), *recs]).encode()
    head = "#Version: 1.0\n#Fields: " + " ".join(FIELDS) + "\n"
    return (head + "".join("\t".join(v or "-" for v in r) + "\n" for r in recs)).encode()


def write_canonical(recs: list[list[str]]) -> bytes:
    """The same records as JSON lines; an empty text value is a missing one (null)."""
    return "".join(json.dumps(_canonical(r)) + "\n" for r in recs).encode()


def _canonical(rec: list[str]) -> dict[str, str | None]:
    return {k: (v or None) for k, v in zip(FIELDS, rec, strict=True)}


# How a JSON document is laid out: on one line or indented (records then span lines),
# ASCII escapes or UTF-8, and a wrapping object with a second member or not.
LAYOUTS = st.fixed_dictionaries(
    {
        "indent": st.sampled_from([None, 0, 2]),
        "ensure_ascii": st.booleans(),
        "separators": st.sampled_from([None, (",", ":"), (" , ", " : ")]),
        "other_member": st.booleans(),
    }
)


def stored(db: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[int]]:
    events = rows(
        db,
        "select ts, action, user_id, device_id, event_id, request_id, status "
        "from events order by source_record",
    )
    rejects = rows(db, "select reason from rejects order by source_record")
    counts = rows(db, "select rows_read, rows_loaded, rows_rejected, rows_duplicate from sources")
    return events, rejects, list(counts[0]) if counts else []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), fmt=st.sampled_from(["csv", "tsv", "w3c", "wrapped", "array"]))
def test_records_in_any_format_equal_their_json_lines_reading(
    data: st.DataObject, fmt: str
) -> None:
    recs = data.draw(records(fmt))
    layout = data.draw(LAYOUTS)
    mapping = load_mapping_text(MAP)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ext = {"csv": "csv", "tsv": "tsv", "w3c": "log", "wrapped": "json", "array": "json"}[fmt]
        text_file = tmp / f"e.{ext}"
        text_file.write_bytes(write_text(fmt, recs, layout))
        json_file = tmp / "e.ndjson"
        json_file.write_bytes(write_canonical(recs))
        got_text = run(tmp / "t.duckdb", text_file, mapping=mapping, kind="events")
        got_json = run(tmp / "j.duckdb", json_file, mapping=mapping, kind="events")
        assert accounted(got_text) and got_text.files[0].status == "loaded"
        assert got_json.files[0].status == "loaded"
        assert stored(tmp / "t.duckdb") == stored(tmp / "j.duckdb")


def load_mapping_text(text: str) -> Any:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "map.toml"
        p.write_text(text, encoding="utf-8")
        return load_mapping(p)
