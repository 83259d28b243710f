"""The report's Evidence section: the inputs and their accounting, the query files and
versions used, and the command lines that re-derive every figure.
"""

from __future__ import annotations

import os
import shlex

from forensics.exposure import printable
from forensics.lake import is_remote
from forensics.report.figures import ReportData, instant
from forensics.report.sections import Section, Table, n, people


def _q(text: str) -> str:
    """A shell word for a command line shown in the report (control characters escaped)."""
    return shlex.quote(printable(text))


def evidence_section(data: ReportData) -> Section:
    s = Section("evidence", "Evidence")
    w = str(data.window)
    # Absolute paths, as the inputs are listed: the commands work from any folder.
    if data.lake is None:
        db = f"--db {_q(os.path.abspath(data.store_path))}"
    else:
        lake = data.lake if is_remote(data.lake) else os.path.abspath(data.lake)
        db = f"--lake {_q(lake)}" + (" --engine spark" if data.engine == "spark" else "")
    ok = all(
        int(r["rows_read"])
        == int(r["rows_loaded"]) + int(r["rows_rejected"]) + int(r["rows_duplicate"])
        for r in data.sources
    )
    s.p(
        f"{people(len(data.sources), 'input file was', 'input files were')} ingested into "
        f"the case store. For every file, rows read = loaded + rejected + duplicate: "
        f"{'holds' if ok else 'DOES NOT HOLD for some file (see the table)'}."
    )
    rows = []
    for r in data.sources:
        balanced = int(r["rows_read"]) == (
            int(r["rows_loaded"]) + int(r["rows_rejected"]) + int(r["rows_duplicate"])
        )
        rows.append(
            [
                printable(str(r["path"])),
                str(r["kind"]),
                str(r["sha256"]),
                n(int(r["rows_read"])),
                n(int(r["rows_loaded"])),
                n(int(r["rows_rejected"])),
                n(int(r["rows_duplicate"])),
                "yes" if balanced else "NO",
            ]
        )
    s.add_table(
        Table(
            ["file", "kind", "SHA-256", "read", "loaded", "rejected", "duplicate", "balanced"],
            rows,
            numeric={3, 4, 5, 6},
            mono={2},
        ),
        heading="Inputs",
    )
    s.add_table(
        Table(
            ["query", "SHA-256"], [[f"queries/{q.file}", q.sha256] for q in data.queries], mono={1}
        ),
        heading="Query files used",
    )
    s.p(
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in data.versions.items())
        + f". Generated at {instant(data.generated_at)}."
    )
    s.code(
        "\n".join(_rederive_commands(data, db, w)), heading="Commands that re-derive the figures"
    )
    return s


def _rederive_commands(data: ReportData, db: str, w: str) -> list[str]:
    """The command lines that re-derive every figure, for the store or lake read (`db`)."""
    by = " ".join(f"--by {_q(b.field)}" for b in data.breakdowns)
    # The store or lake options follow the command: every command takes them there, and
    # --lake and --engine only there.
    lines = [
        "# every figure of 'What happened' (the keys of its table), and the timeline:",
        f"forensics exposure {db} --window {w} --json",
    ]
    for b in data.breakdowns:
        lines += [
            f"# the breakdown by {printable(b.field)}:",
            f"forensics exposure {db} --window {w} --by {_q(b.field)} --json",
        ]
    lines += [
        "# the people behind 'People affected' (personal data: recipients.csv, owners.csv):",
        f"forensics notify {db} --window {w} --out NEW_FOLDER",
        "# the inputs and their accounting, the rejected records, and the files re-hashed:",
        f"forensics sources {db} --json",
        f"forensics rejects {db} --json",
        f"forensics verify {db}",
        "# this report again:",
        f"forensics report {db} --window {w}{' ' + by if by else ''} --out NEW_FOLDER",
    ]
    return lines
