"""Load evidence into the case store so that every record is accounted for (SPEC §2, §3).

For each file: hash it while reading it, parse it completely (or fail it whole), normalise
every record with SPEC §2.4's rules in SQL, store rejects with their reasons, de-duplicate
events across files and runs, and record the file in `sources` — one transaction per file,
so `rows_read = rows_loaded + rows_rejected + rows_duplicate` always holds.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import hashlib
import io
import itertools
import json
import os
import queue
import re
import stat
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from forensics import __version__
from forensics.arrow_types import plan_columns
from forensics.errors import InputError, UsageError
from forensics.json_array import MAX_DEPTH, NotWrapped, iter_elements, json_depth
from forensics.mapping import FileMapper
from forensics.normalize import CANONICAL, MACROS, REQUIRED, Normalized, Source, normalize
from forensics.store import DKEY, StoreOptions, another_connection, engine_error, open_store

try:
    # ISA-L's gzip reader: about 3x faster than the standard library's, with the same checks
    # (CRC and length of every member, truncation, multi-member files) and error classes.
    from isal import igzip as _igzip
    from isal.isal_zlib import error as _isal_error

    _GzipFile: Any = _igzip.IGzipFile
    _ISAL_ERRORS: tuple[type[Exception], ...] = (cast("type[Exception]", _isal_error),)
except ImportError:  # a platform without ISA-L wheels
    _GzipFile = gzip.GzipFile
    _ISAL_ERRORS = ()

_GZIP_ERRORS: tuple[type[Exception], ...] = (zlib.error, OSError, *_ISAL_ERRORS)

KINDS = ("events", "grants", "accounts")
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
CHUNK = 128 << 20  # bytes read and parsed at a time: bounded memory on any file size
IN_ORDER_BLOCK = 2048  # records: finer than any unit DuckDB's zone maps skip
IN_ORDER_GROUP = 122_880  # records: a DuckDB row group (a multiple of IN_ORDER_BLOCK)
IN_ORDER_SLACK = 1.5  # how much jitter a file in time order may have (see _in_time_order)
RAW_LIMIT = 1 << 20  # a rejected record's raw text is kept up to this many characters
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_CHARS = re.compile(r"[*?\[]")


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
        t = {"files": len(self.files), "loaded": 0, "skipped": 0, "failed": 0,
             "rows_read": 0, "rows_loaded": 0, "rows_rejected": 0, "rows_duplicate": 0}
        for f in self.files:
            t[f.status] += 1
            for k in ("rows_read", "rows_loaded", "rows_rejected", "rows_duplicate"):
                t[k] += getattr(f, k)
        return t

    def to_json(self) -> dict[str, Any]:
        return {"files": [f.to_json() for f in self.files], "totals": self.totals()}


@dataclass(frozen=True)
class IngestOptions:
    kind: str | None = None
    assume_tz: str | None = None
    mapping: Any = None  # forensics.mapping.Mapping, when --map is given


Progress = Callable[[str, int], None]  # (event, amount): "bytes" read, "file" done, "files" total


# --------------------------------------------------------------------------- discovery


def discover(paths: list[str]) -> tuple[list[tuple[Path, bool]], list[FileResult]]:
    """Expand files, folders (recursive, hidden skipped) and globs; refuse non-local paths.

    A path that exists is taken literally, so a real file named `x*.ndjson` is read alone.
    Returns the files to read (with whether a folder walk found them), de-duplicated by real
    path, and failures for bad paths.
    """
    found: list[tuple[Path, bool]] = []
    failed: list[FileResult] = []
    for p in paths:
        if _REMOTE.match(p):
            failed.append(FileResult(p, error="only local files can be ingested"))
            continue
        path = Path(p)
        if path.is_dir():
            found.extend((w, True) for w in _walk(path))
        elif os.path.lexists(p):
            found.append((path, False))
        elif _GLOB_CHARS.search(p):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                failed.append(FileResult(p, error="no file matches this pattern"))
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    found.extend((w, True) for w in _walk(mp))
                elif not any(part.startswith(".") for part in mp.parts if part not in (".", "..")):
                    found.append((mp, False))
        else:
            failed.append(FileResult(p, error="no such file or folder"))
    seen: set[str] = set()
    unique: list[tuple[Path, bool]] = []
    for f, walked in found:
        real = os.path.realpath(f)
        if real not in seen:
            seen.add(real)
            unique.append((f, walked))
    return unique, failed


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def file_format(path: Path) -> tuple[str, str | None] | None:
    """(format, compression) from the name: parquet, json (array or lines), jsonl/ndjson."""
    name = path.name.lower()
    compression = None
    for suffix, comp in COMPRESSIONS.items():
        if name.endswith(suffix):
            compression, name = comp, name[: -len(suffix)]
    if name.endswith(".parquet") and compression is None:
        return "parquet", None
    for suffix in JSON_SUFFIXES:
        if name.endswith(suffix):
            return suffix[1:], compression
    return None


# --------------------------------------------------------------------------- reading


class _HashingReader(io.RawIOBase):
    """A binary reader that hashes and counts every byte it hands on."""

    def __init__(self, raw: io.BufferedReader, progress: Progress | None) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.count = 0
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._raw.readinto(b)
        if n:
            self.sha.update(memoryview(b)[:n])
            self.count += n
            if self._progress:
                self._progress("bytes", n)
        return n or 0

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def _stat_key(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _read_size(expected: int | None, done: int) -> int:
    """How much to read next, `done` bytes in: a CHUNK, or the rest of the file when that is
    at most a quarter more (so that a file a little larger than a CHUNK is not followed by a
    batch of a few lines, which costs nearly as much as a full one).

    `expected` is the size the file's text is expected to have; it only decides where the
    batches end, never what is read, so an estimate that is wrong costs nothing else.
    """
    last = CHUNK + CHUNK // 4  # the most read at once
    if expected is not None and 0 <= expected - done <= last:
        return last
    return CHUNK


def _gzip_size(path: Path) -> int | None:
    """The size the gzip trailer gives (of the last member, modulo 4 GiB): an estimate."""
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    except OSError:
        return None


def _decompressed_chunks(
    reader: _HashingReader, compression: str | None, expected: int | None = None
) -> Iterator[bytes]:
    """The file's bytes, decompressed; raises InputError on corrupt or truncated data."""
    done = 0
    # Each chunk is yielded out of a list emptied as it goes: a suspended generator then
    # holds no reference to it, and a consumer that is done with a chunk frees it.
    held: list[bytes] = []
    if compression is None:
        while chunk := reader.read(_read_size(expected, done)):
            done += len(chunk)
            held.append(chunk)
            del chunk
            yield held.pop()
        return
    if compression == "gzip":
        gz = _GzipFile(fileobj=reader, mode="rb")
        try:
            while chunk := gz.read(_read_size(expected, done)):
                done += len(chunk)
                held.append(chunk)
                del chunk
                yield held.pop()
        except gzip.BadGzipFile as e:
            raise InputError("gzip", f"not a valid gzip file ({e})") from None
        except EOFError:
            raise InputError("gzip", "compressed data is truncated") from None
        except _GZIP_ERRORS as e:
            raise InputError("gzip", f"corrupt compressed data ({e})") from None
        return
    yield from _zstd_chunks(reader)


