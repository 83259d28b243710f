"""A staged file into the case store (SPEC §2.4, §3): in one transaction its rejects, its
new rows (de-duplicated against itself and everything stored) and its `sources` row, so that
`rows_read = rows_loaded + rows_rejected + rows_duplicate`; then a check that the commit
kept them. A bad file fails alone: its transaction and stage are dropped.

The fixed statements are in forensics/ingest/sql/*.sql (same header rules as queries/).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from forensics import __version__
from forensics.errors import InputError
from forensics.ingest.key_index import KeyIndex, staged_keys
from forensics.ingest.options import KINDS, FileResult, IngestOptions, IngestTuning
from forensics.ingest.stage import RAW_LIMIT, Stage
from forensics.queries import Query, parse_query
from forensics.sqltext import ident
from forensics.store import engine_error, interrupted

SQL_DIR = Path(__file__).resolve().parent / "sql"
TEMP_TABLES = ("stage", "parsed", "held")  # a file's temp tables, dropped with it


@cache
def statement(name: str) -> Query:
    """forensics/ingest/sql/<name>.sql, its header checked."""
    return parse_query(SQL_DIR / f"{name}.sql")


def run(
    con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Run one of ingest's statements with the parameters it declares."""
    q = statement(name)
    given = params or {}
    return con.execute(q.sql, {p: given[p] for p in q.params})


def _one(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: dict[str, Any] | None = None,
) -> tuple[int, ...]:
    row = run(con, name, params).fetchone()
    if row is None:
        raise InputError("store", f"{name} returned no row")
    return tuple(int(x) for x in row)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    if row is None:
        raise InputError("store", "a count query returned no row")
    return int(row[0])


# A file's rows in its kind's table, to check after COMMIT (HOSTILE_INPUTS #6).
_STORED_ROWS = {
    "events": "select count(*) from events where source_id = $sid",
    "grants": "select count(*) from grants where source_id = $sid",
    "accounts": "select count(*) from accounts where source_id = $sid",
}


@dataclass
class KeyPrep:
    """A staged events file's keys, counted and looked up in the key index (which then
    holds them) before its turn to be stored: see prepare_keys."""

    total: int  # valid events
    with_id: int  # of which with a request_id
    distinct: int  # distinct key hashes
    found: bool | None  # what the index said of them (KeyIndex.look_up_keys)
    order: str  # the ORDER BY it is stored with ('': as staged; _store_order)


@dataclass
class Staged:
    """A file read into its connection's stage, waiting to be stored (or already decided:
    `stage` is None when the file failed or was passed over before it was stored).

    `key_prep`: its keys, when they were looked up while the file before was stored.
    `looked_up` is set once this file makes no more lookups in the key index: files look
    their keys up in their order, each seeing the keys of every file before it.
    """

    result: FileResult
    stage: Stage | None = None
    size: int = 0
    key_prep: KeyPrep | None = None
    looked_up: threading.Event = field(default_factory=threading.Event)


def store_file(
    con: duckdb.DuckDBPyConnection,
    staged: Staged,
    options: IngestOptions,
    known: dict[str, str],
    keys: KeyIndex | None = None,
) -> FileResult:
    """Store a staged file in its own transaction (the one that made its stage, `con`).

    Files are stored one at a time, in order: each sees every file stored before it, for
    de-duplication and for `known` (content already stored). `keys` is the store's key
    index, when the run keeps one. Never raises for a bad file.
    """
    try:
        return _store_file(con, staged, options, known, keys)
    finally:
        staged.looked_up.set()


