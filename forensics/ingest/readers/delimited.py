"""`.csv` and `.tsv` (and, through readers/w3c.py, W3C `.log`): delimited text (SPEC §2.5).

`read_text_records`: in, a file's decompressed bytes, chunk by chunk; out, batches of
records whose every value is text (never type-guessed), each with its record number (the
physical line on which it starts), and the records that cannot be split — with line number,
reason and raw text. A record that cannot be read never costs the records around it; a file
whose header cannot be read fails whole (InputError). Memory is bounded by a chunk plus one
batch. The readers hand the records to the table stage as VARCHAR columns (TableBatch).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from forensics.errors import SURROGATE, InputError
from forensics.ingest.readers.base import Batch, Read, ReadContext, ReadEnd, Reader, TableBatch
from forensics.ingest.readers.source import read_text
from forensics.ingest.readers.text_lines import BLOCK_BYTES, LineSource

MIN_STRETCH = 256  # plain lines split by Arrow at a time, at least (see _Records)
BATCH_ROWS = 1 << 18  # records per batch (fewer when a W3C #Fields: directive changes columns)
# A quoted field may run over several lines while the record's lines hold at most this many
# characters (newlines counted); past it, or at the end of the file, its quote is unterminated.
MAX_RECORD = 1 << 20
# Python's csv module refuses a field longer than its limit (128 KiB by default); a field is
# bounded by MAX_RECORD here instead. The limit is process-wide: it is only ever raised.
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD))

UNTERMINATED = "unterminated quote"
MALFORMED = "malformed quoting"
TOO_FEW = "too few fields"
TOO_MANY = "too many fields"
BAD_UTF8 = "invalid UTF-8"
NUL = "NUL character in the record"

NOT_DIRECTIVE = "a line starting with # that is not a W3C directive (#Name: ...)"

# Arrow scalars made once: pyarrow converts a Python value on every call, and tries to
# import dateutil each time it does (a file-system search when it is not installed).
_EMPTY = pa.scalar("", pa.string())
_DASH = pa.scalar("-", pa.string())
_NULL = pa.scalar(None, pa.string())

# `#Name:`; a name may hold spaces (Windows Firewall writes `#Time Format: Local`).
_DIRECTIVE = re.compile(r"#[A-Za-z][A-Za-z0-9 _-]*:")


@dataclass
class TextBatch:
    """Records of one header: their line numbers and one text column per name.

    `columns[i][j]` is the value of `names[i]` in the j-th record read; None is an empty
    value (an empty field, or `-` in W3C): text has no other way to write a missing one.
    `rejects` holds the records of the same stretch that could not be split.
    """

    names: tuple[str, ...]
    rec: np.ndarray
    columns: list[pa.Array]
    rejects: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw)

    @property
    def num_rows(self) -> int:
        return len(self.rec)

    def table(self, rec_name: str) -> pa.Table:
        """The records read as an Arrow table of strings, with the line numbers as `rec_name`."""
        arrays = [*self.columns, pa.array(self.rec, pa.int64())]
        return pa.Table.from_arrays(arrays, names=[*self.names, rec_name])


@dataclass(frozen=True)
class Dialect:
    """How a file's lines become fields. `w3c`: `#` directives, `-` empty (SPEC §2.5)."""

    delimiter: str  # "," or "\t"; W3C lines are split on tabs when they hold one, else spaces
    quoting: bool  # RFC 4180 double quotes (CSV only)
    w3c: bool = False


CSV = Dialect(",", quoting=True)
TSV = Dialect("\t", quoting=False)
W3C = Dialect("\t", quoting=False, w3c=True)
DIALECTS = {"csv": CSV, "tsv": TSV, "log": W3C}


def read_text_records(
    chunks: Iterator[bytes],
    dialect: Dialect,
    *,
    fast: bool = True,
    batch_rows: int = BATCH_ROWS,
    max_record: int = MAX_RECORD,
    min_stretch: int = MIN_STRETCH,
    block_bytes: int = BLOCK_BYTES,
    notes: list[str] | None = None,
) -> Iterator[TextBatch]:
    """The file's records in batches; raises InputError when the file cannot be read.

    `fast=False` reads every line one by one (the same records; for tests). What was done
    to read the header (a column named here) is appended to `notes`.
    """
    reader = _Records(LineSource(chunks, block_bytes), dialect, fast)
    if notes is not None:
        reader.notes = notes
    reader.batch_rows, reader.max_record, reader.min_stretch = batch_rows, max_record, min_stretch
    yield from reader.batches()


# --------------------------------------------------------------------------- records


