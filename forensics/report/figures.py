"""Everything the report shows, read from the store through queries/ (counts only).

`collect_report` prepares the window once and gathers the SPEC §5 figures (exactly
`compute_figures`, the object `exposure --json` prints), the `--by` breakdowns
(`compute_breakdown`), the people affected, log coverage, rejects and duplicates, and the
evidence (inputs, query files with their SHA-256, versions). No id, email or name is kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata
from statistics import median
from typing import Any

import duckdb
import numpy as np

from forensics import __version__
from forensics.errors import UsageError
from forensics.exposure import (
    Breakdown,
    BreakdownRow,
    compute_breakdown,
    compute_figures,
    prepare_window,
    printable,
    window_params,
)
from forensics.queries import get_query, run_query
from forensics.window import Window, format_instant

# Fields whose values are identifiers: a breakdown by them would list ids (SPEC §9: counts only).
ID_FIELDS = frozenset({"user_id", "device_id", "event_id", "request_id"})
# A breakdown shows this many values, most deliveries first; the rest are summed in one row.
MAX_BREAKDOWN_ROWS = 20
# A minute without events is a gap only for a source whose median rate around the window is
# at least this many events a minute: Poisson chance of a silent minute at 10/min is e^-10.
GAP_MIN_RATE = 10
# Log coverage shows at most this many files in its table and its chart (the rest summed).
MAX_COVERAGE_ROWS = 12
MAX_COVERAGE_SERIES = 6
# Log coverage spans the window and every unauthorized delivery, widened by this much
# (at least) or a tenth of the window, whichever is longer.
COVERAGE_MARGIN = timedelta(minutes=30)
# ... reaching out to deliveries at most this far before the window's start and after its
# end: per minute, a delivery a year away would take 525,600 minutes a file (memory without
# bound). Farther ones are named in the text.
COVERAGE_REACH = timedelta(days=3)

# The query files a report runs, in the order they run (the evidence lists each with its
# SHA-256). event_fields runs only when a --by field is missing on every delivery.
BASE_QUERIES: tuple[str, ...] = (
    "unauthorized_rows",
    "unauthorized_accesses",
    "cross_account_deliveries",
    "cross_account_taps",
    "cross_account_plays",
    "analysis_window",
    "figures",
    "timeline",
    "outside_window_deliveries",
    "unauthorized_delivery_span",
    "affected_people_totals",
    "affected_people",
    "events_per_minute_by_source",
    "rejects_by_reason",
    "duplicates_by_source",
    "source_accounting",
)
BY_QUERIES: tuple[str, ...] = ("deliveries_by_field", "event_fields")


@dataclass(frozen=True)
class MinuteCount:
    minute: datetime
    deliveries: int
    recipients: int


@dataclass(frozen=True)
class Span:
    """First and last unauthorized delivery: in the window (None if none), and overall."""

    first_in_window: datetime | None
    last_in_window: datetime | None
    first_overall: datetime
    last_overall: datetime


@dataclass(frozen=True)
class ShownBreakdown:
    """A --by breakdown as the report shows it: the top rows, the rest summed."""

    field: str
    rows: tuple[BreakdownRow, ...]
    other_values: int  # how many values the summed row holds (0: no such row)
    other_deliveries: int
    total_values: int


@dataclass(frozen=True)
class PeopleRow:
    role: str
    country: str | None
    locale: str | None
    people: int
    unreachable: int


@dataclass(frozen=True)
class SourceCoverage:
    """Events per minute of one events file over the coverage span (zeros filled)."""

    source_id: int
    name: str
    # one per minute from `first` minutes after Coverage.start to its last minute with an
    # event (a file's own stretch: thousands of short CDN files over a long span stay small)
    counts: tuple[int, ...]
    events: int
    events_in_window: int
    median_rate: float
    gaps: tuple[tuple[datetime, datetime], ...]  # [start, end) runs of silent minutes
    first: int = 0


@dataclass(frozen=True)
class Coverage:
    start: datetime
    end: datetime
    sources: tuple[SourceCoverage, ...]
    combined: SourceCoverage | None  # every events file together (None: no event at all)
    # first and last delivery without a grant, when one lies beyond COVERAGE_REACH
    beyond: tuple[datetime, datetime] | None = None


@dataclass(frozen=True)
class QueryFile:
    name: str
    file: str
    sha256: str


@dataclass
class ReportData:
    window: Window
    figures: dict[str, Any]  # exactly compute_figures(): `exposure --json` without --by
    store_path: str
    generated_at: datetime
    # read from a case lake (--lake) rather than the store, and by which engine
    lake: str | None = None
    engine: str = "duckdb"
    breakdowns: list[ShownBreakdown] = field(default_factory=list)
    outside: list[MinuteCount] = field(default_factory=list)
    span: Span | None = None
    suggested_window: Window | None = None
    people_totals: dict[str, tuple[int, int]] = field(default_factory=dict)
    people: list[PeopleRow] = field(default_factory=list)
    coverage: Coverage | None = None
    rejects: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    queries: list[QueryFile] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def zero_findings(self) -> bool:
        """No cross-account delivery in the window (outside ones are reported apart)."""
        return int(self.figures["cross_account_deliveries"]) == 0


def check_by_fields(fields: list[str]) -> list[str]:
    """The --by fields, de-duplicated in order; id fields are refused (UsageError)."""
    out: list[str] = []
    for f in fields:
        if not f:
            raise UsageError("--by", "the field name is empty")
        if f in ID_FIELDS:
            raise UsageError(
                "--by",
                f"{f} holds identifiers, and the report shows counts only",
                f"Use `forensics exposure --by {f}` for a breakdown by id",
            )
        if f not in out:
            out.append(f)
    return out


def collect_report(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    by: list[str],
    store_path: str,
    generated_at: datetime | None = None,
) -> ReportData:
    """Read everything the report shows for `window`. Raises UsageError, StoreError."""
    by = check_by_fields(by)
    # The report's figures come from the store itself, by the queries its evidence lists:
    # never from what an earlier command kept beside the store.
    prepare_window(con, window, reuse=False)
    params = window_params(window)
    # the breakdowns first: an unknown --by field fails before anything else is counted
    breakdowns = [_shown(compute_breakdown(con, window, f)) for f in by]
    data = ReportData(
        window=window,
        figures=compute_figures(con, window),
        store_path=store_path,
        generated_at=(generated_at or datetime.now(timezone.utc)).replace(microsecond=0),
        breakdowns=breakdowns,
    )
    data.outside = [
        MinuteCount(r["minute"], int(r["deliveries"]), int(r["recipients"]))
        for r in run_query(con, "outside_window_deliveries", params).to_pylist()
    ]
    spans = run_query(con, "unauthorized_delivery_span", params).to_pylist()
    if spans:
        s = spans[0]
        data.span = Span(
            s["first_in_window"], s["last_in_window"], s["first_overall"], s["last_overall"]
        )
        if data.figures["cross_account_deliveries_outside_window"]:
            data.suggested_window = suggest_window(window, data.span)
    for r in run_query(con, "affected_people_totals").to_pylist():
        data.people_totals[r["role"]] = (int(r["people"]), int(r["unreachable"]))
    data.people = [
        PeopleRow(r["role"], r["country"], r["locale"], int(r["people"]), int(r["unreachable"]))
        for r in run_query(con, "affected_people").to_pylist()
    ]
    data.sources = run_query(con, "source_accounting").to_pylist()
    data.coverage = _coverage(con, window, data.span, data.sources)
    data.rejects = run_query(con, "rejects_by_reason", params).to_pylist()
    data.duplicates = run_query(con, "duplicates_by_source", params).to_pylist()
    data.queries = [_query_file(n) for n in BASE_QUERIES + (BY_QUERIES if by else ())]
    data.versions = _versions()
    return data


def _shown(b: Breakdown) -> ShownBreakdown:
    top = b.rows[:MAX_BREAKDOWN_ROWS]
    rest = b.rows[MAX_BREAKDOWN_ROWS:]
    return ShownBreakdown(
        field=b.field,
        rows=top,
        other_values=len(rest),
        other_deliveries=sum(r.cross_account_deliveries for r in rest),
        total_values=len(b.rows),
    )


def suggest_window(window: Window, span: Span) -> Window:
    """The window widened to whole minutes holding every unauthorized delivery."""
    start = min(window.start, _floor_minute(span.first_overall))
    end = max(window.end, _floor_minute(span.last_overall) + timedelta(minutes=1))
    return Window(start, end)


def _floor_minute(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(second=0, microsecond=0)


def coverage_span(window: Window, span: Span | None) -> tuple[datetime, datetime]:
    """Whole minutes around the window and every unauthorized delivery within
    COVERAGE_REACH of it, with a margin."""
    margin = max(COVERAGE_MARGIN, (window.end - window.start) / 10)
    start, end = window.start, window.end
    if span is not None:
        start = max(min(start, span.first_overall), window.start - COVERAGE_REACH)
        end = min(max(end, span.last_overall), window.end + COVERAGE_REACH)
    lo = _floor_minute(start - margin)
    hi = _floor_minute(end + margin)
    if hi < end + margin:
        hi += timedelta(minutes=1)
    return lo, hi


def find_gaps(
    counts: list[int], start: datetime, min_rate: float = GAP_MIN_RATE
) -> tuple[float, tuple[tuple[datetime, datetime], ...]]:
    """(median rate, silent runs) of a per-minute series from `start`.

    The series is judged between its first and last non-zero minute (a file that starts or
    ends inside the span is not silent before or after it); a silent minute there is a gap
    when the median rate over that stretch is at least `min_rate`.
    """
    active = [i for i, c in enumerate(counts) if c]
    if not active:
        return 0.0, ()
    stretch = counts[active[0] : active[-1] + 1]
    rate = float(median(stretch))
    if rate < min_rate:
        return rate, ()
    gaps: list[tuple[datetime, datetime]] = []
    run_start: int | None = None
    for i in range(active[0], active[-1] + 2):
        silent = i <= active[-1] and counts[i] == 0
        if silent and run_start is None:
            run_start = i
        elif not silent and run_start is not None:
            gaps.append((start + timedelta(minutes=run_start), start + timedelta(minutes=i)))
            run_start = None
    return rate, tuple(gaps)


def _coverage(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    span: Span | None,
    sources: list[dict[str, Any]],
) -> Coverage:
    lo, hi = coverage_span(window, span)
    n = int((hi - lo) / timedelta(minutes=1))
    per: dict[int, dict[int, int]] = {}  # source → minute index → events (minutes with any)
    rows = run_query(
        con, "events_per_minute_by_source", {"coverage_start": lo, "coverage_end": hi}
    ).to_pylist()
    for r in rows:
        i = int((r["minute"] - lo) / timedelta(minutes=1))
        per.setdefault(int(r["source_id"]), {})[i] = int(r["events"])
    names = {int(s["source_id"]): _file_name(str(s["path"])) for s in sources}
    seen = [names[sid] for sid in per if sid in names]
    for sid in per:  # the same file name in two folders: tell them apart by source id
        if sid in names and seen.count(names[sid]) > 1:
            names[sid] = f"{names[sid]} (source {sid})"
    w0 = int((window.start - lo) / timedelta(minutes=1))
    w1 = int(-((lo - window.end) // timedelta(minutes=1)))
    out = [
        _stretch(sid, names.get(sid, f"source {sid}"), per[sid], lo, (w0, w1))
        for sid in sorted(per)
    ]
    combined = None
    if out:
        total = np.zeros(n, dtype=np.int64)
        for c in out:
            total[c.first : c.first + len(c.counts)] += np.asarray(c.counts, dtype=np.int64)
        active = np.flatnonzero(total)
        minutes = {int(i): int(total[i]) for i in active}
        combined = _stretch(0, "all events files", minutes, lo, (w0, w1))
    beyond = None
    if span is not None and (
        span.first_overall < window.start - COVERAGE_REACH
        or span.last_overall > window.end + COVERAGE_REACH
    ):
        beyond = (span.first_overall, span.last_overall)
    return Coverage(lo, hi, tuple(out), combined, beyond)


def _stretch(
    sid: int, name: str, minutes: dict[int, int], lo: datetime, window: tuple[int, int]
) -> SourceCoverage:
    """One file's coverage from its minutes with events (indexes from `lo`): the counts
    from its first such minute to its last, zeros between."""
    first, last = min(minutes), max(minutes)
    counts = [0] * (last - first + 1)
    for i, c in minutes.items():
        counts[i - first] = c
    rate, gaps = find_gaps(counts, lo + timedelta(minutes=first))
    w0, w1 = window
    return SourceCoverage(
        source_id=sid,
        name=name,
        counts=tuple(counts),
        events=sum(counts),
        events_in_window=sum(counts[max(0, w0 - first) : max(0, w1 - first)]),
        median_rate=rate,
        gaps=gaps,
        first=first,
    )


def pick_files(
    sources: tuple[SourceCoverage, ...], limit: int
) -> tuple[list[SourceCoverage], list[SourceCoverage]]:
    """(shown, rest): at most `limit` files, those with gaps first, then the busiest;
    shown in source order. Thousands of small log files must not make a table or a legend
    of thousands of rows."""
    ranked = sorted(sources, key=lambda c: (not c.gaps, -c.events, c.source_id))
    shown = sorted(ranked[:limit], key=lambda c: c.source_id)
    return shown, ranked[limit:]


def _file_name(path: str) -> str:
    return printable(path.replace("\\", "/").rsplit("/", 1)[-1])


def _query_file(name: str) -> QueryFile:
    q = get_query(name)
    return QueryFile(name, q.path.name, hashlib.sha256(q.path.read_bytes()).hexdigest())


def _versions() -> dict[str, str]:
    out = {"forensics": __version__}
    for dist in ("duckdb", "altair", "vl-convert-python"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def instant(t: datetime | None) -> str:
    """A UTC instant to the second, `YYYY-MM-DDTHH:MM:SSZ` ('' for None)."""
    return "" if t is None else format_instant(t)
