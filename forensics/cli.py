"""The command-line interface: parse options, call one core function, render, exit code.

The only module that imports typer; forensics.screens and forensics.terminal draw. stdout
carries data only (JSON, CSV, tables asked for); progress, summaries and errors go to stderr.
Errors are one line, `forensics: error: <what>: <why>`, with a traceback (no local
variables) only under --debug, which is carried in the command context.
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

import typer
from typer.core import TyperGroup

from forensics import __version__, screens, terminal
from forensics.errors import ExitCode, ForensicsError
from forensics.store import StoreOptions, is_interrupt, resolve_db_path
from forensics.terminal import ERR, OUT, error, note, say, warn

_DEBUG = "forensics.debug"  # key in the context's meta, shared by every nested context
_WHERE = "forensics_command_path"  # set on a usage error raised without a context


def _debug(ctx: Any) -> bool:
    return bool(ctx is not None and ctx.meta.get(_DEBUG))


class ForensicsGroup(TyperGroup):
    """Turns every failure into one line on stderr and the exit code (0 done, 1 failure,
    2 usage, 130 interrupted)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code: int
        try:
            rv = super().main(
                args=args,
                prog_name="forensics",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            code = rv if isinstance(rv, int) else ExitCode.OK
        except typer.TyperException as e:  # bad options and arguments, unknown commands
            ctx = getattr(e, "ctx", None)
            if e.exit_code == ExitCode.USAGE:
                where = getattr(e, _WHERE, None) or (
                    ctx.command_path if ctx is not None else "forensics"
                )
                what = "" if where == "forensics" else f"{where}: "
                error(f"{what}{e.format_message()} (see `{where} --help`)")
            else:
                error(e.format_message())
            code = e.exit_code
        except typer.Abort:
            error("interrupted")
            code = ExitCode.INTERRUPTED
        if standalone_mode:
            sys.exit(int(code))
        return int(code)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as e:
            # An option's parser reports no context: name the command it was given to.
            if getattr(e, "ctx", None) is None and ctx.invoked_subcommand:
                setattr(e, _WHERE, f"{ctx.command_path} {ctx.invoked_subcommand}")
            raise
        except (typer.Exit, typer.Abort):
            raise
        except ForensicsError as e:
            if _debug(ctx):
                traceback.print_exc(file=sys.stderr)
            error(e.one_line())
            raise typer.Exit(e.exit_code) from None
        except BrokenPipeError:
            # The reader of stdout went away (`| head`): nothing more to say, to anyone.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(ExitCode.FAILURE) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no locals
            if is_interrupt(e):
                error("interrupted")
                raise typer.Exit(ExitCode.INTERRUPTED) from None
            if _debug(ctx):
                traceback.print_exc(file=sys.stderr)
            error(f"internal error: {type(e).__name__} (run with --debug for details)")
            raise typer.Exit(ExitCode.FAILURE) from None

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Each command with its whole summary (the first paragraph of its help), not cut."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            rows.append((name, " ".join((cmd.help or "").split("\n\n")[0].split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


_EPILOG = """Examples:

\b
  forensics ingest logs/events logs/grants logs/accounts
  forensics status
  forensics exposure --window 2024-02-16T09:00:00Z/PT4H30M
  forensics exposure --window 2024-02-16T09:00:00Z/PT4H30M --by cache_node
  forensics notify --window 2024-02-16T09:00:00Z/PT4H30M --out notices
  forensics sql "select action, count(*) from events group by action"

\b
The case store: --db PATH, else $FORENSICS_DB, else ./forensics.duckdb.
Exit codes: 0 done (zero findings too), 1 a failure, 2 a usage error,
130 interrupted."""

app = typer.Typer(
    cls=ForensicsGroup,
    add_completion=True,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Incident forensics from access logs: who received camera content that was not "
    "theirs in an incident window, what they did with it, whose cameras were exposed, and "
    "who must be told.",
    epilog=_EPILOG,
)


def _remember_debug(ctx: typer.Context, value: bool) -> bool:
    if value:
        ctx.meta[_DEBUG] = True
    return value


# Options shared by several commands, defined once.
DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Case store (else $FORENSICS_DB, else ./forensics.duckdb)."),
]
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug",
        callback=_remember_debug,
        help="Show tracebacks on errors (never local variables).",
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No summary on stderr; warnings and errors only.")
]
MemoryOpt = Annotated[
    str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 4GB.")
]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="DuckDB threads.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
WindowOpt = Annotated[
    str,
    typer.Option(
        "--window",
        metavar="START/END|@FILE",
        help="The incident window, half-open [START, END): START an ISO 8601 instant (no "
        "offset means UTC), END an instant or an ISO 8601 duration (PT4H30M); or @FILE, an "
        'incident file (window = "START/END" in TOML, as `forensics sample` writes; or '
        'JSON {"window": {"start", "end"}}).',
    ),
]
StrictWindowOpt = Annotated[
    bool, typer.Option("--strict", help="Exit 1 when the window holds no events at all.")
]