def _zstd_chunks(reader: _HashingReader) -> Iterator[bytes]:
    """Decompress every zstd frame; a frame cut short fails the file (no silent short read)."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    d = dctx.decompressobj()
    fed = False
    try:
        while raw := reader.read(CHUNK):
            data = raw
            while data:
                fed = True
                out = d.decompress(data)
                if out:
                    yield out
                if d.eof:
                    data = d.unused_data
                    d = dctx.decompressobj()
                    fed = False
                else:
                    data = b""
    except zstandard.ZstdError as e:
        raise InputError("zstd", f"corrupt compressed data ({e})") from None
    if fed and not d.eof:
        raise InputError("zstd", "compressed data is truncated")


def _check_encoding(first: bytes) -> None:
    if first.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        len(first) >= 2 and (first[0] == 0 or first[1] == 0)
    ):
        raise InputError("encoding", "the file is not UTF-8 (it looks like UTF-16 or UTF-32)")


@dataclass
class _Lines:
    rec: np.ndarray  # int64 record numbers (line numbers)
    raw: pa.Array | pa.ChunkedArray  # string
    pre_err: pa.Array | pa.ChunkedArray  # string or null
    # Elements of a JSON array: one that is not standard JSON fails the file.
    strict: bool = False
    # Whether a record may be nested deeper than json_array.MAX_DEPTH (when False, the
    # batch has too few brackets for that and the depth is not checked record by record).
    maybe_deep: bool = True

    @staticmethod
    def concat(parts: list[_Lines]) -> _Lines:
        if len(parts) == 1:
            return parts[0]
        return _Lines(
            np.concatenate([p.rec for p in parts]),
            pa.chunked_array([c for p in parts for c in _chunks(p.raw)], pa.large_string()),
            pa.chunked_array([c for p in parts for c in _chunks(p.pre_err)], pa.string()),
            strict=any(p.strict for p in parts),
            maybe_deep=any(p.maybe_deep for p in parts),
        )


def _chunks(a: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return a.chunks if isinstance(a, pa.ChunkedArray) else [a]


_NL_BLOCK = 4 << 20  # bytes searched for newlines at a time (no mask the size of a CHUNK)


def _newlines(buf: bytes, start: int, stop: int) -> np.ndarray:
    """Positions (int64) of the newlines in buf[start:stop]."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    found = [
        np.flatnonzero(arr[lo : min(stop, lo + _NL_BLOCK)] == 10) + lo
        for lo in range(start, stop, _NL_BLOCK)
    ]
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def _lines_to_arrow(buf: bytes, start: int, stop: int, first_line: int) -> tuple[_Lines, int]:
    """The lines of buf[start:stop] (which ends with a newline) as Arrow strings.

    The strings point into `buf` itself: a CHUNK of text is never copied to be split.
    """
    nl = _newlines(buf, start, stop)
    n = len(nl)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = start
    offsets[1:] = nl + 1
    binary = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )
    rec = np.arange(first_line, first_line + n, dtype=np.int64)
    raw = binary.view(pa.large_string())
    try:
        raw.validate(full=True)  # full: every string is checked to be UTF-8
        errs = pa.nulls(n, pa.string())
    except pa.ArrowInvalid:
        # Slow path, only for files with invalid UTF-8: find and reject those lines.
        texts: list[str] = []
        pre_err: list[str | None] = []
        for i in range(n):
            b = buf[offsets[i] : offsets[i + 1]]
            try:
                texts.append(b.decode("utf-8"))
                pre_err.append(None)
            except UnicodeDecodeError:
                texts.append(b.decode("utf-8", errors="replace"))
                pre_err.append("invalid UTF-8")
        raw = pa.array(texts, pa.large_string())
        errs = pa.array(pre_err, pa.string())
    # Each record opens one object; only brackets beyond those can nest (bytes.count is a
    # fast scan: a flat log never pays for the record-by-record depth check).
    extra = buf.count(b"{", start, stop) + buf.count(b"[", start, stop) - n
    return _Lines(rec, raw, errs, maybe_deep=extra >= MAX_DEPTH), first_line + n


def _iter_ndjson(chunks: Iterator[bytes]) -> Iterator[_Lines]:
    """A newline-delimited file's lines, a CHUNK at a time.

    A CHUNK's whole lines are used where they lie; only the line that straddles two
    CHUNKs is put together from its pieces.
    """
    line = 1
    pending: list[bytes] = []  # the start of a line that began in an earlier chunk
    first = True
    for chunk in chunks:
        if first:
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
            _check_encoding(chunk[:4])
            first = False
        head_end = chunk.find(b"\n") + 1
        if not head_end:
            pending.append(chunk)
            continue
        cut = chunk.rfind(b"\n") + 1
        parts = []
        if pending:
            head = b"".join([*pending, chunk[:head_end]])
            lines, line = _lines_to_arrow(head, 0, len(head), line)
            parts.append(lines)
            start = head_end
        else:
            start = 0
        if cut > start:
            lines, line = _lines_to_arrow(chunk, start, cut, line)
            parts.append(lines)
        pending = [chunk[cut:]] if cut < len(chunk) else []
        yield _Lines.concat(parts)
    if pending:
        tail = b"".join([*pending, b"\n"])
        lines, line = _lines_to_arrow(tail, 0, len(tail), line)
        yield lines


def _iter_json_array(
    chunks: Iterator[bytes], *, wrapped: bool = False, records: frozenset[str] | None = None
) -> Iterator[_Lines]:
    """Elements of a JSON array file (or of a wrapped document's array), streamed."""
    for b in iter_elements(chunks, wrapped=wrapped, records=records):
        yield _Lines(b.rec, b.raw, b.pre_err, strict=True)


WRAPPED_PEEK = CHUNK  # bytes read before a document is taken to be wrapped (see below)


def _iter_json_object(chunks: Iterator[bytes], records: frozenset[str] | None) -> Iterator[_Lines]:
    """A `.json` file that opens with `{`: a wrapped document or JSON lines.

    It is a wrapped document (SPEC §2.5) when its first object holds the records array
    (the member named by the map's `records`, else its one and only member, an array) and
    nothing follows that object. Until that is decided the elements are held back, and
    the bytes read kept, to be read again as JSON lines if it is not; after WRAPPED_PEEK
    bytes the document is taken to be wrapped (no JSON line is that long), and a later
    surprise fails the file.
    """
    seen: list[bytes] = []
    recording = True

    def recorded() -> Iterator[bytes]:
        for c in chunks:
            if recording:
                seen.append(c)
            yield c

    held: list[_Lines] = []
    try:
        for lines in _iter_json_array(recorded(), wrapped=True, records=records):
            if not recording:
                yield lines
                continue
            held.append(lines)
            if sum(len(c) for c in seen) >= WRAPPED_PEEK:
                recording = False
                seen.clear()
                yield from held
                held.clear()
    except NotWrapped:
        if not recording:
            raise InputError(
                "JSON", "the document is neither JSON lines nor one object holding its "
                "records in one array member",
                "Name the member with records = in the map",
            ) from None
        held.clear()
        yield from _iter_ndjson(itertools.chain(seen, chunks))
        return
    yield from held


# --------------------------------------------------------------------------- the store side


