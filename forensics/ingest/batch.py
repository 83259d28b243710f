"""Small files together (SPEC §2.6: thousands of small files cost little more than one file
of the same size), and files already stored found by their hash before they are read.

A batch is a run of consecutive small newline-delimited JSON files. Their lines are staged
by one statement into one stage, each record numbered `file << 32 | record` (FILE_SHIFT):
the stage's rules, de-duplication order and provenance are those of one file, and the
numbers split back into the file and its own record number when stored. The batch is then
stored in one transaction (forensics.ingest.batch_store), with a sources row, rejects and
counts per file exactly as one file at a time gives them (rows_read = rows_loaded +
rows_rejected + rows_duplicate each).

Whenever a batch cannot be taken as a whole — a file of another kind or of no decidable
kind, a staging statement or a store that fails, a hook that raises — its files are
staged and stored one at a time, each in its own transaction, as if there were no batch:
a file fails alone, and what it would have stored is not counted against the others.
"""

from __future__ import annotations

import contextlib
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from forensics.errors import InputError
from forensics.ingest.discover import file_format
from forensics.ingest.json_sql import parsed
from forensics.ingest.options import FileResult, IngestOptions
from forensics.ingest.readers import Batch, JsonBatch, ReadContext, ReadEnd, TableBatch, reader_for
from forensics.ingest.readers.delimited import CSV_READER, TSV_READER
from forensics.ingest.readers.json_lines import READER as JSON_LINES
from forensics.ingest.readers.source import sha256_file, stat_key
from forensics.ingest.readers.w3c import READER as W3C_READER
from forensics.ingest.stage import Stage, in_pieces
from forensics.ingest.store import (
    rollback,
    unexpected,
)
from forensics.sqltext import ident

FILE_SHIFT = 32  # a batched record's number: file << FILE_SHIFT | its own record number
REC_MASK = (1 << FILE_SHIFT) - 1
BATCH_TABLES = ("bstage", "batch_files", "file_keys", "maybe", "seen_ids", "seen_tuples")


# -- files already stored --------------------------------------------------------------
def stored_sizes(con: duckdb.DuckDBPyConnection) -> set[int]:
    """The sizes of the files in `sources`: only a file of one of them can be stored."""
    return {int(r[0]) for r in con.execute("select distinct size_bytes from sources").fetchall()}


def already_stored(path: Path, known: dict[str, str], sizes: set[int]) -> FileResult | None:
    """The `skipped` result of a file whose content is already stored, found by hashing it
    before it is read; None when it is not (or cannot be hashed: reading reports why).

    Only a file whose size some stored file has is hashed here: a new file is read once.
    """
    try:
        st = path.stat()
        fmt = file_format(path)
        if not stat.S_ISREG(st.st_mode) or fmt is None or st.st_size not in sizes:
            return None
        sha = sha256_file(path)
    except OSError:
        return None
    if sha not in known:
        return None
    kind, first = known[sha].split("\0", 1)
    return FileResult(
        str(path),
        kind=kind,
        format=fmt[0] + (f"+{fmt[1]}" if fmt[1] else ""),
        sha256=sha,
        status="skipped",
        error=f"same content as {first}",
    )


# -- which files are batched -------------------------------------------------------------
# Readers whose small files are batched: records as JSON text or as text columns.
BATCHED_READERS = (JSON_LINES, CSV_READER, TSV_READER, W3C_READER)


def batchable(path: Path, options: IngestOptions) -> tuple[str, int] | None:
    """The reader and size of a small JSON lines, CSV, TSV or W3C file (files of one reader
    batch together), else None.

    JSON lines read with a map are not batched: the map fails a file when none of its
    records has a field it names, which a batch would decide over all of its files. A text
    table's records all have its columns, so a batch of one header decides it as each file.
    """
    if options.tuning.batch_files < 2:
        return None
    fmt = file_format(path)
    if fmt is None or reader_for(fmt[0]) not in BATCHED_READERS:
        return None
    if options.mapping is not None and reader_for(fmt[0]) is JSON_LINES:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_size > options.tuning.small_file_bytes:
        return None
    return reader_for(fmt[0]).name, st.st_size


def in_batches(
    files: list[tuple[Path, bool]], options: IngestOptions
) -> list[list[tuple[Path, bool]]]:
    """The files in order, in units: runs of batchable files of one format (each a batch of
    up to batch_files files and chunk_bytes bytes) and every other file alone."""
    units: list[list[tuple[Path, bool]]] = []
    run_: list[tuple[Path, bool]] = []
    size = 0
    run_reader = None
    for f in files:
        small = batchable(f[0], options)
        if small is not None:
            reader, n = small
            if run_ and (
                len(run_) >= options.tuning.batch_files
                or size + n > options.tuning.chunk_bytes
                or reader != run_reader
            ):
                units.append(run_)
                run_, size = [], 0
            run_.append(f)
            run_reader = reader
            size += n
            continue
        if run_:
            units.append(run_)
            run_, size = [], 0
        units.append([f])
    if run_:
        units.append(run_)
    return units


