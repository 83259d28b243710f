"""The notify, report and verify-notices screens: the files written and the waves checked,
counts and paths only."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from forensics.terminal import (
    ERR,
    OUT,
    Col,
    error,
    fit_table,
    print_fitted,
    printable,
    say,
)


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