# An event's de-duplication key (store.DKEY) is computed as it is staged, where the work is
# spread over the cores, from its canonical values: (", dkey", ", <expression>") for the
# stage's column list and select list.
_KEYED: dict[str, tuple[str, str]] = {
    "events": (", dkey", f", case when err is null then {DKEY} end"),
    "grants": ("", ""),
    "accounts": ("", ""),
}
_STAGE_COLUMNS: dict[str, str] = {
    "events": "ts timestamptz, action varchar, user_id varchar, device_id varchar, "
    "event_id varchar, request_id varchar, status integer, extra json, dkey ubigint",
    "grants": "device_id varchar, user_id varchar, role varchar, valid_from timestamptz, "
    "valid_to timestamptz",
    "accounts": "user_id varchar, email varchar, name varchar, locale varchar, country varchar",
}
# One parse of each line: json_keys fails on malformed JSON (NULL under try) and gives []
# for any other value; a valid document opening with '{' is an object. JSON allows the
# line's own CR/LF as whitespace; blank lines are not records.
_PARSED = """
    select rec, raw, pre_err, t, case when t = 'OBJECT' then k end as k
    from (
        select rec, raw, pre_err, k,
               case when k is null then null
                    when starts_with(raw, '{{') then 'OBJECT'  -- ltrim copies
                    when left(ltrim(raw, e' \\t\\r\\n'), 1) = '{{' then 'OBJECT'
                    else 'OTHER' end as t
        from (
            select rec, raw, pre_err,
                   case when pre_err is null then try(json_keys(raw)) end as k
            from {src}
        )
    )
    -- Blank lines are not records. Tested on raw alone: a test of t (null for a blank line)
    -- would have DuckDB compute json_keys a second time, for the filter.
    where regexp_matches(raw, e'[^ \\t\\r\\n]')
"""
# Record-level JSON problems DuckDB's lenient parser lets through (HOSTILE_INPUTS #1, #4):
# duplicate keys, NaN/Infinity and trailing commas (checked outside string literals).
_JSON_ERR_SHAPE = (
    "case when pre_err is not null then pre_err "
    "when t is null then 'malformed JSON' "
    "when t <> 'OBJECT' then 'not a JSON object' end"
)
_JSON_ERR_DUP = "case when len(k) <> len(list_distinct(k)) then 'duplicate key' end"
# DuckDB 2.0.1 also takes NaN, Inf and Infinity in any case, with a sign, at any depth.
# Outside strings such a token follows `:`, `,` or `[`: each test below begins with that
# byte, which the regex engine finds by a fast scan; strings are stripped only for the few
# records that match (tests/test_ingest_strict.py lists what DuckDB accepts).
_NON_FINITE = "-?(?:[nN][aA]|[iI])"
_STANDARD_CANDIDATE = (
    f"(regexp_matches(raw, ':\\s*{_NON_FINITE}') "
    f"or regexp_matches(raw, ',\\s*(?:[\\]}}]|{_NON_FINITE})') "
    f"or (contains(raw, '[') and regexp_matches(raw, '\\[\\s*{_NON_FINITE}')))"
)
_STANDARD_CHECK = (
    "regexp_matches(regexp_replace(raw, '\"(?:[^\"\\\\]|\\\\.)*\"', '\"\"', 'g'), "
    "'(?i)nan|inf|,\\s*[\\]}]')"
)
_JSON_ERR_STANDARD = (
    f"case when {_STANDARD_CANDIDATE} and {_STANDARD_CHECK} "
    "then 'not standard JSON (NaN, Infinity or a trailing comma)' end"
)
# An array element is also checked at its own top (`NaN` alone) and must be valid JSON.
_ELEMENT_ERR = (
    "case when not json_valid(raw) then 'not valid JSON' "
    f"when ({_STANDARD_CANDIDATE} or regexp_matches(raw, '^\\s*{_NON_FINITE}')) "
    f"and {_STANDARD_CHECK} then 'not standard JSON (NaN, Infinity or a trailing comma)' end"
)
# Deeper than MAX_DEPTH (DuckDB parses any depth): more brackets than that, counted
# cheaply, then the exact string-aware depth (fx_json_depth) for those few records.
_JSON_ERR_DEEP = (
    f"when strlen(raw) - strlen(replace(replace(raw, '{{', ''), '[', '')) > {MAX_DEPTH} "
    f"and fx_json_depth(raw) > {MAX_DEPTH} then 'nested too deep' "
)


def _json_err_shape(maybe_deep: bool) -> str:
    return _JSON_ERR_SHAPE.replace(
        "when t is null", (_JSON_ERR_DEEP if maybe_deep else "") + "when t is null", 1
    )


_JSON_ERR = f"coalesce({_JSON_ERR_SHAPE}, {_JSON_ERR_DUP}, {_JSON_ERR_STANDARD})"
MAX_COUNTED_KEYS = 256  # up to this many keys per file, duplicates are found by counting
KEY_SAMPLE_HEAD = 1024  # a batch's keys are first read from its first 1,024 records
KEY_SAMPLE_EVERY = 64  # and from every 64th record (see _FileLoader._add_json_batch)


def _dup_by_count(n_paths: int) -> str:
    """'duplicate key' when a record lists more keys than it has distinct ones.

    `v` holds every top-level key of the file (json_extract gives NULL only for a key the
    record lacks), so the distinct keys are the non-NULL entries; counting them costs far
    less than list_distinct(k) on every record.
    """
    present = " + ".join(f"(v[{i}] is not null)::int" for i in range(1, n_paths + 1)) or "0"
    return f"case when len(k) <> {present} then 'duplicate key' end"


def _json_path(key_path: list[str]) -> str:
    """A JSON pointer for a path of keys (any characters allowed in the keys)."""
    return "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in key_path)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _struct_json(columns: list[str]) -> str:
    """SQL for a JSON object of these columns, keyed by their names."""
    return "to_json(struct_pack(" + ", ".join(f"{_ident(c)} := {_ident(c)}" for c in columns) + "))"


CHECKPOINT_THRESHOLD = "1GB"  # write-ahead log size that makes ingest checkpoint
PIECE_ROWS = 160_000  # most rows of a JSON batch's record batches (see _in_pieces)
MIN_SPLIT_ROWS = 4096  # a batch smaller than this is scanned whole


