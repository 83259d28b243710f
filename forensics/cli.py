"""The command-line interface: parse options, call one core function, render, exit code.

The only module that imports typer, click or rich. stdout carries data only (JSON, CSV,
tables asked for); progress, summaries and errors go to stderr. Errors are one line,
`forensics: error: <what>: <why>`, with a traceback (no local variables) only under --debug.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from forensics import __version__
from forensics.errors import ExitCode, ForensicsError
from forensics.store import StoreOptions, resolve_db_path

# markup/emoji/highlight off: text from evidence must never style, link or colour the terminal.
err_console = Console(stderr=True, markup=False, emoji=False, highlight=False)
out_console = Console(markup=False, emoji=False, highlight=False)


class _State:
    debug = False


class ForensicsGroup(TyperGroup):
    """Turns every failure into one line on stderr and the exit code of SPEC §7."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        os.umask(0o077)  # the store, spill files and outputs are private to the user
        # No linear algebra here: NumPy's OpenBLAS would only start a thread that spins on
        # the cores DuckDB uses (about 1% of an ingest's CPU time). NumPy is not loaded yet.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        argv = list(sys.argv[1:] if args is None else args)
        _State.debug = "--debug" in argv
        code: int
        try:
            rv = super().main(
                args=argv, prog_name=prog_name or "forensics", complete_var=complete_var,
                standalone_mode=False, **extra,
            )
            code = rv if isinstance(rv, int) else ExitCode.OK
        except click.exceptions.NoArgsIsHelpError as e:
            # `forensics` alone: the help, on stderr (stdout is for data), as a usage error.
            sys.stderr.write(e.ctx.get_help() + "\n" if e.ctx else e.format_message())
            code = ExitCode.USAGE
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx else "forensics"
            _print_error(f"{where}: {e.format_message()} (see `{where} --help`)")
            code = ExitCode.USAGE
        except click.ClickException as e:
            _print_error(e.format_message())
            code = e.exit_code
        except ForensicsError as e:
            if _State.debug:
                traceback.print_exc(file=sys.stderr)
            _print_error(e.one_line())
            code = e.exit_code
        except (click.Abort, KeyboardInterrupt):
            _print_error("interrupted")
            code = ExitCode.INTERRUPTED
        except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no locals
            if _State.debug:
                traceback.print_exc(file=sys.stderr)
            _print_error(f"internal error: {type(e).__name__} (run with --debug for details)")
            code = ExitCode.FAILURE
        if standalone_mode:
            sys.exit(int(code))
        return int(code)


def _print_error(message: str) -> None:
    sys.stderr.write(f"forensics: error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    sys.stderr.write(f"forensics: warning: {' '.join(message.split())}\n")
    sys.stderr.flush()


app = typer.Typer(
    cls=ForensicsGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    help="Incident forensics from access logs: who received what was not theirs, "
    "what they did with it, and who must be told.",
)

# Options shared by several commands, defined once.
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Case store (else $FORENSICS_DB, else ./forensics.duckdb)."),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks (no local variables).")]
MemoryOpt = Annotated[
    str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB.")
]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="DuckDB threads.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
WindowOpt = Annotated[
    str,
    typer.Option(
        "--window", help="START/END, half-open; END an instant or ISO 8601 duration (PT4H)."
    ),
]

# Where case data is read and which engine runs the queries (SPEC §7, §8).
LakeOpt = Annotated[
    str | None,
    typer.Option(
        "--lake", metavar="DIR",
        help="Case lake (Parquet, SPEC §8) instead of a store; with --engine spark a URI too.",
    ),
]


class EngineName(str, Enum):
    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[
    EngineName, typer.Option("--engine", help="duckdb (default) or spark (needs --lake).")
]
MasterOpt = Annotated[
    str | None,
    typer.Option(
        "--master", metavar="URL", help="Spark master (else $SPARK_MASTER, else local[*])."
    ),
]


@dataclass
class Globals:
    db: str | None = None
    debug: bool = False
    memory_limit: str | None = None
    threads: int | None = None


