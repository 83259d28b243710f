"""report.html and report.md from ReportData: one list of sections, two templates.

The sections (sentences, tables, charts, marked blanks) are built once here, so the HTML and
the Markdown say the same things; the HTML adds the charts as inline SVG and the figures as
JSON. Text from the data (field values, countries, file names, reasons) is escaped for each
format and its control and bidi characters are shown as escapes.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jinja2

from forensics.exposure import FIGURE_KEYS, bucket_timeline, printable
from forensics.report import charts
from forensics.report.figures import (
    GAP_MIN_RATE,
    MAX_COVERAGE_ROWS,
    ReportData,
    SourceCoverage,
    instant,
    pick_files,
)

TITLE = "Incident report: camera content shown to the wrong accounts"

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


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # right-aligned columns
    mono: set[int] = field(default_factory=set)  # hashes: monospace, small
    caption: str = ""


@dataclass
class Block:
    kind: str  # p, blank, table, chart, code
    text: str = ""
    table: Table | None = None
    svg: str = ""
    heading: str = ""  # a sub-heading shown before the block


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def blank(self, text: str) -> None:
        self.blocks.append(Block("blank", text))

    def add_table(self, table: Table, heading: str = "") -> None:
        self.blocks.append(Block("table", table=table, heading=heading))

    def chart(self, svg: str, text: str) -> None:
        self.blocks.append(Block("chart", text=text, svg=svg))

    def code(self, text: str, heading: str = "") -> None:
        self.blocks.append(Block("code", text=text, heading=heading))


def n(value: int) -> str:
    return f"{value:,}"


def _people(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def _value(v: str | None) -> str:
    return "(missing)" if v is None else printable(v)


def build_sections(data: ReportData, with_charts: bool) -> list[Section]:
    """Every section of the report, in order (charts rendered only when asked)."""
    return [
        _summary(data, with_charts),
        _timeline(data, with_charts),
        *_breakdowns(data, with_charts),
        _people_section(data),
        _coverage(data, with_charts),
        _evidence(data),
        _regulator(data),
    ]


def _summary(data: ReportData, with_charts: bool) -> Section:
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
            logged = _people(
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
            f"In the window {w}, {_people(f['recipients'], 'account was', 'accounts were')} "
            "shown thumbnails from cameras that were not theirs: "
            f"{n(f['cross_account_deliveries'])} of {n(f['deliveries'])} successful thumbnail "
            f"deliveries ({_pct(f['cross_account_deliveries'], f['deliveries'])}) went to an "
            "account without a grant on the camera at that moment."
        )
        s.p(
            f"{_people(f['tappers'], 'of them', 'of them')} opened one "
            f"({_people(f['cross_account_taps'], 'tap', 'taps')}) and "
            f"{_people(f['video_viewers'], 'played', 'played')} the event's video "
            f"({_people(f['cross_account_plays'], 'play', 'plays')}). "
            f"{_people(f['exposed_devices'], 'camera was', 'cameras were')} exposed, held by "
            f"{_people(f['exposed_owners'], 'owner', 'owners')} at the time."
        )
    if f["unlinked_unauthorized_accesses"]:
        unlinked = _people(
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
    if with_charts and not data.zero_findings:
        s.chart(
            charts.funnel_chart(f),
            "Funnel: cross-account deliveries, recipients, tappers, video viewers.",
        )
    return s


def _timeline(data: ReportData, with_charts: bool) -> Section:
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


def _breakdowns(data: ReportData, with_charts: bool) -> list[Section]:
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
            f"{_value(top.value)} carries the most cross-account deliveries: "
            f"{n(top.cross_account_deliveries)} of {n(total)} "
            f"({_pct(top.cross_account_deliveries, total)}), to "
            f"{_people(top.recipients, 'recipient', 'recipients')} from "
            f"{_people(top.exposed_devices, 'camera', 'cameras')}. "
            f"{_people(b.total_values, 'value', 'values')} in all, shown as stored in the "
            "logs."
        )
        rows = [
            [
                _value(r.value),
                n(r.cross_account_deliveries),
                _pct(r.cross_account_deliveries, total),
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
                    _pct(b.other_deliveries, total),
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


def _people_section(data: ReportData) -> Section:
    s = Section("people", "People affected")
    totals = data.people_totals
    anyone = totals.get("any", (0, 0))
    if anyone[0] == 0:
        s.p("Nobody is affected in this window.")
        return s
    rec, own = totals.get("recipient", (0, 0)), totals.get("owner", (0, 0))
    s.p(
        f"{_people(anyone[0], 'person is', 'distinct people are')} affected: "
        f"{n(rec[0])} recipients and {n(own[0])} owners of exposed cameras (a person can be "
        "both)."
    )
    s.p(
        f"{_people(anyone[1], 'of them cannot', 'of them cannot')} be reached by email (no "
        f"account record, or no email): {_people(rec[1], 'recipient', 'recipients')} and "
        f"{_people(own[1], 'owner', 'owners')}."
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


def _coverage(data: ReportData, with_charts: bool) -> Section:
    s = Section("coverage", "Log coverage")
    cov = data.coverage
    if cov is None or cov.combined is None:
        s.p(
            "No event at all is logged around the window: every figure above rests on "
            "no data. Check that the access logs for this period were ingested."
        )
    else:
        s.p(
            f"Events per minute in each events file from {instant(cov.start)} to "
            f"{instant(cov.end)} (the window and every delivery without a grant, with a margin). "
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
            s.p(f"{_people(len(flagged), 'file has', 'files have')} gaps.{extra}")
        else:
            s.p("No gap is flagged.")
        shown, rest = pick_files(cov.sources, MAX_COVERAGE_ROWS)
        rows = [_coverage_row(c) for c in shown]
        if rest:
            with_gaps = sum(1 for c in rest if c.gaps)
            rows.append(
                [
                    f"({_people(len(rest), 'other file', 'other files')})",
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


def _q(text: str) -> str:
    """A shell word for a command line shown in the report (control characters escaped)."""
    return shlex.quote(printable(text))


def _evidence(data: ReportData) -> Section:
    s = Section("evidence", "Evidence")
    w = str(data.window)
    if data.lake is None:
        db = f"--db {_q(data.store_path)}"
    else:
        db = f"--lake {_q(data.lake)}" + (" --engine spark" if data.engine == "spark" else "")
    ok = all(
        int(r["rows_read"])
        == int(r["rows_loaded"]) + int(r["rows_rejected"]) + int(r["rows_duplicate"])
        for r in data.sources
    )
    s.p(
        f"{_people(len(data.sources), 'input file was', 'input files were')} ingested into "
        f"the case store. For every file, rows read = loaded + rejected + duplicate: "
        f"{'holds' if ok else 'DOES NOT HOLD for some file (see the table)'}."
    )
    rows = []
    for r in data.sources:
        balanced = int(r["rows_read"]) == (
            int(r["rows_loaded"]) + int(r["rows_rejected"]) + int(r["rows_duplicate"])
        )
        rows.append(
            [
                printable(str(r["path"])),
                str(r["kind"]),
                str(r["sha256"]),
                n(int(r["rows_read"])),
                n(int(r["rows_loaded"])),
                n(int(r["rows_rejected"])),
                n(int(r["rows_duplicate"])),
                "yes" if balanced else "NO",
            ]
        )
    s.add_table(
        Table(
            ["file", "kind", "SHA-256", "read", "loaded", "rejected", "duplicate", "balanced"],
            rows,
            numeric={3, 4, 5, 6},
            mono={2},
        ),
        heading="Inputs",
    )
    s.add_table(
        Table(
            ["query", "SHA-256"], [[f"queries/{q.file}", q.sha256] for q in data.queries], mono={1}
        ),
        heading="Query files used",
    )
    s.p(
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in data.versions.items())
        + f". Generated at {instant(data.generated_at)}."
    )
    s.code(
        "\n".join(_rederive_commands(data, db, w)), heading="Commands that re-derive the figures"
    )
    return s


def _rederive_commands(data: ReportData, db: str, w: str) -> list[str]:
    """The command lines that re-derive every figure, for the store or lake read (`db`)."""
    by = " ".join(f"--by {_q(b.field)}" for b in data.breakdowns)
    lines = [
        "# every figure of 'What happened' (the keys of its table), and the timeline:",
        f"forensics {db} exposure --window {w} --json",
    ]
    for b in data.breakdowns:
        lines += [
            f"# the breakdown by {printable(b.field)}:",
            f"forensics {db} exposure --window {w} --by {_q(b.field)} --json",
        ]
    lines += [
        "# the people behind 'People affected' (personal data: recipients.csv, owners.csv):",
        f"forensics {db} notify --window {w} --out NEW_FOLDER",
        *(
            [
                "# the inputs and their accounting, the rejected records, and the files re-hashed:",
                f"forensics {db} sources --json",
                f"forensics {db} rejects --json",
                f"forensics {db} verify",
            ]
            if data.lake is None
            else [
                "# the inputs and their accounting: the lake's sources/ table; the rejected",
                "# records and the files re-hashed: sources, rejects and verify on each store",
                "# exported into the lake (they read a case store)",
            ]
        ),
        "# this report again:",
        f"forensics {db} report --window {w}{' ' + by if by else ''} --out NEW_FOLDER",
    ]
    return lines


def _regulator(data: ReportData) -> Section:
    s = Section("gdpr", "For the supervisory authority (GDPR Art. 33(3))")
    s.p(
        "Filled from the logs where they speak; the marked blanks can only be completed by "
        "the controller."
    )
    _add_breach_nature(s, data)
    s.blocks.append(
        Block(
            "blank",
            heading="(b) Name and contact details of the data "
            "protection officer or other contact point",
            text="To be completed by the controller.",
        )
    )
    _add_breach_consequences(s, data)
    _add_breach_measures(s, data)
    return s


def _add_breach_nature(s: Section, data: ReportData) -> None:
    """Art. 33(3)(a): what was disclosed, to how many, and the blank the logs cannot fill."""
    f = data.figures
    span = data.span
    when = f"in the window {data.window}"
    if span is not None and span.first_in_window is not None:
        when = f"between {instant(span.first_in_window)} and {instant(span.last_in_window)} UTC"
    owners = data.people_totals.get("owner", (0, 0))
    recipients = data.people_totals.get("recipient", (0, 0))
    if data.zero_findings:
        s.blocks.append(
            Block(
                "p",
                heading="(a) Nature of the breach, categories and "
                "approximate numbers of data subjects and records",
                text=f"The logs show no cross-account delivery in the window "
                f"{data.window}: no breach of this kind is evidenced for it.",
            )
        )
    else:
        s.blocks.append(
            Block(
                "p",
                heading="(a) Nature of the breach, categories and "
                "approximate numbers of data subjects and records",
                text=f"Unauthorized disclosure (confidentiality): {when}, "
                "thumbnails of camera events from "
                f"{_people(f['exposed_devices'], 'camera', 'cameras')} were "
                f"shown to {_people(f['recipients'], 'account', 'accounts')} "
                "with no grant on those cameras ("
                f"{_people(f['cross_account_deliveries'], 'delivery', 'deliveries')}"
                f"); {_people(f['tappers'], 'account', 'accounts')} opened one "
                f"({_people(f['cross_account_taps'], 'tap', 'taps')}) and "
                f"{n(f['video_viewers'])} played the event's video "
                f"({_people(f['cross_account_plays'], 'play', 'plays')}).",
            )
        )
        s.p(
            f"Data subjects whose data was disclosed: about {n(owners[0])} owners of the "
            "exposed cameras, and the people their footage shows (see the blank below). "
            f"Account holders who were shown content not theirs: {n(recipients[0])} (their "
            "accounts were involved; the content was not about them). Records: about "
            f"{_people(f['cross_account_deliveries'], 'event thumbnail', 'event thumbnails')} "
            f"and {_people(f['cross_account_plays'], 'video play', 'video plays')}."
        )
        outside = f["cross_account_deliveries_outside_window"]
        if outside and span is not None:
            s.p(
                f"A further {n(outside)} deliveries without a grant fall outside the window "
                f"(all of them run from {instant(span.first_overall)} to "
                f"{instant(span.last_overall)}); they are not counted here. Whether they "
                "belong to this breach is for the controller to decide (see Timeline)."
            )
    s.blank(
        "People visible or audible in the exposed footage (household members, visitors) "
        "and what the footage shows are not in the logs: to be completed by the controller."
    )


def _add_breach_consequences(s: Section, data: ReportData) -> None:
    """Art. 33(3)(c): how far the content travelled, and the controller's assessment."""
    f = data.figures
    if data.zero_findings:
        text = "No disclosure of this kind is evidenced in the window."
    else:
        text = (
            f"The logs show how far the content travelled: {n(f['recipients'])} accounts "
            f"were shown thumbnails, {n(f['tappers'])} opened one and "
            f"{n(f['video_viewers'])} played a video (the most intrusive exposure)."
        )
    s.blocks.append(Block("p", heading="(c) Likely consequences of the breach", text=text))
    s.blank(
        "The controller's assessment of the consequences for the people concerned "
        "(e.g. footage from inside homes, risk of stalking or burglary): to be completed "
        "by the controller."
    )