class _Records:
    """Assembles records from lines, checks their field counts, and batches them.

    Two paths give the same records: stretches of plain lines (no quote in CSV, no `#`
    directive in W3C, no NUL, valid UTF-8) are split by Arrow's kernels, a stretch at a
    time; any other line is read on its own by `_split_records` (which may take more lines
    for a quoted newline). `fast=False` reads every line the second way (for tests).
    """

    def __init__(self, src: LineSource, dialect: Dialect, fast: bool = True) -> None:
        self.src = src
        self.d = dialect
        self.fast = fast
        self.batch_rows = BATCH_ROWS
        self.max_record = MAX_RECORD
        self.min_stretch = MIN_STRETCH
        self.names: tuple[str, ...] | None = None
        self.notes: list[str] = []  # for the sources row: columns named here (_header)
        self._parts: list[tuple[np.ndarray, list[pa.Array]]] = []
        self._n_parts = 0
        self._rec: list[int] = []
        # The values of the records read one by one, row after row, in one flat list (a
        # list per row would be millions of objects for the garbage collector to walk).
        self._flat: list[str | None] = []
        self._rejects: list[tuple[int, str, str]] = []
        # Plain stretches of the current block: its lines as Arrow, and the indices of the
        # lines that must be read one by one; computed once per block (its generation).
        self._block: tuple[int, pa.Array, list[tuple[int, int]], str] | None = None
        self._stretch = 0  # the first of the block's stretches not yet passed
        self._slow_until = (-1, 0)  # (generation, index): lines before it are not plain
        self._csv: Iterator[list[str]] | None = None  # reads quoted records (see _quoted)
        self._start = 0
        self._fed = 0

    # -- batches -------------------------------------------------------------------
    def _rows_to_part(self) -> None:
        if self._rec and self.names is not None:
            n = len(self.names)
            if self.d.w3c:
                flat = [None if not v or v == "-" else v for v in self._flat]
            else:
                flat = [v or None for v in self._flat]
            cols = [pa.array(flat[i::n], pa.string()) for i in range(n)]
            self._parts.append((np.array(self._rec, dtype=np.int64), cols))
            self._n_parts += len(self._rec)
            self._rec, self._flat = [], []

    def _pending(self) -> int:
        return self._n_parts + len(self._rec) + len(self._rejects)

    def _flush(self) -> TextBatch | None:
        self._rows_to_part()
        if self.names is None or not (self._parts or self._rejects):
            return None
        n = len(self.names)
        if self._parts:
            rec = np.concatenate([r for r, _ in self._parts])
            cols = [pa.concat_arrays([c[i] for _, c in self._parts]) for i in range(n)]
        else:
            rec = np.empty(0, np.int64)
            cols = [pa.array([], pa.string()) for _ in range(n)]
        batch = TextBatch(self.names, rec, cols, self._rejects)
        self._parts, self._n_parts, self._rejects = [], 0, []
        return batch

    def batches(self) -> Iterator[TextBatch]:
        yielded = False
        for item in self._split_records():
            if len(item) == 4:
                b = self._take(*item)
            elif not item:
                b = None  # records taken in place (_csv_run)
            else:
                self._rows_to_part()
                self._parts.append(item)
                self._n_parts += len(item[0])
                b = None
            if b is None and self._pending() >= self.batch_rows:
                b = self._flush()
            if b is not None:
                yielded = True
                yield b
        if (b := self._flush()) is not None:
            yield b
        elif not yielded and self.names is not None:
            # A header and no record: the header still tells the file's fields (and kind).
            yield TextBatch(
                self.names, np.empty(0, np.int64), [pa.array([], pa.string()) for _ in self.names]
            )

    def _take(
        self, line_no: int, fields: list[str | None] | None, err: str | None, raw: str
    ) -> TextBatch | None:
        """Take one record (or header); returns a batch when a new header ends one."""
        if err is not None:
            if self.names is None:
                what = "W3C" if self.d.w3c else "header"
                raise InputError(what, f"line {line_no} cannot be read ({err})")
            self._rejects.append((line_no, err, raw))
        elif fields is None:  # a W3C #Fields: directive (raw holds its names)
            names = _header(raw.split(), line_no, self.notes)
            if names != self.names:
                b = self._flush()
                self.names = names
                return b
        elif self.names is None:
            if self.d.w3c:
                raise InputError(
                    "W3C",
                    f"line {line_no} holds a record before any #Fields: directive "
                    "(not a W3C extended log file?)",
                )
            self.names = _header(fields, line_no, self.notes)
            _check_separator(self.names, self.d, line_no)
        elif len(fields) != len(self.names):
            self._rejects.append(
                (line_no, TOO_FEW if len(fields) < len(self.names) else TOO_MANY, raw)
            )
        else:
            self._rec.append(line_no)
            self._flat.extend(fields)
        return None

    def _empty_is_null(self, col: pa.Array) -> pa.Array:
        """An empty value — and `-` in W3C — is a missing one (NULL)."""
        import pyarrow.compute as pc  # imported here: 34 ms that JSON and Parquet never use

        empty = pc.equal(col, _EMPTY)
        if self.d.w3c:
            empty = pc.or_(empty, pc.equal(col, _DASH))
        if not pc.any(empty).as_py():
            return col
        return pc.if_else(empty, _NULL, col)

    # -- plain stretches, split by Arrow -------------------------------------------------
    def _plain_until(self) -> int:
        """How far from `src.pos` the lines are plain (an index into src.lines)."""
        import pyarrow.compute as pc  # see _empty_is_null

        src, d = self.src, self.d
        if not self.fast or self.names is None or src.dirty:
            return src.pos
        if self._block is None or self._block[0] != src.generation:
            arr = pa.array(src.lines, pa.string())
            odd = pc.match_substring(arr, "\x00")
            sep = d.delimiter
            if d.quoting:
                odd = pc.or_(odd, pc.match_substring(arr, '"'))
            if d.w3c:
                odd = pc.or_(odd, pc.starts_with(arr, "#"))
                if pc.any(pc.match_substring(arr, "\t")).as_py():
                    # Lines without a tab are split on spaces: read those one by one.
                    no_tab = pc.and_(
                        pc.invert(pc.match_substring(arr, "\t")),
                        pc.not_equal(pc.utf8_rtrim(arr, "\r"), _EMPTY),
                    )
                    odd = pc.or_(odd, no_tab)
                else:
                    sep = " "
            # The stretches of plain lines between odd ones that are split by Arrow: those of
            # min_stretch lines or more (each Arrow call costs tens of microseconds, so a
            # short stretch is read line by line), and the block's last one.
            at = np.flatnonzero(odd.to_numpy(False))
            n = len(src.lines)
            starts = np.concatenate([[0], at + 1])
            ends = np.concatenate([at, [n]])
            keep = (ends > starts) & ((ends - starts >= self.min_stretch) | (ends == n))
            stretches = list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))
            self._block = (src.generation, arr, stretches, sep)
            self._stretch = 0
        stretches, i = self._block[2], self._stretch
        while i < len(stretches) and stretches[i][1] <= src.pos:
            i += 1
        self._stretch = i
        if i < len(stretches) and stretches[i][0] <= src.pos:
            return int(stretches[i][1])
        # Lines up to the next stretch are read one by one, without asking again.
        nxt = stretches[i][0] if i < len(stretches) else len(src.lines)
        self._slow_until = (src.generation, nxt)
        return src.pos

    def _plain(self, end: int) -> tuple[np.ndarray, list[pa.Array]]:
        """Split lines src.pos..end (all plain): the good records; rejects are noted."""
        import pyarrow.compute as pc  # see _empty_is_null

        src, names, block = self.src, self.names or (), self._block
        if block is None:  # cannot happen: _plain_until computed it
            raise RuntimeError("no block to split")
        _, arr, _, sep = block
        start = src.pos
        seg = arr.slice(start, end - start)
        src.pos = end
        if pc.any(pc.ends_with(seg, "\r")).as_py():
            seg = pc.replace_substring_regex(seg, "\r$", "")
        n = len(names)
        lists = pc.split_pattern(seg, sep)
        counts = pc.list_value_length(lists).to_numpy(False)
        blank = pc.equal(seg, _EMPTY).to_numpy(False)
        good = (counts == n) & ~blank
        base = src.base + start
        for i in np.flatnonzero(~good & ~blank):
            self._rejects.append(
                (int(base + i), TOO_FEW if counts[i] < n else TOO_MANY, seg[int(i)].as_py())
            )
        kept = lists.filter(pa.array(good))
        flat = kept.flatten()  # every kept record has exactly n values: column i is every n-th
        cols = [
            self._empty_is_null(flat.take(pa.array(np.arange(i, len(flat), n)))) for i in range(n)
        ]
        return np.flatnonzero(good).astype(np.int64) + base, cols

    # -- one record at a time ----------------------------------------------------------
    def _split_records(
        self,
    ) -> Iterator[
        tuple[int, list[str | None] | None, str | None, str]
        | tuple[np.ndarray, list[pa.Array]]
        | tuple[()]
    ]:
        """(line, fields, error, raw) per record — fields None and no error: a #Fields:
        line — or (line numbers, columns) of a plain stretch's good records, or () after
        records were taken in place."""
        src, d = self.src, self.d
        w3c, quoting, delim = d.w3c, d.quoting, d.delimiter
        while True:
            if src.pos >= len(src.lines) and not src.more(len(src.lines)):
                return
            slow = self._slow_until
            if slow[0] == src.generation and src.pos < slow[1]:
                end = src.pos
                if quoting and slow[1] - src.pos > 1:
                    before = src.pos
                    self._csv_run(slow[1])
                    if src.pos > before:
                        yield ()  # records were taken: time to see whether a batch is full
                        continue
                    # The run could not take its first record: that one is read on its own.
            else:
                end = min(self._plain_until(), src.pos + self.batch_rows - self._pending())
            if end > src.pos:
                part = self._plain(end)
                if len(part[0]):
                    yield part
                continue
            line = src.lines[src.pos]
            line_no = src.base + src.pos
            src.pos += 1
            if line.endswith("\r"):
                line = line[:-1]
            if not line:
                continue  # a blank line is not a record (its number still counts)
            if w3c and line.startswith("#"):
                if line.startswith("#Fields:"):
                    if self._bad_text(line) is not None:
                        raise InputError(
                            "W3C",
                            f"the #Fields: directive on line {line_no} is not valid UTF-8 text",
                        )
                    yield line_no, None, None, line[len("#Fields:") :]
                elif not _DIRECTIVE.match(line) and self.names is not None:
                    # Not `#Name:`: perhaps a record whose first value starts with `#`. Before
                    # the first #Fields:, where no record can be read, it is a comment.
                    yield line_no, None, NOT_DIRECTIVE, _printable(line)
                continue  # other directives (#Version:, #Date:, ...) carry no record
            bad = self._bad_text(line)
            if bad is not None:
                yield line_no, None, bad, _printable(line)
                continue
            if w3c:
                yield line_no, line.split("\t" if "\t" in line else " "), None, line  # type: ignore[misc]
            elif not quoting or '"' not in line:
                yield line_no, line.split(delim), None, line  # type: ignore[misc]
            else:
                yield self._quoted(line_no)

    def _csv_run(self, end: int) -> None:
        """Take the CSV records of lines src.pos..end, read by one csv reader in a row.

        The same records as reading them one by one (`_quoted`, then `_take`), for less per
        record. It stops when a batch is full, or at the first record it cannot take as it
        is — broken quoting, a record running past `end`, a NUL or invalid UTF-8 — leaving
        src.pos at that record's first line, for the one-by-one path to decide what it is.
        """
        src, names = self.src, self.names or ()
        n, base, room = len(names), src.base, self.batch_rows - self._pending()
        lines, start, done = src.lines, src.pos, 0
        recs, flat, rejects = self._rec, self._flat, self._rejects
        reader = csv.reader((line + "\n" for line in lines[start:end]), strict=True)
        try:
            for row in reader:
                a, b = start + done, start + reader.line_num  # the record's lines: [a, b)
                if not row:
                    done = reader.line_num
                    continue  # a blank line
                if b - a == 1:
                    raw = lines[a].removesuffix("\r")
                    if "\x00" in raw or (src.dirty and SURROGATE.search(raw)):
                        break
                else:
                    raw = "\n".join(lines[a:b]).removesuffix("\r")
                    if self._bad_text(raw) is not None:
                        break
                done = reader.line_num
                if len(row) == n:
                    recs.append(base + a)
                    flat.extend(row)
                else:
                    rejects.append((base + a, TOO_FEW if len(row) < n else TOO_MANY, raw))
                room -= 1
                if room <= 0:
                    break
        except csv.Error:
            pass
        src.pos = start + done

    def _bad_text(self, text: str) -> str | None:
        if self.src.dirty and SURROGATE.search(text):
            return BAD_UTF8
        if "\x00" in text:
            return NUL
        return None

    def _quoted(self, line_no: int) -> tuple[int, list[str | None] | None, str | None, str]:
        """A CSV record that holds a quote, read by Python's csv module (strict RFC 4180).

        The record may run over several lines (a quoted newline). If its quoting is broken,
        or a quote is still open at the end of the file or after MAX_RECORD characters, only
        its first line is rejected and reading goes on from the next line.
        """
        src = self.src
        self._start = src.pos - 1  # the record's first line (the index moves with blocks)
        src.pos = self._start  # where _feed goes on
        self._fed = 0
        if self._csv is None:
            self._csv = csv.reader(self._feed(), strict=True)
        try:
            row = next(self._csv)
        except (csv.Error, _TooLong, StopIteration) as e:
            reason = (
                MALFORMED
                if isinstance(e, csv.Error) and "unexpected end" not in str(e)
                else UNTERMINATED
            )
            self._csv = None  # a new reader for the next record (this one may be spent)
        else:
            raw = "\n".join(src.lines[self._start : src.pos]).removesuffix("\r")
            bad = self._bad_text(raw) if src.pos - self._start > 1 else None
            if bad is None:
                return line_no, row, None, raw  # type: ignore[return-value]
            reason = bad
        # Resynchronise: the lines after the first are read again, as records of their own.
        src.pos = self._start + 1
        return line_no, None, reason, _printable(src.lines[self._start].removesuffix("\r"))

    def _feed(self) -> Iterator[str]:
        """Lines from src.pos on, for the csv reader; it stops a record at MAX_RECORD."""
        src = self.src
        while True:
            if src.pos >= len(src.lines):
                keep = self._start
                if not src.more(keep):  # the lines before the record are let go
                    return
                self._start -= keep
                continue
            text = src.lines[src.pos]
            self._fed += len(text) + 1
            if self._fed > self.max_record and src.pos > self._start:
                raise _TooLong  # a record on one line may be longer: it holds no newline
            src.pos += 1
            yield text + "\n"


