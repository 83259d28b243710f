"""The ingest summary: per file, or per folder and kind when there are many files, the
totals, then failures, rejection reasons and the time range of the stored events."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from rich.console import Console
from rich.text import Text

from forensics.terminal import (
    ERR,
    PATH_MIN,
    Col,
    error,
    fit_table,
    number,
    print_fitted,
    printable,
    say,
    shorten_middle,
)

LIST_EACH_FILE_UP_TO = 30  # an ingest summary lists every file up to this many files
LIST_FILES_MAX = 50  # at most this many failed or rejecting files, one by one


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
    # (by reason, not `f not in same`: dataclass equality made that quadratic in files)
    for f in [f for f in skipped if _skip_reason(f) != "already ingested"][:LIST_FILES_MAX]:
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
