"""The stored key hashes beside the store (forensics.ingest.key_index): a file's hashes are
looked up there instead of scanning the store. What is stored never depends on it: the
same files give the same rows and the same accounting with or without it, and an index
that does not match its store is rebuilt, never trusted."""

from __future__ import annotations

import contextlib
import json
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.ingest import IngestHooks, IngestTuning
from forensics.ingest.key_index import KeyIndex
from forensics.private_files import MANIFEST
from forensics.store import StoreOptions, key_dir, open_store
from tests.helpers.ingest import accounted, event, rows, run, write_ndjson

# Runs of a few hashes, so that a handful of files write, merge and cut several of them.
TINY = IngestTuning(key_run_keys=4, key_run_max=16, batch_files=1)
OFF = IngestTuning(key_index=False, batch_files=1)
# Full runs of 2 hashes and a filter of 64 bits: made after a few files, and often passed.
FILTERED = IngestTuning(key_run_keys=2, key_run_max=2, key_filter_bits=6, batch_files=1)


def _manifest(db: Path) -> dict[str, Any]:
    return json.loads((key_dir(db) / MANIFEST).read_text())  # type: ignore[no-any-return]


def _indexed(db: Path, cap: int = TINY.key_run_max) -> list[int]:
    doc = _manifest(db)
    out: list[int] = []
    for r in doc["runs"]:
        keys = np.fromfile(key_dir(db) / r["name"], dtype=np.uint64)
        assert len(keys) == r["keys"] <= cap
        assert (keys[1:] >= keys[:-1]).all()
        assert (int(keys[0]), int(keys[-1])) == (r["lo"], r["hi"])
        out += [int(k) for k in keys]
    return out


def _events(n: int, *, prefix: str = "r", start: int = 0) -> list[dict[str, Any]]:
    return [
        event(
            ts=f"2024-02-16T09:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}Z",
            request_id=f"{prefix}{start + i}",
            user_id=f"u{i % 7}",
        )
        for i in range(n)
    ]


def _counts(report: Any) -> list[tuple[str, int, int]]:
    assert accounted(report)
    return [(f.status, f.rows_loaded, f.rows_duplicate) for f in report.files]


def test_the_index_holds_every_stored_hash_and_names_its_store(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    files = [write_ndjson(tmp_path / f"{i}.ndjson", _events(9, start=5 * i)) for i in range(6)]
    report = run(db, *files, tuning=TINY)
    # Each file repeats 4 of the one before it.
    assert _counts(report) == [("loaded", 9, 0)] + [("loaded", 5, 4)] * 5
    doc = _manifest(db)
    assert doc["events"] == 34 == rows(db, "select count(*) from events")[0][0]
    assert doc["store_id"] == rows(db, "select value from meta where key = 'store_id'")[0][0]
    indexed = _indexed(db)
    assert sorted(indexed) == sorted(set(indexed))  # each hash once
    assert set(indexed) == {int(k) for (k,) in rows(db, "select dkey from events")}
    assert len(doc["runs"]) > 1  # written in pieces and merged
    folder = key_dir(db)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())


records = st.lists(
    st.tuples(
        st.integers(0, 12),  # the request_id, or 0: none
        st.integers(0, 3),  # the minute
        st.integers(0, 2),  # the user
    ),
    min_size=0,
    max_size=12,
)


def _write(folder: Path, i: int, recs: list[tuple[int, int, int]]) -> Path:
    lines = [
        event(ts=f"2024-02-16T09:0{m}:00Z", request_id=f"q{r}" if r else None, user_id=f"u{u}")
        for r, m, u in recs
    ]
    return write_ndjson(folder / f"{i:02d}.ndjson", lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=st.lists(st.lists(records, min_size=1, max_size=4), min_size=1, max_size=3))