def _store_file(
    con: duckdb.DuckDBPyConnection,
    staged: Staged,
    options: IngestOptions,
    known: dict[str, str],
    keys: KeyIndex | None,
) -> FileResult:
    result, stage = staged.result, staged.stage
    if stage is None:
        return result
    sha = result.sha256 or ""
    if sha in known:
        rollback(con)  # drops the stage
        result.status = "skipped"
        result.kind = known[sha].split("\0")[0]
        result.error = f"same content as {known[sha].split(chr(0))[1]}"
        return result
    try:
        con.execute("begin transaction")
        counts = write_file(
            stage,
            {
                "path": str(Path(result.path).resolve()),
                "format": result.format,
                "size_bytes": staged.size,
                "sha256": sha,
                "ingested_at": datetime.now(timezone.utc),
                "tool_version": __version__,
                "assume_tz": options.assume_tz,
                "map_sha256": options.mapping.sha256 if options.mapping is not None else None,
            },
            keys,
            staged,
        )
        reasons = run(con, "stage_reasons").fetchall() if stage.staged else []
        for t in TEMP_TABLES:
            con.execute(f"drop table if exists temp.{ident(t)}")
        if options.hooks.before_commit is not None:
            options.hooks.before_commit(Path(result.path))
        con.execute("commit")
    except (InputError, duckdb.Error) as e:
        fail(con, result, e)
        return result
    except Exception as e:  # noqa: BLE001 - SPEC §2.6: whatever it is, this file fails alone
        fail(con, result, unexpected("storing", e))
        return result
    except BaseException:
        rollback(con)
        raise
    # HOSTILE_INPUTS #6: a COMMIT can report success and roll back; check what is there.
    kind = stage.kind or "none"
    if kind in KINDS:
        stored = con.execute(_STORED_ROWS[kind], {"sid": counts["source_id"]}).fetchone()
        if not stored or int(stored[0]) != counts["rows_loaded"]:
            result.error = "the store did not keep this file's rows after commit"
            return result
    result.kind = kind
    result.status = "loaded"
    result.rows_read = counts["rows_read"]
    result.rows_loaded = counts["rows_loaded"]
    result.rows_rejected = counts["rows_rejected"]
    result.rows_duplicate = counts["rows_duplicate"]
    result.reasons = {str(r): int(c) for r, c in reasons}
    known[sha] = f"{kind}\0{result.path}"
    return result


def write_file(
    stage: Stage,
    source_row: dict[str, Any],
    keys: KeyIndex | None = None,
    staged: Staged | None = None,
) -> dict[str, int]:
    """Write the stage's rejects, new rows and the sources row; returns the row counts.
    `staged`: the file's key_prep and looked_up (store_file's)."""
    con = stage.con
    if stage.mapper is not None:
        stage.mapper.finish(con)  # a mapped field that no record has fails the file
    kind = stage.kind
    if kind is None:
        # An empty file: nothing to store, but it is accounted for.
        kind = stage.options.kind or "none"
    sid = _scalar(con, "select nextval('source_ids')")
    counts = {"rows_read": 0, "rows_loaded": 0, "rows_rejected": 0, "rows_duplicate": 0}
    if stage.staged:
        if _temp_table_exists(con, "held"):
            run(con, "stage_held", {"limit": RAW_LIMIT})
        counts["rows_read"], counts["rows_rejected"] = _one(con, "stage_counts")
        run(con, "insert_rejects", {"sid": sid})
        counts["rows_loaded"] = _insert_rows(con, kind, sid, stage.tuning, keys, staged)
        counts["rows_duplicate"] = (
            counts["rows_read"] - counts["rows_rejected"] - counts["rows_loaded"]
        )
    elif _temp_table_exists(con, "held") and (held := _one(con, "held_encoding"))[0]:
        # Records, none of them a JSON object (a file of blank lines only holds none).
        n, bad = held
        if n == bad:
            raise InputError(
                "kind",
                "no record is UTF-8 text (the file looks like another encoding), so its kind "
                "cannot be told; pass --kind to keep its records as rejects",
            )
        raise InputError(
            "kind", "no record is a JSON object, so its kind cannot be told; pass --kind"
        )
    run(
        con,
        "insert_source",
        dict(source_row, kind=kind, source_id=sid, notes="; ".join(stage.notes) or None, **counts),
    )
    stage.kind = kind
    counts["source_id"] = sid
    return counts


def _temp_table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(_one(con, "temp_table_exists", {"name": name})[0])


def _insert_rows(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    sid: int,
    tuning: IngestTuning,
    keys: KeyIndex | None,
    staged: Staged | None = None,
) -> int:
    if kind == "events":
        return _insert_events(con, sid, tuning, keys, staged)
    row = run(con, f"insert_{kind}", {"sid": sid}).fetchone()
    return int(row[0]) if row else 0


# The first valid record of each de-duplication key, when the file repeats a key hash.
_FIRSTS = (
    "select * from stage where err is null qualify row_number() over (partition by "
    "request_id, case when request_id is null then struct_pack(ts := ts, "
    "action := action, user_id := user_id, device_id := device_id, "
    "event_id := event_id, status := status) end order by rec) = 1"
)
_ALL_VALID = "select * from stage where err is null"
_NOT_SEEN_ID = "not exists (select 1 from seen_ids d where d.request_id = f.request_id)"
_NOT_SEEN_TUPLE = (
    "not exists (select 1 from seen_tuples d where f.request_id is null"
    " and d.ts = f.ts and d.action = f.action and d.user_id = f.user_id"
    " and d.device_id is not distinct from f.device_id"
    " and d.event_id is not distinct from f.event_id"
    " and d.status is not distinct from f.status)"
)
_EVENT_COLUMNS = "ts, action, user_id, device_id, event_id, request_id, status, extra"


