"""Storing a staged batch of small files (forensics.ingest.batch stages them): one
transaction for the batch, with a sources row, rejects and counts per file exactly as one
file at a time gives them; when anything fails, the batch's files are stored one at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from forensics import __version__
from forensics.errors import InputError
from forensics.ingest.batch import FILE_SHIFT, REC_MASK, BatchStaged, drop_batch
from forensics.ingest.key_index import KeyIndex
from forensics.ingest.options import FileResult, IngestOptions
from forensics.ingest.stage import Stage
from forensics.ingest.store import (
    _ALL_VALID,
    _EVENT_COLUMNS,
    _FIRSTS,
    Staged,
    rollback,
    run,
    store_file,
    stored_duplicates,
)


def store_batch(
    con: duckdb.DuckDBPyConnection,
    bs: BatchStaged,
    options: IngestOptions,
    known: dict[str, str],
    stage_one: Callable[[duckdb.DuckDBPyConnection, Path, bool], Staged],
    keys: KeyIndex | None = None,
) -> list[FileResult]:
    """Store a staged batch in one transaction; files already stored (or earlier in the
    batch) are skipped. When anything fails, the batch's files are stored one at a time.
    `keys` is the store's key index, when the run keeps one."""
    if bs.one_by_one:
        out = []
        for path, walked in bs.files:
            out.append(store_file(con, stage_one(con, path, walked), options, known, keys))
        return out
    try:
        lost = _store_together(con, bs, options, dict(known), keys)
    except (InputError, duckdb.Error):
        rollback(con)
        return _store_apart(con, bs, options, known, keys)
    except Exception:  # noqa: BLE001 - stored again one at a time, where it fails alone
        rollback(con)
        return _store_apart(con, bs, options, known, keys)
    except BaseException:
        rollback(con)
        drop_batch(con)
        raise
    drop_batch(con)
    for i in bs.members:
        r = bs.results[i]
        if i in lost:
            # As store_file says it: committed, yet the rows are not there (never retried).
            r.status, r.error = "failed", "the store did not keep this file's rows after commit"
        elif r.status == "loaded":
            known[r.sha256 or ""] = f"{r.kind}\0{r.path}"
    return bs.results


def _member_stage(
    con: duckdb.DuckDBPyConnection, bs: BatchStaged, i: int, options: IngestOptions
) -> Stage:
    """File i's rows of the batch stage, as the stage of that file alone."""
    stage = Stage(con, options)
    if i not in bs.with_lines:
        return stage  # nothing of it was staged, as when it is alone
    stage.kind = bs.stage.kind if bs.stage is not None else None
    if bs.stage is not None and bs.stage.staged:
        con.execute("drop table if exists temp.stage")
        con.execute(
            "create temp table stage as select * replace (rec & $mask as rec) "
            "from bstage where rec >> $shift = $i order by rec",
            {"mask": REC_MASK, "shift": FILE_SHIFT, "i": i},
        )
        stage.staged = True
    return stage


def _store_apart(
    con: duckdb.DuckDBPyConnection,
    bs: BatchStaged,
    options: IngestOptions,
    known: dict[str, str],
    keys: KeyIndex | None,
) -> list[FileResult]:
    """The batch's files stored one at a time, each in its own transaction."""
    for i, r in enumerate(bs.results):
        if i not in bs.members:
            continue
        r.status, r.error, r.kind = "failed", None, None
        stage = _member_stage(con, bs, i, options)
        bs.results[i] = store_file(con, Staged(r, stage, bs.sizes[i]), options, known, keys)
    drop_batch(con)
    return bs.results