# Where case data is read and which engine runs the queries (SPEC §7, §8).
LakeOpt = Annotated[
    str | None,
    typer.Option(
        "--lake",
        metavar="DIR",
        help="A case lake (a folder of Parquet written by `forensics export` or `ingest --lake`) "
        "instead of the store; with --engine spark also an s3a:// or hdfs:// URI.",
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
    quiet: bool = False


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    db: DbOpt = None,
    debug: DebugOpt = False,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
    version: Annotated[
        bool, typer.Option("--version", "-V", is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Incident forensics from access logs."""
    if version:
        sys.stdout.write(f"forensics {__version__}\n")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        # `forensics` alone: the help, on stderr (stdout is for data), as a usage error.
        sys.stderr.write(ctx.get_help() + "\n")
        raise typer.Exit(ExitCode.USAGE)
    ctx.obj = Globals(db=db, debug=debug, memory_limit=memory_limit, threads=threads, quiet=quiet)


def _globals(ctx: typer.Context) -> Globals:
    return ctx.obj if isinstance(ctx.obj, Globals) else Globals()


def store_options(
    ctx: typer.Context,
    db: str | None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> StoreOptions:
    """Merge a command's own --db/--memory-limit/--threads with the global ones."""
    g = _globals(ctx)
    return StoreOptions(
        path=resolve_db_path(db or g.db),
        memory_limit=memory_limit or g.memory_limit,
        threads=threads or g.threads,
    )


def is_quiet(ctx: typer.Context, quiet: bool) -> bool:
    return quiet or _globals(ctx).quiet


def engine_options(
    ctx: typer.Context,
    lake: str | None,
    engine: EngineName,
    master: str | None,
    memory_limit: str | None = None,
    threads: int | None = None,
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


def _window_notes(text: str, window: Any, quiet: bool) -> None:
    from forensics.status import window_without_offset

    if window_without_offset(text) and not quiet:
        note(f"the window {text.strip()} has no UTC offset and was read as UTC: {window}")


def _coverage_messages(coverage: Any, outside: int, window: Any, strict: bool) -> int:
    """Warn when zero figures may come from the window or the store; the exit code."""
    for line in screens.coverage_warnings(coverage, outside, window):
        warn(line)
    if strict and coverage is not None and coverage.holds_no_events:
        error(f"--strict: the window {window} holds no events")
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


# --------------------------------------------------------- ingest, sources, rejects, verify


@app.command()
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
    from forensics.status import read_event_range

    mapping = None
    if map_file is not None:
        from forensics.mapping import load_mapping

        mapping = load_mapping(map_file)
    options = IngestOptions(kind=kind, assume_tz=assume_tz, mapping=mapping)
    store = store_options(ctx, db, memory_limit, threads)
    quiet = is_quiet(ctx, quiet)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads)
    if on_lake is not None:
        from forensics.lake_ingest import ingest_lake

        report = ingest_lake(on_lake, paths, options)
    else:
        tracker = terminal.IngestProgress(show=not quiet)
        try:
            with tracker as progress:
                report = run_ingest(store, paths, options, progress)
        except BaseException as e:
            if not is_interrupt(e):
                raise
            error(
                f"interrupted: {tracker.files_done:,} of {tracker.files_total:,} files were "
                f"stored in {store.path} (each file is stored whole or not at all). Run the same "
                "command again to resume: files already stored are skipped"
            )
            raise typer.Exit(ExitCode.INTERRUPTED) from None
    if as_json:
        print_json(report.to_json())
    elif quiet:
        for f in report.files:
            if f.status == "failed":
                error(f"{f.path}: {f.error}")
    else:
        events = read_event_range(store) if store.path.is_file() else None
        screens.render_ingest(report, events)
    totals = report.totals()
    if totals["failed"] or (strict and totals["rows_rejected"]):
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)


@app.command()
def sources(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column: full path, SHA-256, sizes, times.")
    ] = False,
    db: DbOpt = None,
    debug: DebugOpt = False,
) -> int:
    """List the ingested files: kind, SHA-256 and how every record was accounted for."""
    from forensics.evidence import list_sources

    rows = list_sources(store_options(ctx, db))
    if as_json:
        print_json(rows)
    else:
        screens.render_sources(rows, wide=wide)
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
    from forensics.evidence import rejects_page

    page = rejects_page(store_options(ctx, db), limit)
    if as_json:
        print_json(page.rows)
    else:
        screens.render_rejects(page, raw=raw)
    return int(ExitCode.OK)


@app.command()
def verify(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Re-hash every source file: exit 0 if all match, 1 if any changed or is missing."""
    from forensics.evidence import verify_sources

    rows = verify_sources(store_options(ctx, db))
    if as_json:
        print_json(rows)
    else:
        screens.render_verify(rows)
    bad = sum(1 for r in rows if r["status"] != "ok")
    if bad:
        error(f"{bad:,} of {len(rows):,} source files changed or missing")
    elif not is_quiet(ctx, quiet):
        say(ERR, f"{len(rows):,} of {len(rows):,} source files match")
    return int(ExitCode.FAILURE if bad else ExitCode.OK)


@app.command()
def status(
    ctx: typer.Context, as_json: JsonOpt = False, db: DbOpt = None, debug: DebugOpt = False
) -> int:
    """What is in this case: files and rows per kind, rejects and duplicates, the time range
    of events and grants, the store's size and the tool versions that wrote it."""
    from forensics.status import describe_store

    report = describe_store(store_options(ctx, db))
    if as_json:
        print_json(report.to_json())
    else:
        screens.render_status(report)
    return int(ExitCode.OK)


# ---------------------------------------------------------------------------- exposure, sql


@app.command()
def exposure(
    ctx: typer.Context,
    window: WindowOpt,
    as_json: JsonOpt = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="FIELD",
            help="Break cross-account deliveries, recipients and exposed devices down by a "
            "stored event field (e.g. cache_node, app, status, source_id).",
        ),
    ] = None,
    top: Annotated[
        int,
        typer.Option(
            "--top",
            min=0,
            metavar="N",
            help="Show the N largest values of the --by breakdown (0: all).",
        ),
    ] = 20,
    strict: StrictWindowOpt = False,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Count who received content that was not theirs in a window, and what they did with it."""
    from contextlib import nullcontext

    from forensics.exposure import run_exposure
    from forensics.window import parse_window

    w = parse_window(window)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads)
    _window_notes(window, w, is_quiet(ctx, quiet))
    options = store_options(ctx, db, memory_limit, threads)
    busy = ERR.status("computing figures…") if ERR.is_terminal else nullcontext()
    with busy:
        report = run_exposure(options, w, by, on_lake)
    if as_json:
        print_json(report.to_json())
    else:
        screens.render_exposure(report, top=top)
    outside = report.figures["cross_account_deliveries_outside_window"]
    return _coverage_messages(report.coverage, outside, w, strict)


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
    from forensics.sandbox import query_store

    if query == "-":
        query = sys.stdin.read()
    with query_store(store_options(ctx, db, memory_limit, threads), query) as result:
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
    previous: Annotated[
        Path | None,
        typer.Option(
            "--previous",
            metavar="DIR",
            help="An earlier wave's folder: list only people new or escalated since its "
            "chain, and deliveries it did not list.",
        ),
    ] = None,
    pseudonymize: Annotated[
        bool,
        typer.Option(
            "--pseudonymize",
            help="Replace user, device and event ids with HMAC-SHA256 pseudonyms and leave "
            "contact columns empty (key: $FORENSICS_PSEUDONYM_KEY or --key-file).",
        ),
    ] = False,
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", metavar="FILE", help="File holding the pseudonym key."),
    ] = None,
    strict: StrictWindowOpt = False,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write the notification lists (recipients, owners, exposures) and manifest.json."""
    from forensics.exposure import printable
    from forensics.notify_run import run_notify
    from forensics.window import parse_window

    w = parse_window(window)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads)
    quiet = is_quiet(ctx, quiet)
    _window_notes(window, w, quiet)
    run = run_notify(
        store_options(ctx, db, memory_limit, threads),
        w,
        out,
        engine=on_lake,
        previous=previous,
        pseudonymize=pseudonymize,
        key_file=key_file,
        force=force,
        sanitize=not no_sanitize,
        excel=excel,
    )
    # Counts and paths only: never a user id, email or name (nor the pseudonym key).
    if not quiet:
        screens.render_notify(run, w, sanitize=not no_sanitize)
    for message in (*run.result.warnings, *run.wave.warnings):
        warn(printable(message))
    return _coverage_messages(run.coverage, run.outside_window, w, strict)


@app.command("verify-notices")
def verify_notices(
    folders: Annotated[
        list[Path], typer.Argument(metavar="DIR...", help="Notify folders (waves) to check.")
    ],
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> int:
    """Check notification waves: every list against its manifest, every link back to wave 1."""
    from forensics.waves import verify_notices as check

    checks = check(folders)

    def wave_row(wv: Any) -> dict[str, Any]:
        return {
            "folder": str(wv.folder),
            "wave": wv.number,
            "status": "ok",
            "manifest_sha256": wv.manifest_sha256,
            "previous_manifest_sha256": wv.previous_sha256,
            "pseudonymized": wv.pseudonymized,
        }

    bad = [c for c in checks if c.problem is not None]
    if as_json:
        print_json(
            {
                "chains": [
                    {
                        "folder": str(c.folder),
                        "ok": c.problem is None,
                        "problem": c.problem,
                        "waves": [wave_row(wv) for wv in c.waves],
                    }
                    for c in checks
                ]
            }
        )
    else:
        rows = []
        for c in checks:
            rows += [wave_row(wv) for wv in c.waves]
            if c.problem is not None:
                rows.append({"folder": str(c.folder), "status": "failed"})
        screens.render_verify_notices(rows)
    screens.render_chains_checked([c.problem or "" for c in bad], len(checks))
    return int(ExitCode.FAILURE if bad else ExitCode.OK)


# ------------------------------------------------------------------------------------ report


@app.command()
def report(
    ctx: typer.Context,
    window: WindowOpt,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for report.html and report.md: new or empty.")
    ],
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            metavar="FIELD",
            help="Break cross-account deliveries down by a stored event field (repeatable; "
            "not an id field).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into a non-empty folder, replacing the report."),
    ] = False,
    strict: StrictWindowOpt = False,
    db: DbOpt = None,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
    lake: LakeOpt = None,
    engine: EngineOpt = EngineName.duckdb,
    master: MasterOpt = None,
    debug: DebugOpt = False,
) -> int:
    """Write the incident report (report.html, report.md) for a window: counts only."""
    from forensics.report import run_report
    from forensics.window import parse_window

    w = parse_window(window)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads)
    quiet = is_quiet(ctx, quiet)
    _window_notes(window, w, quiet)
    run = run_report(
        store_options(ctx, db, memory_limit, threads),
        w,
        out,
        by=list(by or []),
        force=force,
        engine=on_lake,
    )
    if not quiet:
        screens.render_report(run.result, w)
    outside = run.result.data.figures["cross_account_deliveries_outside_window"]
    return _coverage_messages(run.coverage, outside, w, strict)


