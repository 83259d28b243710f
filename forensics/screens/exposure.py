"""The exposure screen: the figures, the timeline, a --by breakdown, and the warnings about
the window's coverage. Counts only; values of the --by field are escaped."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from forensics.terminal import (
    ERR,
    OUT,
    Col,
    emit,
    fit_table,
    number,
    print_fitted,
    printable,
    say,
)

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
    title = f"exposure {w}"
    if terminal and len(title) + 6 > console.width:
        # A title is cut to the box: the window goes above it, whole (it may wrap).
        console.print(title, soft_wrap=True, highlight=False, markup=False)
        emit(console, Panel(grid, expand=False))
    elif terminal:
        emit(console, Panel(grid, title=title, title_align="left", expand=False))
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