def _add_breach_measures(s: Section, data: ReportData) -> None:
    """Art. 33(3)(d): the notification lists, and the measures only the controller knows."""
    anyone = data.people_totals.get("any", (0, 0))
    s.blocks.append(
        Block(
            "p",
            heading="(d) Measures taken or proposed",
            text=(
                f"Notification lists for the {n(anyone[0])} people affected can be written with "
                f"forensics notify (see Evidence); {n(anyone[1])} of them have no email and "
                "need another channel."
            )
            if anyone[0]
            else "Nobody needs to be notified for this window, by the logs.",
        )
    )
    s.blank(
        "Measures taken to stop the disclosure and mitigate its effects (e.g. the faulty "
        "cache build withdrawn, dates; sessions or thumbnails revoked): to be completed by "
        "the controller."
    )


# --- formats -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: str) -> str:
    """Text safe inside a Markdown paragraph or table cell: no markup, no HTML, one line."""
    text = " ".join(printable(str(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def figures_json(figures: dict[str, Any]) -> str:
    """The figures as JSON that cannot end the <script> element it sits in."""
    text = json.dumps(figures, ensure_ascii=False, indent=2)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("forensics.report", "templates"),
        # the HTML template is report.html.j2: escape by that name (".html" alone would miss it)
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = md_escape
    env.filters["printable"] = printable
    return env


def render_html(data: ReportData) -> str:
    env = _environment()
    return env.get_template("report.html.j2").render(
        title=TITLE,
        data=data,
        window=str(data.window),
        generated_at=instant(data.generated_at),
        sections=build_sections(data, with_charts=True),
        figures_json=figures_json(data.figures),
    )


def render_markdown(data: ReportData) -> str:
    env = _environment()
    return env.get_template("report.md.j2").render(
        title=TITLE,
        data=data,
        window=str(data.window),
        generated_at=instant(data.generated_at),
        sections=build_sections(data, with_charts=False),
    )
