"""forensics.window_cache: the unauthorized accesses one command keeps beside the store are
read back by the next only in the state of the store, queries and window start they were
made in, and give the figures a fresh join gives (SPEC §5, the model in
tests/helpers/incident.py)."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics import exposure, window_cache
from forensics.exposure import compute_figures
from forensics.queries import get_query
from forensics.report.figures import collect_report
from forensics.status import store_size
from forensics.store import StoreOptions, cache_dir, open_store
from forensics.window import Window
from tests.helpers.incident import Event, Grant, Incident, at, model_figures, window
from tests.test_exposure import STEPS, incidents_st

W = window(0, 60)


@pytest.fixture
def joins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The anti joins run (one entry per part of unauthorized_rows.sql)."""
    seen: list[str] = []
    real = exposure.materialize_query

    def spy(con: Any, name: str, *args: Any, **kw: Any) -> None:
        if name == "unauthorized_rows":
            seen.append(name)
        real(con, name, *args, **kw)

    monkeypatch.setattr(exposure, "materialize_query", spy)
    yield seen


def figures(path: Path, w: Window = W) -> dict[str, Any]:
    con = open_store(StoreOptions(path), read_only=True)
    try:
        return compute_figures(con, w)
    finally:
        con.close()


def entries(path: Path) -> list[Path]:
    folder = cache_dir(path)
    return sorted(folder.iterdir()) if folder.is_dir() else []


def exposed() -> Incident:
    """Two cross-account deliveries (one tapped), an authorized one, one after the window."""
    inc = Incident()
    inc.grant("d1", "owner1")
    inc.grant("d2", "owner2")
    inc.deliver(at(5), "stranger", "d1", "e1")
    inc.tap(at(6), "stranger", "d1", "e1")
    inc.deliver(at(10), "owner1", "d1", "e2")
    inc.deliver(at(20), "other", "d2", "e3")
    inc.deliver(at(70), "late", "d2", "e4")
    return inc


def add_rows(path: Path, events: list[Event], grants: list[Grant]) -> None:
    """Rows written by another tool (not open_store, which would drop the cache folder)."""
    con = duckdb.connect(str(path))
    try:
        Incident(list(events), list(grants)).insert(con)  # its sources rows exist already
    finally:
        con.close()


def test_the_next_command_reads_the_entry_and_gets_the_same_figures(
    tmp_path: Path, joins: list[str]
) -> None:
    inc = exposed()
    path = inc.write(tmp_path / "case.duckdb")
    first = figures(path)
    assert len(joins) == 1 and len(entries(path)) == 1
    second = figures(path)
    assert len(joins) == 1  # read back, not joined again
    assert first == second == model_figures(inc.events, inc.grants, W)
    assert first["cross_account_deliveries"] == 2 and first["cross_account_taps"] == 1


def test_the_entry_is_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = exposed().write(tmp_path / "case.duckdb")
        figures(path)
    finally:
        os.umask(old)
    assert cache_dir(path).stat().st_mode & 0o777 == 0o700
    assert [p.stat().st_mode & 0o777 for p in entries(path)] == [0o600]


def test_rows_another_tool_adds_are_seen(tmp_path: Path, joins: list[str]) -> None:
    inc = exposed()
    path = inc.write(tmp_path / "case.duckdb")
    figures(path)
    more = inc.deliver(at(30), "third", "d1", "e5")
    add_rows(path, [more], [])
    got = figures(path)
    assert len(joins) == 2
    assert got == model_figures(inc.events, inc.grants, W)
    assert got["recipients"] == 3


def test_a_change_that_keeps_every_count_is_seen(tmp_path: Path, joins: list[str]) -> None:
    """The same numbers of rows and the same sources: only the store file tells."""
    inc = exposed()
    path = inc.write(tmp_path / "case.duckdb")
    assert figures(path)["recipients"] == 2
    con = duckdb.connect(str(path))
    con.execute("update grants set user_id = 'stranger' where user_id = 'owner1'")
    con.close()
    inc.grants[0] = Grant("d1", "stranger")
    got = figures(path)
    assert len(joins) == 2
    assert got == model_figures(inc.events, inc.grants, W)
    assert got["recipients"] == 2 and got["cross_account_taps"] == 0  # stranger now holds d1


def test_the_report_joins_on_the_store_itself(tmp_path: Path, joins: list[str]) -> None:
    """Its evidence lists the queries that made its figures: they run, nothing is read back."""
    path = exposed().write(tmp_path / "case.duckdb")
    want = figures(path)
    con = open_store(StoreOptions(path), read_only=True)
    try:
        data = collect_report(con, W, [], str(path))
    finally:
        con.close()
    assert len(joins) == 2 and data.figures == want


