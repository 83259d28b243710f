"""An ingest run: files read ahead in a thread, each staged while the one before it is
stored, and stored one at a time in order (SPEC §3: one transaction per file).

Reading (decompressing, hashing, splitting lines) is Python's work, staging and storing are
DuckDB's: overlapping them keeps both cores busy. None of it changes what is stored.
Files already stored are found by hash before they are read, and runs of small files are
staged and stored as batches (forensics.ingest.batch); each file's outcome is the same.
"""

from __future__ import annotations

import contextlib
import queue
import stat
import threading
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from forensics.errors import InputError, UsageError, engine_message
from forensics.ingest.batch import (
    BatchStaged,
    already_stored,
    in_batches,
    stage_batch,
    stored_sizes,
)
from forensics.ingest.batch_store import store_batch
from forensics.ingest.discover import discover, file_format, supported, total_size
from forensics.ingest.key_index import KeyIndex
from forensics.ingest.options import (
    KINDS,
    FileResult,
    IngestCutShort,
    IngestOptions,
    IngestReport,
    IngestTuning,
    Progress,
)
from forensics.ingest.readers import (
    Batch,
    ReadContext,
    ReadEnd,
    Reader,
    TableBatch,
    reader_for,
)
from forensics.ingest.readers.source import stat_key
from forensics.ingest.stage import Stage, add_depth_function
from forensics.ingest.store import (
    KeyPrep,
    Staged,
    fail,
    prepare_keys,
    rollback,
    store_file,
    unexpected,
)
from forensics.normalize import MACROS
from forensics.store import (
    StoreOptions,
    another_connection,
    engine_error,
    interrupted,
    is_interrupt,
    open_store,
    own_paths,
)

ReadGen = Generator[Batch, None, ReadEnd]


