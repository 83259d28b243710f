"""The figures of SPEC §5 for a window, computed by the SQL in queries/.

`prepare_window` materialises the temp tables unauthorized_accesses (from
unauthorized_rows, or read back from forensics.window_cache), cross_account_deliveries,
cross_account_taps and cross_account_plays on a (read-only) connection; `compute_figures`,
`compute_breakdown` and `bucket_timeline` read them. Nothing here prints or exits.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from forensics import window_cache
from forensics.engines.base import Engine, EngineOptions, open_case
from forensics.errors import UsageError
from forensics.normalize import ANALYSED_ACTIONS
from forensics.queries import materialize_query, query_rows
from forensics.status import WindowCoverage, window_coverage
from forensics.store import StoreOptions, memory_limit_bytes
from forensics.window import Window, format_instant

# A case store's connection, or an engine over a case lake (forensics.engines).
Connection = duckdb.DuckDBPyConnection | Engine

# SPEC §5, in the order of its table: the keys of `exposure --json`.
FIGURE_KEYS: tuple[str, ...] = (
    "deliveries",
    "cross_account_deliveries",
    "recipients",
    "cross_account_taps",
    "tappers",
    "cross_account_plays",
    "video_viewers",
    "exposed_devices",
    "exposed_owners",
    "unlinked_unauthorized_accesses",
    "cross_account_deliveries_outside_window",
)

# Stored event columns `--by` accepts (ts is the timeline; source_record is a row number).
CANONICAL_BY_FIELDS: tuple[str, ...] = (
    "action",
    "user_id",
    "device_id",
    "event_id",
    "request_id",
    "status",
    "source_id",
)

# In dependency order: each query reads the temp tables made before it, from
# unauthorized_accesses on (made first, from unauthorized_rows in key parts, or read back
# from forensics.window_cache).
_PREPARED = (
    "cross_account_deliveries",
    "cross_account_taps",
    "cross_account_plays",
)


def window_params(window: Window) -> dict[str, object]:
    """The bound parameters of every window query: tz-aware datetimes → TIMESTAMPTZ."""
    return {"window_start": window.start, "window_end": window.end}


def prepare_window(con: Connection, window: Window, *, reuse: bool = True) -> None:
    """Materialise the cross-account temp tables for `window` (SPEC §5) on `con`.

    On a store open read-only, the unauthorized accesses are read back from what an earlier
    command kept beside it for the same state and window start (forensics.window_cache),
    unless `reuse` is False; when they are joined, they are kept for the next command."""
    params = window_params(window)
    cached = None if isinstance(con, Engine) else window_cache.entry(con, window)
    with _unordered(con):
        if cached is None or not reuse or not cached.load():
            plan = join_plan(con)
            with _build_side(con, plan.on_grants):
                for part in range(plan.parts):
                    keyed = {**params, "key_parts": plan.parts, "key_part": part}
                    materialize_query(con, "unauthorized_rows", keyed, append=part > 0)
            materialize_query(con, "unauthorized_accesses", params)
            if cached is not None:
                cached.save()
        for name in _PREPARED:
            materialize_query(con, name, params)
        materialize_query(con, "analysis_window", params)


@dataclass(frozen=True)
class JoinPlan:
    """How prepare_window runs the anti join of unauthorized_rows.sql."""

    parts: int = 1  # key parts of the user_ids, one statement each
    on_grants: bool = False  # its hash table built on the grants, not on the accesses


# What one row takes in the anti join's hash table (an access or a grant), besides the text
# of ids longer than DuckDB keeps inside the row (12 bytes), as a share of the memory limit:
# DuckDB 2.0.1 built 7.2M accesses with 20-character ids (160 bytes each by this count)
# within a limit of 1.2 GB and spilled with 1.0 GB; 7.27M such grants, within 1.1 GB and
# spilling with 1.0 GB (bench/README.md).
JOIN_ROW_BYTES = 120
_INLINE_TEXT = 12
_SIZE_SAMPLE = 10_000  # stored rows whose ids and actions give their usual length and share
_OUTSIDE = (
    "case when strlen(user_id) > $n then strlen(user_id) else 0 end "
    "+ case when strlen(device_id) > $n then strlen(device_id) else 0 end"
)
_SPILL_RATHER = 1.25  # up to this much over the limit, one part (parts_for)
# Built on the grants, the hash table makes an anti join that emits each unmatched access
# as it is probed; built on the accesses, it is scanned to its end for the unmatched ones
# (10M events, as many grants as accesses: 1.23-1.26 s against 1.35 s). Spilling, it cost
# far more (3.0 s against 1.7 s at 1.0 GB), so the grants take it only well within the
# memory limit, and when they are not many more than the accesses (bench/README.md).
_GRANTS_FIT = 0.8
_GRANTS_PER_ACCESS = 1.5


def join_plan(con: Connection) -> JoinPlan:
    """The hash table's side and the key parts of unauthorized_rows.sql's anti join.

    On an engine over a lake, one part, the join planned as the engine plans it (reading a
    lake's Parquet again for each part cost more than the spill it saved). On a case store,
    the grants take the hash table when they are at most _GRANTS_PER_ACCESS times the
    accesses and fit well within the memory limit. Else the accesses do (DuckDB's choice),
    in as many key parts as their hash table needs: their number is sized cheaply when
    plainly 1 (all the stored events would fit), else from a count of the accesses."""
    if isinstance(con, Engine):
        return JoinPlan()
    row = con.execute(
        "select (select count(*) from events), (select count(*) from grants), e.share, "  # noqa: S608 - _OUTSIDE is a constant
        "e.text, g.text from (select avg(list_contains($actions, action)::int) as share, "
        f"avg({_OUTSIDE}) as text from (select * from events limit $sample)) e, "
        f"(select avg({_OUTSIDE}) as text from (select * from grants limit $sample)) g",
        {"actions": list(ANALYSED_ACTIONS), "n": _INLINE_TEXT, "sample": _SIZE_SAMPLE},
    ).fetchone()
    events, grants, share, event_text, grant_text = row or (0, 0, None, None, None)
    limit = memory_limit_bytes(con)
    accesses = events * float(share or 0)  # as many as in the sample of events
    grant_bytes = grants * (JOIN_ROW_BYTES + float(grant_text or 0))
    if 0 < grants <= _GRANTS_PER_ACCESS * accesses and (
        limit is None or grant_bytes <= _GRANTS_FIT * limit
    ):
        return JoinPlan(on_grants=True)
    if limit is None or not events:
        return JoinPlan()
    row_bytes = JOIN_ROW_BYTES + float(event_text or 0)
    if parts_for(events, row_bytes, limit) == 1:
        return JoinPlan()
    counted = con.execute(
        "select count(*) from events where list_contains($actions, action)",
        {"actions": list(ANALYSED_ACTIONS)},
    ).fetchone()
    return JoinPlan(parts=parts_for(int(counted[0]) if counted else events, row_bytes, limit))


def parts_for(accesses: int, row_bytes: float, limit: int) -> int:
    """Key parts for `accesses` rows of `row_bytes` each under a memory limit of `limit`
    bytes. A little over the limit, DuckDB's spilling of what does not fit costs less than
    a second pass over both tables (10M events, 1 GB: 2.05 s spilling, 2.18 s in two
    parts), so up to _SPILL_RATHER times the limit stays one part."""
    need = accesses * row_bytes / limit
    return 1 if need <= _SPILL_RATHER else math.ceil(need)


@contextmanager
def _setting(con: Connection, name: str, value: Callable[[Any], object]) -> Iterator[None]:
    """DuckDB's setting `name` at `value(what it was)` on a DuckDB connection (an engine
    is left as it is), then as it was."""
    if isinstance(con, Engine):
        yield
        return
    before = con.execute(f"select current_setting('{name}')").fetchall()[0][0]
    con.execute(f"set {name} = $v", {"v": value(before)})
    try:
        yield
    finally:
        # After a failed statement only a rollback is accepted: its error is the one raised.
        with suppress(duckdb.Error):
            con.execute(f"set {name} = $v", {"v": before})


def _unordered(con: Connection) -> AbstractContextManager[None]:
    """preserve_insertion_order off while the temp tables are made, then as it was.

    No temp table promises a row order (every reader sorts or aggregates), so DuckDB may
    build them in parallel without keeping scan order; the caller's queries are unaffected.
    """
    return _setting(con, "preserve_insertion_order", lambda _: False)


def _build_side(con: Connection, on_grants: bool) -> AbstractContextManager[None]:
    """With `on_grants`, DuckDB keeps the join's sides as written (the grants, on the right,
    take the hash table) instead of choosing by its estimates; then as it was."""
    if not on_grants:
        return nullcontext()
    return _setting(
        con,
        "disabled_optimizers",
        lambda before: ",".join(
            [x for x in str(before or "").split(",") if x.strip()] + ["build_side_probe_side"]
        ),
    )


def _is_prepared(con: Connection, window: Window) -> bool:
    if isinstance(con, Engine):
        table = con.read_table("analysis_window")
        return table is not None and [tuple(r.values()) for r in table.to_pylist()] == [
            (window.start, window.end)
        ]
    try:
        # fetchall, not fetchone: an unfinished result would block the next query (DuckDB 2)
        rows = con.execute("select window_start, window_end from analysis_window").fetchall()
    except duckdb.CatalogException:
        return False
    return rows == [(window.start, window.end)]


def compute_figures(con: Connection, window: Window) -> dict[str, Any]:
    """SPEC §5's object: `window`, every figure, and `timeline` (prepares the window if needed)."""
    if not _is_prepared(con, window):
        prepare_window(con, window)
    row = query_rows(con, "figures", window_params(window))[0]
    result: dict[str, Any] = {"window": window.to_json()}
    for key in FIGURE_KEYS:
        result[key] = int(row[key])
    result["timeline"] = [
        {
            "minute": format_instant(r["minute"]),
            "cross_account_deliveries": int(r["cross_account_deliveries"]),
            "recipients": int(r["recipients"]),
        }
        for r in query_rows(con, "timeline")
    ]
    return result