# -- staging -------------------------------------------------------------------------------
@dataclass
class BatchStaged:
    """A batch read and staged on its connection (table temp.bstage), waiting to be stored.

    `members` are the files in the stage (their index in `files`); the others failed while
    read. `one_by_one`: the batch could not be taken as a whole; its files are staged and
    stored one at a time when its turn comes.
    """

    files: list[tuple[Path, bool]]
    results: list[FileResult]
    sizes: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    with_lines: set[int] = field(default_factory=set)  # members with at least one line
    stage: Stage | None = None
    one_by_one: bool = False


class _TooLarge(Exception):
    """The batch's text outgrew a chunk: its files are taken one at a time (bounded memory)."""


def _read_file(
    path: Path, read: Callable[[Path], Any], budget: int
) -> tuple[list[Batch], ReadEnd, int]:
    """A file's batches and end, and the bytes they hold; _TooLarge beyond budget."""
    batches = read(path)
    parts: list[Batch] = []
    held = 0
    while True:
        try:
            b = next(batches)
        except StopIteration as done:
            return parts, done.value, held
        held += b.raw.nbytes if isinstance(b, JsonBatch) else b.rows.nbytes
        if held > budget:
            batches.close()
            raise _TooLarge
        parts.append(b)


def stage_batch(
    con: duckdb.DuckDBPyConnection,
    files: list[tuple[Path, bool]],
    options: IngestOptions,
    ctx: ReadContext,
    read: Callable[[Path], Any],
) -> BatchStaged:
    """Read the batch's files (`read(path)`: a file's batches) and stage them in one
    statement. A file that cannot be read fails alone; never raises for a bad file."""
    results = [FileResult(str(p)) for p, _ in files]
    bs = BatchStaged(files, results)
    parts: list[JsonBatch] = []
    tables: list[tuple[int, TableBatch]] = []
    fields: dict[int, frozenset[str]] = {}  # a text table's columns, known without rows
    befores: dict[int, tuple[int, int, int]] = {}
    held = 0  # bytes of text held: more than a chunk's worth, and the files go one at a time
    for i, (path, _) in enumerate(files):
        r = results[i]
        fmt = file_format(path)
        r.format = fmt[0] + (f"+{fmt[1]}" if fmt and fmt[1] else "") if fmt else None
        try:
            st = path.stat()
            befores[i] = stat_key(path)
        except OSError as e:  # as stage_file says it
            r.error = f"cannot be opened ({e.strerror})"
            bs.sizes.append(0)
            continue
        try:
            batches, end, n = _read_file(path, read, ctx.tuning.chunk_bytes - held)
        except _TooLarge:
            bs.one_by_one = True
            return bs
        except InputError as e:
            r.error = e.one_line()
            bs.sizes.append(0)
            continue
        except Exception as e:  # noqa: BLE001 - SPEC §2.6: whatever it is, this file fails alone
            r.error = unexpected("reading", e).one_line()
            bs.sizes.append(0)
            continue
        bs.sizes.append(st.st_size)
        r.sha256 = end.sha256
        if end.notes:  # cannot happen for these readers; the notes belong on its own row
            bs.one_by_one = True
            return bs
        held += n
        if end.fields is not None:
            fields[i] = end.fields
        for b in batches:
            if isinstance(b, TableBatch):
                tables.append((i, b))
                continue
            recs = (np.int64(i) << FILE_SHIFT) | b.rec.astype(np.int64)
            parts.append(JsonBatch(recs, b.raw, b.pre_err, b.strict, b.maybe_deep))
        bs.members.append(i)
    if not bs.members:
        return bs
    try:
        if tables or fields:
            if parts:
                raise _NotOneKind
            _stage_members(con, bs, None, options, befores, (tables, fields))
        else:
            _stage_members(con, bs, parts, options, befores)
    except (InputError, duckdb.Error, _NotOneKind):
        rollback(con)
        drop_batch(con)
        bs.one_by_one = True
    except Exception as e:  # noqa: BLE001 - staged again one file at a time, where it fails alone
        del e
        rollback(con)
        drop_batch(con)
        bs.one_by_one = True
    except BaseException:
        rollback(con)
        drop_batch(con)
        raise
    return bs


class _NotOneKind(Exception):
    """The batch's files are not all of one decidable kind: taken one at a time."""


