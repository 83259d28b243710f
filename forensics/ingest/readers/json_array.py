"""`.json`: a JSON array, a wrapped document (`{"Records": [...]}`) or JSON lines.

The first character (after a BOM and whitespace) decides: `[` is an array, streamed a chunk
at a time by json_split (element numbers from 1; the array must be complete and standard
JSON throughout, or the file fails whole). `{` is a wrapped document when its first object
holds the records array (the member named by the map's `records`, else its one and only
member, an array) and nothing follows that object; else, like anything else, JSON lines.
"""

from __future__ import annotations

import itertools
import json
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
    except NotWrapped as e:
        if not recording:
            raise InputError(
                "JSON",
                "the document is neither JSON lines nor one object holding its "
                "records in one array member",
                "Name the member with records = in the map",
            ) from None
        held.clear()
        head = b"".join(seen)
        if _laid_out_as_one_object(head):
            # is that all of the file? (only then is it parsed to look for an array)
            more = next(chunks, None)
            if more is not None:
                seen.append(more)
            if e.array_first or (more is None and _holds_records(head)):
                raise InputError(
                    "JSON",
                    "the document is one object over several lines holding an array of "
                    "records beside other members, not JSON lines",
                    "Name the member holding the records with records = in a map",
                ) from None
        yield from split_lines(itertools.chain(seen, chunks), block)
        return
    yield from held


# A whole document up to this size is parsed to see whether it holds records.
_LOOK_INSIDE = 8 << 20


def _laid_out_as_one_object(head: bytes) -> bool:
    """True when a text opening with `{` that is not a wrapped document is laid out as one
    object over several lines (pretty-printed): its first line does not close the object it
    opens, and its second does not open another, as JSON lines would. If it also holds an
    array of records beside other members (`{"Records": [...], "nextToken": ...}`), a map
    must name that member; read as JSON lines, each of its lines would be rejected. Any
    other object is read as JSON lines, as before."""
    lines = [line.strip() for line in head[: 64 << 10].lstrip(BOM).split(b"\n")]
    lines = [line for line in lines if line][:2]
    return len(lines) == 2 and not lines[0].endswith(b"}") and not lines[1].startswith(b"{")


def _holds_records(doc_text: bytes) -> bool:
    """True when a whole (small) JSON document is an object with an array of objects as a
    member."""
    if len(doc_text) > _LOOK_INSIDE:
        return False
    try:
        doc = json.loads(doc_text.decode("utf-8-sig"))
    except ValueError:
        return False
    return isinstance(doc, dict) and any(
        isinstance(v, list) and v and all(isinstance(x, dict) for x in v) for v in doc.values()
    )


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