@app.callback(invoke_without_command=True, no_args_is_help=True)
def root(
    ctx: typer.Context,
    db: DbOpt = None,
    debug: DebugOpt = False,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Incident forensics from access logs."""
    if version:
        sys.stdout.write(f"forensics {__version__}\n")
        raise typer.Exit(0)
    ctx.obj = Globals(db=db, debug=debug, memory_limit=memory_limit, threads=threads)


def store_options(
    ctx: typer.Context, db: str | None, memory_limit: str | None = None,
    threads: int | None = None,
) -> StoreOptions:
    """Merge a command's own --db/--memory-limit/--threads with the global ones."""
    g: Globals = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    return StoreOptions(
        path=resolve_db_path(db or g.db),
        memory_limit=memory_limit or g.memory_limit,
        threads=threads or g.threads,
    )


def engine_options(
    ctx: typer.Context, lake: str | None, engine: EngineName, master: str | None,
    memory_limit: str | None = None, threads: int | None = None,
) -> Any:
    """EngineOptions for --lake/--engine/--master, or None: the case store (--db) with DuckDB."""
    from forensics.engines.base import EngineOptions, check_engine

    if lake is None and engine is EngineName.duckdb:
        return None
    g: Globals = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    options = EngineOptions(
        engine.value, lake, master, memory_limit or g.memory_limit, threads or g.threads
    )
    check_engine(options)
    return options


def print_json(data: Any) -> None:
    """Data on stdout, as JSON."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------- ingest, sources, rejects, verify


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[str], typer.Argument(help="Files, folders (recursive) or globs.")],
    kind: Annotated[
        str | None, typer.Option("--kind", help="events, grants or accounts (else inferred).")
    ] = None,
    map_file: Annotated[
        Path | None, typer.Option("--map", help="TOML mapping of source fields (SPEC 2.5).")
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
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Load access logs, grants and accounts into the case store, accounting for every record."""
    from forensics.ingest import IngestOptions
    from forensics.ingest import ingest as run_ingest

    mapping = None
    if map_file is not None:
        from forensics.mapping import load_mapping

        mapping = load_mapping(map_file)
    options = IngestOptions(kind=kind, assume_tz=assume_tz, mapping=mapping)
    store = store_options(ctx, db, memory_limit, threads)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads)
    if on_lake is not None:
        from forensics.lake_ingest import ingest_lake

        report = ingest_lake(on_lake, paths, options)
    else:
        with _ingest_progress() as progress:
            report = run_ingest(store, paths, options, progress)
    if as_json:
        print_json(report.to_json())
    else:
        _render_ingest(report)
    totals = report.totals()
    if totals["failed"] or (strict and totals["rows_rejected"]):
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


class _ingest_progress:
    """A Rich progress bar (bytes and files) on stderr when it is a terminal; else nothing."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._bytes: Any = None
        self._files: Any = None

    def __enter__(self) -> Any:
        if not err_console.is_terminal:
            return None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TimeRemainingColumn(), console=err_console, transient=True,
        )
        self._progress.__enter__()
        self._bytes = self._progress.add_task("reading", total=None)
        self._files = self._progress.add_task("files", total=None, visible=False)
        return self._update

    def _update(self, event: str, amount: int) -> None:
        p = self._progress
        if event == "bytes":
            p.advance(self._bytes, amount)
        elif event == "total_bytes":
            p.update(self._bytes, total=amount)
        elif event == "files":
            p.update(self._files, total=amount)
        elif event == "file":
            p.advance(self._files, amount)
            task = p.tasks[self._files]
            p.update(self._bytes, description=f"file {int(task.completed)}/{int(task.total or 0)}")

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)


def _render_ingest(report: Any) -> None:
    from rich.table import Table

    t = report.totals()
    table = Table(
        title="ingest", title_justify="left", caption_justify="left",
        caption=f"{t['files']} files: {t['loaded']} loaded, {t['skipped']} skipped, "
        f"{t['failed']} failed",
    )
    table.add_column("file", overflow="fold", ratio=1)  # a path is evidence: wrapped, not cut
    for col in ("kind", "status"):
        table.add_column(col, no_wrap=True)
    for col in ("read", "loaded", "rejected", "duplicate"):
        table.add_column(col, justify="right", no_wrap=True)
    for f in report.files:
        table.add_row(
            f.path, f.kind or "", f.status, str(f.rows_read), str(f.rows_loaded),
            str(f.rows_rejected), str(f.rows_duplicate),
        )
    table.add_section()
    table.add_row(
        "total", "", "", str(t["rows_read"]), str(t["rows_loaded"]),
        str(t["rows_rejected"]), str(t["rows_duplicate"]),
    )
    err_console.print(table)
    for f in report.files:
        if f.status == "failed":
            _print_error(f"{f.path}: {f.error}")
        elif f.status == "skipped":
            err_console.print(f"skipped {f.path}: {f.error or 'already ingested'}")
        for reason, count in f.reasons.items():
            err_console.print(f"  {f.path}: {count} rejected: {reason}")


@app.command()
def sources(
    ctx: typer.Context, as_json: JsonOpt = False, db: DbOpt = None, debug: DebugOpt = False
) -> int:
    """List the ingested files: kind, SHA-256 and how every record was accounted for."""
    from forensics.evidence import list_sources

    rows = list_sources(store_options(ctx, db))
    if as_json:
        print_json(rows)
        return int(ExitCode.OK)
    # map_sha256: the --map file each source was read through (shown when any was mapped).
    mapped = ["map_sha256"] if any(r.get("map_sha256") for r in rows) else []
    _print_rows(rows, ["source_id", "path", "kind", "format", "sha256", *mapped, "rows_read",
                       "rows_loaded", "rows_rejected", "rows_duplicate", "ingested_at"])
    return int(ExitCode.OK)


@app.command()
def rejects(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=0, help="At most N records.")] = 100,
    raw: Annotated[
        bool, typer.Option("--raw", help="Also show each record's raw text (personal data).")
    ] = False,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    debug: DebugOpt = False,
) -> int:
    """List rejected records with their reasons (raw text with --json or --raw)."""
    from forensics.evidence import list_rejects

    rows = list_rejects(store_options(ctx, db), limit)
    if as_json:
        print_json(rows)
        return int(ExitCode.OK)
    cols = ["source_file", "source_record", "reason"] + (["raw"] if raw else [])
    _print_rows(rows, cols)
    return int(ExitCode.OK)


@app.command()
def verify(
    ctx: typer.Context, as_json: JsonOpt = False, db: DbOpt = None, debug: DebugOpt = False
) -> int:
    """Re-hash every source file: exit 0 if all match, 1 if any changed or is missing."""
    from forensics.evidence import verify_sources

    rows = verify_sources(store_options(ctx, db))
    if as_json:
        print_json(rows)
    else:
        _print_rows(rows, ["path", "status"])
    bad = sum(1 for r in rows if r["status"] != "ok")
    err_console.print(f"{len(rows) - bad} of {len(rows)} source files match; "
        f"{bad} changed or missing")
    return int(ExitCode.FAILURE if bad else ExitCode.OK)


def _print_rows(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A table on stdout (data asked for); cells are plain text, never markup."""
    from rich.table import Table

    table = Table()
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if r.get(c) is None else str(r.get(c)) for c in columns))
    out_console.print(table)
    if not rows:
        err_console.print("0 rows")