def _stage_members(
    con: duckdb.DuckDBPyConnection,
    bs: BatchStaged,
    parts: list[JsonBatch] | None,
    options: IngestOptions,
    befores: dict[int, tuple[int, int, int]],
    tables: tuple[list[tuple[int, TableBatch]], dict[int, frozenset[str]]] | None = None,
) -> None:
    stage = Stage(con, options)
    con.execute("begin transaction")
    if tables is not None:
        _stage_tables(stage, bs, *tables)
    lines = JsonBatch.concat(parts) if parts else None
    if lines is not None and len(lines.rec):
        batch = pa.table({"rec": lines.rec, "raw": lines.raw, "pre_err": lines.pre_err})
        # One Arrow chunk per file would have DuckDB evaluate the stage's expressions on
        # vectors of a file's few lines each: the per-vector cost would be the per-file cost
        # this module exists to avoid. One chunk, then cut for the threads.
        batch = in_pieces(batch.combine_chunks(), stage._threads(), options.tuning)
        con.register("batch_in", batch)
        try:
            keys = _keys_per_file(con)
            bs.with_lines = {int(f) for f in np.unique(lines.rec >> FILE_SHIFT)}
            kind = _one_kind(stage, bs, keys, bs.with_lines)
            if kind is not None:
                stage.kind = kind
                stage._maybe_deep = lines.maybe_deep
                all_keys: set[str] = set().union(*keys.values()) if keys else set()
                stage._stage_json(all_keys, f"({parsed('batch_in')})")
        finally:
            with contextlib.suppress(duckdb.Error):
                con.unregister("batch_in")
    elif options.kind is None:
        pass  # only empty files: each is stored as a file of no kind
    if not stage.staged and stage.kind is not None:
        stage._create(stage.kind)
    hooks = options.hooks
    for i in list(bs.members):
        path = bs.files[i][0]
        try:
            if hooks.after_stage is not None:
                hooks.after_stage(path)
            if stat_key(path) != befores[i]:
                raise InputError("file", "it changed while it was being read")
        except InputError as e:
            bs.results[i].error = e.one_line()
        except Exception as e:  # noqa: BLE001 - SPEC §2.6: this file fails alone
            bs.results[i].error = unexpected("reading", e).one_line()
        else:
            continue
        bs.members.remove(i)
        if stage.staged:
            con.execute("delete from stage where rec >> $shift = $i", {"shift": FILE_SHIFT, "i": i})
    if stage.staged:
        con.execute("alter table temp.stage rename to bstage")
    con.execute("commit")
    bs.stage = stage


def _stage_tables(
    stage: Stage,
    bs: BatchStaged,
    tables: list[tuple[int, TableBatch]],
    fields: dict[int, frozenset[str]],
) -> None:
    """Stage text tables (CSV, TSV, W3C) of one header together: their ragged lines as
    rejects, their rows in one table stage, numbered file << FILE_SHIFT | line."""
    names = {tuple(tb.rows.schema.names) for _, tb in tables}
    heads = set(fields.values())
    if len(names) > 1 or len(heads) > 1 or (names and heads and {frozenset(*names)} != heads):
        raise _NotOneKind  # different columns: each file is staged with its own
    columns = list(next(iter(names))) if names else sorted(next(iter(heads)))
    if stage.kind is None:
        stage.kind = stage.decide_kind(set(columns))
    bs.with_lines = set(fields) | {i for i, _ in tables}
    rejects = [
        ((i << FILE_SHIFT) | rec, why, raw) for i, tb in tables for rec, why, raw in tb.rejects
    ]
    if rejects:
        stage.add_rejects(columns, rejects)
    with_rows = [(i, tb) for i, tb in tables if tb.rows.num_rows]
    if not with_rows:
        return
    recs = np.concatenate(
        [
            np.int64(i) << FILE_SHIFT
            | (
                tb.rec.astype(np.int64)
                if tb.rec is not None
                else np.arange(tb.first_rec, tb.first_rec + tb.rows.num_rows, dtype=np.int64)
            )
            for i, tb in with_rows
        ]
    )
    rows = pa.Table.from_batches([tb.rows for _, tb in with_rows]).combine_chunks()
    stage.add_table(rows.to_batches()[0], recs)


def _keys_per_file(con: duckdb.DuckDBPyConnection) -> dict[int, set[str]]:
    """Each batched file's distinct top-level keys (of its records read without error)."""
    rows = con.execute(
        "select distinct rec >> $shift, unnest(try(json_keys(raw))) from batch_in "
        "where pre_err is null",
        {"shift": FILE_SHIFT},
    ).fetchall()
    keys: dict[int, set[str]] = {}
    for f, k in rows:
        keys.setdefault(int(f), set()).add(str(k))
    return keys


def _one_kind(
    stage: Stage, bs: BatchStaged, keys: dict[int, set[str]], with_lines: set[int]
) -> str | None:
    """The kind every batched file with lines has, each decided from its own keys as it
    would be alone; _NotOneKind when they differ or one cannot be decided from its keys."""
    if stage.kind is not None:
        return stage.kind
    kinds = set()
    for i in with_lines:
        if i not in keys:
            raise _NotOneKind  # lines but no JSON object: its kind is decided otherwise
        try:
            kinds.add(stage.decide_kind(keys[i]))
        except InputError:
            raise _NotOneKind from None
    if len(kinds) > 1:
        raise _NotOneKind
    return kinds.pop() if kinds else None


def drop_batch(con: duckdb.DuckDBPyConnection) -> None:
    for t in ("bstage", *BATCH_TABLES):
        with contextlib.suppress(duckdb.Error):
            con.execute(f"drop table if exists temp.{ident(t)}")
