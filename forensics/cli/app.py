"""The command group: one line on stderr and an exit code for every failure, the global
options, and the console entry point.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from forensics import __version__
from forensics.cli.options import (
    WHERE,
    DbOpt,
    DebugOpt,
    Globals,
    MemoryOpt,
    QuietOpt,
    ThreadsOpt,
    debug_requested,
)
from forensics.errors import ExitCode, ForensicsError
from forensics.store import is_interrupt, remember_interrupts
from forensics.terminal import error


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
        empty = _empty_argument(list(sys.argv[1:] if args is None else args))
        if empty is not None:
            error(f"{empty}: is empty (an unset shell variable?); no value may be empty")
            if standalone_mode:
                sys.exit(int(ExitCode.USAGE))
            return int(ExitCode.USAGE)
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
                where = getattr(e, WHERE, None) or (
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
                setattr(e, WHERE, f"{ctx.command_path} {ctx.invoked_subcommand}")
            raise
        except (typer.Exit, typer.Abort):
            raise
        except ForensicsError as e:
            if debug_requested(ctx):
                traceback.print_exc(file=sys.stderr)
            error(e.one_line())
            raise typer.Exit(e.exit_code) from None
        except BrokenPipeError:
            # The reader of stdout went away (`| head`): nothing more to say, to anyone.
            _silence_stdout()
            raise typer.Exit(ExitCode.FAILURE) from None
        except KeyboardInterrupt:
            error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except OSError as e:
            # One the commands do not name themselves: most often stdout (`> /dev/full`).
            if debug_requested(ctx):
                traceback.print_exc(file=sys.stderr)
            why = e.strerror or type(e).__name__
            if e.filename is not None:
                error(f"{e.filename}: {why}")
            elif _stdout_fails(e):
                error(f"standard output: {why}")
                _silence_stdout()
            else:  # e.g. an engine's connection (Spark's gateway)
                error(f"{why} ({type(e).__name__})")
            raise typer.Exit(ExitCode.FAILURE) from None
        except Exception as e:  # noqa: BLE001 - the last line of defence: one line, no locals
            if is_interrupt(e):
                error("interrupted")
                raise typer.Exit(ExitCode.INTERRUPTED) from None
            if debug_requested(ctx):
                traceback.print_exc(file=sys.stderr)
            engine = sys.modules.get("duckdb")  # not imported for this, if no command did
            if engine is not None and isinstance(e, engine.OutOfMemoryException):
                error(
                    "out of memory: the work needs more than the memory limit allows; "
                    "raise --memory-limit (without it, DuckDB takes 80% of RAM)"
                )
                raise typer.Exit(ExitCode.FAILURE) from None
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


def main() -> None:
    """Console-script entry point (the process of its own, not in-process callers of `app`)."""
    # No linear algebra here: NumPy's OpenBLAS would only start a thread that spins on the
    # cores DuckDB uses (about 1% of an ingest's CPU time). NumPy is not loaded yet.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # What DuckDB creates itself (the write-ahead log, spill files) is private to the user;
    # the store, its spill folder and every output also get explicit modes where created.
    os.umask(0o077)
    remember_interrupts()
    app()


def _stdout_fails(e: OSError) -> bool:
    """True when an error without a file name is a write's (a full disk, an I/O error):
    the commands name the files they write, so it was stdout's."""
    return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _silence_stdout() -> None:
    """Send what is left in stdout's buffer to /dev/null, so that flushing it at exit
    cannot fail a second time."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _empty_argument(argv: list[str]) -> str | None:
    """What an empty argument was given for (`--out ""`, `--out=`, `export ""`), or None.
    No option or argument of forensics takes an empty text, and a path would read it as
    the current folder."""
    for i, a in enumerate(argv):
        if a == "":
            before = argv[i - 1] if i else ""
            return before if before.startswith("-") else f"argument {i + 1}"
        if a.startswith("--") and a.endswith("=") and a.count("=") == 1:
            return a[:-1]
    return None
