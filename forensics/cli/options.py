"""Options shared by several commands, defined once, and what turns them into core options.

Every command takes the global options (--db, --debug, --memory-limit, --threads, --quiet)
in its own place too; a command's own value wins over the one given before the command.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

import typer

from forensics import screens
from forensics.errors import SURROGATE, ExitCode, UsageError
from forensics.store import StoreOptions, resolve_db_path
from forensics.terminal import error, note, warn

_DEBUG = "forensics.debug"  # key in the context's meta, shared by every nested context
WHERE = "forensics_command_path"  # set on a usage error raised without a context


def debug_requested(ctx: Any) -> bool:
    return bool(ctx is not None and ctx.meta.get(_DEBUG))


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
# A size as DuckDB reads one (`4GB`, `512 MiB`, `1.5GB`, `80%`), above zero. DuckDB itself
# takes `-5GB` as no limit at all (16383.9 PiB) and names its parser in other refusals.
_MEMORY = re.compile(
    r"\s*(?=[0-9.]*[1-9])[0-9]+(?:\.[0-9]+)?\s*(?:[kmgtp]i?b?|b|bytes?|%)\s*", re.IGNORECASE
)


def _check_memory_limit(value: str | None) -> str | None:
    if value is not None and not _MEMORY.fullmatch(value):
        raise typer.BadParameter(
            "a size above zero with its unit, such as 4GB, 512MiB or 80% (of this machine's RAM)"
        )
    return value


MemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--memory-limit", callback=_check_memory_limit, help="DuckDB memory limit, e.g. 4GB."
    ),
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


def globals_of(ctx: typer.Context) -> Globals:
    return ctx.obj if isinstance(ctx.obj, Globals) else Globals()


def store_options(
    ctx: typer.Context,
    db: str | None,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> StoreOptions:
    """Merge a command's own --db/--memory-limit/--threads with the global ones."""
    g = globals_of(ctx)
    return StoreOptions(
        path=resolve_db_path(db or g.db),
        memory_limit=memory_limit or g.memory_limit,
        threads=threads or g.threads,
    )


def is_quiet(ctx: typer.Context, quiet: bool) -> bool:
    return quiet or globals_of(ctx).quiet


def engine_options(
    ctx: typer.Context,
    lake: str | None,
    engine: EngineName,
    master: str | None,
    memory_limit: str | None = None,
    threads: int | None = None,
    db: str | None = None,
) -> Any:
    """EngineOptions for --lake/--engine/--master, or None: the case store (--db) with DuckDB.
    `db`: the command's own --db, which cannot go with --lake (nor can the global one;
    $FORENSICS_DB, a default, gives way to --lake)."""
    from forensics.engines.base import EngineOptions, check_engine

    g = globals_of(ctx)
    if lake is not None and (db or g.db):
        raise UsageError(
            "--lake", "give --db or --lake, not both (--db names a case store, --lake a case lake)"
        )
    if lake is None and engine is EngineName.duckdb:
        return None
    options = EngineOptions(
        engine.value, lake, master, memory_limit or g.memory_limit, threads or g.threads
    )
    check_engine(options)
    return options


@dataclass(frozen=True)
class WindowRun:
    """Where exposure, notify and report start: the window, the case (a store, or a lake
    when `engine` is set) and whether to keep quiet."""

    window: Any  # forensics.window.Window
    store: StoreOptions
    engine: Any  # EngineOptions, or None: the store with DuckDB
    quiet: bool


def window_run(
    ctx: typer.Context,
    window: str,
    db: str | None,
    memory_limit: str | None,
    threads: int | None,
    quiet: bool,
    lake: str | None,
    engine: EngineName,
    master: str | None,
) -> WindowRun:
    """Parse --window, merge the case options with the global ones and note a window read
    as UTC (usage errors first: the window's, then the engine's)."""
    from forensics.window import parse_window

    w = parse_window(window)
    on_lake = engine_options(ctx, lake, engine, master, memory_limit, threads, db)
    quiet = is_quiet(ctx, quiet)
    window_notes(window, w, quiet)
    return WindowRun(w, store_options(ctx, db, memory_limit, threads), on_lake, quiet)


def print_json(data: Any) -> None:
    """Data on stdout, as JSON in UTF-8: a lone surrogate (a path's byte that is not UTF-8)
    is written as its escape, `\\udce9`, which a UTF-8 stream cannot carry as itself."""
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    text = SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def window_notes(text: str, window: Any, quiet: bool) -> None:
    from forensics.status import window_without_offset

    given = window.given or text.strip()
    if window_without_offset(given) and not quiet:
        source = f" (from {text.strip()[1:]})" if text.strip().startswith("@") else ""
        note(f"the window {given}{source} has no UTC offset and was read as UTC: {window}")


def coverage_messages(coverage: Any, outside: int, window: Any, strict: bool) -> int:
    """Warn when zero figures may come from the window or the store; the exit code."""
    for line in screens.coverage_warnings(coverage, outside, window):
        warn(line)
    if strict and coverage is not None and coverage.holds_no_events:
        error(f"--strict: the window {window} holds no events")
        return int(ExitCode.FAILURE)
    return int(ExitCode.OK)
