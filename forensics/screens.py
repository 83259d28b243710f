"""The screens of each command: what `forensics` shows for ingest, sources, rejects, verify,
status, exposure, sql and notify, drawn with forensics.terminal's fitted tables and messages.

Counts, file names and paths only: never an id of a person, an email or a name (the --by
breakdown shows stored values of the field asked for, escaped). Nothing here computes.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from forensics.terminal import (
    ERR,
    OUT,
    PATH_MIN,
    Col,
    Fitted,
    emit,
    error,
    fit_table,
    number,
    print_fitted,
    printable,
    say,
    shorten_middle,
    when,
)

LIST_EACH_FILE_UP_TO = 30  # an ingest summary lists every file up to this many files
LIST_FILES_MAX = 50  # at most this many failed or rejecting files, one by one


# ------------------------------------------------------------------------------ ingest


def _skip_reason(f: Any) -> str:
    error = f.error or "already ingested"
    prefix = "same content as "
    if error.startswith(prefix) and _same_file(error[len(prefix) :], f.path):
        return "already ingested"
    return error


def _same_file(a: str, b: str) -> bool:
    """The same path, whether given relative or absolute (the store records it resolved)."""
    try:
        return a == b or os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def _file_order(files: Sequence[Any]) -> list[Any]:
    """Failed files first, then files with rejects, then the rest, each in input order."""

    def rank(f: Any) -> int:
        if f.status == "failed":
            return 0
        return 1 if f.rows_rejected else 2

    return sorted(files, key=rank)


def _status_text(f: Any, terminal: bool) -> Text:
    style = ""
    if terminal:
        style = {"failed": "bold red", "skipped": "dim"}.get(f.status, "")
        if f.status == "loaded" and f.rows_rejected:
            style = "yellow"
    return Text(f.status, style=style)


_FILE_COLS = (
    Col("file", "path", keep=True),
    Col("kind", "fixed", hide=3),
    Col("status", "fixed", hide=2),
    Col("read", "number", hide=4),
    Col("loaded", "number", keep=True),
    Col("rejected", "number", keep=True),
    Col("duplicate", "number", hide=5),
)


def _file_rows(files: Sequence[Any], terminal: bool) -> list[list[Any]]:
    return [
        [
            printable(f.path),
            f.kind or "",
            _status_text(f, terminal),
            number(f.rows_read),
            number(f.rows_loaded),
            number(f.rows_rejected),
            number(f.rows_duplicate),
        ]
        for f in files
    ]


def render_ingest(report: Any, events: Any | None, console: Console = ERR) -> None:
    """The ingest summary: per file (or per folder and kind for many files), totals, then
    failures, rejection reasons and the time range of the stored events."""
    t = report.totals()
    terminal = console.is_terminal
    total = [
        "total",
        "",
        "",
        number(t["rows_read"]),
        number(t["rows_loaded"]),
        number(t["rows_rejected"]),
        number(t["rows_duplicate"]),
    ]
    files = list(report.files)
    title = (
        f"ingest: {t['files']:,} files: {t['loaded']:,} loaded, {t['skipped']:,} skipped, "
        f"{t['failed']:,} failed"
    )
    if len(files) <= LIST_EACH_FILE_UP_TO:
        ordered = _file_order(files)
        fitted = fit_table(
            console, _FILE_COLS, _file_rows(ordered, terminal), title=title, total=total
        )
        print_fitted(console, fitted, "--json lists every file whole", console)
    else:
        _render_ingest_groups(report, console, title, total)
    _render_ingest_messages(files, console)
    if events is not None:
        say(console, f"events in the store: {events.events:,}, {events}")


def _render_ingest_groups(report: Any, console: Console, title: str, total: list[str]) -> None:
    groups: dict[tuple[str, str], dict[str, int]] = {}
    for f in report.files:
        folder = str(PurePath(f.path).parent)
        g = groups.setdefault(
            (folder, f.kind or "?"),
            {
                "files": 0,
                "failed": 0,
                "rows_read": 0,
                "rows_loaded": 0,
                "rows_rejected": 0,
                "rows_duplicate": 0,
            },
        )
        g["files"] += 1
        g["failed"] += f.status == "failed"
        for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"):
            g[k] += getattr(f, k)
    cols = (
        Col("folder", "path", keep=True),
        Col("kind", "fixed", hide=3),
        Col("files", "number", keep=True),
        Col("failed", "number", keep=True),
        Col("read", "number", hide=4),
        Col("loaded", "number", keep=True),
        Col("rejected", "number", keep=True),
        Col("duplicate", "number", hide=5),
    )
    rows = [
        [
            printable(folder),
            kind,
            number(g["files"]),
            number(g["failed"]),
            number(g["rows_read"]),
            number(g["rows_loaded"]),
            number(g["rows_rejected"]),
            number(g["rows_duplicate"]),
        ]
        for (folder, kind), g in groups.items()
    ]
    t = report.totals()
    fitted = fit_table(
        console,
        cols,
        rows,
        title=title + " (per folder and kind)",
        total=[total[0], "", number(t["files"]), number(t["failed"]), *total[3:]],
    )
    print_fitted(console, fitted, "--json lists every file whole", console)
    notable = [f for f in _file_order(report.files) if f.status == "failed" or f.rows_rejected]
    if notable:
        shown = notable[:LIST_FILES_MAX]
        fitted = fit_table(
            console,
            _FILE_COLS,
            _file_rows(shown, console.is_terminal),
            title="files that failed or had rejects",
        )
        print_fitted(console, fitted, "--json lists every file whole", console)
        if len(notable) > len(shown):
            say(console, f"{len(shown):,} of {len(notable):,} shown; --json lists every file")


def _render_ingest_messages(files: Sequence[Any], console: Console) -> None:
    many = len(files) > LIST_EACH_FILE_UP_TO
    failed = [f for f in files if f.status == "failed"]
    for f in failed[:LIST_FILES_MAX] if many else failed:
        error(f"{printable(f.path)}: {printable(f.error or 'failed')}", console)
    if many and len(failed) > LIST_FILES_MAX:
        error(f"{len(failed) - LIST_FILES_MAX:,} more files failed (--json lists them)", console)
    skipped = [f for f in files if f.status == "skipped"]
    same = [f for f in skipped if _skip_reason(f) == "already ingested"]
    if same:
        say(
            console,
            f"skipped {len(same):,} file{'s' if len(same) != 1 else ''} already "
            "ingested (same SHA-256)",
            "dim",
        )
    for f in [f for f in skipped if f not in same][:LIST_FILES_MAX]:
        say(console, f"skipped {printable(f.path)}: {printable(_skip_reason(f))}", "dim")
    rejecting = [f for f in files if f.reasons]
    for f in rejecting[:LIST_FILES_MAX] if many else rejecting:
        head = "rejected in "
        path = printable(f.path)
        if console.is_terminal:  # one line: the path loses its middle, not its name
            path = shorten_middle(path, max(PATH_MIN, console.width - len(head) - 1))
        say(console, f"{head}{path}:", "yellow")
        width = max(len(f"{n:,}") for n in f.reasons.values())
        for reason, count in f.reasons.items():
            say(console, f"  {count:>{width},}  {printable(reason)}")


# ------------------------------------------------------------------ sources, rejects, verify


def render_sources(
    rows: list[dict[str, Any]],
    console: Console = OUT,
    *,
    wide: bool = False,
    err: Console = ERR,
) -> None:
    """The sources table: compact (file name, short hash) unless `wide`."""
    mapped = any(r.get("map_sha256") for r in rows)
    # notes: columns of a file converted or left out to read it (shown when any file has one).
    noted = any(r.get("notes") for r in rows)
    notes_col = [Col("notes", "text", hide=1)] if noted else []
    if wide:
        cols = [
            Col("source_id", "number", keep=True),
            Col("path", "path", keep=True),
            Col("kind", "fixed", hide=2),
            Col("format", "fixed", hide=3),
            Col("size_bytes", "number", hide=4),
            Col("sha256", "fixed", keep=True),
            *([Col("map_sha256", "fixed", hide=1)] if mapped else []),
            Col("rows_read", "number", hide=4),
            Col("rows_loaded", "number", keep=True),
            Col("rows_rejected", "number", hide=1),
            Col("rows_duplicate", "number", hide=4),
            Col("ingested_at", "fixed", hide=3),
            *notes_col,
        ]
        data = [
            [
                number(r["source_id"]),
                printable(str(r["path"])),
                r["kind"],
                r["format"],
                number(r["size_bytes"]),
                r["sha256"],
                *([r.get("map_sha256") or ""] if mapped else []),
                number(r["rows_read"]),
                number(r["rows_loaded"]),
                number(r["rows_rejected"]),
                number(r["rows_duplicate"]),
                r["ingested_at"],
                *([printable(r.get("notes") or "")] if noted else []),
            ]
            for r in rows
        ]
    else:
        cols = [
            Col("id", "number", keep=True),
            Col("file", "path", keep=True),
            Col("kind", "fixed", hide=3),
            Col("sha256", "fixed", hide=2),
            *([Col("map_sha256", "fixed", hide=2)] if mapped else []),
            Col("read", "number", hide=4),
            Col("loaded", "number", keep=True),
            Col("rejected", "number", hide=1),
            Col("duplicate", "number", hide=5),
            *notes_col,
        ]
        data = [
            [
                number(r["source_id"]),
                printable(PurePath(str(r["path"])).name),
                r["kind"],
                r["sha256"][:12],
                *([(r.get("map_sha256") or "")[:12]] if mapped else []),
                number(r["rows_read"]),
                number(r["rows_loaded"]),
                number(r["rows_rejected"]),
                number(r["rows_duplicate"]),
                *([printable(r.get("notes") or "")] if noted else []),
            ]
            for r in rows
        ]
    fitted = fit_table(console, cols, data)
    print_fitted(console, fitted, "--wide or --json shows every column whole", err)
    if not rows:
        say(err, "0 files ingested")


def render_rejects(page: Any, *, raw: bool, console: Console = OUT, err: Console = ERR) -> None:
    cols = [
        Col("file", "path", keep=True),
        Col("record", "number", keep=True),
        Col("reason", keep=True),
        *([Col("raw")] if raw else []),
    ]
    data = [
        [
            printable(str(r["source_file"])),
            number(r["source_record"]),
            printable(str(r["reason"])),
            *([printable(str(r["raw"] or ""))] if raw else []),
        ]
        for r in page.rows
    ]
    fitted = fit_table(console, cols, data)
    print_fitted(console, fitted, "--json shows every field whole", err)
    say(
        err,
        f"{len(page.rows):,} of {page.total:,} rejected records shown"
        + (" (--limit N shows more)" if page.total > len(page.rows) else ""),
    )


def render_verify(rows: list[dict[str, Any]], console: Console = OUT, err: Console = ERR) -> None:
    """Changed and missing files first, in red on a terminal."""
    bad = [r for r in rows if r["status"] != "ok"]
    ok = [r for r in rows if r["status"] == "ok"]
    terminal = console.is_terminal
    data = [
        [Text(r["status"], style="bold red" if terminal else ""), printable(str(r["path"]))]
        for r in bad
    ]
    data += [
        [Text(r["status"], style="green" if terminal else ""), printable(str(r["path"]))]
        for r in ok
    ]
    fitted = fit_table(console, [Col("status", keep=True), Col("path", "path", keep=True)], data)
    print_fitted(console, fitted, "--json shows every path whole", err)


# ---------------------------------------------------------------------------- exposure

FIGURE_LABELS = {
    "deliveries": "thumbnail deliveries (successful)",
    "cross_account_deliveries": "cross-account deliveries",
    "recipients": "recipients (accounts shown others' content)",
    "cross_account_taps": "cross-account taps",
    "tappers": "tappers",
    "cross_account_plays": "cross-account video plays",
    "video_viewers": "video viewers",
    "exposed_devices": "exposed devices",
    "exposed_owners": "exposed owners",
    "unlinked_unauthorized_accesses": "unauthorized taps/plays not linked to a delivery",
    "cross_account_deliveries_outside_window": "cross-account deliveries outside the window",
}


def render_exposure(
    report: Any, console: Console = OUT, err: Console = ERR, *, top: int = 0
) -> None:
    """Counts only (never an email or a name); text from data is printed literally."""
    from rich.panel import Panel

    from forensics.exposure import FIGURE_KEYS

    fig, w = report.figures, report.window
    terminal = console.is_terminal
    wide = not terminal or console.width >= 100  # room for the JSON key beside each label
    grid = Table.grid(padding=(0, 2))
    grid.add_column(overflow="fold")
    if wide:
        grid.add_column(style="dim" if terminal else "", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    for key in FIGURE_KEYS:
        grid.add_row(FIGURE_LABELS[key], *([key] if wide else []), f"{fig[key]:,}")
    if terminal:
        emit(console, Panel(grid, title=f"exposure {w}", title_align="left", expand=False))
    else:
        console.file.write(f"exposure {w}\n")
        emit(console, grid)
    _render_timeline(report, console)
    if report.breakdown is not None:
        _render_breakdown(report.breakdown, console, err, top)
    console.file.flush()


def _render_timeline(report: Any, console: Console) -> None:
    from forensics.exposure import bucket_timeline

    fig, w = report.figures, report.window
    width, buckets = bucket_timeline(fig["timeline"], w)
    minutes = int(width.total_seconds() // 60)
    unit = next(
        (f"{minutes // size} {name}s" if minutes > size else name)
        for size, name in ((1440, "day"), (60, "hour"), (1, "minute"))
        if minutes % size == 0
    )
    say(console, f"cross-account deliveries per {unit} (UTC)", "bold")
    if fig["cross_account_deliveries"] == 0:
        say(console, "0 cross-account deliveries in the window")
        return
    label_fmt = "%Y-%m-%d" if minutes >= 1440 else "%Y-%m-%dT%H:%MZ"
    peak = max(b.cross_account_deliveries for b in buckets)
    count_width = len(f"{peak:,}")
    label_width = len(buckets[0].start.strftime(label_fmt))
    room = console.width if console.is_terminal else 80
    bar_width = max(10, room - label_width - 4 - count_width)
    for b in buckets:
        eighths = round(b.cross_account_deliveries / peak * bar_width * 8)
        bar = "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]
        if b.cross_account_deliveries and not bar:
            bar = "▏"
        line = (
            Text(b.start.strftime(label_fmt) + " │")
            + Text(bar.ljust(bar_width), style="red" if console.is_terminal else "")
            + Text(f" {b.cross_account_deliveries:>{count_width},}")
        )
        if console.is_terminal:
            console.print(line, no_wrap=True, overflow="crop")
        else:
            console.file.write(line.plain + "\n")


def _render_breakdown(breakdown: Any, console: Console, err: Console, top: int) -> None:
    """The breakdown, largest first; at most `top` values (0: all), saying how many."""
    name = printable(breakdown.field)
    cols = [
        Col(name, keep=True),
        Col("cross-account deliveries", "number", keep=True),
        Col("recipients", "number", keep=True),
        Col("exposed devices", "number"),
    ]
    rows = [
        [
            Text("(missing)", style="dim") if r.value is None else printable(r.value),
            number(r.cross_account_deliveries),
            number(r.recipients),
            number(r.exposed_devices),
        ]
        for r in breakdown.rows
    ]
    shown = rows[:top] if top else rows
    fitted = fit_table(console, cols, shown, title=f"by {name}")
    print_fitted(console, fitted, "--json shows every value whole", err)
    if not breakdown.rows:
        say(console, "0 cross-account deliveries to break down")
    elif len(shown) < len(rows):
        say(
            err,
            f"{len(shown):,} of {len(rows):,} values of {name} shown, the largest "
            "first (--top N, --top 0 for all, or --json)",
        )


def coverage_warnings(coverage: Any, outside: int, window: Any) -> list[str]:
    """What to say on stderr when the figures may be zero for the wrong reason."""
    lines = []
    data = coverage.data
    where = coverage.where()
    if where == "empty":
        lines.append(
            "the case store holds no events: every figure is 0. Run `forensics "
            "ingest` first, or check --db"
        )
    elif coverage.holds_no_events:
        side = {
            "before": "before the first event",
            "after": "after the last event",
            "between": "in a gap between events",
        }.get(where, "")
        lines.append(
            f"the window {window} holds no events at all (it lies {side}); the "
            f"{data.events:,} stored events cover {data}. Check the window's date"
        )
    if outside and not coverage.holds_no_events:
        lines.append(
            f"{outside:,} cross-account deliveries fall outside the window {window}: "
            "the window may be too narrow"
        )
    return lines


# ---------------------------------------------------------------------------- sql


def render_sql_table(result: Any, console: Console, max_rows: int) -> tuple[int, int, Fitted]:
    """The sql result as a table: values never split; columns hidden or shortened to fit.

    Returns (shown, total, fitted) so the caller can say what was left out.
    """
    from forensics.sandbox import to_text

    numeric = (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
    )
    cols = [
        Col(
            printable(name),
            "number" if type_.upper().startswith(numeric) else "text",
            keep=(i == 0),
        )
        for i, (name, type_) in enumerate(zip(result.columns, result.types, strict=True))
    ]
    rows: list[list[Any]] = []
    total = 0
    for row in result.rows:
        total += 1
        if len(rows) < max_rows:
            rows.append(
                [Text("NULL", style="dim") if v is None else printable(to_text(v)) for v in row]
            )
    fitted = fit_table(console, cols, rows)
    emit(console, fitted.table)
    return len(rows), total, fitted


def write_sql_csv(result: Any) -> None:
    """The rows on stdout as RFC 4180 CSV (CRLF), header first."""
    import csv

    from forensics.sandbox import to_text

    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([to_text(v) for v in row])
    sys.stdout.flush()


def write_sql_json(result: Any) -> None:
    """The rows on stdout as a JSON array of objects, one object a line."""
    from forensics.sandbox import iter_json_rows

    sys.stdout.write("[")
    for i, obj in enumerate(iter_json_rows(result)):
        sys.stdout.write(("," if i else "") + "\n  " + json.dumps(obj, ensure_ascii=False))
    sys.stdout.write("\n]\n" if result.columns else "]\n")
    sys.stdout.flush()


# ---------------------------------------------------------------------------- status


def render_status(status: Any, console: Console = OUT, err: Console = ERR) -> None:
    """One screen: what is in this case."""
    t = status.totals()
    say(console, f"{status.what} {printable(str(status.path))}", "bold")
    size = "not measured" if status.size_bytes is None else f"{status.size_bytes:,} bytes"
    say(
        console,
        f"size {size}; {t.files:,} file"
        f"{'' if t.files == 1 else 's'} ingested"
        + (f", last at {when(t.last_ingested_at)}" if t.last_ingested_at else ""),
    )
    cols = [
        Col("kind", keep=True),
        Col("files", "number", keep=True),
        Col("read", "number"),
        Col("loaded", "number", keep=True),
        Col("rejected", "number", keep=True),
        Col("duplicate", "number"),
        Col("bytes", "number"),
    ]
    rows = [
        [
            k.kind,
            number(k.files),
            number(k.rows_read),
            number(k.rows_loaded),
            number(k.rows_rejected),
            number(k.rows_duplicate),
            number(k.size_bytes),
        ]
        for k in status.kinds
    ]
    total = [
        "total",
        number(t.files),
        number(t.rows_read),
        number(t.rows_loaded),
        number(t.rows_rejected),
        number(t.rows_duplicate),
        number(t.size_bytes),
    ]
    print_fitted(console, fit_table(console, cols, rows, total=total), "--json shows all", err)
    say(console, f"events: {status.events.events:,}, {status.events}")
    g = status.grants
    if g.grants:
        start = when(g.first_valid_from) or "always"
        end = when(g.last_valid_to) or "open"
        say(
            console,
            f"grants: {g.grants:,}, valid from {start} to {end} "
            f"({g.open_start:,} without a start, {g.open_end:,} still valid)",
        )
    else:
        say(console, "grants: 0")
    versions = ", ".join(f"{v.version} ({v.files:,} files)" for v in status.tool_versions)
    say(console, f"written by forensics {versions}" if versions else "written by: no files yet")


# ---------------------------------------------------------------------------- notify


def render_notify(run: Any, window: Any, sanitize: bool, console: Console = ERR) -> None:
    result = run.result
    lines = [f"notify: window {window}, formula cells {'neutralised' if sanitize else 'kept'}"]
    lines.append(wave_line(run.wave))
    for f in result.files:
        rows = f"{f.rows:,} rows" if f.rows is not None else ""
        lines.append(f"  {f.name:<15} {rows:>12}  {printable(str(f.path))}")
    if run.wave.pseudonymized:
        lines.append("pseudonymised: ids are HMAC-SHA256 pseudonyms; contact columns are empty")
    else:
        lines.append(
            f"users who cannot be reached (no email): {result.unreachable_users:,} "
            f"({result.unreachable_recipients:,} recipients, {result.unreachable_owners:,} owners)"
        )
    for line in lines:
        say(console, line.rstrip())


def render_report(result: Any, window: Any, console: Console = ERR) -> None:
    """Counts and paths only: the report's headline figures and the files written."""
    fig = result.data.figures
    say(
        console,
        f"report: window {window}: {fig['cross_account_deliveries']:,} cross-account "
        f"deliveries, {fig['recipients']:,} recipients",
    )
    for f in result.files:
        say(console, f"  {f.name:<12} {printable(str(f.path))}")


