"""Commands that load and inspect case data: ingest, sources, rejects, verify, status, sql,
export and sample.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from forensics import screens, terminal
from forensics.cli.options import (
    DbOpt,
    DebugOpt,
    EngineName,
    EngineOpt,
    JsonOpt,
    LakeOpt,
    MasterOpt,
    MemoryOpt,
    QuietOpt,
    ThreadsOpt,
    engine_options,
    is_quiet,
    print_json,
    store_options,
)
from forensics.errors import ExitCode
from forensics.store import is_interrupt
from forensics.terminal import ERR, OUT, error, note, say, warn

if TYPE_CHECKING:
    from forensics.ingest.options import IngestReport
    from forensics.store import StoreOptions

# --------------------------------------------------------- ingest, sources, rejects, verify


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or globs.")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="events, grants or accounts (else inferred).")
    ] = None,
    map_file: Annotated[
        Path | None,
        typer.Option("--map", help="TOML file naming the source field of each canonical field."),
    ] = None,
    assume_tz: Annotated[
        str | None, typer.Option("--assume-tz", help="Zone for timestamps without an offset.")
    ] = None,
    as_json: JsonOpt = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any record is rejected.")
    ] = False,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Load access logs, grants and accounts into the case store, accounting for every record."""
    from forensics.ingest import IngestOptions
    from forensics.ingest import ingest as run_ingest
    from forensics.ingest.options import IngestCutShort

    mapping = None
    if map_file is not None:
        from forensics.mapping import load_mapping

        mapping = load_mapping(map_file)
    options = IngestOptions(kind=kind, assume_tz=assume_tz, mapping=mapping)
    store = store_options(ctx, db, memory_limit, threads)
    quiet = is_quiet(ctx, quiet)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads, db)
    if on_lake is not None:
        from forensics.lake_ingest import ingest_lake

        with terminal.IngestProgress(show=not quiet) as progress:
            report = ingest_lake(on_lake, paths, options, progress)
    else:
        tracker = terminal.IngestProgress(show=not quiet)
        try:
            with tracker as progress:
                report = run_ingest(store, paths, options, progress)
        except IngestCutShort as e:
            # Every file is still named, with what became of it, before the store's error.
            _report_ingest(e.report, as_json, quiet, None)
            raise
        except BaseException as e:
            if not is_interrupt(e):
                raise
            error(
                f"interrupted: {tracker.files_done:,} of {tracker.files_total:,} files were "
                f"stored in {store.path} (each file is stored whole or not at all). Run the same "
                "command again to resume: files already stored are skipped"
            )
            raise typer.Exit(ExitCode.INTERRUPTED) from None
    _report_ingest(report, as_json, quiet, store if store.path.is_file() else None)
    totals = report.totals()
    if totals["failed"] or (strict and totals["rows_rejected"]):
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


def _report_ingest(
    report: IngestReport, as_json: bool, quiet: bool, store: StoreOptions | None
) -> None:
    """The run's files, as JSON or a summary; `store`: where to read the events' range."""
    from forensics.status import read_event_range

    if as_json or quiet:
        if as_json:
            print_json(report.to_json())
        for f in report.files:  # SPEC §7: errors on stderr, with --json too
            if f.status == "failed":
                error(f"{f.path}: {f.error}")
    else:
        screens.render_ingest(report, read_event_range(store) if store is not None else None)


def sources(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: full path, SHA-256, sizes, times.")
    ] = False,
    db: DbOpt = None,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """List the ingested files: kind, SHA-256 and how every record was accounted for."""
    from forensics.evidence import list_sources

    rows = list_sources(store_options(ctx, db), engine_options(ctx, lake, engine, master, db=db))
    if as_json:
        print_json(rows)
    else:
        screens.render_sources(rows, wide=wide)
    return int(ExitCode.OK)


