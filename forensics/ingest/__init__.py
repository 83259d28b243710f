"""Load evidence into the case store so that every record is accounted for (SPEC §2, §3).

For each file: hash it while reading it, parse it completely (or fail it whole), normalise
every record with SPEC §2.4's rules in SQL, store rejects with their reasons, de-duplicate
events across files and runs, and record the file in `sources` — one transaction per file,
so `rows_read = rows_loaded + rows_rejected + rows_duplicate` always holds.

The package follows those jobs: discover.py (which files, which format), readers/ (one
module per input format behind one interface), stage.py (§2.4 into a temp stage), store.py
(transaction, de-duplication, sources and rejects), key_index.py (the stored key hashes,
sorted beside the store), pipeline.py (the overlap of the three).
"""

from __future__ import annotations

from forensics.ingest.discover import discover, file_format
from forensics.ingest.options import (
    KINDS,
    FileResult,
    IngestHooks,
    IngestOptions,
    IngestReport,
    IngestTuning,
    Progress,
)
from forensics.ingest.pipeline import ingest, read_into_stage, stage_file, validate_options
from forensics.ingest.readers.source import sha256_file
from forensics.ingest.store import store_file

__all__ = [
    "KINDS",
    "FileResult",
    "IngestHooks",
    "IngestOptions",
    "IngestReport",
    "IngestTuning",
    "Progress",
    "discover",
    "file_format",
    "ingest",
    "read_into_stage",
    "sha256_file",
    "stage_file",
    "store_file",
    "validate_options",
]
