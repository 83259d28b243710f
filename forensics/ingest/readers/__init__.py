"""Input formats behind one small interface; a new format is one module and one line below.

A reader is a `Reader` (readers/base.py): the name suffixes it takes and a function

    read(path, compression, ctx) -> Generator[Batch, None, ReadEnd]

that yields the file's records in batches and returns `ReadEnd(sha256, fields)` once the
whole file is read. Its contract:
- Batches are `JsonBatch` (records as JSON text: the JSON stage parses and checks them) or
  `TableBatch` (typed Arrow columns: the table stage converts them; a text format such as
  CSV gives VARCHAR columns, with its line numbers in `rec` and the lines it could not split
  in `rejects`). Record numbers start at 1 and follow the file.
- Memory stays bounded: at most `ctx.tuning.chunk_bytes` of text (or
  `parquet_batch_rows` rows) is held per batch, whatever the file's size.
- A file that cannot be read completely, is not UTF-8 text, or changed while it was read
  raises InputError (the file fails whole; nothing of it is stored). Text readers get all of
  this from `source.read_text`, which also hashes and decompresses (`.gz`, `.zst`).
- `ctx.progress("bytes", n)` as bytes are read; `ctx.hooks.after_read(path)` after the
  last byte, before the change check (a typed file such as Parquet, hashed before it is
  parsed, is checked for change by the stage around it).
"""

from __future__ import annotations

from forensics.ingest.readers import delimited, json_array, json_lines, parquet, w3c
from forensics.ingest.readers.base import (
    Batch,
    JsonBatch,
    ReadContext,
    ReadEnd,
    Reader,
    TableBatch,
)

# The formats, in the order a file's name is matched against their suffixes.
READERS: tuple[Reader, ...] = (
    parquet.READER,
    json_array.READER,
    json_lines.READER,
    delimited.CSV_READER,
    delimited.TSV_READER,
    w3c.READER,
)
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}

__all__ = [
    "COMPRESSIONS",
    "READERS",
    "Batch",
    "JsonBatch",
    "ReadContext",
    "ReadEnd",
    "Reader",
    "TableBatch",
    "reader_for",
]


def reader_for(fmt: str) -> Reader:
    """The reader of a format that file_format gave."""
    for reader in READERS:
        if "." + fmt in reader.suffixes:
            return reader
    raise KeyError(fmt)