def rejects(
    ctx: typer.Context,
    limit: Annotated[
        int, typer.Option("--limit", min=0, max=2**63 - 1, help="At most N records.")
    ] = 100,
    raw: Annotated[
        bool, typer.Option("--raw", help="Also show each record's raw text (personal data).")
    ] = False,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """List rejected records with their reasons (raw text with --json or --raw)."""
    from forensics.evidence import rejects_page

    page = rejects_page(
        store_options(ctx, db), limit, engine_options(ctx, lake, engine, master, db=db)
    )
    if as_json:
        print_json(page.rows)
    else:
        screens.render_rejects(page, raw=raw)
    return int(ExitCode.OK)


def verify(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Re-hash every source file: exit 0 if all match, 1 if any changed, is gone or unreadable."""
    from forensics.evidence import verify_sources

    rows = verify_sources(store_options(ctx, db), engine_options(ctx, lake, engine, master, db=db))
    if as_json:
        print_json(rows)
    else:
        screens.render_verify(rows)
    bad = sum(1 for r in rows if r["status"] != "ok")
    if bad:
        error(f"{bad:,} of {len(rows):,} source files changed, missing or unreadable")
    elif not is_quiet(ctx, quiet):
        say(ERR, f"{len(rows):,} of {len(rows):,} source files match")
    return int(ExitCode.FAILURE if bad else ExitCode.OK)


def status(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """What is in this case: files and rows per kind, rejects and duplicates, the time range
    of events and grants, the store's size and the tool versions that wrote it."""
    from forensics.status import describe_store

    report = describe_store(
        store_options(ctx, db), engine_options(ctx, lake, engine, master, db=db)
    )
    if as_json:
        print_json(report.to_json())
    else:
        screens.render_status(report)
    return int(ExitCode.OK)


class SqlFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


_SQL_TABLE_MAX_ROWS = 10_000


def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="SQL over the case store; `-` reads stdin.")],
    fmt: Annotated[
        SqlFormat, typer.Option("--format", help="table, csv (RFC 4180) or json.")
    ] = SqlFormat.table,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Read-only SQL over the store (tables events, grants, accounts, sources, rejects).

    Locked down: it cannot write, read other files, load extensions or change settings.
    On a case lake: SELECT only; with --engine spark one SELECT, in DuckDB's dialect.
    """
    from forensics.sandbox import query_case

    if query == "-":
        query = sys.stdin.read()
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads, db)
    with query_case(store_options(ctx, db, memory_limit, threads), query, on_lake) as result:
        if fmt is SqlFormat.csv:
            screens.write_sql_csv(result)
        elif fmt is SqlFormat.json:
            screens.write_sql_json(result)
        else:
            _sql_table(result)
    return int(ExitCode.OK)


def _sql_table(result: Any) -> None:
    shown, total, fitted = screens.render_sql_table(result, OUT, _SQL_TABLE_MAX_ROWS)
    sys.stdout.flush()  # the table before the row count when both go to one terminal
    note_text = terminal.fit_note(fitted, OUT, "--format csv or json shows every value whole")
    if note_text:
        note(note_text)
    say(ERR, f"{total:,} row{'' if total == 1 else 's'}")
    if total > shown:
        warn(
            f"the table shows {shown:,} of {total:,} rows; use --format csv or json for all of them"
        )


# ------------------------------------------------------------------------------------ export


def export_lake(
    ctx: typer.Context,
    lake: Annotated[str, typer.Argument(metavar="DIR", help="Case lake folder (new or existing).")],
    as_json: JsonOpt = False,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Write the case store into a case lake (Parquet) that DuckDB and Spark both read.

    Several stores may export into one lake: files and events it already holds are skipped.
    """
    from forensics.lake import export_store

    result = export_store(store_options(ctx, db), lake)
    data = {
        "batch": result.batch,
        "events_written": result.events_written,
        "files": [
            {
                "source_id": f.source_id,
                "path": f.path,
                "kind": f.kind,
                "status": f.status,
                "rows_read": f.rows_read,
                "rows_loaded": f.rows_loaded,
                "rows_rejected": f.rows_rejected,
                "rows_duplicate": f.rows_duplicate,
                "error": f.error,
            }
            for f in result.files
        ],
    }
    if as_json:
        print_json(data)
    loaded = sum(1 for f in result.files if f.status == "loaded")
    if not is_quiet(ctx, quiet):
        say(
            ERR,
            f"export: batch {result.batch}: {loaded:,} files, {result.events_written:,} events "
            f"written; {len(result.files) - loaded:,} files already in the lake (skipped)",
        )
    return int(ExitCode.OK)


# ------------------------------------------------------------------------------------ sample


def sample(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Folder to write: new or empty.")],
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed (same seed, same data).")
    ] = 1,
    scale: Annotated[
        float,
        typer.Option(
            "--scale",
            help="Multiplies users and background traffic (1 ≈ 110k events); below 0.94 "
            "the incident's 15,000 users stay (≈ 106k events).",
        ),
    ] = 1.0,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Write a synthetic incident: 13,000 recipients and 1,504 tappers in incident.toml's window."""
    from forensics.sample import write_sample

    with terminal.count_progress("sample", show=not is_quiet(ctx, quiet)) as progress_fn:
        summary = write_sample(out, seed=seed, scale=scale, progress=progress_fn)
    if json_out:
        print_json(
            {
                "out": str(summary.out),
                "seed": summary.seed,
                "scale": summary.scale,
                "window": {"start": summary.window_start, "end": summary.window_end},
                "recipients": summary.recipients,
                "tappers": summary.tappers,
                "users": summary.users,
                "devices": summary.devices,
                "records": {
                    "events": summary.event_records,
                    "grants": summary.grant_records,
                    "accounts": summary.account_records,
                },
                "files": list(summary.files),
                "traps": summary.traps,
            }
        )
    elif not is_quiet(ctx, quiet):
        say(
            ERR,
            f"sample: wrote {len(summary.files):,} files to {summary.out}: "
            f"{summary.event_records:,} event, {summary.grant_records:,} grant and "
            f"{summary.account_records:,} account records; window "
            f"{summary.window_start}/{summary.window_end} holds {summary.recipients:,} "
            f"recipients and {summary.tappers:,} tappers",
        )
    return int(ExitCode.OK)
