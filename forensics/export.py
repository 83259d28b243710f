"""Notification lists and their manifest (SPEC §6): the bytes written here are a contract.

CSV (csv_text.py): UTF-8 (a BOM only when asked, for Excel), RFC 4180 quoting with CRLF line
ends, a header row always, times as UTC ISO 8601 with `Z` keeping their fraction of a second,
and text cells that begin with = + - @ tab or CR prefixed with `'` unless sanitising is off.
Every file goes to a temp file in the output folder, is fsynced, then renamed (private_files.py):
files 0600, a new folder 0700.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from forensics import __version__, private_files
from forensics.csv_text import (
    BOM,
    FORMULA_PREFIX,
    FORMULA_TRIGGERS,
    NEWLINE,
    encode_row,
    neutralize_formula,
    quote_field,
    render_batch,
    render_column,
    write_csv_pending,
)
from forensics.engines.base import Engine
from forensics.errors import StoreError
from forensics.exposure import compute_figures, prepare_window
from forensics.private_files import (
    MANIFEST,
    OutputFile,
    PendingFile,
    abandon_files,
    commit_files,
    folder_warnings,
    write_bytes_pending,
    writing_files,
)
from forensics.queries import get_query, run_query
from forensics.store import engine_error
from forensics.window import Window, format_time

# The CSV rules (csv_text.py) and the private files (private_files.py) are re-exported: the
# notification lists' writer is where callers have always found them.
__all__ = [
    "BOM",
    "EXPOSURES",
    "FORMULA_PREFIX",
    "FORMULA_TRIGGERS",
    "LISTS",
    "MANIFEST",
    "NEWLINE",
    "OUTPUT_NAMES",
    "OWNERS",
    "RECIPIENTS",
    "TOOL_NAME",
    "ListRows",
    "ListSpec",
    "NotifyResult",
    "OutputFile",
    "PendingFile",
    "abandon_files",
    "build_manifest",
    "commit_files",
    "encode_row",
    "format_time",
    "neutralize_formula",
    "prepare_out_dir",
    "quote_field",
    "read_input_files",
    "render_batch",
    "render_column",
    "sanitize_mode",
    "write_bytes_pending",
    "write_csv_pending",
    "write_notifications",
]

TOOL_NAME = "forensics"
_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class ListSpec:
    """One notification list: its file, the query giving its rows, and its columns (SPEC §6)."""

    file_name: str
    query: str
    columns: tuple[str, ...]


RECIPIENTS = ListSpec(
    "recipients.csv",
    "recipients",
    (
        "user_id",
        "email",
        "name",
        "locale",
        "thumbnails",
        "devices",
        "taps",
        "plays",
        "first_seen",
        "last_seen",
        "severity",
    ),
)
OWNERS = ListSpec(
    "owners.csv",
    "owners",
    (
        "user_id",
        "email",
        "name",
        "locale",
        "devices",
        "thumbnails",
        "viewers",
        "first_exposed",
        "last_exposed",
        "severity",
    ),
)
EXPOSURES = ListSpec(
    "exposures.csv",
    "exposures",
    (
        "delivered_at",
        "recipient_id",
        "device_id",
        "event_id",
        "owner_ids",
        "first_tap_at",
        "first_play_at",
        "request_id",
        "source_file",
        "source_record",
    ),
)
LISTS = (RECIPIENTS, OWNERS, EXPOSURES)
# A list's computed rows → the columns and rows to write (see write_notifications).
ListRows = Callable[[ListSpec, pa.RecordBatchReader], tuple[Sequence[str], pa.RecordBatchReader]]
OUTPUT_NAMES = tuple(s.file_name for s in LISTS) + (MANIFEST,)


def prepare_out_dir(
    out_dir: Path,
    *,
    force: bool,
    names: Sequence[str] = OUTPUT_NAMES,
    replaces: str = "the notification files",
) -> bool:
    """private_files.prepare_out_dir, for the notification files unless told otherwise."""
    return private_files.prepare_out_dir(out_dir, force=force, names=names, replaces=replaces)


# --- the notification lists ----------------------------------------------------------------


@dataclass(frozen=True)
class NotifyResult:
    """What `write_notifications` wrote; counts only, no personal data."""

    out_dir: Path
    created_dir: bool
    files: tuple[OutputFile, ...]
    rows: Mapping[str, int]
    unreachable_recipients: int
    unreachable_owners: int
    unreachable_users: int
    warnings: tuple[str, ...] = field(default=())


def sanitize_mode(sanitize: bool) -> dict[str, Any]:
    """How text cells were treated, as recorded in the manifest."""
    return {
        "formula_prefix": sanitize,
        "prefix": FORMULA_PREFIX if sanitize else None,
        "triggers": list(FORMULA_TRIGGERS) if sanitize else [],
        "applies_to": "text cells (ids, contact fields, owner_ids, request_id, source_file)",
    }


def read_input_files(con: duckdb.DuckDBPyConnection | Engine) -> list[dict[str, Any]]:
    """Every ingested file (queries/input_files.sql), for the manifest."""
    rows: list[dict[str, Any]] = run_query(con, "input_files").to_pylist()
    return rows


def _query_reader(con: duckdb.DuckDBPyConnection | Engine, name: str) -> pa.RecordBatchReader:
    """A parameterless query's rows as a stream of batches (bounded memory for long lists)."""
    q = get_query(name)
    if q.params:
        raise StoreError(f"query {name}", "expects parameters")
    if isinstance(con, Engine):
        return con.query_reader(name)
    try:
        return con.sql(q.sql).to_arrow_reader(_BATCH_ROWS)
    except duckdb.Error as e:
        raise engine_error(f"query {name}", e) from None


