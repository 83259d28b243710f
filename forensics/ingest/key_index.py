"""The store's de-duplication key hashes (store.DKEY), sorted, in files beside the store.

Before a file's events go in, its key hashes are looked up among the stored ones (SPEC
§2.4). DuckDB can only do that by scanning every stored hash, and has no index it uses for
a join, so a file's cost would grow with the store. Here the hashes are kept sorted in
runs of at most `key_run_max` keys (binary search through a memory map): a small file's
lookup costs about the same in an empty store and in one of 100M events (a large file's
grows by one search per key_run_max stored hashes, as the runs an ingest writes overlap;
bench/README.md has the figures). When none of the file's
hashes is stored (the usual case), the scans are not run at all; when one is, the
de-duplication runs exactly as without this index, so what is stored never depends on it.

The index may hold more hashes than the store (a file whose transaction rolled back after
its hashes were added), never fewer: a file's hashes are added before its commit. The
folder `<store>.keys/` has the runs and `manifest.json`, which names the store (its
`store_id` and `dkey_hash` in `meta`), the event count the runs cover, and the runs. It is
written when an ingest run ends; an ingest that finds it missing, unreadable, or naming
another store or another count (another tool wrote events, a run was killed) rebuilds it
from the store. Anything that goes wrong with it makes that run fall back to the scans.

Every run whose range holds some of a file's hashes is searched for them, and the full runs
overlap (each spans nearly the whole hash range), so at 100M events a file's hashes were
searched 14 times. Once there are _FILTER_RUNS full runs, and the ingest has searched its
runs for as many hashes as they hold (what making the filter reads), the ingest keeps a
filter in memory, never written: one bit for each value of a hash's top key_filter_bits
bits, set for every hash indexed. A hash whose bit is clear is not indexed and is searched
for nowhere; with 2^30 bits and 100M hashes about 10% of new hashes pass it. The filter
only ever says "not indexed" of hashes that are not, so answers never depend on it.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from forensics.ingest.options import IngestTuning
from forensics.private_files import MANIFEST, commit_files, fsync_path, write_bytes_pending
from forensics.store import key_dir

Keys = npt.NDArray[np.uint64]

FORMAT = 1
_PENDING_ARRAYS = 8  # a run's worth of keys not yet written is kept in at most this many
_FILTER_RUNS = 4  # full runs before a filter is made (fewer: searching them costs little)


@dataclass
class Run:
    """One file of sorted key hashes: its name in the folder, size and range."""

    name: str
    keys: int
    lo: int
    hi: int


class KeyIndex:
    """The stored key hashes of one store, for one ingest run (not thread-safe: the run
    stores one file at a time, on one thread)."""

    def __init__(self, store: Path, tuning: IngestTuning) -> None:
        self.folder = key_dir(store)
        self.tuning = tuning
        self.runs: list[Run] | None = None  # None: not prepared, or given up for this run
        self.pending: list[Keys] = []
        self.replaced: list[str] = []  # runs merged away: removed once the manifest is new
        self.written: list[str] = []  # runs written in this run, synced before the manifest
        self.changed = False
        # A bit for each prefix (the top key_filter_bits bits) of every hash in the runs and
        # pending: a hash whose bit is clear is not indexed, so only the others are searched
        # for in the runs. Made, in memory only, once the searches it would have saved have
        # cost as many key comparisons as making it does (one per indexed hash).
        self.filter: npt.NDArray[np.uint8] | None = None
        self.searched = 0  # hashes looked for in a run, summed over the runs, since then

    # -- before the first file -------------------------------------------------------

    def prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the manifest, or rebuild the index from the store when it does not match.
        Called on the store's connection outside any transaction, before files are stored;
        on any failure the index is not used in this run (the scans are)."""
        try:
            ident = _identity(con)
            runs = self._read_manifest(ident)
            if runs is None:
                runs = self._rebuild(con)
                self.changed = True
            self.runs = runs
            self._remove_strays()
        except (OSError, ValueError, duckdb.Error):
            self._give_up()

    def _read_manifest(self, ident: dict[str, Any]) -> list[Run] | None:
        try:
            doc = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT or any(doc.get(k) != v for k, v in ident.items()):
                return None
            runs = [Run(**r) for r in doc["runs"]]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        for r in runs:
            p = self.folder / r.name
            if p.parent != self.folder or not p.is_file() or p.stat().st_size != 8 * r.keys:
                return None
        return runs

    def _rebuild(self, con: duckdb.DuckDBPyConnection) -> list[Run]:
        """Every stored key hash, sorted by DuckDB, cut into runs of key_run_max keys (whose
        ranges do not overlap, so a key is looked for in one of them)."""
        self._make_folder()
        with contextlib.suppress(FileNotFoundError):
            (self.folder / MANIFEST).unlink()
        for p in self.folder.glob("run-*.u64"):
            p.unlink()
        runs: list[Run] = []
        query = con.sql("select dkey from events where dkey is not null order by dkey")
        reader = query.to_arrow_reader(1 << 20)
        if reader is None:
            raise ValueError("the stored key hashes could not be read")
        cap = self.tuning.key_run_max
        buf: list[Keys] = []
        n = 0
        for batch in reader:
            buf.append(np.asarray(batch.column(0).to_numpy(zero_copy_only=False), np.uint64))
            n += len(buf[-1])
            if n >= cap:
                whole = np.concatenate(buf)
                full = len(whole) // cap * cap
                runs += self._write_runs(whole[:full])
                buf = [whole[full:]]
                n = len(buf[0])
        if n:
            runs.append(self._write_run(np.concatenate(buf)))
        return runs

    # -- per file --------------------------------------------------------------------

    def look_up(self, con: duckdb.DuckDBPyConnection, events: int) -> bool | None:
        """Whether any key hash of the staged file (temp table file_keys, of its `events`
        valid events) is stored; None when the index cannot say. Its hashes not yet there
        are added: they are about to be stored (or found to be duplicates after all, which
        is harmless: see the module). A file of more than key_run_max events is taken a
        hash range at a time, so that at most about that many hashes are in memory however
        large the file."""
        if self.runs is None:
            return None
        pieces = max(1, -(-events // self.tuning.key_run_max))
        any_found = False
        for i in range(pieces):
            keys = self.file_keys(con, (i << 64) // pieces, ((i + 1) << 64) // pieces)
            found = self.look_up_keys(keys)
            if found is None:
                return None
            any_found = any_found or found
        return any_found

    def look_up_keys(self, keys: Keys) -> bool | None:
        """look_up for hashes already in hand: distinct and sorted."""
        found = self.stored(keys)
        if found is None:
            return None
        self.add(keys[~found])
        return bool(found.any())

    def file_keys(self, con: duckdb.DuckDBPyConnection, lo: int = 0, hi: int = 1 << 64) -> Keys:
        """The staged file's distinct key hashes (temp table file_keys) in [lo, hi), sorted."""
        if lo == 0 and hi == 1 << 64:
            result = con.execute("select dkey from file_keys")
        else:
            result = con.execute(
                "select dkey from file_keys where dkey >= $lo::hugeint and dkey < $hi::hugeint",
                {"lo": lo, "hi": hi},
            )
        keys = np.asarray(result.fetchnumpy()["dkey"], dtype=np.uint64)
        keys.sort()
        return keys

    def stored(self, keys: Keys) -> npt.NDArray[np.bool_] | None:
        """Which of these (sorted) hashes are stored; None when the index cannot say."""
        if self.runs is None:
            return None
        try:
            if self.filter is None and self._filter_pays():
                self._make_filter()
            if self.filter is None:
                return self._searched(keys)
            maybe = _bits(self.filter, keys)
            found = np.zeros(len(keys), dtype=np.bool_)
            where = np.flatnonzero(maybe)
            if len(where):
                hit = self._searched(keys[where])
                if hit is None:
                    return None
                found[where] = hit
            return found
        except (OSError, ValueError):
            self._give_up()
            return None

    def _searched(self, keys: Keys) -> npt.NDArray[np.bool_] | None:
        """stored(), by searching every pending array and every run whose range holds some
        of the (sorted) hashes."""
        if self.runs is None:
            return None
        found = np.zeros(len(keys), dtype=np.bool_)
        try:
            for arr in self.pending:
                found |= _isin(arr, keys)
            for r in self.runs:
                # Only the file's keys within the run's range (runs cut from one sorted
                # whole do not overlap: each key is looked for in one of them).
                lo = int(np.searchsorted(keys, np.uint64(r.lo), side="left"))
                hi = int(np.searchsorted(keys, np.uint64(r.hi), side="right"))
                if hi <= lo:
                    continue
                m = np.memmap(self.folder / r.name, dtype=np.uint64, mode="r")
                try:
                    found[lo:hi] |= _isin(m, keys[lo:hi])
                finally:
                    del m  # unmapped now: the pages it read do not stay in this process
                self.searched += hi - lo
        except (OSError, ValueError):
            self._give_up()
            return None
        return found

    def add(self, keys: Keys) -> None:
        """Hashes about to be stored (before the commit that stores them)."""
        if self.runs is None or not len(keys):
            return
        self.changed = True
        self.pending.append(keys)
        if self.filter is not None:
            _set_bits(self.filter, keys)
        try:
            if len(self.pending) > _PENDING_ARRAYS:
                self.pending = [np.sort(np.concatenate(self.pending))]
            if sum(len(a) for a in self.pending) >= self.tuning.key_run_keys:
                self._flush()
        except (OSError, ValueError):
            self._give_up()

    # -- at the end of the run ---------------------------------------------------------

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        """Write what this run added and the manifest for the store as it now is. Called
        after the run's last commit; without it the next run rebuilds the index."""
        if self.runs is None or not self.changed:
            return
        try:
            if self.pending:
                self._flush()
            for name in self.written:
                fsync_path(self.folder / name)
            doc = {"format": FORMAT, **_identity(con), "runs": [asdict(r) for r in self.runs]}
            manifest = write_bytes_pending(self.folder / MANIFEST, json.dumps(doc).encode())
            commit_files([manifest], self.folder)
            for name in self.replaced:
                with contextlib.suppress(FileNotFoundError):
                    (self.folder / name).unlink()
            self.replaced, self.written, self.changed = [], [], False
        except (OSError, ValueError, duckdb.Error):
            self._give_up()

    # -- machinery -----------------------------------------------------------------------

    def _flush(self) -> None:
        """The pending hashes into a run. Runs below key_run_max are kept each at least twice
        the size of the next newer one: a new run is merged into the one before it while it
        is at least half as large (a binary counter). So each hash is rewritten about
        log2(key_run_max / key_run_keys) times, and a lookup searches about as many runs
        besides the full ones. Sorted hashes are cut into runs of key_run_max, whose ranges
        do not overlap."""
        if self.runs is None:
            return
        # Each array added holds only hashes the index lacked: together they are distinct.
        keys = self.pending[0] if len(self.pending) == 1 else np.sort(np.concatenate(self.pending))
        self.pending = []
        cap = self.tuning.key_run_max
        while self.runs and self.runs[-1].keys < cap and 2 * len(keys) >= self.runs[-1].keys:
            last = self.runs.pop()
            keys = np.concatenate([np.fromfile(self.folder / last.name, dtype=np.uint64), keys])
            keys.sort(kind="stable")  # two sorted runs: merged in one pass
            if last.name in self.written:
                self.written.remove(last.name)
                (self.folder / last.name).unlink()  # never named by a manifest
            else:
                self.replaced.append(last.name)
        self.runs += self._write_runs(keys)

    def _filter_pays(self) -> bool:
        """Once the full runs (whose ranges overlap: each is searched for every hash) are
        _FILTER_RUNS or more, and the searches so far have compared as many hashes as
        making the filter reads (every indexed one)."""
        cap = self.tuning.key_run_max
        runs = self.runs or []
        if sum(r.keys >= cap for r in runs) < _FILTER_RUNS:
            return False
        return self.searched >= sum(r.keys for r in runs) + sum(len(a) for a in self.pending)

    def _make_filter(self) -> None:
        bits = np.zeros(1 << max(0, self.tuning.key_filter_bits - 3), dtype=np.uint8)
        for arr in self.pending:
            _set_bits(bits, arr)
        step = self.tuning.key_run_keys
        for r in self.runs or ():
            m = np.memmap(self.folder / r.name, dtype=np.uint64, mode="r")
            try:
                for i in range(0, len(m), step):
                    _set_bits(bits, np.asarray(m[i : i + step]))
            finally:
                del m
        self.filter = bits

    def _write_runs(self, keys: Keys) -> list[Run]:
        cap = self.tuning.key_run_max
        return [self._write_run(keys[i : i + cap]) for i in range(0, len(keys), cap)]

    def _write_run(self, keys: Keys) -> Run:
        self._make_folder()
        name = f"run-{os.urandom(8).hex()}.u64"
        path = self.folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(np.ascontiguousarray(keys, dtype=np.uint64).tobytes())
        self.written.append(name)
        return Run(name, len(keys), int(keys[0]), int(keys[-1]))

    def _make_folder(self) -> None:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.folder, 0o700)  # mkdir's mode is filtered by the umask; chmod's is not

    def _remove_strays(self) -> None:
        """Runs no manifest names (left by a run that was killed)."""
        if not self.folder.is_dir() or self.runs is None:
            return
        named = {r.name for r in self.runs}
        for p in self.folder.glob("run-*.u64"):
            if p.name not in named:
                with contextlib.suppress(OSError):
                    p.unlink()

    def _give_up(self) -> None:
        """Not used for the rest of this run; the next run rebuilds it."""
        self.runs = None
        self.pending = []
        self.filter = None
        with contextlib.suppress(OSError):
            (self.folder / MANIFEST).unlink()


def staged_keys(con: duckdb.DuckDBPyConnection) -> Keys:
    """The distinct key hashes of the staged file's valid events, sorted: one fetch and a
    NumPy sort, several times cheaper than DuckDB's GROUP BY into temp table file_keys
    (bench/README.md). For a file whose hashes fit in memory (the caller decides). Not
    np.unique: on NumPy 2 it took 1.9 s for 5M hashes, the sort and mask here 0.05 s."""
    result = con.execute("select dkey from stage where err is null").fetchnumpy()["dkey"]
    keys = np.asarray(result, dtype=np.uint64)
    keys.sort()
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    return keys


def _isin(arr: npt.NDArray[np.uint64], keys: Keys) -> npt.NDArray[np.bool_]:
    """Which of the sorted `keys` are in the sorted `arr`."""
    n = len(arr)
    if not n or not len(keys):
        return np.zeros(len(keys), dtype=np.bool_)
    at = np.searchsorted(arr, keys)
    np.minimum(at, n - 1, out=at)
    return arr[at] == keys  # type: ignore[no-any-return]


def _prefixes(filter_: npt.NDArray[np.uint8], keys: Keys) -> tuple[Any, Any]:
    """The byte and the bit of each hash's prefix in a filter of len(filter_) bytes."""
    shift = np.uint64(64 - (len(filter_).bit_length() - 1) - 3)
    prefix = keys >> shift
    return (prefix >> np.uint64(3)).astype(np.intp), (prefix & np.uint64(7)).astype(np.uint8)


def _set_bits(filter_: npt.NDArray[np.uint8], keys: Keys) -> None:
    byte, bit = _prefixes(filter_, keys)
    np.bitwise_or.at(filter_, byte, np.left_shift(np.uint8(1), bit))


def _bits(filter_: npt.NDArray[np.uint8], keys: Keys) -> npt.NDArray[np.bool_]:
    """Whether each hash's prefix bit is set (a clear bit: the hash is not indexed)."""
    byte, bit = _prefixes(filter_, keys)
    return ((filter_[byte] >> bit) & np.uint8(1)).astype(np.bool_)  # type: ignore[no-any-return]


def _identity(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What a manifest must name to be this store's: its id, its hash build, its events."""
    meta = dict(
        con.execute("select key, value from meta where key in ('store_id', 'dkey_hash')").fetchall()
    )
    ((events,),) = con.execute("select count(*) from events").fetchall()
    return {
        "store_id": meta.get("store_id"),
        "dkey_hash": meta.get("dkey_hash"),
        "events": int(events),
    }
