"""Newline-delimited JSON (`.jsonl`, `.ndjson`): one record a line, numbered by line.

Lines are cut out of each chunk of text where they lie (Arrow strings over the chunk's own
bytes); only a line that straddles two chunks is put together. Blank lines are counted,
not records (the JSON stage drops them). Invalid UTF-8 rejects its line, not the file.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from forensics.ingest.readers.base import Batch, JsonBatch, ReadContext, ReadEnd, Reader
from forensics.ingest.readers.source import BOM, check_encoding, read_text


def newlines(buf: bytes, start: int, stop: int, block: int) -> np.ndarray:
    """Positions (int64) of the newlines in buf[start:stop], searched `block` bytes at a time."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    found = [
        np.flatnonzero(arr[lo : min(stop, lo + block)] == 10) + lo
        for lo in range(start, stop, block)
    ]
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def lines_to_arrow(
    buf: bytes, start: int, stop: int, first_line: int, block: int
) -> tuple[JsonBatch, int]:
    """The lines of buf[start:stop] (which ends with a newline) as Arrow strings.

    The strings point into `buf` itself: a chunk of text is never copied to be split.
    """
    nl = newlines(buf, start, stop, block)
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
    return JsonBatch(rec, raw, errs), first_line + n


def split_lines(chunks: Iterator[bytes], block: int = 4 << 20) -> Iterator[JsonBatch]:
    """A newline-delimited text's lines, one batch per chunk of text."""
    line = 1
    pending: list[bytes] = []  # the start of a line that began in an earlier chunk
    first = True
    for chunk in chunks:
        if first:
            if chunk.startswith(BOM):
                chunk = chunk[3:]
            check_encoding(chunk[:4])
            first = False
        head_end = chunk.find(b"\n") + 1
        if not head_end:
            pending.append(chunk)
            continue
        cut = chunk.rfind(b"\n") + 1
        parts = []
        if pending:
            head = b"".join([*pending, chunk[:head_end]])
            lines, line = lines_to_arrow(head, 0, len(head), line, block)
            parts.append(lines)
            start = head_end
        else:
            start = 0
        if cut > start:
            lines, line = lines_to_arrow(chunk, start, cut, line, block)
            parts.append(lines)
        pending = [chunk[cut:]] if cut < len(chunk) else []
        yield JsonBatch.concat(parts)
    if pending:
        tail = b"".join([*pending, b"\n"])
        lines, line = lines_to_arrow(tail, 0, len(tail), line, block)
        yield lines


def read(path: Path, compression: str | None, ctx: ReadContext) -> Generator[Batch, None, ReadEnd]:
    return (yield from read_text(
        path, compression, ctx, lambda chunks: split_lines(chunks, ctx.tuning.newline_block)
    ))


READER = Reader("JSON", (".jsonl", ".ndjson"), read)
