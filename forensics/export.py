"""Notification lists and their manifest (SPEC §6): the bytes written here are a contract.

CSV: UTF-8 (a BOM only when asked, for Excel), RFC 4180 quoting with CRLF line ends, a header
row always, times as UTC ISO 8601 with `Z` keeping their fraction of a second, and text cells
that begin with = + - @ tab or CR prefixed with `'` unless sanitising is off. Every file goes
to a temp file in the output folder, is fsynced, then renamed: files 0600, a new folder 0700.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from forensics import __version__
from forensics.engines.base import Engine
from forensics.errors import OutputError, StoreError
from forensics.exposure import compute_figures, prepare_window
from forensics.queries import get_query
from forensics.store import engine_error
from forensics.window import Window, format_time

TOOL_NAME = "forensics"
BOM = b"\xef\xbb\xbf"
# RFC 4180 ends records with CRLF; every CSV line, the header included, ends with it.
NEWLINE = "\r\n"
# SPEC §6: a text cell beginning with one of these is a formula to a spreadsheet.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PREFIX = "'"
_MUST_QUOTE = frozenset(',"\r\n')
_BATCH_ROWS = 65_536

MANIFEST = "manifest.json"


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


# --- cells -------------------------------------------------------------------------------


def neutralize_formula(text: str) -> str:
    """Prefix `'` to a text cell a spreadsheet would read as a formula (SPEC §6)."""
    return FORMULA_PREFIX + text if text.startswith(FORMULA_TRIGGERS) else text


def quote_field(text: str) -> str:
    """RFC 4180: quote a field holding a comma, quote or line break; double inner quotes."""
    if _MUST_QUOTE.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def encode_row(cells: Sequence[str]) -> bytes:
    """One CSV record, already-rendered cells, as UTF-8 bytes ending in CRLF."""
    return (",".join(quote_field(c) for c in cells) + NEWLINE).encode("utf-8")


# The CSV of a whole batch is rendered by Arrow compute kernels, column by column: the same
# rules as the per-cell functions above (the reference; a property test holds them equal),
# at a speed that suits lists of millions of rows.
_FORMULA_RE = r"^([=+\-@\t\r])"  # FORMULA_TRIGGERS, as an RE2 pattern anchored at the start
_QUOTE_RE = r'[,"\r\n]'


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _check_type(name: str, dtype: pa.DataType) -> None:
    """Text, integers and timestamps have CSV rules; any other type is an error."""
    if not (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_integer(dtype)
        or pa.types.is_timestamp(dtype)
    ):
        raise StoreError(f"column {name}", f"has type {dtype}, which no CSV rule covers")


def render_column(column: pa.Array, *, sanitize: bool) -> pa.Array:
    """One column as CSV fields (large_string, no nulls): text sanitised then quoted, integers
    in decimal, timestamps as UTC ISO 8601 with `Z`; a null is an empty field."""
    dtype = column.type
    if pa.types.is_timestamp(dtype):
        text = pc.strftime(
            column.cast(pa.timestamp("us", tz="UTC")), format="%Y-%m-%dT%H:%M:%S", locale="C"
        )  # %S on microseconds gives SS.ffffff: drop trailing zeros, then a bare "."
        text = pc.replace_substring_regex(text, pattern=r"(\.[0-9]*[1-9])0+$", replacement=r"\1")
        text = pc.replace_substring_regex(text, pattern=r"\.0+$", replacement="")
        text = pc.binary_join_element_wise(text, "Z", "")
    elif pa.types.is_integer(dtype):
        text = column.cast(pa.string())
    else:
        text = column.cast(pa.large_string())
        if sanitize:
            text = pc.replace_substring_regex(
                text, pattern=_FORMULA_RE, replacement=FORMULA_PREFIX + r"\1"
            )
        quoted = pc.binary_join_element_wise(
            _large('"'),
            pc.replace_substring(text, pattern='"', replacement='""'),
            _large('"'),
            _large(""),
        )
        text = pc.if_else(pc.match_substring_regex(text, _QUOTE_RE), quoted, text)
    return pc.fill_null(text.cast(pa.large_string()), "")


def render_batch(batch: pa.RecordBatch, *, sanitize: bool) -> bytes:
    """The CSV records of a batch as UTF-8 bytes, each ending in CRLF."""
    if batch.num_rows == 0:
        return b""
    fields = [render_column(batch.column(i), sanitize=sanitize) for i in range(batch.num_columns)]
    lines = pc.binary_join_element_wise(*fields, _large(","))
    lines = pc.binary_join_element_wise(lines, _large(NEWLINE), _large(""))
    whole = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines),
        _large(""),
    )[0]
    return bytes(whole.as_buffer())


# --- atomic private files ----------------------------------------------------------------


@dataclass
class PendingFile:
    """A fully written, fsynced temp file waiting to be renamed onto its final name."""

    tmp: Path
    final: Path
    rows: int | None
    sha256: str
    size_bytes: int

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class _HashingWriter:
    """Writes bytes to a file and hashes exactly the bytes written."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.hash.update(data)
        self.size += len(data)


