"""What an ingest run is given: the user's options, the tuning of its machinery, test hooks,
and what it reports per file (SPEC §7's `ingest --json`).

Tuning changes how work is cut up (batch sizes, samples, overlap), never what is stored:
every test that sets it checks that the outcome is the same as with the defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from forensics.errors import StoreError

KINDS = ("events", "grants", "accounts")

# (event, value): "bytes" read, "file" stored, "files" total, "total_bytes"; "records" and
# "rejects" of each stored file; "name" (a str) of the file about to be read
Progress = Callable[[str, Any], None]


@dataclass(frozen=True)
class IngestTuning:
    """Sizes and depths of ingest's machinery; the defaults are what bench/ measured."""

    # Reading
    chunk_bytes: int = 128 << 20  # text read and parsed at a time: bounded memory on any size
    newline_block: int = 4 << 20  # bytes searched for newlines at a time (no CHUNK-sized mask)
    parquet_batch_rows: int = 1 << 20  # rows read from a Parquet file at a time
    isal: bool = True  # ISA-L's gzip reader when installed (else the standard library's)
    read_ahead: int = 1  # batches read ahead in a thread; 0: read on the staging thread
    # Staging JSON
    piece_rows: int = 160_000  # most rows of a JSON batch's record batches (see in_pieces)
    min_split_rows: int = 4096  # a JSON batch smaller than this is scanned whole
    parquet_piece_rows: int = 1 << 16  # rows of each record batch of a Parquet batch
    max_counted_keys: int = 256  # up to this many keys per file, duplicates found by counting
    key_sample_head: int = 1024  # a batch's keys are first read from its first records
    key_sample_every: int = 64  # and from every n-th record after them
    # Storing
    in_order_block: int = 2048  # records: finer than any unit DuckDB's zone maps skip
    in_order_group: int = 122_880  # records: a DuckDB row group (a multiple of the block)
    in_order_slack: float = 1.5  # how much jitter a file in time order may have
    checkpoint_threshold: str = "1GB"  # write-ahead log size that makes ingest checkpoint
    # The stored key hashes (forensics.ingest.key_index); False: scan the store for them
    key_index: bool = True
    key_run_keys: int = 1 << 20  # hashes kept in memory before they are written as a run
    key_run_max: int = 8 << 20  # most hashes in one run (64 MiB: what one lookup maps)
    key_filter_bits: int = 30  # a bit per hash prefix of this many bits (2^30: 128 MiB)
    # Small files (forensics.ingest.batch)
    batch_files: int = 256  # most small files staged and stored together; 1: one at a time
    small_file_bytes: int = 1 << 20  # a JSON lines file at most this large on disk is small


@dataclass(frozen=True)
class IngestHooks:
    """Calls at fixed points of one file's way into the store, for tests that inject faults
    (a file written to while read, an interrupt, a failing store). None: nothing is called.

    after_read(path): its last byte is read, before the check that it did not change
      (on the thread that read it);
    after_stage(path): its records are staged, before the stage's own change check;
    before_commit(path): its rows, rejects and sources row are written, before COMMIT.
    """

    after_read: Callable[[Path], None] | None = None
    after_stage: Callable[[Path], None] | None = None
    before_commit: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class IngestOptions:
    kind: str | None = None
    assume_tz: str | None = None
    mapping: Any = None  # forensics.mapping.Mapping, when --map is given
    tuning: IngestTuning = field(default_factory=IngestTuning)
    hooks: IngestHooks = field(default_factory=IngestHooks)


@dataclass
class FileResult:
    """One input file's outcome, as SPEC §7's `ingest --json` reports it."""

    path: str
    kind: str | None = None
    format: str | None = None
    sha256: str | None = None
    status: str = "failed"  # loaded | skipped | failed
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    error: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("reasons")
        return d


@dataclass
class IngestReport:
    files: list[FileResult]

    def totals(self) -> dict[str, int]:
        t = {
            "files": len(self.files),
            "loaded": 0,
            "skipped": 0,
            "failed": 0,
            "rows_read": 0,
            "rows_loaded": 0,
            "rows_rejected": 0,
            "rows_duplicate": 0,
        }
        for f in self.files:
            t[f.status] += 1
            for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"):
                t[k] += getattr(f, k)
        return t

    def to_json(self) -> dict[str, Any]:
        return {"files": [f.to_json() for f in self.files], "totals": self.totals()}


class IngestCutShort(StoreError):
    """The store failed during a run (a full disk, an engine's fatal error): the files
    stored before it are in `report`, as are, failed, the ones it was storing or had not
    reached, so that every file is named (SPEC §7)."""

    def __init__(self, error: StoreError, report: IngestReport) -> None:
        super().__init__(error.what, error.why, error.hint)
        self.report = report
