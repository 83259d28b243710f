"""The reader interface's types (documented in forensics/ingest/readers/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from forensics.ingest.options import IngestHooks, IngestTuning, Progress


@dataclass
class JsonBatch:
    """Records as JSON text, for the JSON stage: each is parsed, checked and converted there.

    `rec` are the record numbers (int64; line numbers, or element positions), `raw` each
    record's text (large_string), `pre_err` a reason found while reading (or null).
    """

    rec: np.ndarray
    raw: pa.Array | pa.ChunkedArray
    pre_err: pa.Array | pa.ChunkedArray
    # Elements of a JSON array: one that is not standard JSON fails the file.
    strict: bool = False
    # Whether a record may be nested deeper than json_split.MAX_DEPTH (False: the batch has
    # too few brackets for that, and the depth is not checked record by record).
    maybe_deep: bool = True

    @staticmethod
    def concat(parts: list[JsonBatch]) -> JsonBatch:
        if len(parts) == 1:
            return parts[0]
        return JsonBatch(
            np.concatenate([p.rec for p in parts]),
            pa.chunked_array([c for p in parts for c in _chunks(p.raw)], pa.large_string()),
            pa.chunked_array([c for p in parts for c in _chunks(p.pre_err)], pa.string()),
            strict=any(p.strict for p in parts),
            maybe_deep=any(p.maybe_deep for p in parts),
        )


def _chunks(a: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return a.chunks if isinstance(a, pa.ChunkedArray) else [a]


@dataclass
class TableBatch:
    """Typed columns, for the table stage: rows numbered from `first_rec`, or by `rec` when
    their numbers do not follow on (text: line numbers). `rejects` are (record number, reason,
    raw text) of records the reader could not split into the columns (text: ragged lines)."""

    rows: pa.RecordBatch
    first_rec: int
    rec: np.ndarray | None = None
    rejects: list[tuple[int, str, str]] = field(default_factory=list)


Batch = JsonBatch | TableBatch


@dataclass(frozen=True)
class ReadEnd:
    """What a reader returns once the whole file was read and checked."""

    sha256: str
    fields: frozenset[str] | None = None  # a typed file's columns, known even with no rows
    notes: tuple[str, ...] = ()  # for the sources row: what was done to read it (columns)


@dataclass(frozen=True)
class ReadContext:
    tuning: IngestTuning = field(default_factory=IngestTuning)
    progress: Progress | None = None
    hooks: IngestHooks = field(default_factory=IngestHooks)
    # Members that hold a wrapped JSON document's records (the map's `records = "..."`).
    records: frozenset[str] | None = None


Read = Callable[[Path, "str | None", ReadContext], Generator[Batch, None, ReadEnd]]


@dataclass(frozen=True)
class Reader:
    """One input format: the file name suffixes it reads and how it reads them."""

    name: str  # for messages: "Parquet", "JSON"
    suffixes: tuple[str, ...]  # ".parquet"; the format recorded is the suffix without its dot
    read: Read
    read_ahead: bool = True  # may be read in the read-ahead thread