@contextlib.contextmanager
def _private_temp(final: Path) -> Iterator[tuple[_HashingWriter, Path]]:
    """A 0600 temp file beside `final`; flushed and fsynced on success, removed on any error."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already makes it 0600; say so whatever the platform
        with os.fdopen(fd, "wb", buffering=1 << 20) as raw:
            writer = _HashingWriter(raw)
            yield writer, tmp
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_pending(final: Path, data: bytes, rows: int | None = None) -> PendingFile:
    """Write `data` to a private temp file beside `final` (not yet renamed)."""
    with _private_temp(final) as (w, tmp):
        w.write(data)
    return PendingFile(tmp, final, rows, w.hash.hexdigest(), w.size)


def write_csv_pending(
    final: Path,
    columns: Sequence[str],
    reader: pa.RecordBatchReader,
    *,
    sanitize: bool,
    excel: bool,
    inspect: Callable[[pa.RecordBatch], None] | None = None,
) -> PendingFile:
    """Write a CSV (header + the rows of `reader`) to a private temp file beside `final`.

    The reader's columns must be exactly `columns`, in order: a header is never guessed, and
    a column no rule covers is an error, even when there are no rows.
    `inspect` sees each raw batch before it is rendered (e.g. to count missing emails).
    """
    schema = reader.schema
    if list(schema.names) != list(columns):
        raise StoreError(
            f"list {final.name}", f"query gave columns {schema.names}, expected {list(columns)}"
        )
    for f in schema:
        _check_type(f.name, f.type)
    rows = 0
    with _private_temp(final) as (w, tmp):
        if excel:
            w.write(BOM)
        w.write(encode_row(columns))
        for batch in reader:
            if inspect is not None:
                inspect(batch)
            w.write(render_batch(batch, sanitize=sanitize))
            rows += batch.num_rows
    return PendingFile(tmp, final, rows, w.hash.hexdigest(), w.size)


def commit_files(pending: Sequence[PendingFile], directory: Path) -> None:
    """Rename every temp file onto its final name, the manifest last, then fsync the folder.

    An old manifest is removed first: a folder whose manifest is missing, or whose hashes do
    not match, is an incomplete set (an interrupt between two renames).
    """
    manifest = [p for p in pending if p.final.name == MANIFEST]
    others = [p for p in pending if p.final.name != MANIFEST]
    if manifest:
        with contextlib.suppress(FileNotFoundError):
            manifest[0].final.unlink()
    for p in others + manifest:
        os.replace(p.tmp, p.final)
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare_out_dir(
    out_dir: Path,
    *,
    force: bool,
    names: Sequence[str] = OUTPUT_NAMES,
    replaces: str = "the notification files",
) -> bool:
    """Check or create the output folder before anything is computed; True if created here.

    An existing non-empty folder is refused without `force`, with nothing changed. A new
    folder is made 0700 whatever the umask (missing parents are made as `mkdir -p` would).
    `names` are the files the caller will write; `replaces` names them in the hint.
    """
    what = f"output folder {out_dir}"
    try:
        if out_dir.exists():
            if not out_dir.is_dir():
                raise OutputError(what, "exists and is not a folder")
            if not force and any(out_dir.iterdir()):
                raise OutputError(
                    what,
                    "exists and is not empty",
                    f"Pass --force to replace {replaces} in it, or choose a new folder",
                )
            for name in names:
                target = out_dir / name
                if target.is_dir() and not target.is_symlink():
                    raise OutputError(f"{target}", "is a folder; cannot replace it with a file")
            if not os.access(out_dir, os.W_OK | os.X_OK):
                raise OutputError(what, "is not writable")
            return False
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir(mode=0o700)
        os.chmod(out_dir, 0o700)  # mkdir's mode is filtered by the umask; chmod is not
        return True
    except OSError as e:
        raise OutputError(what, e.strerror or type(e).__name__) from None


# --- the notification lists ----------------------------------------------------------------


@dataclass(frozen=True)
class OutputFile:
    """A file written by `write_notifications` (rows is None for the manifest)."""

    name: str
    path: Path
    rows: int | None
    sha256: str
    size_bytes: int


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
    rows: list[dict[str, Any]] = _run_table(con, "input_files").to_pylist()
    return rows


def _run_table(con: duckdb.DuckDBPyConnection | Engine, name: str) -> pa.Table:
    q = get_query(name)
    if q.params:
        raise StoreError(f"query {name}", "expects parameters")
    if isinstance(con, Engine):
        return con.run_query(name)
    try:
        return con.sql(q.sql).to_arrow_table()
    except duckdb.Error as e:
        raise engine_error(f"query {name}", e) from None


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
    and reader), e.g. a wave's delta or pseudonyms (forensics/waves.py); `manifest_extra` is
    called after the lists are written and its keys are added to the manifest.

    The folder is checked first: a refusal changes nothing. Files are written to temp files,
    then renamed together; on any error or interrupt the temp files (and a folder this call
    created) are removed and the error is raised. Raises OutputError, StoreError.
    """
    created = prepare_out_dir(out_dir, force=force)
    pending: list[PendingFile] = []
    try:
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
    except duckdb.Error as e:  # raised while streaming a list's rows
        abandon_files(pending, out_dir, created)
        raise engine_error("notification lists", e) from None
    except OSError as e:
        abandon_files(pending, out_dir, created)
        raise OutputError(f"output folder {out_dir}", e.strerror or type(e).__name__) from None
    except BaseException:
        abandon_files(pending, out_dir, created)
        raise

    recipients_missing = no_email.get(RECIPIENTS.file_name, set())
    owners_missing = no_email.get(OWNERS.file_name, set())
    return NotifyResult(
        out_dir=out_dir,
        created_dir=created,
        files=tuple(
            OutputFile(p.final.name, p.final, p.rows, p.sha256, p.size_bytes) for p in pending
        ),
        rows=rows,
        unreachable_recipients=len(recipients_missing),
        unreachable_owners=len(owners_missing),
        unreachable_users=len(recipients_missing | owners_missing),
        warnings=tuple(_folder_warnings(out_dir, created)),
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


def _folder_warnings(out_dir: Path, created: bool) -> list[str]:
    """A warning when a folder this call did not create is open to other users."""
    warnings: list[str] = []
    if not created:
        with contextlib.suppress(OSError):
            if stat.S_IMODE(out_dir.stat().st_mode) & 0o077:
                warnings.append(
                    f"output folder {out_dir} is accessible to other users "
                    "(the files in it are 0600)"
                )
    return warnings


def abandon_files(pending: Sequence[PendingFile], out_dir: Path, created: bool) -> None:
    """Undo an unfinished export: remove temp files, and the folder if this run made it."""
    for p in pending:
        p.discard()
    if created:
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only if still empty: never removes anything else