class ReadAhead:
    """Reads the files in a thread, up to `depth` batches ahead of staging, in the order given.

    Decompressing, hashing and splitting lines is Python's work and DuckDB's is SQL; in one
    thread each waits for the other. Here the next batch (often of the next file) is read
    while the current one is parsed, checked and committed. `depth` batches wait in the
    queue and one is being read: at most depth + 1 chunks of text beyond what sequential
    reading holds. A file's problem travels with its batches and is raised when staging
    reaches it. Only readers marked `read_ahead` are read here.
    """

    _END = object()

    def __init__(self, files: list[Path], ctx: ReadContext, depth: int) -> None:
        self._q: queue.Queue[tuple[Any, str, Any]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(files, ctx), name="forensics-read-ahead", daemon=True
        )
        self._ended = False
        self._thread.start()

    def _put(self, item: tuple[Any, str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, files: list[Path], ctx: ReadContext) -> None:
        for path in files:
            try:
                # The same checks stage_file makes first: never open what it would refuse
                # (a FIFO would block this thread).
                if not stat.S_ISREG(path.stat().st_mode):
                    continue
                fmt = file_format(path)
                if fmt is None or not reader_for(fmt[0]).read_ahead:
                    continue
                batches = reader_for(fmt[0]).read(path, fmt[1], ctx)
                while True:
                    try:
                        lines = next(batches)
                    except StopIteration as done:
                        item: tuple[Any, str, Any] = (path, "done", done.value)
                        break
                    if not self._put((path, "batch", lines)):
                        return
            except BaseException as e:  # noqa: BLE001 - raised in the staging thread
                item = (path, "error", e)
            if not self._put(item):
                return
        self._put((self._END, "end", None))

    def batches(self, path: Path) -> ReadGen | None:
        """The file's batches (the generator returns its ReadEnd), or None when the thread
        did not read it (it changed kind between the two checks): read it directly."""
        while not self._ended:
            p, tag, value = self._q.get()
            if p is self._END:
                self._ended = True
                break
            if p == path:
                return self._rest(path, tag, value)
            # Items of a file staging passed over (it failed an earlier check).
        return None

    def _rest(self, path: Path, tag: str, value: Any) -> ReadGen:
        while True:
            if tag == "done":
                return value  # type: ignore[no-any-return]
            if tag == "error":
                raise value
            yield value
            p, tag, value = self._q.get()
            if p != path:  # cannot happen: a file's items are consecutive and end with done
                raise RuntimeError("read-ahead out of order")

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._q.get_nowait()
        self._thread.join(timeout=5)


def read_into_stage(
    stage: Stage,
    path: Path,
    reader: Reader,
    compression: str | None,
    ctx: ReadContext,
    ahead: ReadAhead | None = None,
) -> str:
    """Read the whole file into the stage; returns its SHA-256."""
    batches = ahead.batches(path) if ahead is not None and reader.read_ahead else None
    if batches is None:
        batches = reader.read(path, compression, ctx)
    while True:
        try:
            batch = next(batches)
        except StopIteration as done:
            end: ReadEnd = done.value
            break
        try:
            # A transaction per batch, not per file: DuckDB keeps the Arrow data a batch's
            # view was registered from until the transaction that dropped the view ends, so
            # one transaction over a file held all of its text (bench/README.md: memory).
            stage.con.execute("begin transaction")
            stage.add(batch)
            stage.con.execute("commit")
        except (pa.ArrowException, OSError) as e:
            if not isinstance(batch, TableBatch):
                raise
            # Typed columns that cannot be taken in fail the file as unreadable.
            raise InputError(
                reader.name, f"cannot be read completely ({engine_message(e, 160)})"
            ) from None
        except InputError:
            # A streamed file is staged before it is all read: when its records fail it,
            # the rest is still read, so that a broken file is reported as broken (an
            # unclosed array, say) rather than by what its first records lacked.
            for _ in batches:
                pass
            raise
    if end.fields is not None and stage.kind is None:
        stage.kind = stage.decide_kind(end.fields)  # a typed file without rows
    stage.notes = end.notes
    return end.sha256


def stage_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    options: IngestOptions,
    progress: Progress | None = None,
    *,
    walked: bool = False,
    ahead: ReadAhead | None = None,
) -> Staged:
    """Read, check and normalise one file into `con`'s temp stage; nothing is stored yet.

    Never raises for a bad file: its result carries the error. The stage is written in
    transactions of its own (one per batch) that touch only temp tables, so that another
    connection can store the previous file meanwhile; a file that fails has them dropped.
    """
    result = FileResult(str(path))
    try:
        st = path.stat()
    except OSError as e:
        result.error = f"cannot be opened ({e.strerror})"
        return Staged(result)
    if not stat.S_ISREG(st.st_mode):
        result.error = "not a regular file"
        return Staged(result)
    fmt = file_format(path)
    if fmt is None:
        result.error = f"not a supported log format ({supported()})"
        if walked:
            result.status = "skipped"  # found in a folder: reported, not an error
        return Staged(result)
    result.format = fmt[0] + (f"+{fmt[1]}" if fmt[1] else "")
    before = stat_key(path)
    stage = Stage(con, options)
    ctx = ReadContext(options.tuning, progress, options.hooks, records_members(options))
    try:
        result.sha256 = read_into_stage(stage, path, reader_for(fmt[0]), fmt[1], ctx, ahead)
        if options.hooks.after_stage is not None:
            options.hooks.after_stage(path)
        if stat_key(path) != before:
            raise InputError("file", "it changed while it was being read")
    except (InputError, duckdb.Error) as e:
        fail(con, result, e, "staging")
        return Staged(result)
    except Exception as e:  # noqa: BLE001 - SPEC §2.6: whatever it is, this file fails alone
        fail(con, result, unexpected("reading", e))
        return Staged(result)
    except BaseException:
        rollback(con)
        raise
    return Staged(result, stage, st.st_size)


def records_members(options: IngestOptions) -> frozenset[str] | None:
    """The members that hold a wrapped document's records (`records =` in the map)."""
    m = options.mapping
    if m is None or not m.records:
        return None
    if options.kind is not None:
        name = m.records.get(options.kind)
        return frozenset([name]) if name else None
    return frozenset(m.records.values())