# ------------------------------------------------------------------------------------ export


@app.command("export")
def export_lake(
    ctx: typer.Context,
    lake: Annotated[str, typer.Argument(metavar="DIR", help="Case lake folder (new or existing).")],
    as_json: JsonOpt = False,
    db: DbOpt = None,
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
    say(
        ERR,
        f"export: batch {result.batch}: {loaded:,} files, {result.events_written:,} events "
        f"written; {len(result.files) - loaded:,} files already in the lake (skipped)",
    )
    return int(ExitCode.OK)


# ------------------------------------------------------------------------------------ sample


@app.command()
def sample(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Folder to write: new or empty.")],
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed (same seed, same data).")
    ] = 1,
    scale: Annotated[
        float,
        typer.Option("--scale", help="Multiplies users and background traffic (1 ≈ 110k events)."),
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


def main() -> None:
    """Console-script entry point (the process of its own, not in-process callers of `app`)."""
    # No linear algebra here: NumPy's OpenBLAS would only start a thread that spins on the
    # cores DuckDB uses (about 1% of an ingest's CPU time). NumPy is not loaded yet.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # What DuckDB creates itself (the write-ahead log, spill files) is private to the user;
    # the store, its spill folder and every output also get explicit modes where created.
    os.umask(0o077)
    app()


__all__ = ["app", "main"]