# ---------------------------------------------------------------------------- exposure, sql

_FIGURE_LABELS = {
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


@app.command()
def exposure(
    ctx: typer.Context,
    window: WindowOpt,
    as_json: JsonOpt = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by", metavar="FIELD",
            help="Break cross-account deliveries, recipients and exposed devices down by a "
            "stored event field (e.g. cache_node, app, status, source_id).",
        ),
    ] = None,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Figures of SPEC §5 for a window: who received what was not theirs, and what they did."""
    from contextlib import nullcontext

    from forensics.exposure import run_exposure
    from forensics.window import parse_window

    w = parse_window(window)
    options = store_options(ctx, db, memory_limit, threads)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads)
    busy = err_console.status("computing figures…") if err_console.is_terminal else nullcontext()
    with busy:
        if on_lake is not None:
            from forensics.engines import open_engine
            from forensics.exposure import exposure_report

            with open_engine(on_lake) as source:
                report = exposure_report(source, w, by)
        else:
            report = run_exposure(options, w, by)
    if as_json:
        print_json(report.to_json())
    else:
        _render_exposure(report)
    outside = report.figures["cross_account_deliveries_outside_window"]
    if outside:
        warn(
            f"{outside:,} cross-account deliveries fall outside the window {w}: "
            "the window may be too narrow"
        )
    return int(ExitCode.OK)


def _render_exposure(report: Any) -> None:
    """Counts only (never an email or a name); text from data is printed literally."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from forensics.exposure import FIGURE_KEYS, bucket_timeline, printable

    fig, w = report.figures, report.window
    wide = out_console.width >= 100  # room for the JSON key beside each description
    grid = Table.grid(padding=(0, 2))
    grid.add_column(overflow="fold")
    if wide:
        grid.add_column(style="dim", no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    for key in FIGURE_KEYS:
        grid.add_row(_FIGURE_LABELS[key], *([key] if wide else []), f"{fig[key]:,}")
    out_console.print(Panel(grid, title=f"exposure {w}", title_align="left", expand=False))

    width, buckets = bucket_timeline(fig["timeline"], w)
    minutes = int(width.total_seconds() // 60)
    unit = next(
        (f"{minutes // size} {name}s" if minutes > size else name)
        for size, name in ((1440, "day"), (60, "hour"), (1, "minute"))
        if minutes % size == 0
    )
    out_console.print(Text(f"cross-account deliveries per {unit} (UTC)", style="bold"))
    if fig["cross_account_deliveries"] == 0:
        out_console.print("0 cross-account deliveries in the window")
    else:
        label_fmt = "%Y-%m-%d" if minutes >= 1440 else "%Y-%m-%dT%H:%MZ"
        peak = max(b.cross_account_deliveries for b in buckets)
        count_width = len(f"{peak:,}")
        bar_width = max(10, out_console.width - len(label_fmt) - 12 - count_width)
        for b in buckets:
            eighths = round(b.cross_account_deliveries / peak * bar_width * 8)
            bar = "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]
            if b.cross_account_deliveries and not bar:
                bar = "▏"
            out_console.print(
                Text(b.start.strftime(label_fmt) + " │")
                + Text(bar.ljust(bar_width), style="red")
                + Text(f" {b.cross_account_deliveries:>{count_width},}"),
                no_wrap=True, overflow="crop",
            )

    if report.breakdown is not None:
        table = Table(title=f"by {printable(report.breakdown.field)}", title_justify="left")
        table.add_column(printable(report.breakdown.field), overflow="fold")
        for name in ("cross-account deliveries", "recipients", "exposed devices"):
            table.add_column(name, justify="right", overflow="fold")
        for r in report.breakdown.rows:
            value = Text("(missing)", style="dim") if r.value is None else Text(printable(r.value))
            table.add_row(value, f"{r.cross_account_deliveries:,}", f"{r.recipients:,}",
                          f"{r.exposed_devices:,}")
        out_console.print(table)
        if not report.breakdown.rows:
            out_console.print("0 cross-account deliveries to break down")
    sys.stdout.flush()


class SqlFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


_SQL_TABLE_MAX_ROWS = 10_000


@app.command()
def sql(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="SQL over the case store; `-` reads stdin.")],
    fmt: Annotated[
        SqlFormat, typer.Option("--format", help="table, csv (RFC 4180) or json.")
    ] = SqlFormat.table,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Read-only SQL over the store (tables events, grants, accounts, sources, rejects).

    Locked down: it cannot write, read other files, load extensions or change settings.
    """
    from contextlib import closing

    from forensics.sandbox import open_sandbox, run_sql

    if query == "-":
        query = sys.stdin.read()
    with closing(open_sandbox(store_options(ctx, db, memory_limit, threads))) as con:
        result = run_sql(con, query)
        if fmt is SqlFormat.csv:
            _sql_csv(result)
        elif fmt is SqlFormat.json:
            _sql_json(result)
        else:
            _sql_table(result)
    return int(ExitCode.OK)


def _sql_csv(result: Any) -> None:
    import csv

    from forensics.sandbox import to_text

    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([to_text(v) for v in row])
    sys.stdout.flush()


def _sql_json(result: Any) -> None:
    from forensics.sandbox import iter_json_rows

    sys.stdout.write("[")
    for i, obj in enumerate(iter_json_rows(result)):
        sys.stdout.write(("," if i else "") + "\n  " + json.dumps(obj, ensure_ascii=False))
    sys.stdout.write("\n]\n" if result.columns else "]\n")
    sys.stdout.flush()


def _sql_table(result: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    from forensics.exposure import printable
    from forensics.sandbox import to_text

    numeric = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
               "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
    table = Table()
    for name, type_ in zip(result.columns, result.types, strict=True):
        right = type_.upper().startswith(numeric)
        table.add_column(printable(name), overflow="fold", justify="right" if right else "left")
    shown = total = 0
    for row in result.rows:
        total += 1
        if shown < _SQL_TABLE_MAX_ROWS:
            table.add_row(*(
                Text("NULL", style="dim") if v is None else Text(printable(to_text(v)))
                for v in row
            ))
            shown += 1
    out_console.print(table)
    sys.stdout.flush()  # the table before the row count when both go to one terminal
    err_console.print(f"{total:,} row{'' if total == 1 else 's'}")
    if total > shown:
        warn(f"the table shows the first {shown:,} of {total:,} rows; "
             "use --format csv or json for all of them")


# ------------------------------------------------------------------------------------ notify


@app.command()
def notify(
    ctx: typer.Context,
    window: WindowOpt,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the lists: new or empty (else --force).")
    ],
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into a non-empty folder, replacing the lists."),
    ] = False,
    no_sanitize: Annotated[
        bool,
        typer.Option(
            "--no-sanitize",
            help="Keep text cells beginning with = + - @ tab or CR as they are (no ' prefix).",
        ),
    ] = False,
    excel: Annotated[
        bool, typer.Option("--excel", help="Start each CSV with a UTF-8 BOM (for Excel).")
    ] = False,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write the notification lists (recipients, owners, exposures) and manifest.json."""
    from contextlib import closing

    from forensics.export import write_notifications
    from forensics.exposure import printable
    from forensics.store import open_store
    from forensics.window import parse_window

    w = parse_window(window)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads)
    source: Any
    if on_lake is not None:
        from forensics.engines import open_engine

        source = open_engine(on_lake)
    else:
        source = closing(open_store(store_options(ctx, db, memory_limit, threads), read_only=True))
    with source as con:
        result = write_notifications(
            con, w, out, force=force, sanitize=not no_sanitize, excel=excel
        )
    # Counts and paths only: never a user id, email or name.
    lines = [f"notify: window {w}, formula cells {'neutralised' if not no_sanitize else 'kept'}"]
    for f in result.files:
        rows = f"{f.rows} rows" if f.rows is not None else ""
        lines.append(f"  {f.name:<15} {rows:>12}  {printable(str(f.path))}")
    lines.append(
        f"users who cannot be reached (no email): {result.unreachable_users} "
        f"({result.unreachable_recipients} recipients, {result.unreachable_owners} owners)"
    )
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
    for message in result.warnings:
        warn(printable(message))
    return int(ExitCode.OK)