def _in_pieces(batch: pa.Table, threads: int) -> pa.Table:
    """The batch as record batches that DuckDB's threads can share.

    DuckDB scans an Arrow record batch of up to about 130,000 rows on one thread: a CHUNK
    of text handed over as one record batch leaves the other cores idle while it is parsed.
    The pieces are views of the batch (nothing is copied); their count is a multiple of the
    threads, so that none waits alone for the last piece.
    """
    n = batch.num_rows
    if n < MIN_SPLIT_ROWS or threads < 2:
        return batch
    pieces = max(threads, -(-n // PIECE_ROWS))
    pieces = -(-pieces // threads) * threads
    return pa.Table.from_batches(batch.to_batches(max_chunksize=-(-n // pieces)))


class _FileLoader:
    """Stages one file's records in a temp table, then commits them with its sources row."""

    def __init__(self, con: duckdb.DuckDBPyConnection, options: IngestOptions) -> None:
        self.con = con
        self.options = options
        self.kind: str | None = options.kind
        self.params: dict[str, Any] = {"tz": options.assume_tz}
        amap = options.mapping.actions if options.mapping is not None else None
        if amap:
            self.params["action_from"] = list(amap.keys())
            self.params["action_to"] = list(amap.values())
        self.staged = False
        self.mapper: FileMapper | None = None  # the map's [kind] table applied to this file
        self._n_threads = 0
        self._maybe_deep = True
        self.notes: list[str] = []  # for the sources row: columns converted or left out

    def _mapper(self, kind: str) -> FileMapper | None:
        mapping = self.options.mapping
        if self.mapper is None and mapping is not None:
            self.mapper = mapping.file_mapper(kind)
        return self.mapper

    # -- kind ------------------------------------------------------------------------
    def decide_kind(self, fields: set[str]) -> str:
        if self.kind:
            return self.kind
        # With --map, each kind's rule reads the canonical names that kind's table gives; a
        # constant expression counts as having the field, but not as evidence against a kind.
        m = self.options.mapping

        def names(kind: str, constants: bool = True) -> set[str]:
            return fields if m is None else m.canonical_names(fields, kind, constants=constants)

        if {"action", "ts"} <= names("events"):
            return "events"
        if {"device_id", "user_id"} <= names("grants") and "action" not in names("events", False):
            return "grants"
        if "user_id" in names("accounts") and "device_id" not in (
            names("accounts", False) | names("grants", False)
        ):
            return "accounts"
        raise InputError(
            "kind", "cannot tell events, grants or accounts from its fields; pass --kind"
        )

    def _create_stage(self, kind: str) -> None:
        if not self.staged:
            self.con.execute("drop table if exists temp.stage")
            self.con.execute(
                "create temp table stage (rec bigint, err varchar, raw varchar, "  # noqa: S608
                f"{_STAGE_COLUMNS[kind]})"
            )
            self.staged = True

    def _field_sources_json(self, kind: str, keys: set[str]) -> tuple[dict[str, Source], list[str]]:
        """JSON paths for the canonical fields; the other top-level keys are kept as extras."""
        mapping = self.options.mapping
        paths: list[str] = []
        sources: dict[str, Source] = {}
        used: set[str] = set()
        for name in CANONICAL[kind]:
            spec = mapping.source_path(kind, name) if mapping is not None else [name]
            if spec is None:
                continue
            if spec == [name] and name not in keys:
                continue
            paths.append(_json_path(spec))
            used.add(spec[0])
            sources[name] = Source(f"v[{len(paths)}]", "json")
        # Without a map every top-level key is extracted (for events they are the extras
        # kept; for all kinds they let duplicates be found by counting, see _dup_by_count).
        extras = (
            sorted(keys - used - set(CANONICAL[kind]))
            if kind == "events" or mapping is None else []
        )
        return sources, paths + [_json_path([k]) for k in extras]

    def add_json(self, lines: _Lines) -> None:
        """Parse, check and normalise a batch of JSON records into the stage."""
        con = self.con
        batch = pa.table({"rec": lines.rec, "raw": lines.raw, "pre_err": lines.pre_err})
        con.register("batch_in", _in_pieces(batch, self._threads()))
        self._maybe_deep = lines.maybe_deep
        try:
            if lines.strict:
                self._check_elements()
            self._add_json_batch(int(lines.rec[0]) if len(lines.rec) else 0)
        finally:
            # After a failed statement the transaction refuses even this; the file's error
            # is already on its way, and the rollback drops the view.
            with contextlib.suppress(duckdb.Error):
                con.unregister("batch_in")

    def _check_elements(self) -> None:
        """Every element of a JSON array must be standard JSON, or the file fails."""
        row = self.con.execute(
            f"select rec, err from (select rec, {_ELEMENT_ERR} as err from batch_in "  # noqa: S608
            "where pre_err is null) where err is not null order by rec limit 1"
        ).fetchone()
        if row:
            raise InputError("JSON", f"element {row[0]} of the array is {row[1]}")

    def _threads(self) -> int:
        if not self._n_threads:
            rows = self.con.execute("select current_setting('threads')").fetchall()
            self._n_threads = max(1, int(rows[0][0]))
        return self._n_threads

    def _add_json_batch(self, first_rec: int) -> None:
        con = self.con
        if self.options.mapping is not None:
            # A map's checks and expressions read the parsed batch several times.
            con.execute(f"create or replace temp table parsed as {_PARSED.format(src='batch_in')}")
            keys = {r[0] for r in con.execute("select distinct unnest(k) from parsed").fetchall()}
            self._stage_json(keys, "parsed")
            return
        # The parse is read inline by the stage insert (no copy of the batch). The batch's
        # keys (which fields it has, the kind, the extras) come from a sample of it; a
        # record with a key outside the sample's has more keys than the count of fields
        # found and is flagged 'duplicate key', so the flagged records' own keys complete
        # the set, and only then is the batch staged again. The result is exactly that of
        # taking every record's keys, for the cost of a sample when nothing was missed.
        source = f"({_PARSED.format(src='batch_in')})"
        keys = self._batch_keys(
            "where pre_err is null and (rec < $lo + $head or rec % $every = 0)",
            {"lo": first_rec, "head": KEY_SAMPLE_HEAD, "every": KEY_SAMPLE_EVERY},
        )
        if keys and len(keys) <= MAX_COUNTED_KEYS and self._kind_known_from(keys):
            kind_before = self.kind
            self._stage_json(keys, source)
            missed = self._batch_keys(
                "semi join (select rec from stage where rec >= $lo and err = 'duplicate key') "
                "s using (rec) where pre_err is null",
                {"lo": first_rec},
            ) - keys
            if not missed:
                return
            con.execute("delete from stage where rec >= $lo", {"lo": first_rec})
            if kind_before is None:
                # The kind came from the sample: it is decided again, from every key.
                self.kind = None
                con.execute("drop table temp.stage")
                self.staged = False
            keys |= missed
        else:
            keys = self._batch_keys("where pre_err is null", {})
        self._stage_json(keys, source)

    def _batch_keys(self, where: str, params: dict[str, Any]) -> set[str]:
        """The distinct top-level keys of the batch's records selected by `where`."""
        sql = f"select distinct unnest(try(json_keys(raw))) from batch_in {where}"  # noqa: S608
        return {r[0] for r in self.con.execute(sql, params).fetchall()}

    def _kind_known_from(self, keys: set[str]) -> bool:
        """Whether these keys decide the file's kind (always, once it is decided)."""
        try:
            self.decide_kind(keys)
        except InputError:
            return False
        return True

    def _stage_json(self, keys: set[str], source: str) -> None:
        """Check and normalise the batch (`source`: its parse) into the stage, for `keys`."""
        con = self.con
        if self.kind is None and keys:
            self.kind = self.decide_kind(keys)
        kind = self.kind
        if kind is None:
            self._hold_parsed(source)  # no JSON object yet: the kind is decided by a later batch
            return
        self._create_stage(kind)
        sources, paths = self._field_sources_json(kind, keys)
        n_canon = len(sources)
        mapper = self._mapper(kind)
        m_join = m_cols = ""
        if mapper is not None:
            # Fields named by the map are checked; { sql = ... } values are computed here.
            sources.update(mapper.json_batch(
                con, keys, "parsed", f"t = 'OBJECT' and ({_JSON_ERR}) is null"
            ))
            if mapper.exprs:
                m_join, m_cols = mapper.join("rec"), mapper.columns()
        norm, pre, inner = self._normalize(kind, sources, self._json_hints(kind, paths))
        params = dict(self.params, paths=paths)
        exprs = [f"{v} as {n}" for n, v in norm.columns.items()]
        names = list(norm.columns)
        if kind == "events":
            names.append("extra")
            extra_names = [self._unpointer(p) for p in paths[n_canon:]]
            if extra_names:
                # Each member as its JSON text: the key (quoted here) and the value as
                # json_extract wrote it, joined without parsing either again. A key the
                # record lacks is left out (JSON null is kept); a record with none: NULL.
                params.update(
                    {f"xk{i}": json.dumps(k) + ":" for i, k in enumerate(extra_names)}
                )
                members = ", ".join(
                    f"$xk{i} || v[{n_canon + 1 + i}]" for i in range(len(extra_names))
                )
                exprs.append(f"'{{' || nullif(concat_ws(',', {members}), '') || '}}' as extra")
            else:
                exprs.append("null::json as extra")
        cols = ", ".join(names)
        counted = self.options.mapping is None and len(paths) <= MAX_COUNTED_KEYS
        dup = _dup_by_count(len(paths)) if counted else _JSON_ERR_DUP
        sql = f"""
            insert into stage (rec, err, raw, {cols}{_KEYED[kind][0]})
            select rec, err,
                   case when err is not null then left(rtrim(raw, e'\\r\\n'), {RAW_LIMIT}) end,
                   {cols}{_KEYED[kind][1]}
            from (
                select rec, raw, coalesce(jerr, {dup}, jstd, {norm.reason}) as err,
                       {", ".join(exprs)}
                from (
                    select *, {inner}
                    from (select *{pre} from (
                        select rec, raw, k, {_json_err_shape(self._maybe_deep)} as jerr,
                               {_JSON_ERR_STANDARD} as jstd,
                               case when t = 'OBJECT' then json_extract(raw, $paths)::varchar[]
                               end as v{m_cols}
                        from {source}{m_join}
                    ))
                )
            )
        """  # noqa: S608 - expressions are built from canonical names; values are bound
        con.execute(sql, _used(sql, params))

    def _json_hints(self, kind: str, paths: list[str]) -> dict[str, str]:
        """For each required field, the extracted keys that differ from it only in case."""
        keys = [self._unpointer(p) if p.count("/") == 1 else "" for p in paths]
        hints: dict[str, str] = {}
        for name in REQUIRED[kind]:
            alike = [
                f"case when v[{i}] is not null then {_sql_str(k)} end"
                for i, k in enumerate(keys, start=1) if k != name and k.lower() == name.lower()
            ]
            if alike:
                hints[name] = f"coalesce({', '.join(alike)})"
        return hints

    def _normalize(
        self, kind: str, sources: dict[str, Source], hints: dict[str, str] | None = None
    ) -> tuple[Normalized, str, str]:
        """SPEC §2.4 for this file's fields, with the select lists of its two lower levels:
        `pre` (", expr as alias" each, to follow a `*`) and `inner` (comma-separated)."""
        norm = normalize(
            kind, sources, tz_param="$tz", action_map="action_from" in self.params, hints=hints
        )
        pre = "".join(f", {e} as {a}" for a, e in norm.pre.items())
        inner = ", ".join(f"{e} as {a}" for a, e in norm.inner.items())
        return norm, pre, inner

    def _hold_parsed(self, source: str) -> None:
        """Keep a batch with no JSON object at all (all malformed) until the kind is known."""
        self.con.execute(
            f"create temp table if not exists held as select * from {source} limit 0"  # noqa: S608
        )
        self.con.execute(f"insert into held select * from {source}")  # noqa: S608

    @staticmethod
    def _unpointer(p: str) -> str:
        return p[1:].replace("~1", "/").replace("~0", "~")

    def add_parquet_batch(self, rb: pa.RecordBatch, first_rec: int) -> None:
        """Normalise a batch of Parquet rows into the stage."""
        con = self.con
        names = list(rb.schema.names)
        if self.kind is None:
            self.kind = self.decide_kind(set(names))
        kind = self.kind
        self._create_stage(kind)
        n = rb.num_rows
        tbl = pa.Table.from_batches([rb]).append_column(
            "__rec", pa.array(np.arange(first_rec, first_rec + n, dtype=np.int64))
        )
        # Several record batches (zero-copy slices), so that DuckDB scans on all threads.
        tbl = pa.Table.from_batches(tbl.to_batches(max_chunksize=1 << 16))
        con.register("batch_in", tbl)
        try:
            types = dict(
                con.execute("select column_name, column_type from (describe batch_in)").fetchall()
            )
            mapping = self.options.mapping
            sources: dict[str, Source] = {}
            used: set[str] = set()
            mapper = self._mapper(kind)
            m_join = ""
            if mapper is not None:
                # Fields named by the map must be columns; { sql = ... } values computed here.
                sources.update(mapper.parquet_batch(
                    con, "batch_in", [c for c in names if c != "__rec"], "__rec"
                ))
                if mapper.exprs:
                    m_join = mapper.join("__rec")
            for name in CANONICAL[kind]:
                spec = mapping.source_path(kind, name) if mapping is not None else [name]
                if spec is None or spec[0] not in types:
                    continue
                expr = _ident(spec[0]) + "".join(f"[{_sql_str(p)}]" for p in spec[1:])
                typ = types[spec[0]] if len(spec) == 1 else self._nested_type(
                    expr, f"{kind}.{name}", ".".join(spec)
                )
                sources[name] = Source(expr, typ)
                used.add(spec[0])
            all_cols = [c for c in names if c != "__rec"]
            hints = {
                name: f"coalesce({', '.join(alike)})"
                for name in REQUIRED[kind]
                if (alike := [
                    f"case when {_ident(c)} is not null then {_sql_str(c)} end"
                    for c in all_cols if c != name and c.lower() == name.lower()
                ])
            }
            norm, pre, inner = self._normalize(kind, sources, hints)
            raw_expr = _struct_json(all_cols) if all_cols else "'{}'"
            cols = ", ".join(f"{v} as {n}" for n, v in norm.columns.items())
            select_cols = ", ".join(norm.columns.keys())
            extra = ""
            if kind == "events":
                extras = [c for c in all_cols if c not in used and c not in CANONICAL[kind]]
                extra = f", {_struct_json(extras)} as extra" if extras else ", null::json as extra"
            # The file's own columns are in scope below the outer select: the key is
            # computed one level up, from the canonical values only.
            sql = f"""
                insert into stage (rec, err, raw, {select_cols}{', extra' if extra else ''}
                                   {_KEYED[kind][0]})
                select *{_KEYED[kind][1]} from (
                    select __rec as rec, err, case when err is not null then
                           left({raw_expr}::varchar, {RAW_LIMIT}) end as raw, {cols}{extra}
                    from (
                        select *, {norm.reason} as err
                        from (select *, {inner} from (select *{pre} from batch_in{m_join}))
                    )
                )
            """  # noqa: S608 - identifiers are quoted, values are bound
            con.execute(sql, _used(sql, self.params))
        finally:
            # After a failed statement (e.g. a map expression that cannot bind) the
            # transaction is aborted and rolled back by the caller; keep the first error.
            with contextlib.suppress(duckdb.Error):
                con.unregister("batch_in")

    def _nested_type(self, expr: str, key: str, path: str) -> str:
        """The type of a dotted path into a struct column; a path it lacks fails the file."""
        try:
            got = self.con.execute(
                f"select column_type from (describe select {expr} from batch_in)"  # noqa: S608
            ).fetchall()
        except duckdb.Error:
            raise InputError(
                f"map key {key}", f"the file has no field {path} (not a path into a struct)"
            ) from None
        return str(got[0][0]) if got else "NULL"

    def finish(self, source_row: dict[str, Any]) -> dict[str, int]:
        """Write rejects, new rows and the sources row; returns the row counts."""
        con = self.con
        if self.mapper is not None:
            self.mapper.finish(con)  # a mapped field that no record has fails the file
        kind = self.kind
        if kind is None:
            # An empty file: nothing to store, but it is accounted for.
            kind = self.options.kind or "none"
        sid = _scalar(con, "select nextval('source_ids')")
        counts = {"rows_read": 0, "rows_loaded": 0, "rows_rejected": 0, "rows_duplicate": 0}
        if self.staged:
            if self._table_exists("held"):
                con.execute(
                    "insert into stage (rec, err, raw) select rec, coalesce(pre_err, "
                    "case when t is null then 'malformed JSON' else 'not a JSON object' end), "
                    "left(rtrim(raw, e'\\r\\n'), $limit) from temp.held",
                    {"limit": RAW_LIMIT},
                )
            counts["rows_read"] = _scalar(con, "select count(*) from stage")
            counts["rows_rejected"] = _scalar(
                con, "select count(*) from stage where err is not null"
            )
            con.execute(
                "insert into rejects select $sid, rec, err, raw from stage where err is not null "
                "order by rec",
                {"sid": sid},
            )
            counts["rows_loaded"] = self._insert_rows(kind, sid)
            counts["rows_duplicate"] = (
                counts["rows_read"] - counts["rows_rejected"] - counts["rows_loaded"]
            )
        elif self._table_exists("held"):
            raise InputError(
                "kind", "no record is a JSON object, so its kind cannot be told; pass --kind"
            )
        source_row = dict(
            source_row, kind=kind, source_id=sid, notes="; ".join(self.notes) or None, **counts
        )
        con.execute(
            "insert into sources (source_id, path, kind, format, size_bytes, sha256, rows_read, "
            "rows_loaded, rows_rejected, rows_duplicate, ingested_at, tool_version, assume_tz, "
            "map_sha256, notes) values ($source_id, $path, $kind, $format, $size_bytes, $sha256, "
            "$rows_read, $rows_loaded, $rows_rejected, $rows_duplicate, $ingested_at, "
            "$tool_version, $assume_tz, $map_sha256, $notes)",
            source_row,
        )
        self.kind = kind
        counts["source_id"] = sid
        return counts

    def _table_exists(self, name: str) -> bool:
        row = self.con.execute(
            "select count(*) from duckdb_tables() where temporary and table_name = $n",
            {"n": name},
        ).fetchone()
        return bool(row and row[0])

    def _insert_events(self, sid: int) -> int:
        """Insert the file's valid events that are not duplicates (SPEC §2.4).

        The same request_id is one event; without one, the same (ts, action, user_id,
        device_id, event_id, status). The first record wins, within the file and against
        everything already stored. Set-based, on the 64-bit key hash (store.DKEY): the
        file's hashes find the few stored rows that may be the same event (a scan of one
        integer column, however large the store), those rows' real keys are read by rowid,
        and only exact equality makes a duplicate. The within-file pass runs only when the
        file repeats a hash.
        """
        con = self.con
        cols = "ts, action, user_id, device_id, event_id, request_id, status, extra"
        before = _count(con, "events")
        # A hash collision can only lower the distinct count: "no repeats" is never wrong.
        # The file's key hashes, once: their counts, and the probe into the stored ones.
        con.execute(
            "create or replace temp table file_keys as select dkey, count(*) as n, "
            "count(request_id) as with_id from stage where err is null group by 1"
        )
        row = con.execute(
            "select coalesce(sum(n), 0), count(*), coalesce(sum(with_id), 0) from file_keys"
        ).fetchone()
        total, distinct_keys, with_id = (int(x) for x in row or (0, 0, 0))
        firsts = (
            "select * from stage where err is null qualify row_number() over (partition by "
            "request_id, case when request_id is null then struct_pack(ts := ts, "
            "action := action, user_id := user_id, device_id := device_id, "
            "event_id := event_id, status := status) end order by rec) = 1"
            if total - distinct_keys
            else "select * from stage where err is null"
        )
        seen: list[str] = []
        if before and total:
            # Stored rows sharing a hash with the file (rowids only), then their exact keys.
            con.execute(
                "create or replace temp table maybe as select e.rowid as rid "
                "from events e semi join file_keys s on e.dkey = s.dkey"
            )
            # No stored row shares a hash with the file (the usual case): nothing to check.
            maybe_any = _count(con, "maybe") > 0
            if with_id and maybe_any:
                con.execute(
                    "create or replace temp table seen_ids as select distinct request_id "
                    "from events where rowid in (select rid from maybe) "
                    "and request_id is not null"
                )
                seen.append(
                    "not exists (select 1 from seen_ids d where d.request_id = f.request_id)"
                )
            if total - with_id and maybe_any:
                con.execute(
                    "create or replace temp table seen_tuples as select distinct ts, action, "
                    "user_id, device_id, event_id, status from events "
                    "where rowid in (select rid from maybe) and request_id is null"
                )
                seen.append(
                    "not exists (select 1 from seen_tuples d where f.request_id is null"
                    " and d.ts = f.ts and d.action = f.action and d.user_id = f.user_id"
                    " and d.device_id is not distinct from f.device_id"
                    " and d.event_id is not distinct from f.event_id"
                    " and d.status is not distinct from f.status)"
                )
        where = " where " + " and ".join(seen) if seen else ""
        # Rows go in by time, so each row group covers a narrow time range (zone maps
        # then skip most of the table for a window); provenance keeps the file order. A
        # file already in time order goes in as it is: sorting it would cost and change
        # nothing that matters (the window qualifier of repeats does not keep the order).
        in_order = total == distinct_keys and self._in_time_order()
        order = "" if in_order else " order by ts, rec"
        con.execute(
            f"insert into events ({cols}, source_id, source_record, dkey) "  # noqa: S608
            f"select {cols}, $sid, rec, dkey from ({firsts}) f{where}{order}",
            {"sid": sid},
        )
        for t in ("file_keys", "maybe", "seen_ids", "seen_tuples"):
            con.execute(f"drop table if exists temp.{t}")
        return _count(con, "events") - before

    def _in_time_order(self) -> bool:
        """Whether the stage's valid rows, in file order, are in time order for storage.

        Zone maps skip row groups (IN_ORDER_GROUP rows) and finer column segments; sorting
        only pays when those would otherwise cover wide stretches of time. So: cut the file
        order into runs of IN_ORDER_BLOCK records and into runs of IN_ORDER_GROUP; at each
        size, the runs together may span at most IN_ORDER_SLACK times the file's whole
        range (1.0 when sorted; a file in random order spans it once per run). A log
        written as things happen passes despite a little jitter; anything else is sorted.
        """
        row = self.con.execute(
            "with b as (select (rec - 1) // $block as b, min(epoch_us(ts)) as lo, "
            "max(epoch_us(ts)) as hi from stage where err is null group by 1) "
            "select coalesce(sum(hi - lo), 0), coalesce(max(hi) - min(lo), 0), "
            "(select coalesce(sum(hi - lo), 0) from (select "
            "min(lo) as lo, max(hi) as hi from b group by b // $per_group)) from b",
            {"block": IN_ORDER_BLOCK, "per_group": IN_ORDER_GROUP // IN_ORDER_BLOCK},
        ).fetchone()
        fine, whole, coarse = (int(x) for x in row or (0, 0, 0))
        return fine <= IN_ORDER_SLACK * whole and coarse <= IN_ORDER_SLACK * whole

    def _insert_rows(self, kind: str, sid: int) -> int:
        con = self.con
        p = {"sid": sid}
        if kind == "events":
            return self._insert_events(sid)
        cols = _STAGE_COLUMNS[kind]
        names = ", ".join(c.split()[0] for c in cols.split(", "))
        row = con.execute(
            f"insert into {kind} ({names}, source_id, source_record) "  # noqa: S608
            f"select {names}, $sid, rec from stage where err is null order by rec",
            p,
        ).fetchone()
        return int(row[0]) if row else 0


def _depth_function(con: duckdb.DuckDBPyConnection) -> None:
    """Register fx_json_depth (json_array.json_depth) where the connection sees it."""
    if con.execute(
        "select 1 from duckdb_functions() where function_name = 'fx_json_depth'"
    ).fetchall():
        return
    con.create_function(
        "fx_json_depth", json_depth, [duckdb.sqltypes.VARCHAR], duckdb.sqltypes.INTEGER,
        side_effects=False,
    )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return _scalar(con, f"select count(*) from {table}")  # noqa: S608 - a fixed table name


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    if row is None:
        raise InputError("store", "a count query returned no row")
    return int(row[0])


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses (DuckDB refuses unused named parameters)."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


# --------------------------------------------------------------------------- one file


def sha256_file(path: Path) -> str:
    """The file's SHA-256, read in bounded chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_into_stage(
    loader: _FileLoader, path: Path, fmt: str, compression: str | None,
    progress: Progress | None, ahead: _ReadAhead | None = None,
) -> str:
    """Parse the whole file into the loader's stage; returns its SHA-256."""
    if fmt == "parquet":
        sha = sha256_file(path)
        try:
            pf = pq.ParquetFile(path, page_checksum_verification=True)
            plan = plan_columns(pf.schema_arrow, loader.con)
            loader.notes = plan.notes
            rec = 1
            for rb in pf.iter_batches(batch_size=1 << 20):
                rb = plan.apply(rb)
                loader.add_parquet_batch(rb, rec)
                rec += rb.num_rows
            if loader.kind is None:
                loader.kind = loader.decide_kind(set(pf.schema_arrow.names) - set(plan.dropped))
        except (pa.ArrowException, OSError) as e:
            raise InputError("Parquet", f"cannot be read completely ({_short(e)})") from None
        if progress:
            progress("bytes", path.stat().st_size)
        return sha
    batches = ahead.batches(path) if ahead is not None else None
    if batches is None:
        batches = _json_batches(path, fmt, compression, progress, records_members(loader.options))
    while True:
        try:
            lines = next(batches)
        except StopIteration as done:
            return str(done.value)
        try:
            loader.add_json(lines)
        except InputError:
            # A streamed file is staged before it is all read: when its records fail it,
            # the rest is still read, so that a broken file is reported as broken (an
            # unclosed array, say) rather than by what its first records lacked.
            for _ in batches:
                pass
            raise


def records_members(options: IngestOptions) -> frozenset[str] | None:
    """The members that hold a wrapped document's records (`records =` in the map)."""
    m = options.mapping
    if m is None or not m.records:
        return None
    if options.kind is not None:
        name = m.records.get(options.kind)
        return frozenset([name]) if name else None
    return frozenset(m.records.values())


def _json_batches(
    path: Path, fmt: str, compression: str | None, progress: Progress | None,
    records: frozenset[str] | None = None,
) -> Generator[_Lines, None, str]:
    """A JSON file's records in batches; the generator returns the file's SHA-256.

    Raises InputError when the file cannot be read completely or changed while it was read.
    """
    before = _stat_key(path)
    with open(path, "rb") as f:
        reader = _HashingReader(f, progress)
        expected = (
            before[0] if compression is None
            else _gzip_size(path) if compression == "gzip" else None
        )
        chunks = _decompressed_chunks(reader, compression, expected)
        if fmt == "json":
            chunks, first = _peek_first(chunks)
            if first == b"[":
                yield from _iter_json_array(chunks)
            elif first == b"{":
                yield from _iter_json_object(chunks, records)
            else:
                yield from _iter_ndjson(chunks)
        else:
            yield from _iter_ndjson(chunks)
        reader.drain()
    if _stat_key(path) != before:
        raise InputError("file", "it changed while it was being read")
    return reader.sha.hexdigest()


class _ReadAhead:
    """Reads the JSON files in a thread, a batch ahead of the loader, in the order given.

    Decompressing, hashing and splitting lines is Python's work and DuckDB's is SQL; in one
    thread each waits for the other. Here the next batch (often of the next file) is read
    while the current one is parsed, checked and committed. One batch waits in the queue
    and one is being read: at most two CHUNKs of text beyond what sequential reading holds.
    A file's problem travels with its batches and is raised when the loader reaches it.
    """

    _END = object()

    def __init__(
        self, files: list[Path], progress: Progress | None,
        records: frozenset[str] | None = None,
    ) -> None:
        self._records = records
        self._q: queue.Queue[tuple[Any, str, Any]] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(files, progress), name="forensics-read-ahead", daemon=True
        )
        self._ended = False
        self._thread.start()

    def _put(self, item: tuple[Any, str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, files: list[Path], progress: Progress | None) -> None:
        for path in files:
            try:
                # The same checks stage_file makes first: never open what it would refuse
                # (a FIFO would block this thread).
                if not stat.S_ISREG(path.stat().st_mode):
                    continue
                fmt = file_format(path)
                if fmt is None or fmt[0] == "parquet":
                    continue
                batches = _json_batches(path, fmt[0], fmt[1], progress, self._records)
                while True:
                    try:
                        lines = next(batches)
                    except StopIteration as done:
                        item: tuple[Any, str, Any] = (path, "done", done.value)
                        break
                    if not self._put((path, "batch", lines)):
                        return
            except BaseException as e:  # noqa: BLE001 - raised in the loader's thread
                item = (path, "error", e)
            if not self._put(item):
                return
        self._put((self._END, "end", None))

    def batches(self, path: Path) -> Generator[_Lines, None, str] | None:
        """The file's batches (the generator returns its SHA-256), or None when the
        thread did not read it (it changed kind between the two checks): read it directly."""
        while not self._ended:
            p, tag, value = self._q.get()
            if p is self._END:
                self._ended = True
                break
            if p == path:
                return self._rest(path, tag, value)
            # Items of a file the loader passed over (it failed an earlier check).
        return None

    def _rest(self, path: Path, tag: str, value: Any) -> Generator[_Lines, None, str]:
        while True:
            if tag == "done":
                return str(value)
            if tag == "error":
                raise value
            yield value
            p, tag, value = self._q.get()
            if p != path:  # cannot happen: a file's items are consecutive and end with done
                raise RuntimeError("read-ahead out of order")

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._q.get_nowait()
        self._thread.join(timeout=5)


def _peek_first(chunks: Iterator[bytes]) -> tuple[Iterator[bytes], bytes]:
    head = b""
    for chunk in chunks:
        head += chunk
        stripped = head.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
        if stripped:
            break
    stripped = head.lstrip(b"\xef\xbb\xbf").lstrip(b" \t\r\n")

    def again() -> Iterator[bytes]:
        nonlocal head
        if head:
            first, head = [head], b""  # not kept for the whole file
            yield first.pop()
        yield from chunks

    return again(), stripped[:1]


def _short(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__


@dataclass
class _Staged:
    """A file read into its connection's stage, waiting to be stored (or already decided:
    `loader` is None when the file failed or was passed over before it was stored)."""

    result: FileResult
    loader: _FileLoader | None = None
    size: int = 0


def stage_file(
    con: duckdb.DuckDBPyConnection, path: Path, options: IngestOptions,
    progress: Progress | None = None, *, walked: bool = False, ahead: _ReadAhead | None = None,
) -> _Staged:
    """Read, check and normalise one file into `con`'s temp stage; nothing is stored yet.

    Never raises for a bad file: its result carries the error. The stage is written in a
    transaction of its own that touches only temp tables, so that another connection can
    store the previous file meanwhile.
    """
    result = FileResult(str(path))
    try:
        st = path.stat()
    except OSError as e:
        result.error = f"cannot be opened ({e.strerror})"
        return _Staged(result)
    if not stat.S_ISREG(st.st_mode):
        result.error = "not a regular file"
        return _Staged(result)
    fmt = file_format(path)
    if fmt is None:
        result.error = "not a supported log format (.parquet, .json, .jsonl, .ndjson, +.gz/.zst)"
        if walked:
            result.status = "skipped"  # found in a folder: reported, not an error
        return _Staged(result)
    result.format = fmt[0] + (f"+{fmt[1]}" if fmt[1] else "")
    before = _stat_key(path)
    loader = _FileLoader(con, options)
    try:
        con.execute("begin transaction")
        result.sha256 = read_into_stage(loader, path, fmt[0], fmt[1], progress, ahead)
        if _stat_key(path) != before:
            raise InputError("file", "it changed while it was being read")
        con.execute("commit")
    except (InputError, duckdb.Error) as e:
        _failed(con, result, e)
        return _Staged(result)
    except Exception as e:  # noqa: BLE001 - SPEC §2.6: whatever it is, this file fails alone
        _failed(con, result, _unexpected("reading", e))
        return _Staged(result)
    except BaseException:
        _rollback(con)
        raise
    return _Staged(result, loader, st.st_size)


def store_file(
    con: duckdb.DuckDBPyConnection, staged: _Staged, options: IngestOptions,
    known: dict[str, str],
) -> FileResult:
    """Store a staged file in its own transaction (the one that made its stage, `con`).

    Files are stored one at a time, in order: each sees every file stored before it, for
    de-duplication and for `known` (content already stored). Never raises for a bad file.
    """
    result, loader = staged.result, staged.loader
    if loader is None:
        return result
    sha = result.sha256 or ""
    if sha in known:
        _rollback(con)  # drops the stage
        result.status = "skipped"
        result.kind = known[sha].split("\0")[0]
        result.error = f"same content as {known[sha].split(chr(0))[1]}"
        return result
    try:
        con.execute("begin transaction")
        counts = loader.finish(
            {
                "path": str(Path(result.path).resolve()), "format": result.format,
                "size_bytes": staged.size, "sha256": sha,
                "ingested_at": datetime.now(timezone.utc), "tool_version": __version__,
                "assume_tz": options.assume_tz,
                "map_sha256": options.mapping.sha256 if options.mapping is not None else None,
            }
        )
        reasons = con.execute(
            "select err, count(*) from stage where err is not null group by err order by 2 desc"
        ).fetchall() if loader.staged else []
        con.execute("drop table if exists temp.stage")
        con.execute("drop table if exists temp.parsed")
        con.execute("drop table if exists temp.held")
        con.execute("commit")
    except (InputError, duckdb.Error) as e:
        _failed(con, result, e)
        return result
    except Exception as e:  # noqa: BLE001 - SPEC §2.6: whatever it is, this file fails alone
        _failed(con, result, _unexpected("storing", e))
        return result
    except BaseException:
        _rollback(con)
        raise
    # HOSTILE_INPUTS #6: a COMMIT can report success and roll back; check what is there.
    kind = loader.kind or "none"
    if kind in KINDS:
        stored = con.execute(
            f"select count(*) from {kind} where source_id = $sid",  # noqa: S608
            {"sid": counts["source_id"]},
        ).fetchone()
        if not stored or int(stored[0]) != counts["rows_loaded"]:
            result.error = "the store did not keep this file's rows after commit"
            return result
    result.kind = kind
    result.status = "loaded"
    result.rows_read = counts["rows_read"]
    result.rows_loaded = counts["rows_loaded"]
    result.rows_rejected = counts["rows_rejected"]
    result.rows_duplicate = counts["rows_duplicate"]
    result.reasons = {str(r): int(c) for r, c in reasons}
    known[sha] = f"{kind}\0{result.path}"
    return result


def _failed(
    con: duckdb.DuckDBPyConnection, result: FileResult, e: InputError | duckdb.Error
) -> None:
    """A bad file: its transaction and stage are dropped, its result carries the error."""
    _rollback(con)
    result.error = (e if isinstance(e, InputError) else engine_error("store", e)).one_line()


def _unexpected(stage: str, e: Exception) -> InputError:
    """A file's one-line error for an exception nothing expected: its type, never its
    text (which may quote a record)."""
    if isinstance(e, MemoryError):
        return InputError(stage, "ran out of memory")
    if isinstance(e, RecursionError):
        return InputError(stage, "the data is nested too deeply to be processed")
    return InputError(stage, f"failed unexpectedly ({type(e).__name__})")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):
        con.execute("rollback")
    for t in ("stage", "parsed", "held"):
        with contextlib.suppress(duckdb.Error):
            con.execute(f"drop table if exists temp.{t}")


def validate_options(options: IngestOptions) -> None:
    if options.kind is not None and options.kind not in KINDS:
        raise UsageError("--kind", f"must be one of {', '.join(KINDS)}")
    if options.assume_tz is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(options.assume_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError("--assume-tz", "not a known time zone (e.g. Europe/Berlin)") from None


def ingest(
    store: StoreOptions, paths: list[str], options: IngestOptions,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every path into the store; bad files are reported, the others still stored."""
    validate_options(options)
    files, failed = discover(paths)
    if not files and failed:
        # Nothing to read (e.g. the only path does not exist): the store, and its spill
        # folder, are not created for nothing.
        return IngestReport(failed)
    if progress:
        progress("files", len(files))
        progress("total_bytes", sum(_size(f) for f, _ in files))
    # Reading starts while the store opens.
    ahead = _ReadAhead([f for f, _ in files], progress, records_members(options))
    try:
        con = open_store(store, read_only=False)
    except BaseException:
        ahead.close()
        raise
    results: list[FileResult] = list(failed)
    try:
        # Each file's commit is durable in the write-ahead log; checkpointing after every
        # one (DuckDB's default, at 16 MB of log) costs a fixed tenth of a second or more
        # per file, growing with the store. Here: when the log reaches this size, and at
        # the end.
        con.execute("set checkpoint_threshold = $t", {"t": CHECKPOINT_THRESHOLD})
        # A checkpoint would also merge partly filled row groups (DuckDB's vacuum): every
        # file's last rows, read back and written again, on every ingest. Ingest only
        # appends, so there are no deleted rows to reclaim; the row groups stay as written.
        con.execute("set max_vacuum_tasks = 0")
        if options.mapping is not None:
            # Map expressions run on this connection: it can then read no file (SPEC §2.5).
            con.execute("set enable_external_access = false")
        known = {
            str(sha): f"{kind}\0{path}"
            for sha, kind, path in con.execute("select sha256, kind, path from sources").fetchall()
        }
        results += _pipeline(con, files, options, known, progress, ahead)
        con.execute("checkpoint")
    except duckdb.Error as e:
        raise engine_error(f"case store {store.path}", e) from None
    finally:
        ahead.close()
        con.close()
    return IngestReport(results)


def _pipeline(
    con: duckdb.DuckDBPyConnection, files: list[tuple[Path, bool]], options: IngestOptions,
    known: dict[str, str], progress: Progress | None, ahead: _ReadAhead,
) -> list[FileResult]:
    """Stage each file while the one before it is stored.

    Storing a file (its de-duplication against the store, its inserts and its commit) keeps
    about one core busy; staging the next file meanwhile, on a second connection, uses the
    other. Two connections take turns: a file is staged on the one whose previous file has
    been stored, and files are stored one at a time in their order, by one worker thread.
    """
    cons = [con, another_connection(con)]
    try:
        for c in cons:
            c.execute(MACROS)
            _depth_function(c)
        stored: list[Future[FileResult]] = []

        def store(c: duckdb.DuckDBPyConnection, staged: _Staged) -> FileResult:
            result = store_file(c, staged, options, known)
            if progress:
                progress("file", 1)
            return result

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forensics-store") as pool:
            for i, (f, walked) in enumerate(files):
                c = cons[i % 2]
                if i >= 2:
                    stored[i - 2].result()  # c's previous file is stored: c is free
                staged = stage_file(c, f, options, progress, walked=walked, ahead=ahead)
                stored.append(pool.submit(store, c, staged))
            return [s.result() for s in stored]
    finally:
        cons[1].close()


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0
