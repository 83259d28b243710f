"""Property: random records in random formats and file splits, ingested, equal a plain-Python
reading of the same records under SPEC §2.4 (values, rejects, de-duplication, accounting)."""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.ingest import accounted, rows, run

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ANALYSED = ("thumbnail_delivered", "thumbnail_tapped", "video_played")


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    # Mostly inside the accepted range, sometimes just outside it.
    us = draw(st.integers(631_152_000_000_000 - 5, 4_102_444_800_000_000 + 5))
    return EPOCH + timedelta(microseconds=us)


@st.composite
def ts_values(draw: st.DrawFn) -> tuple[Any, datetime | None]:
    """A timestamp written in one accepted style, and the instant SPEC says it means."""
    t = draw(instants())
    valid = datetime(1990, 1, 1, tzinfo=UTC) <= t < datetime(2100, 1, 1, tzinfo=UTC)
    style = draw(st.sampled_from(["z", "offset", "space", "s", "ms", "us", "nanos"]))
    expect = t if valid else None
    if style == "z":
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), expect
    if style == "nanos":
        return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "999Z", expect
    if style == "space":
        return t.strftime("%Y-%m-%d %H:%M:%S.%f"), expect
    if style == "offset":
        minutes = draw(st.integers(-12 * 60, 14 * 60))
        local = t + timedelta(minutes=minutes)
        sign = "+" if minutes >= 0 else "-"
        off = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return local.strftime("%Y-%m-%dT%H:%M:%S.%f") + off, expect
    us = (t - EPOCH) // timedelta(microseconds=1)
    if style == "s":
        return us // 1_000_000, (EPOCH + timedelta(seconds=us // 1_000_000)) if valid else None
    if style == "ms":
        return us // 1000, (EPOCH + timedelta(milliseconds=us // 1000)) if valid else None
    return us, expect


ids = st.one_of(
    st.sampled_from(["u1", "u2", "0123", "ü", "a b", "", "  "]),
    st.integers(-5, 2**64 + 5),
)
statuses = st.sampled_from([None, 200, "200", 204, 404, "x", 200.5, "missing"])


@st.composite
def records(draw: st.DrawFn) -> tuple[str, tuple[Any, ...] | None]:
    """(JSON line, expected canonical tuple or None when SPEC rejects it)."""
    if draw(st.integers(0, 15)) == 0:
        return draw(st.sampled_from(['{"ts": 1', "[]", "null", '{"a":1,"a":2}'])), None
    ts, instant = draw(ts_values())
    action = draw(st.sampled_from([*ANALYSED, "login"]))
    rec: dict[str, Any] = {"ts": ts, "action": action, "user_id": draw(ids)}
    for f in ("device_id", "event_id"):
        if draw(st.booleans()) or action in ANALYSED:
            rec[f] = draw(st.sampled_from(["d1", "d2", "e1", 7, ""]))
    if draw(st.booleans()):
        rec["request_id"] = draw(st.sampled_from(["r1", "r2", "r3", 11, 12]))
    status = draw(statuses)
    if status != "missing":
        rec["status"] = status
    return json.dumps(rec), _expected(rec, instant)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v)
    return None if s.strip() == "" else s


def _expected(rec: dict[str, Any], instant: datetime | None) -> tuple[Any, ...] | None:
    user = _text(rec["user_id"])
    device, ev = _text(rec.get("device_id")), _text(rec.get("event_id"))
    status = rec.get("status")
    if isinstance(status, float) or (isinstance(status, str) and not status.isdigit()):
        return None
    if instant is None or user is None:
        return None
    if rec["action"] in ANALYSED and (device is None or ev is None):
        return None
    st_val = int(status) if status is not None else None
    return (instant, rec["action"], user, device, ev, _text(rec.get("request_id")), st_val)