@dataclass(frozen=True)
class BreakdownRow:
    value: str | None  # None: the field is missing on these deliveries
    cross_account_deliveries: int
    recipients: int
    exposed_devices: int


@dataclass(frozen=True)
class Breakdown:
    field: str
    rows: tuple[BreakdownRow, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "rows": [
                {
                    "value": r.value,
                    "cross_account_deliveries": r.cross_account_deliveries,
                    "recipients": r.recipients,
                    "exposed_devices": r.exposed_devices,
                }
                for r in self.rows
            ],
        }


def event_fields(con: Connection) -> list[str]:
    """Every field `--by` can name: the canonical columns, then the keys of events.extra."""
    extra = [r["field"] for r in query_rows(con, "event_fields")]
    return list(CANONICAL_BY_FIELDS) + [k for k in extra if k not in CANONICAL_BY_FIELDS]


def compute_breakdown(con: Connection, window: Window, field: str) -> Breakdown:
    """Cross-account deliveries, recipients and exposed devices per value of `field`.

    Raises UsageError (naming the fields that exist) when no stored event has the field.
    """
    if not field:
        raise UsageError("--by", "the field name is empty")
    if not _is_prepared(con, window):
        prepare_window(con, window)
    params = {"field": field, **window_params(window)}
    rows = tuple(
        BreakdownRow(
            value=r["value"],
            cross_account_deliveries=int(r["cross_account_deliveries"]),
            recipients=int(r["recipients"]),
            exposed_devices=int(r["exposed_devices"]),
        )
        for r in query_rows(con, "deliveries_by_field", params)
    )
    # A known field can still be missing on every cross-account delivery; only then is the
    # (full) scan for the keys that exist worth its cost.
    if field not in CANONICAL_BY_FIELDS and all(r.value is None for r in rows):
        fields = event_fields(con)
        if field not in fields:
            # A record's keys can be data (an email as a key): only names are shown.
            names = [f for f in fields if _FIELD_NAME.fullmatch(f)]
            shown = ", ".join(names[:40])
            left = len(fields) - min(len(names), 40)
            more = f" and {left} more (`forensics sql` lists them)" if left else ""
            close = difflib.get_close_matches(field, names, n=1)
            guess = f"Did you mean {printable(close[0])}? " if close else ""
            raise UsageError(
                "--by",
                f"no stored event has the field {printable(field)}",
                f"{guess}Fields that exist: {shown}{more}",
            )
    return Breakdown(field, rows)


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True)
class ExposureReport:
    """What `forensics exposure` shows: SPEC §5's object and an optional --by breakdown."""

    window: Window
    figures: dict[str, Any]
    breakdown: Breakdown | None = None
    coverage: WindowCoverage | None = None  # the events in the window and in the store

    def to_json(self) -> dict[str, Any]:
        data = dict(self.figures)
        if self.breakdown is not None:
            data["by"] = self.breakdown.to_json()
        return data