def wave_line(wave: Any) -> str:
    """The wave's number and, after an earlier wave, what is new in it (counts only)."""
    if wave.previous is None:
        return "wave 1 (no previous wave)"
    prev = wave.previous
    head = (
        f"wave {wave.number}, after wave {prev.number} in {printable(str(prev.folder))} "
        f"(manifest SHA-256 {prev.manifest_sha256[:16]}…)"
    )
    if wave.nothing_new:
        return f"{head}: nothing new since then; the lists hold headers only"
    c = wave.changes
    return (
        f"{head}: recipients {c['recipients.csv']['new']:,} new, "
        f"{c['recipients.csv']['escalated']:,} escalated; owners {c['owners.csv']['new']:,} new, "
        f"{c['owners.csv']['escalated']:,} escalated; "
        f"deliveries {c['exposures.csv']['new']:,} new"
    )


def render_verify_notices(
    rows: list[dict[str, Any]], console: Console = OUT, err: Console = ERR
) -> None:
    """One row per wave, failed chains first (in red on a terminal)."""
    terminal = console.is_terminal
    ordered = [r for r in rows if r["status"] != "ok"] + [r for r in rows if r["status"] == "ok"]
    data = [
        [
            printable(r["folder"]),
            "" if r.get("wave") is None else str(r["wave"]),
            Text(
                r["status"],
                style=("bold red" if r["status"] != "ok" else "green") if terminal else "",
            ),
            (r.get("manifest_sha256") or "")[:16],
        ]
        for r in ordered
    ]
    cols = [
        Col("folder", "path", keep=True),
        Col("wave", keep=True),
        Col("status", keep=True),
        Col("manifest", keep=True),
    ]
    # The manifest's SHA-256 to 16 digits, as the notify summary shows it (--json: all).
    print_fitted(console, fit_table(console, cols, data), "--json shows every path whole", err)


def render_chains_checked(problems: list[str], chains: int, err: Console = ERR) -> None:
    """Each broken chain's problem, then how many chains were verified."""
    for problem in problems:
        error(printable(problem), err)
    say(
        err,
        f"{chains - len(problems):,} of {chains:,} chains verified back to wave 1; "
        f"{len(problems):,} broken",
    )
