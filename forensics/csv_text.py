"""The CSV bytes of the notification lists (SPEC §6): UTF-8 (a BOM only when asked, for
Excel), RFC 4180 quoting with CRLF line ends, a header row always, times as UTC ISO 8601 with
`Z` keeping their fraction of a second, and text cells that begin with = + - @ tab or CR
prefixed with `'` unless sanitising is off. The rules per cell are the reference; whole
batches are rendered with Arrow compute kernels by the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from forensics.errors import StoreError
from forensics.private_files import PendingFile, private_temp

BOM = b"\xef\xbb\xbf"
# RFC 4180 ends records with CRLF; every CSV line, the header included, ends with it.
NEWLINE = "\r\n"
# SPEC §6: a text cell beginning with one of these is a formula to a spreadsheet.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PREFIX = "'"
_MUST_QUOTE = frozenset(',"\r\n')


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


def large_text(text: str) -> pa.Scalar:
    """A large_string scalar (the type every rendered column has)."""
    return pa.scalar(text, pa.large_string())


def neutralize_column(column: pa.Array) -> pa.Array:
    """neutralize_formula applied to every cell of a large_string column."""
    return pc.replace_substring_regex(
        column, pattern=_FORMULA_RE, replacement=FORMULA_PREFIX + r"\1"
    )


def _check_type(name: str, dtype: pa.DataType) -> None:
    """Text, integers, timestamps and lists of text have CSV rules; any other type is an
    error."""
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        dtype = dtype.value_type if dtype.value_type != pa.null() else pa.string()
        if not (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)):
            raise StoreError(
                f"column {name}", f"has type list of {dtype}, which no CSV rule covers"
            )
        return
    if not (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_integer(dtype)
        or pa.types.is_timestamp(dtype)
    ):
        raise StoreError(f"column {name}", f"has type {dtype}, which no CSV rule covers")


LIST_SEPARATOR = ";"  # between the ids of a list in one field (exposures.csv's owner_ids)


def render_column(column: pa.Array, *, sanitize: bool) -> pa.Array:
    """One column as CSV fields (large_string, no nulls): text sanitised then quoted, integers
    in decimal, timestamps as UTC ISO 8601 with `Z`, a list of texts joined by `;`; a null is
    an empty field."""
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
        if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):  # owner_ids
            column = pc.binary_join(
                column.cast(pa.large_list(pa.large_string())), large_text(LIST_SEPARATOR)
            )
        text = column.cast(pa.large_string())
        if sanitize:
            text = neutralize_column(text)
        quoted = pc.binary_join_element_wise(
            large_text('"'),
            pc.replace_substring(text, pattern='"', replacement='""'),
            large_text('"'),
            large_text(""),
        )
        text = pc.if_else(pc.match_substring_regex(text, _QUOTE_RE), quoted, text)
    return pc.fill_null(text.cast(pa.large_string()), "")


def render_batch(batch: pa.RecordBatch, *, sanitize: bool) -> bytes:
    """The CSV records of a batch as UTF-8 bytes, each ending in CRLF."""
    if batch.num_rows == 0:
        return b""
    fields = [render_column(batch.column(i), sanitize=sanitize) for i in range(batch.num_columns)]
    lines = pc.binary_join_element_wise(*fields, large_text(","))
    lines = pc.binary_join_element_wise(lines, large_text(NEWLINE), large_text(""))
    whole = pc.binary_join(
        pa.LargeListArray.from_arrays(pa.array([0, len(lines)], pa.int64()), lines),
        large_text(""),
    )[0]
    return bytes(whole.as_buffer())


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
    with private_temp(final) as (w, tmp):
        if excel:
            w.write(BOM)
        w.write(encode_row(columns))
        for batch in reader:
            if inspect is not None:
                inspect(batch)
            w.write(render_batch(batch, sanitize=sanitize))
            rows += batch.num_rows
    return PendingFile(tmp, final, rows, w.hash.hexdigest(), w.size)
