"""What the case store holds, on screen: status, sources, rejects and verify."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from rich.console import Console
from rich.text import Text

from forensics.terminal import (
    ERR,
    OUT,
    Col,
    fit_table,
    number,
    print_fitted,
    printable,
    say,
    when,
)


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
    """Changed, missing and unreadable files first, in red on a terminal."""
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
