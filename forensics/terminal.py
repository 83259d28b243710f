"""Terminal rendering: tables, panels, charts, messages and progress on Rich consoles.

Draws what core modules computed; computes nothing. Text from evidence is printed literally
(markup, emoji and highlighting off, control characters escaped). On a terminal: colour,
tables fitted to its width (numbers whole, paths shortened in the middle, columns hidden
with a note), progress bars. Not a terminal: plain lines, never wrapped, no padding at line
ends, no colour, no progress.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from forensics.window import format_instant

# markup/emoji/highlight off: text from evidence must never style, link or colour the terminal.
OUT = Console(markup=False, emoji=False, highlight=False)
ERR = Console(stderr=True, markup=False, emoji=False, highlight=False)

_UNBOUNDED = 1_000_000  # "no wrapping": the width used when the output is not a terminal
PATH_MIN = 16  # a path column is never shortened below this many cells
TEXT_MIN = 8
LIST_EACH_FILE_UP_TO = 30  # an ingest summary lists every file up to this many files
LIST_FILES_MAX = 50  # at most this many failed or rejecting files, one by one


def printable(text: str) -> str:
    """Control and bidi characters shown as escapes (forensics.exposure.printable)."""
    # Imported here: forensics.exposure loads pyarrow and NumPy, which the entry point must
    # not load before it has set OPENBLAS_NUM_THREADS.
    from forensics.exposure import printable as escape

    return escape(text)


# ------------------------------------------------------------------------- plain output


def emit(console: Console, renderable: RenderableType | str) -> None:
    """Print on a terminal; elsewhere, render unwrapped and strip the padding at line ends."""
    if console.is_terminal:
        console.print(renderable)
        return
    buffer = io.StringIO()
    plain = Console(
        file=buffer, width=_UNBOUNDED, color_system=None, markup=False, emoji=False,
        highlight=False, force_terminal=False, soft_wrap=False,
    )
    plain.print(renderable)
    text = "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
    console.file.write(text + "\n")
    console.file.flush()


def message(console: Console, kind: str, text: str, *, style: str = "") -> None:
    """One line `forensics: <kind>: text` (coloured on a terminal), whitespace collapsed."""
    line = f"forensics: {kind}: {' '.join(text.split())}"
    if console.is_terminal and style:
        console.print(Text(line, style=style), soft_wrap=True)
    else:
        console.file.write(line + "\n")
        console.file.flush()


def error(text: str, console: Console = ERR) -> None:
    message(console, "error", text, style="bold red")


def warn(text: str, console: Console = ERR) -> None:
    message(console, "warning", text, style="yellow")


def note(text: str, console: Console = ERR) -> None:
    message(console, "note", text)


def say(console: Console, text: str, style: str = "") -> None:
    """A line of summary text (not data), wrapped on a terminal only."""
    if console.is_terminal:
        console.print(Text(text, style=style))
    else:
        console.file.write(text + "\n")
        console.file.flush()


def number(n: int | None) -> str:
    return "" if n is None else f"{n:,}"


def when(t: datetime | None) -> str:
    return "" if t is None else format_instant(t)


# ---------------------------------------------------------------------- shortening text


def _take(text: str, cells: int, *, from_end: bool = False) -> str:
    out: list[str] = []
    used = 0
    for ch in reversed(text) if from_end else text:
        w = cell_len(ch)
        if used + w > cells:
            break
        out.append(ch)
        used += w
    return "".join(reversed(out) if from_end else out)


def shorten_end(text: str, width: int) -> str:
    """`text` cut to `width` cells with an ellipsis at the end."""
    if cell_len(text) <= width:
        return text
    return _take(text, max(width - 1, 0)) + "…"


def shorten_middle(path: str, width: int) -> str:
    """A path shortened in the middle so that its file name survives whole when it fits."""
    if cell_len(path) <= width:
        return path
    if width <= 1:
        return _take(path, width)
    name = PurePath(path).name or path
    tail = max(cell_len(name) + 1, (width - 1) * 2 // 3)
    if tail > width - 1:  # even the name does not fit: keep its end (the extension)
        tail = width - 1 - min(3, max(width - 2, 0))
    head = width - 1 - tail
    return _take(path, head) + "…" + _take(path, tail, from_end=True)


# ---------------------------------------------------------------------------- tables


@dataclass(frozen=True)
class Col:
    """A table column: numbers are never shortened, paths lose their middle, text its end."""

    name: str
    kind: str = "text"  # number | fixed (both never shortened) | path | text
    keep: bool = False  # never hidden
    style: str = ""
    hide: int = 0  # among columns that may be hidden, higher goes first (then rightmost)


@dataclass
class Fitted:
    table: Table
    hidden: list[str]
    shortened: list[str]
    title: str | None = None


_GAP = 2  # cells between two columns (padding 1 on each side, none at the edges)


def _natural(cols: Sequence[Col], rows: Sequence[Sequence[Any]]) -> list[int]:
    widths = [cell_len(c.name) for c in cols]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], cell_len(cell.plain if isinstance(cell, Text) else cell))
    return widths


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _minimum(col: Col, index: int, natural: int, rows: Sequence[Sequence[Any]]) -> int:
    """The narrowest a column may get: numbers and fixed text never shrink; a path keeps
    `…/` and its file name whole; other text keeps a few cells."""
    if col.kind in ("number", "fixed"):
        return natural
    if col.kind == "path":
        names = [cell_len(PurePath(p).name) + 2 if PurePath(p).name != p else cell_len(p)
                 for p in (_plain(r[index]) for r in rows)]
        floor = max([PATH_MIN, *names])
    else:
        floor = TEXT_MIN
    return min(natural, max(cell_len(col.name), floor))


def layout(
    cols: Sequence[Col], rows: Sequence[Sequence[Any]], width: int | None
) -> tuple[list[int], list[int]]:
    """Column widths and the indexes of visible columns so the table fits `width` cells.

    Paths and text shrink towards their minimum first (widest first); then columns that may
    be hidden go, from the right. Numbers keep their natural width. None: no limit.
    """
    natural = _natural(cols, rows)
    if width is None:
        return natural, list(range(len(cols)))
    minimum = [_minimum(c, i, natural[i], rows) for i, c in enumerate(cols)]
    visible = list(range(len(cols)))
    while True:
        widths = list(natural)
        excess = sum(widths[i] for i in visible) + _GAP * (len(visible) - 1) - width
        for kind in ("path", "text"):
            order = sorted((i for i in visible if cols[i].kind == kind),
                           key=lambda i: natural[i], reverse=True)
            for i in order:
                if excess <= 0:
                    break
                cut = min(excess, widths[i] - minimum[i])
                widths[i] -= cut
                excess -= cut
        if excess <= 0:
            return widths, visible
        optional = [i for i in visible if not cols[i].keep]
        if not optional:
            # Nothing more can go: file names lose their middle too, numbers stay whole.
            for i in (i for i in visible if cols[i].kind in ("path", "text")):
                cut = min(excess, widths[i] - min(widths[i], max(cell_len(cols[i].name),
                                                                 PATH_MIN)))
                widths[i] -= cut
                excess -= cut
            return widths, visible
        visible.remove(max(optional, key=lambda i: (cols[i].hide, i)))


def fit_table(
    console: Console, cols: Sequence[Col], rows: Sequence[Sequence[Any]], *,
    title: str | None = None, row_styles: Sequence[str] | None = None,
    total: Sequence[Any] | None = None,
) -> Fitted:
    """A Rich table of `rows` (cells: str or Text) fitted to the console (see `layout`)."""
    width = console.width if console.is_terminal else None
    all_rows = [*rows, *([total] if total is not None else [])]
    widths, visible = layout(cols, all_rows, width)
    table = Table(
        box=None, pad_edge=False, padding=(0, 1), show_edge=False, expand=False,
        header_style="bold" if console.is_terminal else "",
    )
    shortened: set[str] = set()
    for i in visible:
        c = cols[i]
        table.add_column(c.name, justify="right" if c.kind == "number" else "left",
                         no_wrap=True, overflow="crop", width=widths[i], style=c.style)

    def cells(row: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for i in visible:
            cell, c = row[i], cols[i]
            plain = cell.plain if isinstance(cell, Text) else str(cell)
            if cell_len(plain) > widths[i]:
                shortened.add(c.name)
                cut = shorten_middle if c.kind == "path" else shorten_end
                cell = Text(cut(plain, widths[i]), style=cell.style if isinstance(cell, Text)
                            else "")
            out.append(cell)
        return out

    for n, row in enumerate(rows):
        table.add_row(*cells(row), style=row_styles[n] if row_styles else None)
    if total is not None:
        table.add_section()
        table.add_row(*cells(total), style="bold" if console.is_terminal else None)
    hidden = [cols[i].name for i in range(len(cols)) if i not in visible]
    return Fitted(table, hidden, sorted(shortened), title)


def fit_note(fitted: Fitted, console: Console, whole: str) -> str | None:
    """The note saying what was hidden or shortened to fit, and where to see it whole."""
    parts = []
    if fitted.hidden:
        parts.append(f"columns hidden to fit {console.width} columns: {', '.join(fitted.hidden)}")
    if fitted.shortened:
        parts.append(f"shortened: {', '.join(fitted.shortened)}")
    if not parts:
        return None
    return "; ".join(parts) + f" ({whole})"


def print_fitted(console: Console, fitted: Fitted, whole: str, err: Console = ERR) -> None:
    """The title, the table, then (on `err`) what was hidden or shortened to fit."""
    if fitted.title:
        say(console, fitted.title, "bold")
    emit(console, fitted.table)
    text = fit_note(fitted, console, whole)
    if text:
        console.file.flush()
        note(text, err)


# ------------------------------------------------------------------------------ ingest


def _skip_reason(f: Any) -> str:
    error = f.error or "already ingested"
    prefix = "same content as "
    if error.startswith(prefix) and _same_file(error[len(prefix):], f.path):
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
    Col("file", "path", keep=True), Col("kind", "fixed", hide=3),
    Col("status", "fixed", hide=2), Col("read", "number", hide=4),
    Col("loaded", "number", keep=True), Col("rejected", "number", keep=True),
    Col("duplicate", "number", hide=5),
)


def _file_rows(files: Sequence[Any], terminal: bool) -> list[list[Any]]:
    return [
        [printable(f.path), f.kind or "", _status_text(f, terminal), number(f.rows_read),
         number(f.rows_loaded), number(f.rows_rejected), number(f.rows_duplicate)]
        for f in files
    ]


def render_ingest(report: Any, events: Any | None, console: Console = ERR) -> None:
    """The ingest summary: per file (or per folder and kind for many files), totals, then
    failures, rejection reasons and the time range of the stored events."""
    t = report.totals()
    terminal = console.is_terminal
    total = ["total", "", "", number(t["rows_read"]), number(t["rows_loaded"]),
             number(t["rows_rejected"]), number(t["rows_duplicate"])]
    files = list(report.files)
    title = (f"ingest: {t['files']:,} files: {t['loaded']:,} loaded, {t['skipped']:,} skipped, "
             f"{t['failed']:,} failed")
    if len(files) <= LIST_EACH_FILE_UP_TO:
        ordered = _file_order(files)
        fitted = fit_table(console, _FILE_COLS, _file_rows(ordered, terminal), title=title,
                           total=total)
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
        g = groups.setdefault((folder, f.kind or "?"), {
            "files": 0, "failed": 0, "rows_read": 0, "rows_loaded": 0, "rows_rejected": 0,
            "rows_duplicate": 0})
        g["files"] += 1
        g["failed"] += f.status == "failed"
        for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"):
            g[k] += getattr(f, k)
    cols = (Col("folder", "path", keep=True), Col("kind", "fixed", hide=3),
            Col("files", "number", keep=True), Col("failed", "number", keep=True),
            Col("read", "number", hide=4), Col("loaded", "number", keep=True),
            Col("rejected", "number", keep=True), Col("duplicate", "number", hide=5))
    rows = [[printable(folder), kind, number(g["files"]), number(g["failed"]),
             number(g["rows_read"]), number(g["rows_loaded"]), number(g["rows_rejected"]),
             number(g["rows_duplicate"])] for (folder, kind), g in groups.items()]
    t = report.totals()
    fitted = fit_table(console, cols, rows, title=title + " (per folder and kind)",
                       total=[total[0], "", number(t["files"]), number(t["failed"]), *total[3:]])
    print_fitted(console, fitted, "--json lists every file whole", console)
    notable = [f for f in _file_order(report.files) if f.status == "failed" or f.rows_rejected]
    if notable:
        shown = notable[:LIST_FILES_MAX]
        fitted = fit_table(console, _FILE_COLS, _file_rows(shown, console.is_terminal),
                           title="files that failed or had rejects")
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
        say(console, f"skipped {len(same):,} file{'s' if len(same) != 1 else ''} already "
            "ingested (same SHA-256)", "dim")
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


class IngestProgress:
    """Counts files as they are stored (for the interrupt message); on a terminal, a bar
    with the file count, bytes, rate and a labelled time remaining."""

    def __init__(self, console: Console = ERR, *, show: bool = True) -> None:
        self.console = console
        self.files_done = 0
        self.files_total = 0
        self._show = show and console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[str, int], None]:
        if self._show:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TextColumn("left"), TimeRemainingColumn(),
                console=self.console, transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("reading", total=None)
        return self.update

    def update(self, event: str, amount: int) -> None:
        if event == "files":
            self.files_total = amount
        elif event == "file":
            self.files_done += amount
        p = self._progress
        if p is None:
            return
        if event == "bytes":
            p.advance(self._task, amount)
        elif event == "total_bytes":
            p.update(self._task, total=amount)
        elif event in ("file", "files"):
            p.update(self._task, description=f"file {self.files_done + 1:,}/{self.files_total:,}"
                     if self.files_done < self.files_total else "finishing")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


# ------------------------------------------------------------------ sources, rejects, verify


def render_sources(
    rows: list[dict[str, Any]], console: Console = OUT, *, wide: bool = False,
    err: Console = ERR,
) -> None:
    """The sources table: compact (file name, short hash) unless `wide`."""
    mapped = any(r.get("map_sha256") for r in rows)
    if wide:
        cols = [Col("source_id", "number", keep=True), Col("path", "path", keep=True),
                Col("kind", "fixed", hide=2), Col("format", "fixed", hide=3),
                Col("size_bytes", "number", hide=4), Col("sha256", "fixed", keep=True),
                *([Col("map_sha256", "fixed", hide=1)] if mapped else []),
                Col("rows_read", "number", hide=4), Col("rows_loaded", "number", keep=True),
                Col("rows_rejected", "number", hide=1), Col("rows_duplicate", "number", hide=4),
                Col("ingested_at", "fixed", hide=3)]
        data = [[number(r["source_id"]), printable(str(r["path"])), r["kind"], r["format"],
                 number(r["size_bytes"]), r["sha256"],
                 *([r.get("map_sha256") or ""] if mapped else []),
                 number(r["rows_read"]), number(r["rows_loaded"]), number(r["rows_rejected"]),
                 number(r["rows_duplicate"]), r["ingested_at"]] for r in rows]
    else:
        cols = [Col("id", "number", keep=True), Col("file", "path", keep=True),
                Col("kind", "fixed", hide=3), Col("sha256", "fixed", hide=2),
                *([Col("map_sha256", "fixed", hide=2)] if mapped else []),
                Col("read", "number", hide=4), Col("loaded", "number", keep=True),
                Col("rejected", "number", hide=1), Col("duplicate", "number", hide=5)]
        data = [[number(r["source_id"]), printable(PurePath(str(r["path"])).name), r["kind"],
                 r["sha256"][:12], *([(r.get("map_sha256") or "")[:12]] if mapped else []),
                 number(r["rows_read"]), number(r["rows_loaded"]), number(r["rows_rejected"]),
                 number(r["rows_duplicate"])] for r in rows]
    fitted = fit_table(console, cols, data)
    print_fitted(console, fitted, "--wide or --json shows every column whole", err)
    if not rows:
        say(err, "0 files ingested")


def render_rejects(
    page: Any, *, raw: bool, console: Console = OUT, err: Console = ERR
) -> None:
    cols = [Col("file", "path", keep=True), Col("record", "number", keep=True),
            Col("reason", keep=True), *([Col("raw")] if raw else [])]
    data = [[printable(str(r["source_file"])), number(r["source_record"]),
             printable(str(r["reason"])), *([printable(str(r["raw"] or ""))] if raw else [])]
            for r in page.rows]
    fitted = fit_table(console, cols, data)
    print_fitted(console, fitted, "--json shows every field whole", err)
    say(err, f"{len(page.rows):,} of {page.total:,} rejected records shown"
        + (" (--limit N shows more)" if page.total > len(page.rows) else ""))


def render_verify(
    rows: list[dict[str, Any]], console: Console = OUT, err: Console = ERR
) -> None:
    """Changed and missing files first, in red on a terminal."""
    bad = [r for r in rows if r["status"] != "ok"]
    ok = [r for r in rows if r["status"] == "ok"]
    terminal = console.is_terminal
    data = [[Text(r["status"], style="bold red" if terminal else ""), printable(str(r["path"]))]
            for r in bad]
    data += [[Text(r["status"], style="green" if terminal else ""), printable(str(r["path"]))]
             for r in ok]
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
        line = (Text(b.start.strftime(label_fmt) + " │")
                + Text(bar.ljust(bar_width), style="red" if console.is_terminal else "")
                + Text(f" {b.cross_account_deliveries:>{count_width},}"))
        if console.is_terminal:
            console.print(line, no_wrap=True, overflow="crop")
        else:
            console.file.write(line.plain + "\n")


def _render_breakdown(breakdown: Any, console: Console, err: Console, top: int) -> None:
    """The breakdown, largest first; at most `top` values (0: all), saying how many."""
    name = printable(breakdown.field)
    cols = [Col(name, keep=True), Col("cross-account deliveries", "number", keep=True),
            Col("recipients", "number", keep=True), Col("exposed devices", "number")]
    rows = [[Text("(missing)", style="dim") if r.value is None else printable(r.value),
             number(r.cross_account_deliveries), number(r.recipients),
             number(r.exposed_devices)] for r in breakdown.rows]
    shown = rows[:top] if top else rows
    fitted = fit_table(console, cols, shown, title=f"by {name}")
    print_fitted(console, fitted, "--json shows every value whole", err)
    if not breakdown.rows:
        say(console, "0 cross-account deliveries to break down")
    elif len(shown) < len(rows):
        say(err, f"{len(shown):,} of {len(rows):,} values of {name} shown, the largest "
            "first (--top N, --top 0 for all, or --json)")


def coverage_warnings(coverage: Any, outside: int, window: Any) -> list[str]:
    """What to say on stderr when the figures may be zero for the wrong reason."""
    lines = []
    data = coverage.data
    where = coverage.where()
    if where == "empty":
        lines.append("the case store holds no events: every figure is 0. Run `forensics "
                     "ingest` first, or check --db")
    elif coverage.holds_no_events:
        side = {"before": "before the first event", "after": "after the last event",
                "between": "in a gap between events"}.get(where, "")
        lines.append(f"the window {window} holds no events at all (it lies {side}); the "
                     f"{data.events:,} stored events cover {data}. Check the window's date")
    if outside and not coverage.holds_no_events:
        lines.append(f"{outside:,} cross-account deliveries fall outside the window {window}: "
                     "the window may be too narrow")
    return lines


# ---------------------------------------------------------------------------- sql


def render_sql_table(result: Any, console: Console, max_rows: int) -> tuple[int, int, Fitted]:
    """The sql result as a table: values never split; columns hidden or shortened to fit.

    Returns (shown, total, fitted) so the caller can say what was left out.
    """
    from forensics.sandbox import to_text

    numeric = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
               "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
    cols = [Col(printable(name), "number" if type_.upper().startswith(numeric) else "text",
                keep=(i == 0))
            for i, (name, type_) in enumerate(zip(result.columns, result.types, strict=True))]
    rows: list[list[Any]] = []
    total = 0
    for row in result.rows:
        total += 1
        if len(rows) < max_rows:
            rows.append([Text("NULL", style="dim") if v is None else printable(to_text(v))
                         for v in row])
    fitted = fit_table(console, cols, rows)
    emit(console, fitted.table)
    return len(rows), total, fitted


# ---------------------------------------------------------------------------- status


def render_status(status: Any, console: Console = OUT, err: Console = ERR) -> None:
    """One screen: what is in this case."""
    t = status.totals()
    say(console, f"case store {printable(str(status.path))}", "bold")
    say(console, f"size {status.size_bytes:,} bytes; {t.files:,} files ingested"
        + (f", last at {when(t.last_ingested_at)}" if t.last_ingested_at else ""))
    cols = [Col("kind", keep=True), Col("files", "number", keep=True),
            Col("read", "number"), Col("loaded", "number", keep=True),
            Col("rejected", "number", keep=True), Col("duplicate", "number"),
            Col("bytes", "number")]
    rows = [[k.kind, number(k.files), number(k.rows_read), number(k.rows_loaded),
             number(k.rows_rejected), number(k.rows_duplicate), number(k.size_bytes)]
            for k in status.kinds]
    total = ["total", number(t.files), number(t.rows_read), number(t.rows_loaded),
             number(t.rows_rejected), number(t.rows_duplicate), number(t.size_bytes)]
    print_fitted(console, fit_table(console, cols, rows, total=total), "--json shows all", err)
    say(console, f"events: {status.events.events:,}, {status.events}")
    g = status.grants
    if g.grants:
        start = when(g.first_valid_from) or "always"
        end = when(g.last_valid_to) or "open"
        say(console, f"grants: {g.grants:,}, valid from {start} to {end} "
            f"({g.open_start:,} without a start, {g.open_end:,} still valid)")
    else:
        say(console, "grants: 0")
    versions = ", ".join(f"{v.version} ({v.files:,} files)" for v in status.tool_versions)
    say(console, f"written by forensics {versions}" if versions else "written by: no files yet")


# ---------------------------------------------------------------------------- notify


def render_notify(run: Any, window: Any, sanitize: bool, console: Console = ERR) -> None:
    result = run.result
    lines = [f"notify: window {window}, formula cells {'neutralised' if sanitize else 'kept'}"]
    for f in result.files:
        rows = f"{f.rows:,} rows" if f.rows is not None else ""
        lines.append(f"  {f.name:<15} {rows:>12}  {printable(str(f.path))}")
    lines.append(
        f"users who cannot be reached (no email): {result.unreachable_users:,} "
        f"({result.unreachable_recipients:,} recipients, {result.unreachable_owners:,} owners)"
    )
    for line in lines:
        say(console, line.rstrip())


@contextmanager
def count_progress(
    label: str, console: Console = ERR, *, show: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A bar of done/total steps on a terminal (yields its update function), else None."""
    if not (show and console.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(label, BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
