"""`.json`: a JSON array of records (numbered by position from 1), or else JSON lines.

A `.json` file whose first character (after a BOM and whitespace) is `[` is an array; it
must be complete and well-formed, or the file fails whole (an array cut after a comma is
not taken as a shorter file). Anything else is read as JSON lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from forensics.errors import InputError
from forensics.ingest.readers.base import Batch, JsonBatch, ReadContext, ReadEnd, Reader
from forensics.ingest.readers.json_lines import split_lines
from forensics.ingest.readers.source import BOM, check_encoding, read_text

_WS = re.compile(r"[ \t\r\n]*")


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def array_elements(chunks: Iterator[bytes]) -> Iterator[JsonBatch]:
    """Elements of a JSON array file; the array itself must be complete and well-formed."""
    data = b"".join(chunks)
    if data.startswith(BOM):
        data = data[3:]
    check_encoding(data[:4])
    text = data.decode("utf-8", errors="surrogateescape")
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "[":
        raise InputError("JSON", "not a JSON array")
    pos = _skip(text, pos + 1)
    raws: list[str] = []
    errs: list[str | None] = []
    if text[pos : pos + 1] == "]":
        pos += 1
    else:
        while True:
            try:
                _, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError:
                raise InputError(
                    "JSON", f"the array is not valid JSON at element {len(raws) + 1}"
                ) from None
            element = text[pos:end]
            try:
                element.encode("utf-8")
                raws.append(element)
                errs.append(None)
            except UnicodeEncodeError:
                raws.append(element.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
                errs.append("invalid UTF-8")
            pos = _skip(text, end)
            c = text[pos : pos + 1]
            if c == ",":
                pos = _skip(text, pos + 1)
                if text[pos : pos + 1] == "]":
                    raise InputError("JSON", "the array ends with a trailing comma")
                continue
            if c == "]":
                pos += 1
                break
            raise InputError("JSON", "the array is not closed (the file may be truncated)")
    if text[pos:].strip(" \t\r\n"):
        raise InputError("JSON", "content after the end of the array")
    n = len(raws)
    yield JsonBatch(
        np.arange(1, n + 1, dtype=np.int64),
        pa.array(raws, pa.large_string()),
        pa.array(errs, pa.string()),
    )


def peek_array(chunks: Iterator[bytes]) -> tuple[Iterator[bytes], bool]:
    """The same chunks, and whether the text opens with `[` (after a BOM and whitespace)."""
    head = b""
    for chunk in chunks:
        head += chunk
        stripped = head.lstrip(BOM).lstrip(b" \t\r\n")
        if stripped:
            break
    stripped = head.lstrip(BOM).lstrip(b" \t\r\n")

    def again() -> Iterator[bytes]:
        if head:
            yield head
        yield from chunks

    return again(), stripped.startswith(b"[")


def read(path: Path, compression: str | None, ctx: ReadContext) -> Generator[Batch, None, ReadEnd]:
    def parse(chunks: Iterator[bytes]) -> Iterator[JsonBatch]:
        chunks, is_array = peek_array(chunks)
        if is_array:
            return array_elements(chunks)
        return split_lines(chunks, ctx.tuning.newline_block)

    return (yield from read_text(path, compression, ctx, parse))


READER = Reader("JSON", (".json",), read)
