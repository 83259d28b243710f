"""Stream a JSON array's elements as texts, in bounded memory (SPEC §2.5, §2.6).

Input: the file's bytes as chunks of any size. Output: batches of (element number, element
text, per-element error), element texts pointing into the chunks, for the same staging path
as JSON lines. The array may be the whole document or, in a wrapped document, the array
member of a top-level object (`{"Records": [...]}`). No parse tree is built and nothing
recurses: string-aware bracket depth is computed with NumPy, a chunk at a time, with the
scanner's state (inside a string, after a backslash, depth) carried across chunks.

Checked here: the structure around the elements (opening, separators, closing, nothing
after), and, at any depth, tokens JSON does not have (NaN, Infinity, Inf in any case,
comments, single quotes, ...): these fail the file (InputError). An element nested deeper
than MAX_DEPTH gets the error `nested too deep`. Each element's own syntax is left to the
JSON parser that reads it (the caller fails the file on an element that is not valid JSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from forensics.errors import InputError
from forensics.ingest.readers.base import JsonBatch
from forensics.ingest.readers.source import BOM, arrow_texts, check_encoding

MAX_DEPTH = 128  # deepest nesting of a record (SPEC §2.6)
PIECE = 16 << 20  # bytes split at a time (bounds the splitter's arrays)
BLOCK = 8 << 20  # bytes scanned at a time (bounds the scanner's temporary arrays)
NOT_STANDARD = (
    "not standard JSON (NaN, Infinity, a comment, a single quote or another token JSON "
    "does not have)"
)

_WS = b" \t\r\n"
_STRUCT = np.zeros(256, dtype=np.int8)  # 0: not structural; else a code (see _DELTA)
for _i, _c in enumerate(b"[{]},:", start=1):
    _STRUCT[_c] = _i
_DELTA = np.array([0, 1, 1, -1, -1, 0, 0], dtype=np.int64)  # depth change per code
_COMMA, _CLOSE_ARRAY = 5, 3


class NotWrapped(Exception):  # noqa: N818 - a signal, not an error
    """The document is not a wrapped array (the caller reads it another way).
    `array_first`: its first member is an array, and other members follow it."""

    def __init__(self, array_first: bool = False) -> None:
        super().__init__()
        self.array_first = array_first


@dataclass
class _Scan:
    """Structural bytes outside strings in one chunk: positions, codes, depth after each."""

    pos: np.ndarray
    code: np.ndarray
    depth: np.ndarray


def _bit_tables() -> tuple[np.ndarray, np.ndarray]:
    """For each byte value: the running xor of its bits (bit k = xor of bits 0..k), and
    the xor of all its bits."""
    prefix = np.zeros(256, dtype=np.uint8)
    parity = np.zeros(256, dtype=np.uint8)
    for v in range(256):
        acc = out = 0
        for k in range(8):
            acc ^= (v >> k) & 1
            out |= acc << k
        prefix[v], parity[v] = out, acc
    return prefix, parity


_PREFIX_XOR, _PARITY = _bit_tables()


class _Scanner:
    """String-aware structure of a byte stream, one chunk at a time.

    Which bytes lie inside strings is a running xor over the unescaped quotes, computed on
    the quote mask packed eight bytes to one (a prefix xor within each byte by table, and
    across bytes by an accumulate over an eighth of the data).
    """

    def __init__(self, colons: bool) -> None:
        self.colons = colons  # report `:` too (only a wrapper's keys need it)
        self.in_string = False
        self.backslashes = 0  # length of the backslash run that ended the previous chunk
        self.depth = 0

    def scan(self, chunk: bytearray) -> _Scan:
        a = np.frombuffer(chunk, dtype=np.uint8)
        pos_parts, code_parts = [], []
        for lo in range(0, len(a), BLOCK):
            block = a[lo : lo + BLOCK]
            quotes = block == 0x22
            self._unmark_escaped(block, quotes)
            packed = np.packbits(quotes, bitorder="little")
            par = _PARITY[packed]
            carry = np.bitwise_xor.accumulate(par) ^ par ^ np.uint8(self.in_string)
            inside = np.unpackbits(
                _PREFIX_XOR[packed] ^ (carry * np.uint8(0xFF)),
                bitorder="little",
                count=len(block),
            ).view(bool)
            if len(par):
                self.in_string = bool(carry[-1] ^ par[-1])
            folded = block | 0x20  # [ and { fold to {, ] and } to }
            wanted = (folded == 0x7B) | (folded == 0x7D) | (block == 0x2C)
            if self.colons:
                wanted |= block == 0x3A
            found = np.flatnonzero(wanted & ~inside)
            pos_parts.append(found + lo)
            code_parts.append(_STRUCT[block[found]])
            self._carry_backslashes(block)
        pos = np.concatenate(pos_parts) if pos_parts else np.empty(0, np.int64)
        code = np.concatenate(code_parts) if code_parts else np.empty(0, np.int8)
        depth = self.depth + np.cumsum(_DELTA[code])
        if len(depth):
            self.depth = int(depth[-1])
        return _Scan(pos, code, depth)

    def _unmark_escaped(self, block: np.ndarray, quotes: np.ndarray) -> None:
        """Clear the quotes that follow an odd run of backslashes (escaped in a string)."""
        cand = np.flatnonzero(quotes[1:] & (block[:-1] == 0x5C)) + 1
        if len(block) and quotes[0] and self.backslashes % 2:
            cand = np.concatenate([[0], cand])
        if not len(cand):
            return
        bs = np.flatnonzero(block == 0x5C)
        # Backslashes of one run share bs[i] - i: a run's start is found by searching it.
        group = bs - np.arange(len(bs))
        run_len = np.zeros(len(cand), dtype=np.int64)
        has = cand > 0  # a quote at 0: only the previous chunk's run precedes it
        k = np.searchsorted(bs, cand[has] - 1)
        first = np.searchsorted(group, group[k], side="left")
        run_len[has] = k - first + 1
        from_start = np.zeros(len(cand), dtype=bool)
        from_start[has] = bs[first] == 0
        run_len[from_start | ~has] += self.backslashes
        quotes[cand[run_len % 2 == 1]] = False

    def _carry_backslashes(self, block: np.ndarray) -> None:
        if not len(block) or block[-1] != 0x5C:
            self.backslashes = 0
            return
        non_bs = np.flatnonzero(block != 0x5C)
        if not len(non_bs):
            self.backslashes += len(block)
        else:
            self.backslashes = len(block) - 1 - int(non_bs[-1])


class _Splitter:
    """The state machine over the top of the document; elements are cut vectorised."""

    def __init__(self, records: frozenset[str] | None, wrapped: bool) -> None:
        self.scanner = _Scanner(colons=wrapped)
        self.records = records  # wrapped: members that may hold the records (None: the only one)
        self.wrapped = wrapped
        self.level = 2 if wrapped else 1  # depth inside the records array
        self.state = "start"  # start, key, value, in_array, after_value, end
        self.key: str | None = None
        self.members = 0
        self.found_records = False
        self.rec = 1  # number of the next element
        self.elem_depth = 0  # deepest point of the open element, relative to the array
        self.pending: list[bytes] = []  # the open element's bytes from earlier chunks
        self.offset = 0  # bytes of the document before the current chunk
        self.first = True
        self.top_start = 0  # where the wrapper text being read starts (in the document)
        self.top_text: list[bytes] = []  # that text from earlier chunks
        self.end_at: int | None = None  # where the document ends in the current chunk

    def feed(self, chunk: bytes | memoryview) -> JsonBatch | None:
        """Scan one chunk; the elements it completes (None: none)."""
        buf = bytearray(chunk)  # separators become spaces: elements are contiguous slices
        if self.first:
            if buf.startswith(BOM):
                del buf[:3]
            check_encoding(bytes(buf[:4]))
            self.first = False
        scan = self.scanner.scan(buf)
        starts: list[np.ndarray] = []
        ends: list[np.ndarray] = []
        depths: list[np.ndarray] = []
        open_at = self._walk(buf, scan, starts, ends, depths)
        if self.end_at is not None and bytes(buf[self.end_at + 1 :]).strip(_WS):
            self.content_after()
        batch = None
        if starts:
            batch = self._elements(
                buf, np.concatenate(starts), np.concatenate(ends), np.concatenate(depths)
            )
        self._keep(buf, open_at)
        self.offset += len(buf)
        self.end_at = None
        return batch

    def _walk(
        self,
        buf: bytearray,
        scan: _Scan,
        starts: list[np.ndarray],
        ends: list[np.ndarray],
        depths: list[np.ndarray],
    ) -> int | None:
        """Apply the chunk's structure; returns where the open element starts in the chunk
        (None: it started in an earlier chunk, or no element is open)."""
        lvl = self.level
        pos, code, depth = scan.pos, scan.code, scan.depth
        before = depth - _DELTA[code]
        i, n = 0, len(pos)
        open_at: int | None = None
        while i < n:
            if self.state != "in_array":
                p = int(pos[i])
                self._top(buf, p, int(code[i]), int(before[i]), int(depth[i]))
                if self.state == "in_array":
                    open_at = p + 1
                    self.elem_depth = 0
                i += 1
                continue
            # The next structural byte that leaves the array's level closes the array.
            out = np.flatnonzero(depth[i:] < lvl)
            j = i + int(out[0]) if len(out) else n
            commas = np.flatnonzero((code[i:j] == _COMMA) & (depth[i:j] == lvl)) + i
            # Each element's deepest point: the maximum depth between its separators.
            seg = np.concatenate([[i], commas + 1])
            d = np.concatenate([depth[i:j], [lvl]])
            deepest = np.maximum.reduceat(d, seg - i) - lvl
            deepest[0] = max(int(deepest[0]), self.elem_depth)
            cut_pos = pos[commas]
            if j < n:
                cut_pos = np.concatenate([cut_pos, [pos[j]]])
            if len(cut_pos):
                starts.append(np.concatenate([[-1 if open_at is None else open_at], cut_pos[:-1]]))
                ends.append(cut_pos)
                depths.append(deepest[: len(cut_pos)])
                open_at = int(cut_pos[-1])  # the separator, made a space, leads the next one
            self.elem_depth = int(deepest[-1]) if j >= n else 0
            if j >= n:
                break
            if code[j] != _CLOSE_ARRAY:
                raise InputError("JSON", "the array is not closed where expected")
            self._close_array(buf, starts, ends, depths)
            open_at = None
            if self.wrapped:
                self.state = "after_value"
                self.top_start = self.offset + int(pos[j]) + 1
            else:
                self.state = "end"
                self.end_at = int(pos[j])
            i = j + 1
        if ends:
            buf_np = np.frombuffer(buf, dtype=np.uint8)
            for e in ends:
                buf_np[e[buf_np[e] == 0x2C]] = 0x20
        return open_at

    def _close_array(
        self,
        buf: bytearray,
        starts: list[np.ndarray],
        ends: list[np.ndarray],
        depths: list[np.ndarray],
    ) -> None:
        """The text before `]`: blank is an empty array, or else a trailing comma."""
        s, e = int(starts[-1][-1]), int(ends[-1][-1])
        strip = _WS + b","  # a separator is still a comma here
        blank = (
            not bytes(buf[s:e]).strip(strip)
            if s != -1
            else (not any(p.strip(strip) for p in self.pending) and not bytes(buf[:e]).strip(_WS))
        )
        if not blank:
            return
        if self.rec + sum(len(x) for x in starts) - 1 == 1:  # nothing before it: `[]`
            starts[-1], ends[-1], depths[-1] = starts[-1][:-1], ends[-1][:-1], depths[-1][:-1]
            return
        raise InputError("JSON", "the array ends with a trailing comma")

    def _top(self, buf: bytearray, p: int, code: int, before: int, after: int) -> None:
        """One structural byte of the document outside the records array."""
        ch = "[{]},:"[code - 1]
        st = self.state
        if st == "value" and before >= 2:
            return  # inside a member's value
        if st == "start":
            self._no_text(buf, p)
            if ch == ("{" if self.wrapped else "["):
                self.state = "key" if self.wrapped else "in_array"
                self.top_start = self.offset + p + 1
                return
            raise NotWrapped() if self.wrapped else InputError("JSON", "not a JSON array")
        if st == "key":
            if ch == "}" and self.members == 0:
                self._end_object(p)
                return
            if ch != ":":
                raise NotWrapped()
            self.key = self._key(buf, p)
            self.state = "value"
            self.top_start = self.offset + p + 1
            return
        if st == "value":
            if after == 2 and ch == "[" and self._wanted():
                if self._text(buf, p).strip(_WS):
                    raise NotWrapped()
                self.found_records = True
                self.state = "in_array"
                return
            if self.records is None:
                raise NotWrapped()  # the first member is not an array
            if ch in ",}":
                self._skip_value(buf, p)
                self._next_member(ch, p)
            return
        if st == "after_value":
            self._no_text(buf, p)
            self._next_member(ch, p)
            return
        self.content_after()

    def content_after(self) -> None:
        if self.wrapped:
            raise NotWrapped()  # e.g. JSON lines whose first record has one array member
        raise InputError("JSON", "content after the end of the document")

    def _wanted(self) -> bool:
        return self.members == 0 if self.records is None else self.key in self.records

    def _next_member(self, ch: str, p: int) -> None:
        self.members += 1
        if ch == "}":
            self._end_object(p)
        elif ch == "," and self.records is not None:
            self.state = "key"
            self.top_start = self.offset + p + 1
        elif ch == ",":
            raise NotWrapped(array_first=self.found_records)  # more than one member
        else:
            raise InputError("JSON", "the document is not valid JSON")

    def _end_object(self, p: int) -> None:
        if not self.found_records:
            raise NotWrapped()
        self.state = "end"
        self.end_at = p

    def _skip_value(self, buf: bytearray, p: int) -> None:
        """A member of the wrapper that holds no records must still be standard JSON."""
        try:
            json.loads(self._text(buf, p), parse_constant=_refuse)
        except (ValueError, RecursionError):
            raise InputError("JSON", "a member of the document is not valid JSON") from None

    def _text(self, buf: bytearray, p: int) -> bytes:
        """The document's text from top_start up to position p of the current chunk."""
        start = self.top_start - self.offset
        if start >= 0:
            return bytes(buf[start:p])
        return b"".join(self.top_text) + bytes(buf[:p])

    def _key(self, buf: bytearray, p: int) -> str:
        try:
            key = json.loads(self._text(buf, p))
        except ValueError:
            raise NotWrapped() from None
        if not isinstance(key, str):
            raise NotWrapped()
        return key

    def _no_text(self, buf: bytearray, p: int) -> None:
        if self._text(buf, p).strip(_WS):
            raise NotWrapped() if self.wrapped else InputError("JSON", "not a JSON array")

    def _elements(
        self, buf: bytearray, starts: np.ndarray, ends: np.ndarray, depths: np.ndarray
    ) -> JsonBatch | None:
        if not len(starts):
            return None
        parts: list[JsonBatch] = []
        first = 0
        if starts[0] == -1:
            head = b"".join(self.pending) + bytes(buf[: int(ends[0])])
            parts.append(_to_arrow(head, np.array([0, len(head)], dtype=np.int64), self.rec))
            self.rec += 1
            first = 1
        if first < len(starts):
            offsets = np.empty(len(starts) - first + 1, dtype=np.int64)
            offsets[0] = starts[first]
            offsets[1:] = ends[first:]
            parts.append(_to_arrow(buf, offsets, self.rec))
            self.rec += len(offsets) - 1
        batch = JsonBatch.concat(parts)
        deep = depths > MAX_DEPTH
        if deep.any():
            old = batch.pre_err.to_pylist()
            batch.pre_err = pa.array(
                [
                    o if o is not None or not d else "nested too deep"
                    for o, d in zip(old, deep, strict=True)
                ],
                pa.string(),
            )
        return batch

    def _keep(self, buf: bytearray, open_at: int | None) -> None:
        """Keep what the next chunk needs: the open element's start, or the wrapper's text."""
        if self.state == "in_array":
            if open_at is not None:
                self.pending = [bytes(buf[open_at:])]
            else:
                self.pending.append(bytes(buf))
            return
        self.pending = []
        start = self.top_start - self.offset
        if self.state in ("start", "key", "value", "after_value"):
            self.top_text = [bytes(buf[start:])] if start >= 0 else [*self.top_text, bytes(buf)]
        else:
            self.top_text = []

    def finish(self) -> None:
        if self.state == "end":
            return
        if self.wrapped and not self.found_records:
            raise NotWrapped()
        if self.state == "start":
            raise InputError("JSON", "not a JSON array")
        raise InputError("JSON", "the array is not closed (the file may be truncated)")


