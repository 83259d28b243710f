"""Write report.html and report.md for a window: atomically, private, folder rules as notify's.

The folder is checked before anything is read (a non-empty one needs `force`); both files
are rendered in memory, written to 0600 temp files beside their final names, fsynced, then
renamed together (private_files.py, as notify's lists are). On any error the temp files (and
a folder this call created) are removed. Nothing here prints or exits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from forensics.engines.base import EngineOptions, open_case
from forensics.private_files import (
    OutputFile,
    commit_files,
    prepare_out_dir,
    write_bytes_pending,
    writing_files,
)
from forensics.report.figures import ReportData, check_by_fields, collect_report
from forensics.report.render import render_html, render_markdown
from forensics.status import WindowCoverage, window_coverage
from forensics.store import StoreOptions
from forensics.window import Window

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
REPORT_NAMES = (REPORT_HTML, REPORT_MD)


@dataclass(frozen=True)
class ReportResult:
    """What `write_report` wrote, and the counts a terminal summary may show."""

    out_dir: Path
    created_dir: bool
    files: tuple[OutputFile, ...]  # rows is None: a report has no rows
    data: ReportData


def write_report(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    out_dir: Path,
    *,
    by: list[str] | None = None,
    force: bool = False,
    store_path: str = "",
    generated_at: datetime | None = None,
    lake: EngineOptions | None = None,
) -> ReportResult:
    """Write report.html and report.md for `window` into `out_dir` (SPEC §9).

    Raises UsageError (a --by field that is unknown or holds ids), OutputError, StoreError.
    """
    by = check_by_fields(list(by or []))  # a refused --by changes nothing on disk
    created = prepare_out_dir(
        out_dir, force=force, names=REPORT_NAMES, replaces="report.html and report.md"
    )
    with writing_files(out_dir, created, "report") as pending:
        data = collect_report(con, window, by, store_path, generated_at)
        if lake is not None:
            data.lake, data.engine = str(lake.lake), lake.engine
        html = render_html(data).encode("utf-8")
        markdown = render_markdown(data).encode("utf-8")
        pending.append(write_bytes_pending(out_dir / REPORT_HTML, html))
        pending.append(write_bytes_pending(out_dir / REPORT_MD, markdown))
        commit_files(pending, out_dir)
    return ReportResult(
        out_dir=out_dir,
        created_dir=created,
        files=tuple(p.written() for p in pending),
        data=data,
    )


@dataclass(frozen=True)
class ReportRun:
    """What was written, and what the window held (so that an empty report is never silent)."""

    result: ReportResult
    coverage: WindowCoverage


def run_report(
    store: StoreOptions,
    window: Window,
    out_dir: Path,
    *,
    by: list[str],
    force: bool,
    engine: EngineOptions | None = None,
) -> ReportRun:
    """`forensics report` in one call: open the store read-only (or, with `engine`, the case
    lake), write both files, and say how many events the window holds. Raises as
    write_report does."""
    where = str(store.path) if engine is None else str(engine.lake)
    with open_case(store, engine) as con:
        result = write_report(
            con, window, out_dir, by=by, force=force, store_path=where, lake=engine
        )
        coverage = window_coverage(con, window)
    return ReportRun(result, coverage)
