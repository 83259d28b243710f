"""`.json`: a JSON array, a wrapped document (`{"Records": [...]}`) or JSON lines.

The first character (after a BOM and whitespace) decides: `[` is an array, streamed a chunk
at a time by json_split (element numbers from 1; the array must be complete and standard
JSON throughout, or the file fails whole). `{` is a wrapped document when its first object
holds the records array (the member named by the map's `records`, else its one and only
member, an array) and nothing follows that object; else, like anything else, JSON lines.
"""

from __future__ import annotations

import itertools
from collections.abc import Generator, Iterator
from pathlib import Path

from forensics.errors import InputError
from forensics.ingest.readers.base import Batch, JsonBatch, ReadContext, ReadEnd, Reader
from forensics.ingest.readers.json_lines import split_lines
from forensics.ingest.readers.json_split import NotWrapped, iter_elements
from forensics.ingest.readers.source import BOM, read_text


def array_elements(
    chunks: Iterator[bytes], *, wrapped: bool = False, records: frozenset[str] | None = None
) -> Iterator[JsonBatch]:
    """Elements of a JSON array (or of a wrapped document's array), streamed; `strict`."""
    return iter_elements(chunks, wrapped=wrapped, records=records)


def object_records(
    chunks: Iterator[bytes], records: frozenset[str] | None, peek: int, block: int
) -> Iterator[JsonBatch]:
    """A `.json` file that opens with `{`: a wrapped document or JSON lines.

    Until that is decided the elements are held back, and the bytes read kept, to be read
    again as JSON lines if it is not a wrapped document; after `peek` bytes the document is
    taken to be wrapped (no JSON line is that long), and a later surprise fails the file.
    """
    seen: list[bytes] = []
    recording = True

    def recorded() -> Iterator[bytes]:
        for c in chunks:
            if recording:
                seen.append(c)
            yield c

    held: list[JsonBatch] = []
    try:
        for batch in array_elements(recorded(), wrapped=True, records=records):
            if not recording:
                yield batch
                continue
            held.append(batch)
            if sum(len(c) for c in seen) >= peek:
                recording = False
                seen.clear()
                yield from held
                held.clear()
    except NotWrapped:
        if not recording:
            raise InputError(
                "JSON",
                "the document is neither JSON lines nor one object holding its "
                "records in one array member",
                "Name the member with records = in the map",
            ) from None
        held.clear()
        if _one_document(b"".join(seen[:2])):
            raise InputError(
                "JSON",
                "the document is one object over several lines, not JSON lines, and not "
                "one object holding its records in its only member",
                "Name the member holding the records with records = in a map",
            ) from None
        yield from split_lines(itertools.chain(seen, chunks), block)
        return
    yield from held


def _one_document(head: bytes) -> bool:
    """True when the text opening with `{` is laid out as one document (pretty-printed),
    not as JSON lines: its first line does not close the object it opens, and its second
    line does not open another. (A JSON lines file whose first record is cut short still
    has a second line that opens a record.)"""
    lines = [line.strip() for line in head.lstrip(BOM).split(b"\n") if line.strip()]
    return len(lines) >= 2 and not lines[0].endswith(b"}") and not lines[1].startswith(b"{")


def peek_first(chunks: Iterator[bytes]) -> tuple[Iterator[bytes], bytes]:
    """The same chunks, and the text's first character (after a BOM and whitespace)."""
    head = b""
    for chunk in chunks:
        head += chunk
        stripped = head.lstrip(BOM).lstrip(b" \t\r\n")
        if stripped:
            break
    stripped = head.lstrip(BOM).lstrip(b" \t\r\n")

    def again() -> Iterator[bytes]:
        nonlocal head
        if head:
            first, head = [head], b""  # not kept for the whole file
            yield first.pop()
        yield from chunks

    return again(), stripped[:1]


def read(path: Path, compression: str | None, ctx: ReadContext) -> Generator[Batch, None, ReadEnd]:
    def parse(chunks: Iterator[bytes]) -> Iterator[JsonBatch]:
        chunks, first = peek_first(chunks)
        if first == b"[":
            return array_elements(chunks)
        if first == b"{":
            return object_records(
                chunks, ctx.records, ctx.tuning.chunk_bytes, ctx.tuning.newline_block
            )
        return split_lines(chunks, ctx.tuning.newline_block)

    return (yield from read_text(path, compression, ctx, parse))


READER = Reader("JSON", (".json",), read)
