"""Terminal primitives: consoles, one-line messages, tables fitted to the width, progress.

The screens of each command (forensics.screens) are drawn with these; nothing computes.
Text from evidence is printed literally (markup, emoji and highlighting off, control
characters escaped). On a terminal: colour, tables fitted to its width (numbers whole, paths
shortened in the middle, columns hidden with a note), progress bars. Not a terminal: plain
lines, never wrapped, no padding at line ends, no colour, no progress.
"""

from __future__ import annotations

import io
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
        file=buffer,
        width=_UNBOUNDED,
        color_system=None,
        markup=False,
        emoji=False,
        highlight=False,
        force_terminal=False,
        soft_wrap=False,
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
        names = [
            cell_len(PurePath(p).name) + 2 if PurePath(p).name != p else cell_len(p)
            for p in (_plain(r[index]) for r in rows)
        ]
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
            order = sorted(
                (i for i in visible if cols[i].kind == kind), key=lambda i: natural[i], reverse=True
            )
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
                cut = min(excess, widths[i] - min(widths[i], max(cell_len(cols[i].name), PATH_MIN)))
                widths[i] -= cut
                excess -= cut
            return widths, visible
        visible.remove(max(optional, key=lambda i: (cols[i].hide, i)))


def fit_table(
    console: Console,
    cols: Sequence[Col],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    row_styles: Sequence[str] | None = None,
    total: Sequence[Any] | None = None,
) -> Fitted:
    """A Rich table of `rows` (cells: str or Text) fitted to the console (see `layout`)."""
    width = console.width if console.is_terminal else None
    all_rows = [*rows, *([total] if total is not None else [])]
    widths, visible = layout(cols, all_rows, width)
    table = Table(
        box=None,
        pad_edge=False,
        padding=(0, 1),
        show_edge=False,
        expand=False,
        header_style="bold" if console.is_terminal else "",
    )
    shortened: set[str] = set()
    for i in visible:
        c = cols[i]
        table.add_column(
            c.name,
            justify="right" if c.kind == "number" else "left",
            no_wrap=True,
            overflow="crop",
            width=widths[i],
            style=c.style,
        )

    def cells(row: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for i in visible:
            cell, c = row[i], cols[i]
            plain = cell.plain if isinstance(cell, Text) else str(cell)
            if cell_len(plain) > widths[i]:
                shortened.add(c.name)
                cut = shorten_middle if c.kind == "path" else shorten_end
                cell = Text(
                    cut(plain, widths[i]), style=cell.style if isinstance(cell, Text) else ""
                )
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


# ---------------------------------------------------------------------------- progress


class IngestProgress:
    """Counts files as they are stored (for the interrupt message); on a terminal, a bar
    with the file count, bytes, rate and a labelled time remaining."""

    def __init__(self, console: Console = ERR, *, show: bool = True) -> None:
        self.console = console
        self.files_done = 0
        self.files_total = 0
        self.records = 0  # records read and rejected in the files stored so far
        self.rejects = 0
        self.name = ""  # the file being read, and its number in the run
        self.started = 0
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
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}"),
                console=self.console,
                transient=True,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("reading", total=None, counts="")
        return self.update

    def update(self, event: str, amount: Any) -> None:
        if event == "files":
            self.files_total = amount
        elif event == "file":
            self.files_done += amount
        elif event == "records":
            self.records += amount
        elif event == "rejects":
            self.rejects += amount
        elif event == "name":
            self.name = str(amount)
            self.started += 1
        p = self._progress
        if p is None:
            return
        if event in ("records", "rejects"):
            p.update(self._task, counts=f"{self.records:,} records, {self.rejects:,} rejected")
        elif event == "bytes":
            p.advance(self._task, amount)
        elif event == "total_bytes":
            p.update(self._task, total=amount)
        elif event in ("file", "files", "name"):
            p.update(self._task, description=self.description())

    def description(self) -> str:
        """`file 3/20 edge-7.log.gz`: the file being read (its name shortened in the middle;
        the file before it may still be being stored), or `finishing` once all are read."""
        if self.files_done >= self.files_total:
            return "finishing"
        if not self.name:
            return f"file {self.files_done + 1:,}/{self.files_total:,}"
        name = shorten_middle(printable(self.name), 32)
        return f"file {self.started:,}/{self.files_total:,} {name}"

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


@contextmanager
def count_progress(
    label: str, console: Console = ERR, *, show: bool = True
) -> Iterator[Callable[[int, int], None] | None]:
    """A bar of done/total steps on a terminal (yields its update function), else None."""
    if not (show and console.is_terminal):
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        label,
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update
