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
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from forensics import __version__
from forensics.errors import ExitCode, ForensicsError, UsageError
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
        argv = list(sys.argv[1:] if args is None else args)
        _State.debug = "--debug" in argv
        code: int
        try:
            rv = super().main(
                args=argv, prog_name=prog_name or "forensics", complete_var=complete_var,
                standalone_mode=False, **extra,
            )
            code = rv if isinstance(rv, int) else ExitCode.OK
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


@dataclass
class Globals:
    db: str | None = None
    debug: bool = False
    memory_limit: str | None = None
    threads: int | None = None


@app.callback()
def root(
    ctx: typer.Context,
    db: DbOpt = None,
    debug: DebugOpt = False,
    memory_limit: MemoryOpt = None,
    threads: ThreadsOpt = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    """Incident forensics from access logs."""
    if version:
        out_console.print(f"forensics {__version__}")
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


def print_json(data: Any) -> None:
    """Data on stdout, as JSON."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main", "UsageError", "Path"]
