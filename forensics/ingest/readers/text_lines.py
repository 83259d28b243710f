"""A delimited file's physical lines, a block at a time (readers/delimited.py's source).

Lines are split on LF, or on a lone CR when the file's first line break is one; the text is
UTF-8 (a BOM dropped), and a block holding invalid UTF-8 is kept as surrogates, so that
only the records holding it are rejected.
"""

from __future__ import annotations

from collections.abc import Iterator

from forensics.ingest.readers.source import BOM, check_encoding

BLOCK_BYTES = 8 << 20  # text split into lines at a time


class LineSource:
    """The file's physical lines (without their line break), a block at a time.

    `lines[pos]` is line number `base + pos`. `more(keep)` appends the next block and drops
    the lines before index `keep`; a record being assembled keeps its lines that way.
    """

    def __init__(self, chunks: Iterator[bytes], block_bytes: int = BLOCK_BYTES) -> None:
        self._block_bytes = block_bytes
        self._blocks = self._decode(chunks)
        self.lines: list[str] = []
        self.base = 1
        self.pos = 0
        self.dirty = False  # some line so far held invalid UTF-8 (kept as surrogates)
        self.generation = 0  # counts the changes of `lines`
        self.cr_lines: bool | None = None  # lines end in a lone CR (None: not yet known)

    def more(self, keep: int) -> bool:
        block = next(self._blocks, None)
        if block is None:
            return False
        self.base += keep
        self.pos -= keep
        self.generation += 1
        self.lines = self.lines[keep:] + block if keep < len(self.lines) else block
        return True

    def _decode(self, chunks: Iterator[bytes]) -> Iterator[list[str]]:
        pending = b""
        first = True
        for chunk in chunks:
            if first and chunk:
                data = pending + chunk
                if len(data) < 4 and not data.endswith(b"\n"):
                    pending = data  # too short to tell the encoding yet
                    continue
                if data.startswith(BOM):
                    data = data[3:]
                check_encoding(data[:4])
                first, chunk, pending = False, data, b""
            if self.cr_lines is None:
                # Lines ended by a lone CR (a classic Mac export) are read as LF lines. The
                # file's first line break decides; until one is seen, `pending` holds no
                # line break but perhaps a CR as its last byte.
                self.cr_lines = _lone_cr(pending[-1:] + chunk)
                if self.cr_lines:
                    pending = pending.replace(b"\r", b"\n")
            if self.cr_lines:
                chunk = chunk.replace(b"\r", b"\n")
            # Blocks of about BLOCK_BYTES, cut after a newline: a block is held three or four
            # times over (bytes, Python lines, Arrow lines), so it stays well below a chunk.
            start = 0
            while start < len(chunk):
                cut = chunk.rfind(b"\n", start, start + self._block_bytes)
                if cut < 0:
                    cut = chunk.find(b"\n", start + self._block_bytes)
                if cut < 0:
                    pending += chunk[start:]
                    break
                block = pending + chunk[start:cut]
                pending = b""
                start = cut + 1
                yield self._split(block)
        if first and pending:
            if pending.startswith(BOM):
                pending = pending[3:]
            check_encoding(pending[:4])
        if pending:
            yield self._split(pending)

    def _split(self, block: bytes) -> list[str]:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            # Kept as surrogates: a record holding one is rejected, not the file.
            text = block.decode("utf-8", errors="surrogateescape")
            self.dirty = True
        return text.split("\n")


def _lone_cr(data: bytes) -> bool | None:
    """Whether the first line break in `data` is a CR alone (not CRLF); None: no line break
    yet, or `data` ends at a CR whose next byte decides."""
    cr, lf = data.find(b"\r"), data.find(b"\n")
    if cr < 0:
        return False if lf >= 0 else None
    if 0 <= lf <= cr + 1:
        return False  # an LF first, or CRLF
    return True if cr + 1 < len(data) else None