class _TooLong(Exception):
    """A quoted field ran past MAX_RECORD characters."""


def _printable(text: str) -> str:
    """Raw text for a rejects row: invalid UTF-8 (kept as surrogates) becomes U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _header(
    fields: list[str | None] | list[str], line_no: int, notes: list[str]
) -> tuple[str, ...]:
    """The column names of a header row; fails the file on no name or a repeated name.

    A column with an empty or blank name (a spreadsheet's trailing empty cells, a data
    frame's index) is an extra field like any other (SPEC §2.6): it is named `columnN` by
    its place (`columnN_2`, ... when a header already holds that name), and `notes` says so.
    Names are never echoed (a header may be a data row by mistake): columns are counted.
    """
    names = ["" if f is None else f for f in fields]
    if not names:
        raise InputError("header", f"line {line_no} names no column")
    taken = set(names)
    for i, n in enumerate(names, 1):
        if not n.strip():
            name, k = f"column{i}", 1
            while name in taken:
                k += 1
                name = f"column{i}_{k}"
            taken.add(name)
            names[i - 1] = name
            notes.append(f"column {i} of line {line_no} has no name: read as {name}")
    seen: dict[str, int] = {}
    for i, n in enumerate(names, 1):
        if n in seen:
            raise InputError(
                "header", f"line {line_no} names a column twice (columns {seen[n]} and {i})"
            )
        seen[n] = i
    return tuple(names)


def _check_separator(names: tuple[str, ...], dialect: Dialect, line_no: int) -> None:
    """Fails a file whose header is one column holding another separator: a spreadsheet's
    semicolon "CSV" (as European locales write it) would otherwise be read as one field."""
    if len(names) != 1:
        return
    for sep, label in ((";", "';'"), ("|", "'|'"), (",", "','"), ("\t", "tabs")):
        if sep != dialect.delimiter and sep in names[0]:
            ext, own = (".csv", "commas") if dialect.delimiter == "," else (".tsv", "tabs")
            raise InputError(
                "header",
                f"line {line_no} is one column holding {label}: {ext} files are split on "
                f"{own} only (convert it first; see the README, Delimited text)",
            )


# --------------------------------------------------------------------------- readers


def reader_of(dialect: Dialect) -> Read:
    """The Reader.read of a dialect: its records as VARCHAR columns, numbered by line."""

    def read(
        path: Path, compression: str | None, ctx: ReadContext
    ) -> Generator[Batch, None, ReadEnd]:
        fields: list[frozenset[str]] = []
        notes: list[str] = []

        def parse(chunks: Iterator[bytes]) -> Iterator[Batch]:
            for b in read_text_records(chunks, dialect, notes=notes):
                if not fields:
                    fields.append(frozenset(b.names))
                if b.num_rows or b.rejects:
                    rows = pa.RecordBatch.from_arrays(b.columns, names=list(b.names))
                    yield TableBatch(rows, int(b.rec[0]) if b.num_rows else 0, b.rec, b.rejects)

        end = yield from read_text(path, compression, ctx, parse)
        # The first header's names: a file with a header and no record still has a kind.
        return ReadEnd(end.sha256, fields[0] if fields else None, tuple(dict.fromkeys(notes)))

    return read


CSV_READER = Reader("CSV", (".csv",), reader_of(CSV))
TSV_READER = Reader("TSV", (".tsv",), reader_of(TSV))