_DEPTH_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|([\[{])|([\]}])')


def json_depth(text: str | None) -> int:
    """The deepest nesting of a JSON text (brackets inside strings do not count)."""
    if text is None:
        return 0
    depth = deepest = 0
    for m in _DEPTH_TOKENS.finditer(text):
        if m.group(1):
            depth += 1
            deepest = max(deepest, depth)
        elif m.group(2):
            depth -= 1
    return deepest


def _refuse(name: str) -> None:
    raise ValueError(name)


def _to_arrow(buf: bytes | bytearray, offsets: np.ndarray, first_rec: int) -> JsonBatch:
    """The strings buf[offsets[i]:offsets[i + 1]], numbered from first_rec."""
    n = len(offsets) - 1
    raw, errs = arrow_texts(buf, offsets)
    return JsonBatch(np.arange(first_rec, first_rec + n, dtype=np.int64), raw, errs, strict=True)


def _first_bytes_together(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks, the first one at least 4 bytes long (a BOM or UTF-16 is seen whole)."""
    head = b""
    held: list[bytes] = []  # yielded from a list, so that no chunk is kept while suspended
    for chunk in chunks:
        if len(head) >= 4:
            held.append(chunk)
            del chunk
            yield held.pop()
            continue
        head += chunk
        del chunk
        if len(head) >= 4:
            held.append(head)
            head = b"...."  # (only its length matters from here on)
            yield held.pop()
    if len(head) < 4 and head:
        yield head


def iter_elements(
    chunks: Iterator[bytes], *, wrapped: bool = False, records: frozenset[str] | None = None
) -> Iterator[JsonBatch]:
    """The elements of the document's array, a batch per chunk that ends one.

    `wrapped`: the document is an object whose member named in `records` (None: its only
    member) is the array. Raises InputError when the document is not one complete array of
    standard JSON, NotWrapped when a wrapped document turns out not to be one. A chunk is
    scanned PIECE bytes at a time (the scanner's arrays are several times the bytes they
    cover), and its elements are yielded together.
    """
    sp = _Splitter(records, wrapped)
    for chunk in _first_bytes_together(chunks):
        n = len(chunk)
        view = memoryview(chunk)
        del chunk  # the pieces are copied: the chunk goes with the view
        parts: list[JsonBatch] = []
        for lo in range(0, n, PIECE):
            piece = view[lo : lo + PIECE]
            if sp.state == "end":
                if bytes(piece).strip(_WS):
                    sp.content_after()
                continue
            batch = sp.feed(piece)
            if batch is not None and len(batch.rec):
                parts.append(batch)
        del piece, view
        if parts:
            yield JsonBatch.concat(parts)
    sp.finish()