def validate_options(options: IngestOptions) -> None:
    if options.kind is not None and options.kind not in KINDS:
        raise UsageError("--kind", f"must be one of {', '.join(KINDS)}")
    if options.assume_tz is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(options.assume_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError("--assume-tz", "not a known time zone (e.g. Europe/Berlin)") from None


def ingest(
    store: StoreOptions,
    paths: list[str],
    options: IngestOptions,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every path into the store; bad files are reported, the others still stored."""
    validate_options(options)
    files, failed = discover(paths, own_paths(store.path))
    if not files and failed:
        # Nothing to read (e.g. the only path does not exist): the store, and its spill
        # folder, are not created for nothing.
        return IngestReport(failed)
    if progress:
        progress("files", len(files))
        progress("total_bytes", total_size(files))
    tuning = options.tuning
    ahead = None
    con = open_store(store, read_only=False)
    results: list[FileResult] = list(failed)
    try:
        # Each file's commit is durable in the write-ahead log; checkpointing after every
        # one (DuckDB's default, at 16 MB of log) costs a fixed tenth of a second or more
        # per file, growing with the store. Here: when the log reaches this size, and at
        # the end.
        con.execute("set checkpoint_threshold = $t", {"t": tuning.checkpoint_threshold})
        # A checkpoint would also merge partly filled row groups (DuckDB's vacuum): every
        # file's last rows, read back and written again, on every ingest. Ingest only
        # appends, so there are no deleted rows to reclaim; the row groups stay as written.
        con.execute("set max_vacuum_tasks = 0")
        if options.mapping is not None:
            # Map expressions run on this connection: it can then read no file (SPEC §2.5).
            con.execute("set enable_external_access = false")
        known = {
            str(sha): f"{kind}\0{path}"
            for sha, kind, path in con.execute("select sha256, kind, path from sources").fetchall()
        }
        # Files already stored are found by their hash before they are read (SPEC §2.6).
        skipped = _already_stored(files, known, stored_sizes(con), progress)
        todo = [f for i, f in enumerate(files) if i not in skipped]
        keys = KeyIndex(store.path, tuning) if tuning.key_index and todo else None
        if keys is not None:
            keys.prepare(con)
        if tuning.read_ahead > 0:
            ctx = ReadContext(tuning, progress, options.hooks, records_members(options))
            ahead = ReadAhead([f for f, _ in todo], ctx, tuning.read_ahead)
        done = iter(_overlap(con, todo, options, known, progress, ahead, keys))
        for i in range(len(files)):  # one at a time: what is done is known if the store fails
            results.append(skipped[i] if i in skipped else next(done))
        con.execute("checkpoint")
        if keys is not None:
            keys.save(con)
    except duckdb.Error as e:
        if is_interrupt(e):
            raise  # Ctrl-C inside a query: the CLI says what was stored
        err = engine_error(f"case store {store.path}", e)
        reached = len(results) - len(failed)
        results += [
            FileResult(str(f), error=f"not stored: the case store failed ({err.why})")
            for f, _ in files[reached:]
        ]
        raise IngestCutShort(err, IngestReport(results)) from None
    finally:
        if ahead is not None:
            ahead.close()
        con.close()
    return IngestReport(results)


def _already_stored(
    files: list[tuple[Path, bool]],
    known: dict[str, str],
    sizes: set[int],
    progress: Progress | None,
) -> dict[int, FileResult]:
    """The files whose content is already stored (by index), found without reading them."""
    skipped: dict[int, FileResult] = {}
    if not sizes:
        return skipped
    for i, (path, _) in enumerate(files):
        result = already_stored(path, known, sizes)
        if result is not None:
            skipped[i] = result
            if progress:
                with contextlib.suppress(OSError):
                    progress("bytes", path.stat().st_size)
                progress("file", 1)
    return skipped


def stop_if_interrupted(con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Stop at a file's boundary after a Ctrl-C that DuckDB took for a statement's error
    which was then dropped (a cleanup statement's, say): the files stored so far stay.
    `con`: a connection holding a staged file, rolled back first (files are stored in
    order: none after one that Ctrl-C stopped)."""
    if interrupted():
        if con is not None:
            rollback(con)
        raise KeyboardInterrupt


def _keys_ahead(staged: Staged, prev: Staged | None, prev_stored: Future[Any] | None) -> bool:
    """Whether to look a staged file's keys up now, on the staging thread, rather than when
    its turn to be stored comes: only while the file before it is still being stored (the
    staging thread would wait for it anyway, and the storing thread has the work off its
    path), and only once that file has made its own lookups (each file's lookup must see
    the keys of every file before it; the storing thread makes none meanwhile)."""
    stage = staged.stage
    if stage is None or stage.kind != "events" or not stage.staged:
        return False
    if prev is None or prev_stored is None or prev_stored.done():
        return False
    return prev.stage is None or prev.stage.kind != "events" or prev.looked_up.is_set()


def _prepare_keys_ahead(
    con: duckdb.DuckDBPyConnection, tuning: IngestTuning, keys: KeyIndex
) -> KeyPrep | None:
    """prepare_keys on the staging thread. A failure here is left to the store step, which
    prepares the keys itself and reports it as the file's error; Ctrl-C is not a failure."""
    try:
        return prepare_keys(con, tuning, keys)
    except (InputError, duckdb.Error) as e:
        if is_interrupt(e):
            raise
        return None


def _reported(progress: Progress | None, results: list[FileResult]) -> list[FileResult]:
    """Stored files, counted in the progress."""
    if progress:
        for result in results:
            progress("records", result.rows_read)
            progress("rejects", result.rows_rejected)
            progress("file", 1)
    return results


def _overlap(
    con: duckdb.DuckDBPyConnection,
    files: list[tuple[Path, bool]],
    options: IngestOptions,
    known: dict[str, str],
    progress: Progress | None,
    ahead: ReadAhead | None,
    keys: KeyIndex | None = None,
) -> list[FileResult]:
    """Stage each file while the one before it is stored.

    Storing a file (its de-duplication against the store, its inserts and its commit) keeps
    about one core busy; staging the next file meanwhile, on a second connection, uses the
    other. Two connections take turns: a file is staged on the one whose previous file has
    been stored, and files are stored one at a time in their order, by one worker thread.
    """
    cons = [con, another_connection(con)]
    try:
        for c in cons:
            c.execute(MACROS)
        add_depth_function(con)  # the two connections share it
        stored: list[Future[list[FileResult]]] = []
        ctx = ReadContext(options.tuning, progress, options.hooks, records_members(options))

        def stage_one(c: duckdb.DuckDBPyConnection, f: Path, walked: bool) -> Staged:
            if progress:
                progress("name", f.name)
            return stage_file(c, f, options, progress, walked=walked, ahead=ahead)

        def read(f: Path) -> ReadGen:
            if progress:
                progress("name", f.name)
            batches = ahead.batches(f) if ahead is not None else None
            if batches is None:
                fmt = file_format(f)
                if fmt is None:  # cannot happen: batched files have a format
                    raise InputError("file", "not a supported log format")
                batches = reader_for(fmt[0]).read(f, fmt[1], ctx)
            return batches

        def store(c: duckdb.DuckDBPyConnection, staged: Staged) -> list[FileResult]:
            stop_if_interrupted(c)
            return _reported(progress, [store_file(c, staged, options, known, keys)])

        def store_many(c: duckdb.DuckDBPyConnection, bs: BatchStaged) -> list[FileResult]:
            # Files of a batch taken one at a time are staged here, after the batch before.
            def alone(c: duckdb.DuckDBPyConnection, f: Path, walked: bool) -> Staged:
                return stage_file(c, f, options, progress, walked=walked)

            stop_if_interrupted(c)
            return _reported(progress, store_batch(c, bs, options, known, alone, keys))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forensics-store") as pool:
            prev: Staged | None = None  # the unit before, when it was one file
            for i, unit in enumerate(in_batches(files, options)):
                stop_if_interrupted()
                c = cons[i % 2]
                if i >= 2:
                    stored[i - 2].result()  # c's previous unit is stored: c is free
                if len(unit) == 1:
                    staged = stage_one(c, *unit[0])
                    if keys is not None and _keys_ahead(staged, prev, stored[-1] if i else None):
                        staged.key_prep = _prepare_keys_ahead(c, options.tuning, keys)
                        if staged.key_prep is not None:
                            staged.looked_up.set()
                    stored.append(pool.submit(store, c, staged))
                    prev = staged
                else:
                    bs = stage_batch(c, unit, options, ctx, read)
                    stored.append(pool.submit(store_many, c, bs))
                    prev = None
            results = [r for s in stored for r in s.result()]
            stop_if_interrupted()
            return results
    finally:
        cons[1].close()
