"""Bytes of one file, as every text reader gets them: hashed, counted, decompressed and
checked (gzip CRCs and lengths, whole zstd frames, UTF-8 rather than UTF-16/32, no change
while reading). Raises InputError for anything that keeps the file from being read whole.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import threading
import zlib
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa

from forensics.errors import InputError
from forensics.ingest.options import IngestTuning, Progress
from forensics.ingest.readers.base import Batch, ReadContext, ReadEnd

try:
    # ISA-L's gzip reader: about 3x faster than the standard library's, with the same checks
    # (CRC and length of every member, truncation, multi-member files) and error classes.
    from isal import igzip as _igzip
    from isal.isal_zlib import error as _isal_error

    _ISAL: Any = _igzip.IGzipFile
    _ISAL_ERRORS: tuple[type[Exception], ...] = (cast("type[Exception]", _isal_error),)
except ImportError:  # a platform without ISA-L wheels
    _ISAL = None
    _ISAL_ERRORS = ()

_GZIP_ERRORS: tuple[type[Exception], ...] = (zlib.error, OSError, *_ISAL_ERRORS)
BOM = b"\xef\xbb\xbf"


def gzip_reader(tuning: IngestTuning) -> Any:
    """The gzip file class used: ISA-L's when installed and wanted, else the standard one."""
    return _ISAL if tuning.isal and _ISAL is not None else gzip.GzipFile


class HashingReader(io.RawIOBase):
    """A binary reader that hashes and counts every byte it hands on."""

    def __init__(self, raw: io.BufferedReader, progress: Progress | None, chunk: int) -> None:
        self._raw = raw
        self.sha = hashlib.sha256()
        self.count = 0
        self._progress = progress
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            n = self._raw.readinto(b)
        except OSError as e:
            # Raised as the file's own error, never taken for corrupt compressed data (the
            # gzip reader above this one takes an OSError for that).
            raise unreadable(e) from None
        if n:
            self.sha.update(memoryview(b)[:n])
            self.count += n
            if self._progress:
                self._progress("bytes", n)
        return n or 0

    def drain(self) -> None:
        while self.read(self._chunk):
            pass


def unreadable(e: OSError) -> InputError:
    """A file the system could not read (an I/O error, a permission): the system's reason."""
    return InputError("file", f"cannot be read ({e.strerror or type(e).__name__})")


def stat_key(path: Path) -> tuple[int, int, int]:
    """What changes when a file is written to: size, mtime, inode."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def sha256_file(path: Path, chunk: int = IngestTuning.chunk_bytes) -> str:
    """The file's SHA-256, read in bounded chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(chunk):
            h.update(data)
    return h.hexdigest()


class HashAlongside:
    """A file's SHA-256, computed on a thread of its own while the caller reads the file
    another way (a Parquet file is read by pyarrow, which does not hand over its bytes).

    Takes an open file and closes it. hashlib and file reads release the GIL, so the hash
    runs beside the reading instead of before it."""

    def __init__(self, f: IO[bytes], chunk: int = IngestTuning.chunk_bytes) -> None:
        self._stop = threading.Event()
        self._sha: str | None = None
        self._error: OSError | None = None
        self._thread = threading.Thread(
            target=self._run, args=(f, chunk), name="forensics-hash", daemon=True
        )
        self._thread.start()

    def _run(self, f: IO[bytes], chunk: int) -> None:
        try:
            with f:
                h = hashlib.sha256()
                while not self._stop.is_set() and (data := f.read(chunk)):
                    h.update(data)
                self._sha = h.hexdigest()
        except OSError as e:
            self._error = e

    def error(self) -> OSError | None:
        """What stopped the hash, once it has ended: the system's reason a file is unreadable
        is worth more than what a reader of the same bytes made of it."""
        self._thread.join()
        return self._error

    def result(self) -> str:
        """The hash; raises the OSError that stopped it."""
        if (e := self.error()) is not None:
            raise e
        if self._sha is None or self._stop.is_set():
            raise RuntimeError("the file's hash was cancelled")
        return self._sha

    def cancel(self) -> None:
        """Stop hashing (the file is given up): the thread ends at its next chunk."""
        self._stop.set()


def read_size(chunk: int, expected: int | None, done: int) -> int:
    """How much to read next, `done` bytes in: a chunk, or the rest of the file when that is
    at most a quarter more (so that a file a little larger than a chunk is not followed by a
    batch of a few lines, which costs nearly as much as a full one).

    `expected` is the size the file's text is expected to have; it only decides where the
    batches end, never what is read, so an estimate that is wrong costs nothing else.
    """
    last = chunk + chunk // 4  # the most read at once
    if expected is not None and 0 <= expected - done <= last:
        return last
    return chunk