def run_exposure(
    options: StoreOptions,
    window: Window,
    by: str | None = None,
    engine: EngineOptions | None = None,
) -> ExposureReport:
    """Open the store read-only (or, with `engine`, the case lake), compute the figures (and
    the --by breakdown), close it."""
    with open_case(options, engine) as con:
        return exposure_report(con, window, by)


def exposure_report(con: Connection, window: Window, by: str | None = None) -> ExposureReport:
    """The figures (and the --by breakdown) on an open store or lake engine, and what the
    window holds (so that zero figures are never silent)."""
    # the breakdown first: an unknown --by field fails before the figures are counted
    breakdown = compute_breakdown(con, window, by) if by is not None else None
    figures = compute_figures(con, window)
    coverage = window_coverage(con, window)
    return ExposureReport(window, figures, breakdown, coverage)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with control and bidi characters shown as escapes: safe to put on a terminal."""
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# Chart buckets: the finest that keeps the chart within `max_buckets` rows.
_BUCKETS = tuple(
    timedelta(minutes=m)
    for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 40320, 161280)
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    cross_account_deliveries: int


def bucket_timeline(
    timeline: list[dict[str, Any]], window: Window, max_buckets: int = 40
) -> tuple[timedelta, list[Bucket]]:
    """Sum the per-minute timeline into equal UTC-aligned buckets covering the window.

    Returns the bucket width and every bucket (zeros included, so onset and end show).
    """
    width = _BUCKETS[-1]
    for candidate in _BUCKETS:
        if _n_buckets(window, candidate) <= max_buckets:
            width = candidate
            break
    first = _floor(window.start, width)
    n = _n_buckets(window, width)
    counts = [0] * n
    for point in timeline:
        minute = datetime.strptime(point["minute"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=timezone.utc
        )
        index = int((minute - first) // width)
        if 0 <= index < n:
            counts[index] += int(point["cross_account_deliveries"])
    return width, [Bucket(first + i * width, c) for i, c in enumerate(counts)]


def _floor(t: datetime, width: timedelta) -> datetime:
    return _EPOCH + ((t - _EPOCH) // width) * width


def _n_buckets(window: Window, width: timedelta) -> int:
    first = _floor(window.start, width)
    return int(-((first - window.end) // width))  # ceil((end - first) / width)
