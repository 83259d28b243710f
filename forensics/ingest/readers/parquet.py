"""`.parquet`: typed columns, read in full with page checksums verified where the file has
them (a corrupt page is only found by reading it); rows numbered from 1. Columns of a type
DuckDB cannot take are converted or left out (arrow_types), said in ReadEnd.notes."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from forensics.errors import InputError, engine_message
from forensics.ingest.readers.arrow_types import plan_columns
from forensics.ingest.readers.base import Batch, ReadContext, ReadEnd, Reader, TableBatch
from forensics.ingest.readers.source import HashAlongside
from forensics.ingest.readers.source import unreadable as unreadable_file

NAME = "Parquet"


def unreadable(e: BaseException) -> InputError:
    """A Parquet file that cannot be read completely (the engine's message, cut short)."""
    return InputError(NAME, f"cannot be read completely ({engine_message(e, 160)})")


def read(path: Path, compression: str | None, ctx: ReadContext) -> Generator[Batch, None, ReadEnd]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - HashAlongside closes it
    except OSError as e:
        raise unreadable_file(e) from None
    hashing = HashAlongside(f, ctx.tuning.chunk_bytes)
    try:
        try:
            pf = pq.ParquetFile(path, page_checksum_verification=True)
            plan = plan_columns(pf.schema_arrow)
            rec = 1
            for rb in pf.iter_batches(batch_size=ctx.tuning.parquet_batch_rows):
                rb = plan.apply(rb)
                yield TableBatch(rb, rec)
                rec += rb.num_rows
            fields = frozenset(pf.schema_arrow.names) - set(plan.dropped)
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
    return ReadEnd(sha, fields, tuple(plan.notes))


READER = Reader(NAME, (".parquet",), read, compressible=False, read_ahead=False)