def gzip_size(path: Path) -> int | None:
    """The size the gzip trailer gives (of the last member, modulo 4 GiB): an estimate."""
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    except OSError:
        return None


def decompressed_chunks(
    reader: HashingReader,
    compression: str | None,
    tuning: IngestTuning,
    expected: int | None = None,
) -> Iterator[bytes]:
    """The file's bytes, decompressed; raises InputError on corrupt or truncated data."""
    done = 0
    chunk = tuning.chunk_bytes
    # Each chunk is yielded out of a list emptied as it goes: a suspended generator then
    # holds no reference to it, and a consumer that is done with a chunk frees it.
    held: list[bytes] = []
    if compression is None:
        while data := reader.read(read_size(chunk, expected, done)):
            done += len(data)
            held.append(data)
            del data
            yield held.pop()
        return
    if compression == "gzip":
        gz = gzip_reader(tuning)(fileobj=reader, mode="rb")
        try:
            while data := gz.read(read_size(chunk, expected, done)):
                done += len(data)
                held.append(data)
                del data
                yield held.pop()
        except gzip.BadGzipFile as e:
            raise InputError("gzip", f"not a valid gzip file ({e})") from None
        except EOFError:
            raise InputError("gzip", "compressed data is truncated") from None
        except _GZIP_ERRORS as e:
            raise InputError("gzip", f"corrupt compressed data ({e})") from None
        return
    yield from _zstd_chunks(reader, chunk)


def _zstd_chunks(reader: HashingReader, chunk: int) -> Iterator[bytes]:
    """Decompress every zstd frame; a frame cut short fails the file (no silent short read)."""
    import zstandard

    dctx = zstandard.ZstdDecompressor()
    d = dctx.decompressobj()
    fed = False
    try:
        while raw := reader.read(chunk):
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


def check_encoding(first: bytes) -> None:
    """Refuse text that is not UTF-8 (a UTF-16/32 BOM, or a NUL among the first bytes)."""
    if first.startswith((b"\xff\xfe", b"\xfe\xff")) or (
        len(first) >= 2 and (first[0] == 0 or first[1] == 0)
    ):
        raise InputError("encoding", "the file is not UTF-8 (it looks like UTF-16 or UTF-32)")


def read_text(
    path: Path,
    compression: str | None,
    ctx: ReadContext,
    parse: Callable[[Iterator[bytes]], Iterator[Batch]],
) -> Generator[Batch, None, ReadEnd]:
    """A text file's batches, as `parse` makes them from its decompressed bytes.

    Returns the file's SHA-256 once every byte is read. Raises InputError when the file
    cannot be read completely or changed while it was read.
    """
    before = stat_key(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; only opening is guarded
    except OSError as e:
        raise unreadable(e) from None
    with f:
        reader = HashingReader(f, ctx.progress, ctx.tuning.chunk_bytes)
        expected = (
            before[0] if compression is None else gzip_size(path) if compression == "gzip" else None
        )
        yield from parse(decompressed_chunks(reader, compression, ctx.tuning, expected))
        reader.drain()
    if ctx.hooks.after_read is not None:
        ctx.hooks.after_read(path)
    if stat_key(path) != before:
        raise InputError("file", "it changed while it was being read")
    return ReadEnd(reader.sha.hexdigest())


def arrow_texts(buf: bytes | bytearray, offsets: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """The strings buf[offsets[i]:offsets[i + 1]] as Arrow strings pointing into buf (no
    copy), and for each the reason it is rejected when it is not UTF-8 (else null)."""
    n = len(offsets) - 1
    binary = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )
    raw = binary.view(pa.large_string())
    try:
        raw.validate(full=True)  # full: every string is checked to be UTF-8
        return raw, pa.nulls(n, pa.string())
    except pa.ArrowInvalid:
        pass
    # Slow path, only for files with invalid UTF-8: find and reject those strings.
    texts: list[str] = []
    pre_err: list[str | None] = []
    for i in range(n):
        b = bytes(buf[offsets[i] : offsets[i + 1]])
        try:
            texts.append(b.decode("utf-8"))
            pre_err.append(None)
        except UnicodeDecodeError:
            texts.append(b.decode("utf-8", errors="replace"))
            pre_err.append("invalid UTF-8")
    return pa.array(texts, pa.large_string()), pa.array(pre_err, pa.string())