def test_the_store_size_counts_the_entries(tmp_path: Path) -> None:
    path = exposed().write(tmp_path / "case.duckdb")
    before = store_size(path)
    figures(path)
    assert store_size(path) == before + sum(p.stat().st_size for p in entries(path)) > before


def test_opening_the_store_to_write_drops_the_folder(tmp_path: Path) -> None:
    path = exposed().write(tmp_path / "case.duckdb")
    figures(path)
    assert entries(path)
    open_store(StoreOptions(path), read_only=False).close()
    assert not cache_dir(path).exists()


def test_the_window_start_is_part_of_the_name_and_its_end_is_not(
    tmp_path: Path, joins: list[str]
) -> None:
    inc = exposed()
    path = inc.write(tmp_path / "case.duckdb")
    for w in (window(0, 60), window(0, 15), window(0, 120)):  # one start: one join
        assert figures(path, w) == model_figures(inc.events, inc.grants, w)
    assert len(joins) == 1 and len(entries(path)) == 1
    later = window(6, 60)  # the tap at 09:06 is in; the delivery before it is outside
    assert figures(path, later) == model_figures(inc.events, inc.grants, later)
    assert len(joins) == 2 and len(entries(path)) == 2


def test_other_query_text_is_another_entry(
    tmp_path: Path, joins: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    inc = exposed()
    path = inc.write(tmp_path / "case.duckdb")
    figures(path)
    q = get_query("unauthorized_accesses")
    changed = dataclasses.replace(q, sql=q.sql + "\n-- another text")
    monkeypatch.setattr(
        window_cache, "get_query", lambda n: changed if n == q.name else get_query(n)
    )
    assert figures(path) == model_figures(inc.events, inc.grants, W)
    assert len(joins) == 2 and len(entries(path)) == 1  # the old state's entry is removed


def test_an_unreadable_entry_is_joined_again_and_replaced(tmp_path: Path, joins: list[str]) -> None:
    inc = exposed()
    path = inc.write(tmp_path / "case.duckdb")
    figures(path)
    [entry] = entries(path)
    entry.write_bytes(b"PAR1 not a parquet file")
    assert figures(path) == model_figures(inc.events, inc.grants, W)
    assert len(joins) == 2
    assert figures(path) == model_figures(inc.events, inc.grants, W)
    assert len(joins) == 2  # the entry written again is read


def test_no_folder_to_write_to_changes_nothing(tmp_path: Path, joins: list[str]) -> None:
    inc = exposed()
    path = inc.write(tmp_path / "case.duckdb")
    cache_dir(path).write_text("a file where the folder would be")
    for _ in range(2):
        assert figures(path) == model_figures(inc.events, inc.grants, W)
    assert len(joins) == 2


def test_only_a_store_file_open_read_only_is_cached(tmp_path: Path) -> None:
    path = exposed().write(tmp_path / "case.duckdb")
    writable = open_store(StoreOptions(path), read_only=False)
    try:
        assert window_cache.entry(writable, W) is None  # its state can change under it
    finally:
        writable.close()
    memory = duckdb.connect()
    try:
        assert window_cache.entry(memory, W) is None
    finally:
        memory.close()
    reader = open_store(StoreOptions(path), read_only=True)
    try:
        assert window_cache.entry(reader, W) is not None
    finally:
        reader.close()


def test_at_most_keep_entries_of_one_state(tmp_path: Path) -> None:
    path = exposed().write(tmp_path / "case.duckdb")
    for start in range(window_cache.KEEP + 2):
        figures(path, window(start, 60))
    assert len(entries(path)) == window_cache.KEEP


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    inc=incidents_st(),
    bounds=st.tuples(STEPS, st.integers(1, 4)),
    cut=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_figures_equal_the_model_before_and_after_rows_are_added(
    inc: Incident, bounds: tuple[int, int], cut: tuple[float, float]
) -> None:
    """Part of an incident stored, its figures twice (the second from the entry), then the
    rest added by another tool: the figures of the whole, never those of the part."""
    w = window(bounds[0] * 5, (bounds[0] + bounds[1]) * 5)
    n_events, n_grants = round(cut[0] * len(inc.events)), round(cut[1] * len(inc.grants))
    part = Incident(inc.events[:n_events], inc.grants[:n_grants], inc.accounts)
    with tempfile.TemporaryDirectory() as tmp:
        path = part.write(Path(tmp) / "case.duckdb")
        want = model_figures(part.events, part.grants, w)
        assert figures(path, w) == want
        assert entries(path)
        assert figures(path, w) == want
        add_rows(path, inc.events[n_events:], inc.grants[n_grants:])
        assert figures(path, w) == model_figures(inc.events, inc.grants, w)