def _store_together(
    con: duckdb.DuckDBPyConnection,
    bs: BatchStaged,
    options: IngestOptions,
    known: dict[str, str],
    keys: KeyIndex | None,
) -> set[int]:
    """Store the batch in one transaction; returns the files whose rows the commit lost."""
    stage = bs.stage
    kind = stage.kind if stage is not None else None
    if stage is not None and stage.mapper is not None:
        stage.mapper.finish(con)  # as write_file: a mapped field no record has fails
    to_store = _not_yet_stored(bs, options, known, kind)
    con.execute("begin transaction")
    staged = stage is not None and stage.staged
    if staged:
        skipped = [i for i in bs.members if i not in to_store]
        if skipped:
            con.execute(
                "delete from bstage where list_contains($skip, rec >> $shift)",
                {"skip": skipped, "shift": FILE_SHIFT},
            )
    if not to_store:
        con.execute("commit")
        return set()
    sid_of = _source_ids(con, to_store)
    counts = {i: [0, 0, 0] for i in to_store}  # read, rejected, loaded
    reasons: dict[int, dict[str, int]] = {i: {} for i in to_store}
    file_kind = {i: _file_kind(bs, i, kind, options) for i in to_store}
    if staged and kind is not None:
        _insert_rows(con, kind, sid_of, counts, reasons, keys)
    _insert_sources(con, bs, options, sid_of, counts, file_kind)
    if options.hooks.before_commit is not None:
        for i in to_store:
            options.hooks.before_commit(Path(bs.results[i].path))
    con.execute("commit")
    # HOSTILE_INPUTS #6: a COMMIT can report success and roll back; check what is there.
    lost: set[int] = set()
    if staged and kind is not None:
        after = _loaded(con, kind, min(sid_of.values()), max(sid_of.values()))
        lost = {i for i in to_store if after.get(sid_of[i], 0) != counts[i][2]}
    for i in to_store:
        r = bs.results[i]
        read, rej, ld = counts[i]
        r.kind = file_kind[i]
        r.status = "loaded"
        r.error = None
        r.rows_read, r.rows_rejected, r.rows_loaded = read, rej, ld
        r.rows_duplicate = read - rej - ld
        r.reasons = dict(sorted(reasons[i].items(), key=lambda kv: -kv[1]))
    return lost


def _not_yet_stored(
    bs: BatchStaged, options: IngestOptions, known: dict[str, str], kind: str | None
) -> list[int]:
    """The batch's files to store: not stored before, nor the same content earlier in it."""
    to_store: list[int] = []
    for i in bs.members:
        r = bs.results[i]
        sha = r.sha256 or ""
        if sha in known:
            r.status = "skipped"
            r.kind = known[sha].split("\0")[0]
            r.error = f"same content as {known[sha].split(chr(0))[1]}"
            continue
        # What a later file of the same content is said to be: this file's own kind.
        known[sha] = f"{_file_kind(bs, i, kind, options)}\0{r.path}"
        to_store.append(i)
    return to_store


def _file_kind(bs: BatchStaged, i: int, kind: str | None, options: IngestOptions) -> str:
    """File i's kind: the batch's, but a file without lines is of no kind, as it would be
    alone (unless --kind says)."""
    return (kind if i in bs.with_lines else None) or options.kind or "none"


def _source_ids(con: duckdb.DuckDBPyConnection, to_store: list[int]) -> dict[int, int]:
    """A source id for each file to store, in file order, also as temp table batch_files."""
    sids = sorted(
        int(r[0])
        for r in con.execute(
            "select nextval('source_ids') from range($n)", {"n": len(to_store)}
        ).fetchall()
    )
    con.register(
        "batch_files_in",
        pa.table({"file": pa.array(to_store, pa.int64()), "sid": pa.array(sids, pa.int64())}),
    )
    try:
        con.execute("create or replace temp table batch_files as select * from batch_files_in")
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister("batch_files_in")
    return dict(zip(to_store, sids, strict=True))


def _insert_rows(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    sid_of: dict[int, int],
    counts: dict[int, list[int]],
    reasons: dict[int, dict[str, int]],
    keys: KeyIndex | None,
) -> None:
    """The batch's rejects and rows stored; each file's counts and reasons filled in."""
    for f, n, rej in run(con, "batch_counts", {"shift": FILE_SHIFT}).fetchall():
        counts[int(f)][0:2] = [int(n), int(rej)]
    for f, err, n in run(con, "batch_reasons", {"shift": FILE_SHIFT}).fetchall():
        reasons[int(f)][str(err)] = int(n)
    run(con, "batch_insert_rejects", {"shift": FILE_SHIFT, "mask": REC_MASK})
    if kind == "events":
        _insert_batch_events(con, keys)
    else:
        run(con, f"batch_insert_{kind}", {"shift": FILE_SHIFT, "mask": REC_MASK})
    loaded = _loaded(con, kind, min(sid_of.values()), max(sid_of.values()))
    for i, sid in sid_of.items():
        counts[i][2] = loaded.get(sid, 0)