def _collect_without_email(into: set[str]) -> Callable[[pa.RecordBatch], None]:
    """A batch inspector adding the user_id of every row whose email is missing or blank."""

    def inspect(batch: pa.RecordBatch) -> None:
        email = batch.column(batch.schema.get_field_index("email"))
        blank = pc.equal(pc.utf8_trim_whitespace(email), "")
        missing = pc.or_kleene(pc.is_null(email), blank)
        user_ids = batch.column(batch.schema.get_field_index("user_id"))
        into.update(str(u) for u in pc.filter(user_ids, missing).to_pylist())

    return inspect


def build_manifest(
    window: Window,
    figures: Mapping[str, Any],
    sanitize: bool,
    excel: bool,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[PendingFile],
    generated_at: datetime,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """manifest.json's bytes: tool, window, figures, sanitisation, inputs and outputs.

    `extra` adds keys (e.g. the wave and pseudonymisation) before `inputs`.
    """
    manifest: dict[str, Any] = {
        "tool": {"name": TOOL_NAME, "version": __version__},
        "generated_at": format_time(generated_at.replace(microsecond=0)),
        "window": window.to_json(),
        "figures": figures,
        "sanitization": sanitize_mode(sanitize),
        "csv": {
            "encoding": "utf-8-sig" if excel else "utf-8",
            "line_terminator": "CRLF",
            "quoting": "RFC 4180",
            "time_format": "UTC ISO 8601 with Z; fraction of a second kept, trailing zeros removed",
        },
        **(extra or {}),
        "inputs": [
            {
                "path": i["path"],
                "sha256": i["sha256"],
                "kind": i["kind"],
                "size_bytes": i["size_bytes"],
                "source_id": i["source_id"],
            }
            for i in inputs
        ],
        "outputs": [
            {"name": p.final.name, "rows": p.rows, "sha256": p.sha256, "size_bytes": p.size_bytes}
            for p in outputs
        ],
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=2, default=str)
    return (text + "\n").encode("utf-8")


def write_notifications(
    con: duckdb.DuckDBPyConnection | Engine,
    window: Window,
    out_dir: Path,
    *,
    force: bool = False,
    sanitize: bool = True,
    excel: bool = False,
    list_rows: ListRows | None = None,
    manifest_extra: Callable[[], Mapping[str, Any]] | None = None,
) -> NotifyResult:
    """Write recipients.csv, owners.csv, exposures.csv and manifest.json for `window` (SPEC §6).

    `list_rows`, when given, turns each list's computed rows into the rows written (columns
    and reader), e.g. a wave's delta or pseudonyms (forensics/wave_delta.py); `manifest_extra` is
    called after the lists are written and its keys are added to the manifest.

    The folder is checked first: a refusal changes nothing. Files are written to temp files,
    then renamed together; on any error or interrupt the temp files (and a folder this call
    created) are removed and the error is raised. Raises OutputError, StoreError.
    """
    created = prepare_out_dir(out_dir, force=force)
    with writing_files(out_dir, created, "notification lists") as pending:
        # One source of truth: the lists read the same cross-account temp tables as the
        # figures (queries/cross_account_*.sql), prepared once for this window.
        prepare_window(con, window)
        figures = compute_figures(con, window)
        inputs = read_input_files(con)

        no_email: dict[str, set[str]] = {}
        rows = _write_lists(
            con, out_dir, pending, no_email, list_rows=list_rows, sanitize=sanitize, excel=excel
        )
        csvs = list(pending)
        manifest = build_manifest(
            window,
            figures,
            sanitize,
            excel,
            inputs,
            csvs,
            generated_at=datetime.now(timezone.utc),
            extra=manifest_extra() if manifest_extra is not None else None,
        )
        pending.append(write_bytes_pending(out_dir / MANIFEST, manifest))
        commit_files(pending, out_dir)

    recipients_missing = no_email.get(RECIPIENTS.file_name, set())
    owners_missing = no_email.get(OWNERS.file_name, set())
    return NotifyResult(
        out_dir=out_dir,
        created_dir=created,
        files=tuple(p.written() for p in pending),
        rows=rows,
        unreachable_recipients=len(recipients_missing),
        unreachable_owners=len(owners_missing),
        unreachable_users=len(recipients_missing | owners_missing),
        warnings=tuple(folder_warnings(out_dir, created)),
    )


def _write_lists(
    con: duckdb.DuckDBPyConnection | Engine,
    out_dir: Path,
    pending: list[PendingFile],
    no_email: dict[str, set[str]],
    *,
    list_rows: ListRows | None,
    sanitize: bool,
    excel: bool,
) -> dict[str, int]:
    """Write each list to a temp file; return its rows by file name.

    Each temp file joins `pending` as soon as it exists, so a failure part-way leaves the
    caller able to remove it; users of a list with an email column but none given are
    collected into `no_email` by file name.
    """
    rows: dict[str, int] = {}
    for spec in LISTS:
        columns: Sequence[str] = spec.columns
        reader = _query_reader(con, spec.query)
        if list_rows is not None:
            columns, reader = list_rows(spec, reader)
        inspect = None
        if "email" in columns:
            inspect = _collect_without_email(no_email.setdefault(spec.file_name, set()))
        p = write_csv_pending(
            out_dir / spec.file_name,
            columns,
            reader,
            sanitize=sanitize,
            excel=excel,
            inspect=inspect,
        )
        pending.append(p)
        rows[spec.file_name] = p.rows or 0
    return rows
