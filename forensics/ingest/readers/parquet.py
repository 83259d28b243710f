"""`.parquet`: typed columns, read in full with page checksums verified where the file has
them (a corrupt page is only found by reading it); rows numbered from 1. Columns of a type
DuckDB cannot take are converted or left out (arrow_types), said in ReadEnd.notes.

A compressed file (`.parquet.gz`, `.parquet.zst`) is first decompressed, a chunk at a time,
into a private temporary file (Parquet is read from its end, so it cannot be streamed);
the hash is the compressed file's, the file as given. The temporary file goes when the
file has been read, or has failed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from forensics.errors import InputError, engine_message
from forensics.ingest.readers.arrow_types import plan_columns
from forensics.ingest.readers.base import Batch, ReadContext, ReadEnd, Reader, TableBatch
from forensics.ingest.readers.source import (
    HashAlongside,
    HashingReader,
    decompressed_chunks,
)
from forensics.ingest.readers.source import unreadable as unreadable_file

NAME = "Parquet"


def unreadable(e: BaseException) -> InputError:
    """A Parquet file that cannot be read completely (the engine's message, cut short)."""
    return InputError(NAME, f"cannot be read completely ({engine_message(e, 160)})")


def read(path: Path, compression: str | None, ctx: ReadContext) -> Generator[Batch, None, ReadEnd]:
    if compression is not None:
        return (yield from _read_compressed(path, compression, ctx))
    try:
        f = open(path, "rb")  # noqa: SIM115 - HashAlongside closes it
    except OSError as e:
        raise unreadable_file(e) from None
    hashing = HashAlongside(f, ctx.tuning.chunk_bytes)
    try:
        try:
            fields, notes = yield from _batches(path, ctx)
        except (pa.ArrowException, OSError) as e:
            system = hashing.error()
            raise (unreadable(e) if system is None else unreadable_file(system)) from None
        try:
            sha = hashing.result()
        except OSError as e:
            raise unreadable_file(e) from None
    finally:
        hashing.cancel()  # a file given up (an error, or its reader closed) is not hashed on
    if ctx.progress:
        ctx.progress("bytes", path.stat().st_size)
    if ctx.hooks.after_read is not None:
        ctx.hooks.after_read(path)
    return ReadEnd(sha, fields, notes)


def _read_compressed(
    path: Path, compression: str, ctx: ReadContext
) -> Generator[Batch, None, ReadEnd]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; only opening is guarded
    except OSError as e:
        raise unreadable_file(e) from None
    fd, name = tempfile.mkstemp(prefix="forensics-", suffix=".parquet")  # mode 0600
    plain = Path(name)
    try:
        with f, os.fdopen(fd, "wb") as out:
            reader = HashingReader(f, ctx.progress, ctx.tuning.chunk_bytes)
            for chunk in decompressed_chunks(reader, compression, ctx.tuning):
                try:
                    out.write(chunk)
                except OSError as e:
                    raise InputError(
                        NAME, f"cannot be decompressed to a temporary file ({e.strerror})"
                    ) from None
            reader.drain()
        try:
            fields, notes = yield from _batches(plain, ctx)
        except (pa.ArrowException, OSError) as e:
            raise unreadable(e) from None
    finally:
        plain.unlink(missing_ok=True)
    if ctx.hooks.after_read is not None:
        ctx.hooks.after_read(path)
    return ReadEnd(reader.sha.hexdigest(), fields, notes)


def _batches(
    path: Path, ctx: ReadContext
) -> Generator[Batch, None, tuple[frozenset[str], tuple[str, ...]]]:
    """The file's rows in batches; returns the names of the columns read, and the notes."""
    pf = pq.ParquetFile(path, page_checksum_verification=True)
    plan = plan_columns(pf.schema_arrow)
    rec = 1
    for rb in pf.iter_batches(batch_size=ctx.tuning.parquet_batch_rows):
        rb = plan.apply(rb)
        yield TableBatch(rb, rec)
        rec += rb.num_rows
    return frozenset(pf.schema_arrow.names) - set(plan.dropped), tuple(plan.notes)


READER = Reader(NAME, (".parquet",), read, read_ahead=False)