# ------------------------------------------------------------------------------------ export


@app.command("export")
def export_lake(
    ctx: typer.Context,
    lake: Annotated[str, typer.Argument(metavar="DIR", help="Case lake folder (new or existing).")],
    as_json: JsonOpt = False,
    db: DbOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write the case store into a case lake (Parquet) that DuckDB and Spark read (SPEC §8).

    Several stores may export into one lake: files and events it already holds are skipped.
    """
    from forensics.lake import export_store

    result = export_store(store_options(ctx, db), lake)
    data = {
        "batch": result.batch, "events_written": result.events_written,
        "files": [{"source_id": f.source_id, "path": f.path, "kind": f.kind,
                   "status": f.status, "rows_read": f.rows_read, "rows_loaded": f.rows_loaded,
                   "rows_rejected": f.rows_rejected, "rows_duplicate": f.rows_duplicate,
                   "error": f.error} for f in result.files],
    }
    if as_json:
        print_json(data)
    loaded = sum(1 for f in result.files if f.status == "loaded")
    err_console.print(
        f"export: batch {result.batch}: {loaded} files, {result.events_written:,} events "
        f"written; {len(result.files) - loaded} files already in the lake (skipped)"
    )
    return int(ExitCode.OK)


# ------------------------------------------------------------------------------------ sample


@app.command()
def sample(
    out: Annotated[Path, typer.Argument(help="Folder to write: new or empty.")],
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (same seed, same data).")]
    = 1,
    scale: Annotated[
        float,
        typer.Option("--scale", help="Multiplies users and background traffic (1 ≈ 110k events)."),
    ] = 1.0,
    json_out: JsonOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Write a synthetic incident: 13,000 recipients, 1,504 tappers in incident.json's window."""
    from contextlib import ExitStack

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from forensics.sample import write_sample

    with ExitStack() as stack:
        progress_fn = None
        if err_console.is_terminal:
            bar = stack.enter_context(Progress(
                "sample", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=err_console, transient=True,
            ))
            task = bar.add_task("chunks", total=None)

            def progress_fn(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

        summary = write_sample(out, seed=seed, scale=scale, progress=progress_fn)
    if json_out:
        print_json({
            "out": str(summary.out), "seed": summary.seed, "scale": summary.scale,
            "window": {"start": summary.window_start, "end": summary.window_end},
            "recipients": summary.recipients, "tappers": summary.tappers,
            "users": summary.users, "devices": summary.devices,
            "records": {"events": summary.event_records, "grants": summary.grant_records,
                        "accounts": summary.account_records},
            "files": list(summary.files), "traps": summary.traps,
        })
    else:
        err_console.print(
            f"sample: wrote {len(summary.files)} files to {summary.out}: "
            f"{summary.event_records:,} event, {summary.grant_records:,} grant and "
            f"{summary.account_records:,} account records; window "
            f"{summary.window_start}/{summary.window_end} holds {summary.recipients:,} "
            f"recipients and {summary.tappers:,} tappers"
        )
    return int(ExitCode.OK)


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