def _insert_sources(
    con: duckdb.DuckDBPyConnection,
    bs: BatchStaged,
    options: IngestOptions,
    sid_of: dict[int, int],
    counts: dict[int, list[int]],
    file_kind: dict[int, str],
) -> None:
    """One sources row per stored file of the batch."""
    now = datetime.now(timezone.utc)
    rows: list[dict[str, Any]] = []
    for i, sid in sid_of.items():
        r = bs.results[i]
        read, rej, ld = counts[i]
        rows.append(
            {
                "source_id": sid,
                "path": str(Path(r.path).resolve()),
                "kind": file_kind[i],
                "format": r.format,
                "size_bytes": bs.sizes[i],
                "sha256": r.sha256,
                "rows_read": read,
                "rows_loaded": ld,
                "rows_rejected": rej,
                "rows_duplicate": read - rej - ld,
                "ingested_at": now,
                "tool_version": __version__,
                "assume_tz": options.assume_tz,
                "map_sha256": options.mapping.sha256 if options.mapping is not None else None,
                "notes": None,
            }
        )
    con.register("batch_sources", pa.Table.from_pylist(rows, schema=_SOURCES_SCHEMA))
    try:
        run(con, "batch_insert_sources")
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister("batch_sources")


_SOURCES_SCHEMA = pa.schema(
    [
        ("source_id", pa.int64()),
        ("path", pa.string()),
        ("kind", pa.string()),
        ("format", pa.string()),
        ("size_bytes", pa.int64()),
        ("sha256", pa.string()),
        ("rows_read", pa.int64()),
        ("rows_loaded", pa.int64()),
        ("rows_rejected", pa.int64()),
        ("rows_duplicate", pa.int64()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("tool_version", pa.string()),
        ("assume_tz", pa.string()),
        ("map_sha256", pa.string()),
        ("notes", pa.string()),
    ]
)

_LOADED = {
    "events": "select source_id, count(*) from events where source_id between $lo and $hi "
    "group by 1",
    "grants": "select source_id, count(*) from grants where source_id between $lo and $hi "
    "group by 1",
    "accounts": "select source_id, count(*) from accounts where source_id between $lo and $hi "
    "group by 1",
}


def _loaded(con: duckdb.DuckDBPyConnection, kind: str, lo: int, hi: int) -> dict[int, int]:
    """Rows stored per source id, for the batch's ids."""
    return {int(s): int(n) for s, n in con.execute(_LOADED[kind], {"lo": lo, "hi": hi}).fetchall()}


def _insert_batch_events(con: duckdb.DuckDBPyConnection, keys: KeyIndex | None) -> None:
    """The batch's valid events that are not duplicates, as store._insert_events decides
    them for one file: the first record wins, in file order then record order (the batched
    numbers sort that way), within the batch and against everything stored."""
    before = int((con.execute("select count(*) from events").fetchone() or (0,))[0])
    run(con, "batch_file_keys")
    total, distinct_keys, with_id = (
        int(x) for x in (run(con, "file_key_totals").fetchone() or (0, 0, 0))
    )
    found = keys.look_up(con, total) if keys is not None else None
    seen = stored_duplicates(con, before, total, with_id, "batch_tuple_span", found)
    where = " where " + " and ".join(seen) if seen else ""
    firsts = (_FIRSTS if total - distinct_keys else _ALL_VALID).replace("from stage", "from bstage")
    con.execute(
        # Fixed fragments only (store.py's constants); values are bound.
        f"insert into events ({_EVENT_COLUMNS}, source_id, source_record, dkey) "  # noqa: S608
        f"select {_EVENT_COLUMNS}, b.sid, f.rec & $mask, dkey from ({firsts}) f "
        f"join batch_files b on b.file = f.rec >> $shift{where} order by f.rec",
        {"mask": REC_MASK, "shift": FILE_SHIFT},
    )
