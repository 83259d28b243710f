"""The report's sections about the incident itself: what happened, the timeline, the
breakdowns, the people affected, and how well the logs cover the window (with rejects and
duplicates).
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from forensics.exposure import FIGURE_KEYS, bucket_timeline, printable
from forensics.report import charts
from forensics.report.figures import (
    COVERAGE_REACH,
    GAP_MIN_RATE,
    MAX_COVERAGE_ROWS,
    ReportData,
    SourceCoverage,
    instant,
    pick_files,
)
from forensics.report.sections import Section, Table, n, pct, people, value

FIGURE_TEXT = {
    "deliveries": "successful thumbnail deliveries in the window",
    "cross_account_deliveries": "of them to an account without a grant on the camera",
    "recipients": "accounts that received such a delivery",
    "cross_account_taps": "taps on such a thumbnail by its recipient",
    "tappers": "accounts that tapped one",
    "cross_account_plays": "video plays of such an event by its recipient",
    "video_viewers": "accounts that played one",
    "exposed_devices": "cameras whose content was delivered to others",
    "exposed_owners": "owners of those cameras at the time",
    "unlinked_unauthorized_accesses": "taps/plays in the window without a grant, after no "
    "cross-account delivery in the window",
    "cross_account_deliveries_outside_window": "deliveries without a grant before or after "
    "the window",
}
PLACEMENT_TEXT = {
    "in_window": "in the window",
    "outside": "outside the window",
    "unknown": "time unknown",
    "not_timed": "not time-bound",
}


def summary_section(data: ReportData, with_charts: bool) -> Section:
    f, w = data.figures, data.window
    s = Section("summary", "What happened")
    if data.zero_findings:
        s.p(
            f"No cross-account delivery was found in the window {w}: no account received a "
            "thumbnail from a camera it had no grant for at that time, so nobody is to be "
            "notified for this window."
        )
        if f["deliveries"] == 0:
            s.p(
                "The window holds no successful thumbnail delivery at all. Check that the "
                "window is right and that the access logs for it were ingested (see Log "
                "coverage)."
            )
        else:
            logged = people(
                f["deliveries"],
                "successful thumbnail delivery was",
                "successful thumbnail deliveries were",
            )
            s.p(
                f"{logged} logged in the window; every one went to an account with a grant on "
                "the camera."
            )
    else:
        s.p(
            f"In the window {w}, {people(f['recipients'], 'account was', 'accounts were')} "
            "shown thumbnails from cameras that were not theirs: "
            f"{n(f['cross_account_deliveries'])} of {n(f['deliveries'])} successful thumbnail "
            f"deliveries ({pct(f['cross_account_deliveries'], f['deliveries'])}) went to an "
            "account without a grant on the camera at that moment."
        )
        s.p(
            f"{people(f['tappers'], 'of them', 'of them')} opened one "
            f"({people(f['cross_account_taps'], 'tap', 'taps')}) and "
            f"{people(f['video_viewers'], 'played', 'played')} the event's video "
            f"({people(f['cross_account_plays'], 'play', 'plays')}). "
            f"{people(f['exposed_devices'], 'camera was', 'cameras were')} exposed, held by "
            f"{people(f['exposed_owners'], 'owner', 'owners')} at the time."
        )
    if f["unlinked_unauthorized_accesses"]:
        unlinked = people(
            f["unlinked_unauthorized_accesses"],
            "tap or play in the window was",
            "taps or plays in the window were",
        )
        s.p(
            f"{unlinked} made without a grant but followed no cross-account delivery in the "
            "window; they are not counted above."
        )
    if f["cross_account_deliveries_outside_window"]:
        s.p(
            f"{n(f['cross_account_deliveries_outside_window'])} deliveries without a grant fall "
            "outside the window: the window may be too narrow (see Timeline)."
        )
    s.add_table(
        Table(
            ["figure (exposure --json key)", "meaning", "count"],
            [[k, FIGURE_TEXT[k], n(f[k])] for k in FIGURE_KEYS],
            numeric={2},
        )
    )
    if not data.zero_findings:
        s.p(_funnel(f))
    if with_charts and not data.zero_findings:
        s.chart(
            charts.funnel_chart(f),
            "Funnel: cross-account deliveries, recipients, tappers, video viewers.",
        )
    return s


_FUNNEL = (
    ("cross_account_deliveries", "cross-account delivery", "cross-account deliveries"),
    ("recipients", "recipient", "recipients"),
    ("tappers", "tapper", "tappers"),
    ("video_viewers", "video viewer", "video viewers"),
)


def _funnel(f: dict[str, Any]) -> str:
    """The funnel in words (the chart's numbers, for report.md too)."""
    return "Funnel: " + " → ".join(people(f[k], one, many) for k, one, many in _FUNNEL) + "."


def timeline_section(data: ReportData, with_charts: bool) -> Section:
    f, w, span = data.figures, data.window, data.span
    s = Section("timeline", "Timeline")
    if span is None:
        s.p(
            "No delivery without a grant is stored, in the window or out of it: there is no "
            "timeline to draw."
        )
        return s
    if span.first_in_window is not None:
        s.p(
            f"Observed span in the window: the first cross-account delivery at "
            f"{instant(span.first_in_window)}, the last at {instant(span.last_in_window)} (UTC)."
        )
    else:
        s.p("No cross-account delivery falls in the window.")
    outside = f["cross_account_deliveries_outside_window"]
    if outside:
        before = sum(m.deliveries for m in data.outside if m.minute < w.start)
        s.p(
            f"{n(outside)} deliveries without a grant fall outside the window ({n(before)} "
            f"before it, {n(outside - before)} after it); all deliveries without a grant run "
            f"from {instant(span.first_overall)} to {instant(span.last_overall)}."
        )
        if data.suggested_window is not None:
            s.p(
                f"A window that holds them all: {data.suggested_window}. Check that they belong "
                "to the incident before widening the window; every figure would change."
            )
    else:
        s.p("No delivery without a grant falls outside the window.")
    if with_charts:
        s.chart(
            charts.timeline_chart(data),
            "Per minute (UTC): grey bars, cross-account "
            "deliveries; black line, recipients; open triangles, deliveries without a grant "
            "outside the window; shaded, the window.",
        )
    width, buckets = bucket_timeline(f["timeline"], w)
    minutes = int(width / timedelta(minutes=1))
    rows = [[instant(b.start), n(b.cross_account_deliveries)] for b in buckets]
    s.add_table(
        Table(
            ["from (UTC)", "cross-account deliveries"],
            rows,
            numeric={1},
            caption=f"In the window, per {minutes} minute{'s' if minutes > 1 else ''}.",
        )
    )
    return s


def breakdown_sections(data: ReportData, with_charts: bool) -> list[Section]:
    out = []
    for b in data.breakdowns:
        field_name = printable(b.field)
        s = Section(f"by-{re.sub(r'[^a-z0-9]+', '-', b.field.lower())}", f"By {field_name}")
        total = data.figures["cross_account_deliveries"]
        if not b.rows:
            s.p(f"No cross-account delivery to break down by {field_name}.")
            out.append(s)
            continue
        top = b.rows[0]
        s.p(
            f"{value(top.value)} carries the most cross-account deliveries: "
            f"{n(top.cross_account_deliveries)} of {n(total)} "
            f"({pct(top.cross_account_deliveries, total)}), to "
            f"{people(top.recipients, 'recipient', 'recipients')} from "
            f"{people(top.exposed_devices, 'camera', 'cameras')}. "
            f"{people(b.total_values, 'value', 'values')} in all, shown as stored in the "
            "logs."
        )
        rows = [
            [
                value(r.value),
                n(r.cross_account_deliveries),
                pct(r.cross_account_deliveries, total),
                n(r.recipients),
                n(r.exposed_devices),
            ]
            for r in b.rows
        ]
        if b.other_values:
            rows.append(
                [
                    f"({n(b.other_values)} other values)",
                    n(b.other_deliveries),
                    pct(b.other_deliveries, total),
                    "",
                    "",
                ]
            )
        s.add_table(
            Table(
                [field_name, "cross-account deliveries", "share", "recipients", "exposed devices"],
                rows,
                numeric={1, 2, 3, 4},
            )
        )
        if with_charts:
            s.chart(charts.breakdown_chart(b), f"Cross-account deliveries by {field_name}.")
        out.append(s)
    return out


def people_section(data: ReportData) -> Section:
    s = Section("people", "People affected")
    totals = data.people_totals
    anyone = totals.get("any", (0, 0))
    if anyone[0] == 0:
        s.p("Nobody is affected in this window.")
        return s
    rec, own = totals.get("recipient", (0, 0)), totals.get("owner", (0, 0))
    s.p(
        f"{people(anyone[0], 'person is', 'distinct people are')} affected: "
        f"{n(rec[0])} recipients and {n(own[0])} owners of exposed cameras (a person can be "
        "both)."
    )
    s.p(
        f"{people(anyone[1], 'of them cannot', 'of them cannot')} be reached by email (no "
        f"account record, or no email): {people(rec[1], 'recipient', 'recipients')} and "
        f"{people(own[1], 'owner', 'owners')}."
    )
    for key, label in (("country", "country"), ("locale", "locale")):
        acc: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in data.people:
            v = getattr(r, key)
            name = "(unknown)" if v is None else printable(v)
            acc[name][r.role] += r.people
            acc[name]["unreachable_" + r.role] += r.unreachable
        ordered = sorted(
            acc.items(),
            key=lambda kv: (-kv[1]["recipient"] - kv[1]["owner"], kv[0] == "(unknown)", kv[0]),
        )
        s.add_table(
            Table(
                [label, "recipients", "of them no email", "owners", "of them no email"],
                [
                    [
                        k,
                        n(v["recipient"]),
                        n(v["unreachable_recipient"]),
                        n(v["owner"]),
                        n(v["unreachable_owner"]),
                    ]
                    for k, v in ordered
                ],
                numeric={1, 2, 3, 4},
            ),
            heading=f"By {label}",
        )
    return s


def _gap_text(gaps: tuple[tuple[datetime, datetime], ...]) -> str:
    if not gaps:
        return "none"
    parts = []
    for a, b in gaps[:6]:
        m = int((b - a) / timedelta(minutes=1))
        parts.append(f"{instant(a)[11:16]}–{instant(b)[11:16]} ({m} min)")
    if len(gaps) > 6:
        parts.append(f"and {len(gaps) - 6} more")
    return ", ".join(parts)


def coverage_section(data: ReportData, with_charts: bool) -> Section:
    s = Section("coverage", "Log coverage")
    cov = data.coverage
    if cov is None or cov.combined is None:
        s.p(
            "No event at all is logged around the window: every figure above rests on "
            "no data. Check that the access logs for this period were ingested."
        )
    else:
        reach = "every delivery without a grant"
        if cov.beyond is not None:
            reach += (
                f" within {COVERAGE_REACH.days} days of it (such deliveries reach from "
                f"{instant(cov.beyond[0])} to {instant(cov.beyond[1])}: a wider window shows "
                "the logs around them)"
            )
        s.p(
            f"Events per minute in each events file from {instant(cov.start)} to "
            f"{instant(cov.end)} (the window and {reach}, with a margin). "
            f"A silent minute is flagged as a gap when the file logs at least {GAP_RATE_TEXT} "
            "a minute around it (median); a file that starts or ends inside the span is not "
            "silent outside its own span."
        )
        flagged = [c for c in cov.sources if c.gaps]
        if cov.combined.gaps:
            s.p(
                f"Gaps in all events files together: {_gap_text(cov.combined.gaps)}. No "
                "access is logged then: every figure may be an undercount."
            )
        if flagged:
            extra = (
                " Other files cover those minutes (all files together show no gap)."
                if not cov.combined.gaps
                else ""
            )
            s.p(f"{people(len(flagged), 'file has', 'files have')} gaps.{extra}")
        else:
            s.p("No gap is flagged.")
        shown, rest = pick_files(cov.sources, MAX_COVERAGE_ROWS)
        rows = [_coverage_row(c) for c in shown]
        if rest:
            with_gaps = sum(1 for c in rest if c.gaps)
            rows.append(
                [
                    f"({people(len(rest), 'other file', 'other files')})",
                    n(sum(c.events for c in rest)),
                    n(sum(c.events_in_window for c in rest)),
                    "",
                    f"{n(with_gaps)} of them with gaps" if with_gaps else "none",
                ]
            )
        rows.append(_coverage_row(cov.combined))
        s.add_table(
            Table(
                [
                    "events file",
                    "events in span",
                    "in the window",
                    "median per minute",
                    "gaps (UTC)",
                ],
                rows,
                numeric={1, 2, 3},
            )
        )
        if with_charts:
            s.chart(
                charts.coverage_chart(cov, data.window),
                "Events per minute per events file; the window shaded; gaps dark.",
            )
    _rejects(s, data)
    return s


GAP_RATE_TEXT = f"{GAP_MIN_RATE:g} events"


def _coverage_row(c: SourceCoverage) -> list[str]:
    return [c.name, n(c.events), n(c.events_in_window), f"{c.median_rate:g}", _gap_text(c.gaps)]


def _rejects(s: Section, data: ReportData) -> None:
    events = [r for r in data.rejects if r["kind"] == "events"]
    others = [r for r in data.rejects if r["kind"] != "events"]
    in_window = sum(int(r["records"]) for r in events if r["placement"] == "in_window")
    s.p(
        f"Rejected event records in the window: {n(in_window)}. A rejected record's own time "
        "may be missing or unreadable, so it is placed by its neighbours in its file (the "
        "stored events just before and after it by record number): in the window when the "
        "time between them meets the window, time unknown when its file stored no event."
    )
    if data.rejects:
        s.add_table(
            Table(
                ["kind", "where", "reason", "records"],
                [
                    [
                        str(r["kind"]),
                        PLACEMENT_TEXT.get(str(r["placement"]), str(r["placement"])),
                        printable(str(r["reason"])),
                        n(int(r["records"])),
                    ]
                    for r in data.rejects
                ],
                numeric={3},
            ),
            heading="Rejected records by reason",
        )
    if others:
        s.p(
            f"{n(sum(int(r['records']) for r in others))} grant or account records were "
            "rejected. Grants bear on every figure: a rejected grant can make an access look "
            "unauthorized; a rejected account can leave a person without contact details."
        )
    dups = data.duplicates
    names = {int(r["source_id"]): str(r["path"]) for r in data.sources}
    dup_in = sum(int(d["rows_duplicate"]) for d in dups if d["placement"] == "in_window")
    s.p(
        f"Duplicate event records (stored once, SPEC §2.4) in files whose events span the "
        f"window: {n(dup_in)}. The store keeps each file's count of duplicates, not the "
        "records, so they are placed by the span of the events their file stored."
    )
    if dups:
        s.add_table(
            Table(
                ["events file", "duplicates", "file's events from", "to", "where"],
                [
                    [
                        printable(
                            names.get(int(d["source_id"]), "?")
                            .replace("\\", "/")
                            .rsplit("/", 1)[-1]
                        ),
                        n(int(d["rows_duplicate"])),
                        instant(d["first_ts"]),
                        instant(d["last_ts"]),
                        PLACEMENT_TEXT.get(str(d["placement"]), str(d["placement"])),
                    ]
                    for d in dups
                ],
                numeric={1},
            ),
            heading="Duplicate records by file (reason: same de-duplication key as a stored event)",
        )