def prepare_keys(
    con: duckdb.DuckDBPyConnection, tuning: IngestTuning, keys: KeyIndex | None
) -> KeyPrep | None:
    """The staged file's key totals, its hashes looked up in the key index (which adds
    them), and the order it goes in with. Only for a file whose hashes fit in one key
    run, when the run keeps an index (else None: _insert_events takes the other path).
    Reads only the stage and the index: pipeline._overlap runs it on the staging
    connection while the file before is still being stored, once that file's own lookup
    is done."""
    total, with_id = _one(con, "stage_key_totals")
    if keys is None or total > tuning.key_run_max:
        return None
    hashes = staged_keys(con)
    found = keys.look_up_keys(hashes)
    order = _store_order(con, tuning, total, repeats=total != len(hashes))
    return KeyPrep(total, with_id, len(hashes), found, order)


def _insert_events(
    con: duckdb.DuckDBPyConnection,
    sid: int,
    tuning: IngestTuning,
    keys: KeyIndex | None,
    staged: Staged | None = None,
) -> int:
    """Insert the file's valid events that are not duplicates (SPEC §2.4).

    The same request_id is one event; without one, the same (ts, action, user_id,
    device_id, event_id, status). The first record wins, within the file and against
    everything already stored. Set-based, on the 64-bit key hash (store.DKEY): the
    file's hashes (fetched and sorted in NumPy when they fit in one key run, else grouped
    by DuckDB a hash range at a time) are looked up in the key index (`keys`, when the run
    keeps one); only when one is found there, or there is no index, do they find the few
    stored rows that may be the same event (a scan of one integer column), those rows'
    real keys are read by rowid, and only exact equality makes a duplicate. The
    within-file pass runs only when the file repeats a hash.
    """
    before = _scalar(con, "select count(*) from events")
    # A hash collision can only lower the distinct count: "no repeats" is never wrong.
    # The file's key hashes, once: their counts, and the probe into the stored ones.
    prep = staged.key_prep if staged is not None else None
    if prep is None:
        prep = prepare_keys(con, tuning, keys)
    if prep is not None:
        total, with_id, distinct_keys, found = prep.total, prep.with_id, prep.distinct, prep.found
        if before and total and found is not False:
            run(con, "file_keys")  # the store is searched for them (rare)
    else:
        run(con, "file_keys")
        total, distinct_keys, with_id = _one(con, "file_key_totals")
        found = keys.look_up(con, total) if keys is not None else None
    if staged is not None:
        staged.looked_up.set()
    seen = stored_duplicates(con, before, total, with_id, "file_tuple_span", found)
    where = " where " + " and ".join(seen) if seen else ""
    # Rows go in as staged, in the file's own order (_store_order): a file in time order
    # then fills each row group with a narrow time range (zone maps skip most of the table
    # for a window). Only a file in time order that repeats a key hash is sorted, by
    # buckets of about a row group: the window qualifier that picks its first records does
    # not keep the order.
    if prep is not None:
        order = prep.order
    else:
        order = _store_order(con, tuning, total, repeats=total != distinct_keys)
    firsts = _FIRSTS if total - distinct_keys else _ALL_VALID
    con.execute(
        # Fixed fragments only (this module's constants); the source id is bound.
        f"insert into events ({_EVENT_COLUMNS}, source_id, source_record, dkey) "  # noqa: S608
        f"select {_EVENT_COLUMNS}, $sid, rec, dkey from ({firsts}) f{where}{order}",
        {"sid": sid},
    )
    for t in ("file_keys", "maybe", "seen_ids", "seen_tuples"):
        con.execute(f"drop table if exists temp.{ident(t)}")
    return _scalar(con, "select count(*) from events") - before


def stored_duplicates(
    con: duckdb.DuckDBPyConnection,
    stored: int,
    total: int,
    with_id: int,
    span: str,
    found: bool | None = None,
) -> list[str]:
    """The conditions that keep the staged keys (temp table file_keys) already stored out.

    Stored rows sharing a hash with the staged keys (rowids only), then their exact keys:
    `seen_ids` and `seen_tuples` hold the staged keys that really are stored. `span` names
    the statement giving the least and greatest ts of the staged valid events without
    request_id (one file's stage, or a batch's). `found` is what the key index said of the
    staged hashes (None: no index, or it cannot say); when it says that none is stored,
    nothing is looked up in the store.
    """
    seen: list[str] = []
    if stored and total and found is not False:
        _stored_matches(con, with_id, total - with_id, span)
        # No stored row shares a hash with the file (the usual case): nothing to check.
        maybe_any = _scalar(con, "select count(*) from maybe") > 0
        if with_id and maybe_any:
            run(con, "seen_ids")
            seen.append(_NOT_SEEN_ID)
        if total - with_id and maybe_any:
            run(con, "seen_tuples")
            seen.append(_NOT_SEEN_TUPLE)
    return seen