def test_with_or_without_the_index_the_store_is_the_same(
    runs: list[list[list[tuple[int, int, int]]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        got: dict[str, Any] = {}
        for name, tuning in (
            ("tiny", TINY),
            ("filtered", FILTERED),
            ("off", OFF),
            ("default", IngestTuning()),
        ):
            db = folder / f"{name}.duckdb"
            counts = []
            for r, files in enumerate(runs):
                paths = [_write(folder, 10 * r + i, recs) for i, recs in enumerate(files)]
                counts += _counts(run(db, *paths, kind="events", tuning=tuning))
            stored = rows(
                db,
                "select ts, action, user_id, request_id, s.path, source_record from events "
                "join sources s using (source_id) order by all",
            )
            got[name] = (counts, stored)
            if name != "off":
                assert _manifest(db)["events"] == len(stored)
                indexed = set(_indexed(db, tuning.key_run_max))
                assert indexed >= {int(k) for (k,) in rows(db, "select dkey from events")}
        assert got["tiny"] == got["filtered"] == got["off"] == got["default"]


def _unindexed_events(db: Path, tmp_path: Path) -> None:
    # Stored by a run that keeps no index: the manifest's count is behind the store's.
    run(db, write_ndjson(tmp_path / "unindexed.ndjson", _events(3, prefix="x")), tuning=OFF)


def _another_stores_index(db: Path, tmp_path: Path) -> None:
    # The index of a store with as many events, but other ones (a store re-created at the
    # same path, a folder copied beside another store).
    other = tmp_path / "other" / "s.duckdb"
    other.parent.mkdir()
    run(other, write_ndjson(tmp_path / "o.ndjson", _events(20, prefix="o")), tuning=TINY)
    shutil.rmtree(key_dir(db))
    shutil.copytree(key_dir(other), key_dir(db))


def _a_run_missing(db: Path, tmp_path: Path) -> None:
    (key_dir(db) / _manifest(db)["runs"][0]["name"]).unlink()


def _a_run_cut_short(db: Path, tmp_path: Path) -> None:
    p = key_dir(db) / _manifest(db)["runs"][0]["name"]
    p.write_bytes(p.read_bytes()[:-8])


def _not_json(db: Path, tmp_path: Path) -> None:
    (key_dir(db) / MANIFEST).write_text("{not json")


def _another_hash_build(db: Path, tmp_path: Path) -> None:
    doc = _manifest(db)
    doc["dkey_hash"] = "1:2:3"
    (key_dir(db) / MANIFEST).write_text(json.dumps(doc))


@pytest.mark.parametrize(
    "damage",
    [
        _unindexed_events,
        _another_stores_index,
        _a_run_missing,
        _a_run_cut_short,
        _not_json,
        _another_hash_build,
    ],
)
def test_an_index_that_does_not_match_its_store_is_rebuilt(damage: Any, tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    first = _events(20)
    run(db, write_ndjson(tmp_path / "a.ndjson", first), tuning=TINY)
    damage(db, tmp_path)
    # Every duplicate here is one the damaged index lacks: trusted, it would find none of
    # them and they would be stored twice. Rebuilt, each is found.
    unindexed = _events(3, prefix="x") if damage is _unindexed_events else first[:3]
    again = unindexed + _events(2, prefix="new")
    report = run(db, write_ndjson(tmp_path / "b.ndjson", again), tuning=TINY)
    assert _counts(report) == [("loaded", 2, 3)]
    assert _manifest(db)["events"] == rows(db, "select count(*) from events")[0][0]
    assert rows(db, "select count(*) - count(distinct request_id) from events") == [(0,)]
    assert set(_indexed(db)) == {int(k) for (k,) in rows(db, "select dkey from events")}


def test_a_stray_run_is_removed_and_a_matching_index_is_used(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    # key_run_max events: their hashes are added at once, and make one full run (a larger
    # file is taken a hash range at a time, and its runs depend on the hash values)
    run(db, write_ndjson(tmp_path / "a.ndjson", _events(TINY.key_run_max)), tuning=TINY)
    full = {r["name"] for r in _manifest(db)["runs"] if r["keys"] == TINY.key_run_max}
    assert len(full) == 1
    stray = key_dir(db) / "run-0000000000000000.u64"
    stray.write_bytes(b"\0" * 16)
    run(db, write_ndjson(tmp_path / "b.ndjson", _events(2, prefix="b")), tuning=TINY)
    assert not stray.exists()
    # Not rebuilt: its full run is still named (a full run is never merged again; a
    # rebuild writes every run anew).
    assert full and full <= {r["name"] for r in _manifest(db)["runs"]}


def test_hashes_of_a_file_that_rolled_back_make_nothing_a_duplicate(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    evs = _events(6)
    a = write_ndjson(tmp_path / "a.ndjson", evs)
    b = write_ndjson(tmp_path / "b.ndjson", evs[::-1])  # the same events, other bytes

    def fail_a(path: Path) -> None:
        if path.name == "a.ndjson":
            raise OSError("simulated failure before commit")

    report = run(db, a, b, tuning=TINY, hooks=IngestHooks(before_commit=fail_a))
    assert [f.status for f in report.files] == ["failed", "loaded"]
    # a's hashes went into the index before its commit failed: b is looked up in the
    # store, where none of them is, and loads whole.
    assert _counts(report)[1] == ("loaded", 6, 0)
    assert _manifest(db)["events"] == 6


def test_an_index_that_cannot_be_written_is_not_used(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    key_dir(db).write_text("not a folder")
    evs = _events(10)
    first = run(db, write_ndjson(tmp_path / "a.ndjson", evs), tuning=TINY)
    second = run(db, write_ndjson(tmp_path / "b.ndjson", evs[3:] + _events(1, prefix="n")))
    assert _counts(first) + _counts(second) == [("loaded", 10, 0), ("loaded", 1, 7)]
    assert key_dir(db).read_text() == "not a folder"


@contextlib.contextmanager
def _new_index(tuning: IngestTuning) -> Iterator[tuple[KeyIndex, Any]]:
    """The prepared (empty) key index of a new store, and the store open to write."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.duckdb"
        open_store(StoreOptions(db), read_only=False).close()
        con = open_store(StoreOptions(db), read_only=False)
        try:
            index = KeyIndex(db, tuning)
            index.prepare(con)
            yield index, con
        finally:
            con.close()


def _edges(stored: list[int], asked: list[int], pick: list[int]) -> tuple[list[int], list[int]]:
    """The extremes of the hash range stored, and some stored hashes asked for: the ends of
    the range and of each run are where a lookup errs."""
    stored = [*stored, 0, 2**64 - 1]
    return stored, asked + [stored[i] for i in pick if i < len(stored)]


@settings(max_examples=40, deadline=None)
@given(
    stored=st.lists(st.integers(0, 2**64 - 1), max_size=60),
    asked=st.lists(st.integers(0, 2**64 - 1), max_size=20),
    pick=st.lists(st.integers(0, 59), max_size=3),
)
def test_a_lookup_finds_exactly_the_stored_hashes(
    stored: list[int], asked: list[int], pick: list[int]
) -> None:
    stored, asked = _edges(stored, asked, pick)
    with _new_index(IngestTuning(key_run_keys=3, key_run_max=7)) as (index, con):
        for i in range(0, len(stored), 5):
            index.add(np.sort(np.array(stored[i : i + 5], dtype=np.uint64)))
        for saved in (False, True):  # in memory and written, then in runs only
            if saved:
                index.save(con)
                assert not index.pending
                # Below the cap, each run is more than twice the next newer one.
                assert index.runs is not None
                small = [r.keys for r in index.runs if r.keys < 7]
                assert all(a > 2 * b for a, b in zip(small, small[1:], strict=False))
            for k in asked:
                found = index.stored(np.array([k], dtype=np.uint64))
                assert found is not None and bool(found[0]) is (k in stored)
            both = np.sort(np.array(asked, dtype=np.uint64))
            found = index.stored(both)
            assert found is not None
            assert [bool(f) for f in found] == [int(k) in stored for k in both]


@settings(max_examples=40, deadline=None)
@given(
    stored=st.lists(st.integers(0, 2**64 - 1), max_size=60),
    asked=st.lists(st.integers(0, 2**64 - 1), max_size=20),
    pick=st.lists(st.integers(0, 59), max_size=3),
    bits=st.sampled_from([3, 6, 12, 30]),
    made_at=st.integers(0, 13),
)
def test_the_prefix_filter_never_hides_a_stored_hash(
    stored: list[int], asked: list[int], pick: list[int], bits: int, made_at: int
) -> None:
    """Made from the runs and pending at some point, then kept up by the hashes added after
    it: lookups through it answer exactly as the runs alone do (few bits: most hashes pass
    it; many: most are stopped by it)."""
    stored, asked = _edges(stored, asked, pick)
    tuning = IngestTuning(key_run_keys=3, key_run_max=7, key_filter_bits=bits)
    with _new_index(tuning) as (index, con):
        for j, i in enumerate(range(0, len(stored), 5)):
            if j == made_at:
                index._make_filter()
            index.add(np.sort(np.array(stored[i : i + 5], dtype=np.uint64)))
        if index.filter is None:
            index._make_filter()
        assert index.filter is not None and len(index.filter) == 1 << (bits - 3)
        for saved in (False, True):
            if saved:
                index.save(con)
            both = np.sort(np.array(asked, dtype=np.uint64))
            found = index.stored(both)
            assert found is not None and index.filter is not None
            assert [bool(f) for f in found] == [int(k) in stored for k in both]


def test_the_filter_is_made_once_four_full_runs_were_searched_as_often_as_they_hold() -> None:
    tuning = IngestTuning(key_run_keys=4, key_run_max=4, key_filter_bits=12)
    with _new_index(tuning) as (index, _):
        rng = np.random.default_rng(3)
        asked = np.sort(rng.integers(0, 2**63, size=5, dtype=np.uint64))
        for n in range(5):
            index.add(np.sort(rng.integers(2**63, 2**64 - 1, size=4, dtype=np.uint64)))
            assert index.runs is not None
            full = sum(r.keys == 4 for r in index.runs)
            assert full == n + 1
            index.searched = 10**9 if full < 4 else 4 * full - 1  # held: 4 a run
            index.stored(asked)
            assert index.filter is None
            if full >= 4:
                index.searched = 4 * full
                index.stored(asked)
                assert index.filter is not None
                index.filter = None


def test_a_file_with_more_hashes_than_a_run_is_looked_up_a_range_at_a_time(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    stored = _events(30)
    run(db, write_ndjson(tmp_path / "a.ndjson", stored), tuning=TINY)
    # 50 hashes against runs of 16: four ranges, the stored ones spread over all of them.
    big = stored[::2] + _events(35, prefix="big")
    report = run(db, write_ndjson(tmp_path / "b.ndjson", big), tuning=TINY)
    assert _counts(report) == [("loaded", 35, 15)]
    indexed = _indexed(db)
    assert sorted(indexed) == sorted(set(indexed))
    assert set(indexed) == {int(k) for (k,) in rows(db, "select dkey from events")}


def test_the_store_size_counts_the_index(tmp_path: Path) -> None:
    from forensics.status import store_size

    db = tmp_path / "s.duckdb"
    run(db, write_ndjson(tmp_path / "a.ndjson", _events(20)))
    index = sum(p.stat().st_size for p in key_dir(db).iterdir())
    assert index >= 20 * 8
    wal = db.with_name(db.name + ".wal")
    on_disk = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    assert store_size(db) == on_disk + index
    shutil.rmtree(key_dir(db))  # it may be deleted at any time
    assert store_size(db) == on_disk


def _held_until_looked_up_ahead(
    monkeypatch: pytest.MonkeyPatch,
    files: list[Path],
    raising: Exception | None = None,
) -> tuple[IngestHooks, list[str]]:
    """Hooks that hold each file's commit until the next file's keys were looked up on the
    staging thread (so that the file before is still being stored when that happens), and
    the list of files whose keys were looked up there. `raising`: what each lookup there
    raises instead."""
    from forensics.ingest import pipeline

    ahead: list[str] = []
    real = pipeline.prepare_keys

    def spy(con: Any, tuning: IngestTuning, keys: Any) -> Any:
        if threading.current_thread().name.startswith("forensics-store"):
            return real(con, tuning, keys)
        ahead.append(_staged_name(con))
        if raising is not None:
            raise raising
        return real(con, tuning, keys)

    def hold(path: Path) -> None:
        waited = 0.0
        while len(ahead) < files.index(path) + 1 < len(files) and waited < 10:
            time.sleep(0.01)
            waited += 0.01

    monkeypatch.setattr(pipeline, "prepare_keys", spy)
    return IngestHooks(before_commit=hold), ahead


def _staged_name(con: Any) -> str:
    """The first request id of a connection's stage, as a name for the staged file."""
    ((first,),) = con.execute("select min(substr(request_id, 2)::int) from stage").fetchall()
    return f"r{first}"


@pytest.mark.parametrize("fail_ahead", [False, True])
def test_keys_looked_up_while_the_file_before_is_stored_see_every_file_before(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_ahead: bool
) -> None:
    # Each file repeats 4 events of the one before it. Files 2-5 have their keys looked up
    # on the staging thread while the file before is held at its commit: each must still
    # find the repeats of the one before (whose rows are not committed yet), exactly as
    # when every lookup is made at its file's turn. A lookup that fails there is made
    # again at the file's turn. The last file has the third's content: looked up ahead
    # too, then skipped as already stored.
    files = [write_ndjson(tmp_path / f"{i}.ndjson", _events(9, start=5 * i)) for i in range(5)]
    files.append(Path(shutil.copy(files[2], tmp_path / "copy.ndjson")))
    failure = duckdb.Error("simulated failure of a lookup ahead") if fail_ahead else None
    hooks, ahead = _held_until_looked_up_ahead(monkeypatch, files, failure)
    db = tmp_path / "ahead.duckdb"
    report = run(db, *files, tuning=TINY, hooks=hooks)
    assert ahead == ["r5", "r10", "r15", "r20", "r10"]  # every file but the first, in order
    counts = [("loaded", 9, 0)] + [("loaded", 5, 4)] * 4 + [("skipped", 0, 0)]
    assert _counts(report) == counts
    monkeypatch.undo()
    off = tmp_path / "off.duckdb"
    assert _counts(run(off, *files, tuning=OFF)) == _counts(report)
    stored = "select request_id, source_record, dkey from events order by all"
    assert rows(db, stored) == rows(off, stored)
    assert set(_indexed(db)) == {int(k) for (k,) in rows(db, "select dkey from events")}


def test_ctrl_c_during_a_lookup_ahead_stops_the_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A failed lookup ahead is made again at the file's turn; an interrupt is not a
    # failure: the run stops, with the file before stored whole and nothing after it.
    files = [write_ndjson(tmp_path / f"{i}.ndjson", _events(9, start=5 * i)) for i in range(3)]
    ctrl_c = duckdb.InterruptException("INTERRUPT Error: simulated Ctrl-C")
    hooks, ahead = _held_until_looked_up_ahead(monkeypatch, files, ctrl_c)
    db = tmp_path / "s.duckdb"
    with pytest.raises(duckdb.InterruptException):
        run(db, *files, tuning=TINY, hooks=hooks)
    assert ahead == ["r5"]
    assert rows(db, "select count(*) from events") == [(9,)]
    assert rows(db, "select count(*) from sources") == [(1,)]
