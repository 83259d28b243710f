"""Commands that answer the incident's questions: exposure, notify, verify-notices, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from forensics import screens
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
    StrictWindowOpt,
    ThreadsOpt,
    WindowOpt,
    coverage_messages,
    print_json,
    window_run,
)
from forensics.errors import ExitCode
from forensics.terminal import ERR, warn

# ---------------------------------------------------------------------------------- exposure


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

    case = window_run(ctx, window, db, memory_limit, threads, quiet, lake, engine, master)
    w = case.window
    busy = ERR.status("computing figures…") if ERR.is_terminal else nullcontext()
    with busy:
        report = run_exposure(case.store, w, by, case.engine)
    if as_json:
        print_json(report.to_json())
    else:
        screens.render_exposure(report, top=top)
    outside = report.figures["cross_account_deliveries_outside_window"]
    return coverage_messages(report.coverage, outside, w, strict)


# ------------------------------------------------------------------------------------ notify


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

    case = window_run(ctx, window, db, memory_limit, threads, quiet, lake, engine, master)
    w = case.window
    run = run_notify(
        case.store,
        w,
        out,
        engine=case.engine,
        previous=previous,
        pseudonymize=pseudonymize,
        key_file=key_file,
        force=force,
        sanitize=not no_sanitize,
        excel=excel,
    )
    # Counts and paths only: never a user id, email or name (nor the pseudonym key).
    if not case.quiet:
        screens.render_notify(run, w, sanitize=not no_sanitize)
    for message in (*run.result.warnings, *run.wave.warnings):
        warn(printable(message))
    return coverage_messages(run.coverage, run.outside_window, w, strict)


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

    case = window_run(ctx, window, db, memory_limit, threads, quiet, lake, engine, master)
    w = case.window
    run = run_report(case.store, w, out, by=list(by or []), force=force, engine=case.engine)
    if not case.quiet:
        screens.render_report(run.result, w)
    outside = run.result.data.figures["cross_account_deliveries_outside_window"]
    return coverage_messages(run.coverage, outside, w, strict)