def _stored_matches(
    con: duckdb.DuckDBPyConnection, with_id: int, without_id: int, span: str
) -> None:
    """The rowids of the stored events that share a key hash with the file, into `maybe`.

    A request_id's duplicate may be stored with any ts, so those hashes are looked up among
    all stored ones; a key without request_id holds ts, so its duplicates lie within the
    file's time range, and the stored row groups outside it are skipped by their zone maps.
    """
    if with_id:
        run(con, "stored_key_matches")
    else:
        con.execute("create or replace temp table maybe (rid bigint)")
    if without_id:
        row = run(con, span).fetchone()
        if row is None or row[0] is None:
            raise InputError("store", f"{span} returned no time range")
        run(con, "stored_tuple_matches", {"lo": row[0], "hi": row[1]})


def _store_order(
    con: duckdb.DuckDBPyConnection, tuning: IngestTuning, rows: int, repeats: bool
) -> str:
    """The ORDER BY the stage's `rows` valid events are stored with: none, so that they go
    in as staged, in the file's own order, unless `repeats` (the file repeats a key hash)
    scrambles that order and the file was in time order; then by time in buckets of about
    a row group each.

    Zone maps skip row groups (in_order_group rows) and finer column segments. A file in
    time order fills each with a narrow stretch of time. Whether it is in time order: cut
    the file order into runs of in_order_block records and into runs of in_order_group; at
    each size, the runs together may span at most in_order_slack times the file's whole
    range (1.0 when sorted; a file in random order spans it once per run). A log written
    as things happen passes despite a little jitter. Its first records are picked by a
    window, whose output is in no order, so it is sorted back by its time range cut into
    as many equal buckets as it fills row groups: each row group then covers about one
    bucket, as narrow as an exact sort would make it on evenly spread times, and sorting
    few distinct keys cost 15% less (4.9M events: 1.62 s against 1.93 s by exact time).

    A file out of time order is not sorted: for 10M events in random order the sort cost
    3.5-5 s of a 10-13 s ingest on 2 cores, and saved each `exposure` 0.1-0.2 s, most of
    it in the lookup of the unauthorized rows (bench/README.md, "A new machine").
    """
    if not repeats:
        return ""
    fine, whole, coarse = _one(
        con,
        "stage_time_spread",
        {
            "block": tuning.in_order_block,
            "per_group": tuning.in_order_group // tuning.in_order_block,
        },
    )
    slack = tuning.in_order_slack
    if fine > slack * whole or coarse > slack * whole:
        return ""
    groups = max(1, -(-rows // tuning.in_order_group))
    width = max(1, -(-(int(whole) + 1) // groups))  # microseconds
    return f" order by epoch_us(ts) // {width}"


def fail(
    con: duckdb.DuckDBPyConnection,
    result: FileResult,
    e: InputError | duckdb.Error,
    stage: str = "store",
) -> None:
    """A bad file: its transaction and stage are dropped, its result carries the error
    (an engine's, labelled with the `stage` it failed in: staging, store).
    After Ctrl-C (which DuckDB reports as the running statement's error) the file did not
    fail: the ingest stops, with this file not stored."""
    rollback(con)
    if interrupted():
        raise KeyboardInterrupt
    result.error = (e if isinstance(e, InputError) else engine_error(stage, e)).one_line()


def unexpected(stage: str, e: Exception) -> InputError:
    """A file's one-line error for an exception nothing expected: its type, never its
    text (which may quote a record)."""
    if isinstance(e, MemoryError):
        return InputError(stage, "ran out of memory")
    if isinstance(e, RecursionError):
        return InputError(stage, "the data is nested too deeply to be processed")
    return InputError(stage, f"failed unexpectedly ({type(e).__name__})")


# A batch's own stage (forensics.ingest.batch): its files are stored one at a time from it
# after one of them fails, and the batch drops it itself once they all are.
_BATCH_STAGE = ("bstage", "batch_files")


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the file's open transaction and every temp table of its connection (a file is
    staged in several transactions: what they committed goes too), but a batch's stage.
    Settings are not transactional: one a failed statement left changed is reset."""
    with contextlib.suppress(duckdb.Error):
        con.execute("rollback")
    with contextlib.suppress(duckdb.Error):
        con.execute("reset preserve_insertion_order")  # stage.insert_unordered's
    with contextlib.suppress(duckdb.Error):
        names = [r[0] for r in run(con, "temp_tables").fetchall()]
        for t in names:
            if t in _BATCH_STAGE:
                continue
            with contextlib.suppress(duckdb.Error):
                con.execute(f"drop table if exists temp.{ident(t)}")