def _model(expected: list[tuple[Any, ...] | None]) -> tuple[set[tuple[Any, ...]], int, int]:
    kept: list[tuple[Any, ...]] = []
    seen_rid: set[str] = set()
    seen_tuple: set[tuple[Any, ...]] = set()
    dup = 0
    for e in expected:
        if e is None:
            continue
        if e[5] is not None:
            if e[5] in seen_rid:
                dup += 1
                continue
            seen_rid.add(e[5])
        else:
            key = (e[0], e[1], e[2], e[3], e[4], e[6])
            if key in seen_tuple:
                dup += 1
                continue
            seen_tuple.add(key)
        kept.append(e)
    return set(kept), sum(1 for e in expected if e is None), dup


def _write(folder: Path, i: int, lines: list[str], fmt: str) -> Path:
    if fmt == "ndjson":
        p = folder / f"{i:02d}.ndjson"
        p.write_text("\n".join(lines) + "\n")
    elif fmt == "gz":
        p = folder / f"{i:02d}.ndjson.gz"
        p.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    else:
        p = folder / f"{i:02d}.json"
        p.write_text("[" + ",\n".join(lines) + "]")
    return p


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(records(), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=3),
    formats=st.lists(st.sampled_from(["ndjson", "gz", "array"]), min_size=4, max_size=4),
)
def test_ingest_equals_a_plain_reading_of_spec(
    data: list[tuple[str, tuple[Any, ...] | None]], cuts: list[int], formats: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files, order = write_cut(folder, data, cuts, formats)
        db = folder / "s.duckdb"
        report = run(db, *files, kind="events")
        assert accounted(report)
        assert all(f.status == "loaded" for f in report.files), report
        expected, rejected, dup = _model([e for _, e in order])
        got = set(
            rows(
                db,
                "select ts, action, user_id, device_id, event_id, request_id, status from events",
            )
        )
        assert got == expected
        totals = report.totals()
        assert totals["rows_rejected"] == rejected
        assert totals["rows_duplicate"] == dup
        assert totals["rows_read"] == len(order)


def write_cut(
    folder: Path,
    data: list[tuple[str, tuple[Any, ...] | None]],
    cuts: list[int],
    formats: list[str],
) -> tuple[list[Path], list[tuple[str, tuple[Any, ...] | None]]]:
    """The records cut into files at `cuts`, each file in the next of `formats`; the files
    and the records they hold, in order. Arrays hold only well-formed JSON (a broken array
    fails the whole file, by design)."""
    bounds = sorted({0, len(data), *[c for c in cuts if c < len(data)]})
    files = []
    order: list[tuple[str, tuple[Any, ...] | None]] = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        part = data[a:b]
        fmt = formats[i % len(formats)]
        if fmt == "array":
            part = [(line, exp) for line, exp in part if not _broken(line)]
            if not part:
                continue
        files.append(_write(folder, i, [line for line, _ in part], fmt))
        order.extend(part)
    return files, order


def _broken(line: str) -> bool:
    try:
        json.loads(line, object_pairs_hook=_no_dup)
        return False
    except ValueError:
        return True


def _no_dup(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def test_parquet_string_columns_follow_the_same_rules(tmp_path: Path) -> None:
    t = pa.table(
        {
            "ts": ["2024-02-16T09:00:00+01:00", "2024-02-30T00:00:00Z", "2024-02-16T09:00:00Z"],
            "action": ["login", "login", "login"],
            "user_id": ["a", "b", "c"],
            "status": ["200", None, "abc"],
        }
    )
    f = tmp_path / "e.parquet"
    pq.write_table(t, f)
    db = tmp_path / "s.duckdb"
    report = run(db, f)
    assert accounted(report)
    assert rows(db, "select user_id, ts, status from events") == [
        ("a", datetime(2024, 2, 16, 8, 0, tzinfo=UTC), 200)
    ]
    assert rows(db, "select reason from rejects order by source_record") == [
        ("invalid ts",),
        ("invalid status",),
    ]
