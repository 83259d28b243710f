"""Newline-delimited JSON (`.jsonl`, `.ndjson`): one record a line, numbered by line.

Lines are cut out of each chunk of text where they lie (Arrow strings over the chunk's own
bytes); only a line that straddles two chunks is put together. Blank lines are counted,
not records (the JSON stage drops them). Invalid UTF-8 rejects its line, not the file.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import numpy as np

from forensics.ingest.readers.base import Batch, JsonBatch, ReadContext, ReadEnd, Reader
from forensics.ingest.readers.json_split import MAX_DEPTH
from forensics.ingest.readers.source import BOM, arrow_texts, check_encoding, read_text


def newlines(buf: bytes, start: int, stop: int, block: int) -> np.ndarray:
    """Positions (int64) of the newlines in buf[start:stop], searched `block` bytes at a time."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    found = [
        np.flatnonzero(arr[lo : min(stop, lo + block)] == 10) + lo
        for lo in range(start, stop, block)
    ]
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def count_byte(arr: np.ndarray, byte: int, block: int) -> int:
    """How many bytes of `arr` (uint8) equal `byte`, compared `block` bytes at a time."""
    return sum(
        int(np.count_nonzero(arr[lo : lo + block] == byte)) for lo in range(0, len(arr), block)
    )


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
    rec = np.arange(first_line, first_line + n, dtype=np.int64)
    raw, errs = arrow_texts(buf, offsets)
    # A record deeper than MAX_DEPTH needs MAX_DEPTH nesting brackets: a flat log never
    # pays for the record-by-record depth check.
    extra = nesting_brackets(buf, start, stop, offsets[:-1], block)
    return JsonBatch(rec, raw, errs, maybe_deep=extra >= MAX_DEPTH), first_line + n


def nesting_brackets(buf: bytes, start: int, stop: int, line_starts: np.ndarray, block: int) -> int:
    """The `{` and `[` of buf[start:stop] beyond the `{` that opens a line (`line_starts`:
    the positions of its lines' first bytes): a line opening with `{` holds at least that
    bracket, and only brackets beyond those can nest. Counted in vectors, not with
    bytes.count (one byte at a time: 0.19 s against 0.03 s for a 137 MB file)."""
    arr = np.frombuffer(buf, dtype=np.uint8)
    objects = int(np.count_nonzero(arr[line_starts] == 0x7B))
    text = arr[start:stop]
    brackets = 0 if buf.find(b"[", start, stop) < 0 else count_byte(text, 0x5B, block)
    return count_byte(text, 0x7B, block) + brackets - objects


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
    return (
        yield from read_text(
            path, compression, ctx, lambda chunks: split_lines(chunks, ctx.tuning.newline_block)
        )
    )


READER = Reader("JSON", (".jsonl", ".ndjson"), read)
