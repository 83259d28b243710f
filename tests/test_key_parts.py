"""The anti join of unauthorized_rows.sql as forensics.exposure.join_plan runs it: in key
parts (each part exact, the parts together every unauthorized access once, whatever the
number of parts) and with its hash table on either side (the same rows); the number of parts
and the side taken from the tables' sizes and the memory limit, on both sides of each
boundary."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forensics.exposure as exposure
from forensics.engines.base import Engine
from forensics.errors import StoreError
from forensics.exposure import (
    JOIN_ROW_BYTES,
    JoinPlan,
    compute_figures,
    join_plan,
    memory_limit_bytes,
    parts_for,
    prepare_window,
)
from forensics.queries import get_query, materialize_query
from tests.helpers.incident import Incident, at, clear_store, model_figures, window

W = window(0, 60)
# Ids of every length DuckDB stores inside a row (up to 12 bytes) or outside it, and text
# that is not ASCII: user_ids fall in the parts by their hash, whatever they look like.
USERS = ["u0", "u1", "usr_7fcda225b05d57b9", "ユーザー", "a" * 12, "b" * 13, "2753125177", ""]
DEVICES = ["d0", "cam_480975c5b9f04c75", "d2"]
TIMES = st.integers(-2, 14).map(lambda m: at(m * 5)) | st.sampled_from(
    [at(0), at(0) + timedelta(microseconds=1), at(0) - timedelta(microseconds=1)]
)
ACTIONS = st.sampled_from(["thumbnail_delivered"] * 3 + ["thumbnail_tapped", "video_played"])


@st.composite
def incidents(draw: st.DrawFn) -> Incident:
    """Accesses by many users on a few devices, grants often on an access's own
    (device, user) with bounds at its instant, so that both sides of authorization occur
    in every part."""
    inc = Incident()
    for _ in range(draw(st.integers(0, 14))):
        device = draw(st.sampled_from(DEVICES))
        inc.event(
            draw(TIMES),
            draw(ACTIONS),
            draw(st.sampled_from(USERS)),
            device,  # required for an analysed action (SPEC §2.1)
            f"ev-{device}",
            status=draw(st.sampled_from([None, 200, 404])),
        )
    for _ in range(draw(st.integers(0, 10))):
        near_an_access = draw(st.booleans())
        if inc.events and near_an_access:
            e = draw(st.sampled_from(inc.events))
            device, user = e.device_id or "", e.user_id
            bound = st.none() | st.sampled_from([e.ts, e.ts + timedelta(microseconds=1)])
        else:
            device, user = draw(st.sampled_from(DEVICES)), draw(st.sampled_from(USERS))
            bound = st.none() | TIMES
        start, end = draw(bound), draw(bound)
        if start is not None and end is not None and end <= start:
            start, end = None, start
        inc.grant(device, user, "shared", start, end)
    return inc


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> Counter[tuple[Any, ...]]:
    return Counter(con.execute(f"select * from {table}").fetchall())  # noqa: S608


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inc=incidents(), parts=st.sampled_from([1, 2, 3, 7]), on_grants=st.booleans())
def test_any_number_of_parts_on_either_side_gives_every_unauthorized_access_once(
    scratch: duckdb.DuckDBPyConnection, inc: Incident, parts: int, on_grants: bool
) -> None:
    clear_store(scratch)
    inc.insert(scratch)
    prepare_window(scratch, W)
    whole = {t: _rows(scratch, t) for t in ("unauthorized_rows", "unauthorized_accesses")}
    want = compute_figures(scratch, W)
    assert want == model_figures(inc.events, inc.grants, W)
    plan = JoinPlan(parts=parts, on_grants=on_grants)
    with mock.patch.object(exposure, "join_plan", return_value=plan):
        prepare_window(scratch, W)
    for table, rows in whole.items():
        assert _rows(scratch, table) == rows, table
    assert compute_figures(scratch, W) == want


def test_each_part_holds_only_its_users_and_the_parts_are_disjoint(
    scratch: duckdb.DuckDBPyConnection,
) -> None:
    clear_store(scratch)
    inc = Incident()
    for i, user in enumerate(USERS * 3):
        inc.deliver(at(i), user, DEVICES[i % 3], "ev")  # no grant: every one unauthorized
    inc.insert(scratch)
    sql = get_query("unauthorized_rows").sql
    seen: list[tuple[Any, ...]] = []
    users_by_part = []
    for part in range(3):
        rows = scratch.execute(
            sql, {"window_start": W.start, "key_parts": 3, "key_part": part}
        ).fetchall()
        seen += rows
        users_by_part.append({r[1] for r in rows})
    assert len(seen) == len(set(seen)) == len(inc.events)
    assert all(users_by_part), "a part of eight users is empty: the hash does not spread them"
    for a in range(3):
        for b in range(a + 1, 3):
            assert not users_by_part[a] & users_by_part[b]


# --- how many parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accesses", "limit", "parts"),
    [
        (1000, 160 * 1000, 1),  # fits
        (1000, 128 * 1000, 1),  # 1.25x the limit: DuckDB spills the little that is over
        (1000, 127 * 1000, 2),  # just over 1.25x: two parts
        (3000, 160 * 1000, 3),  # exactly three limits' worth
        (3001, 160 * 1000, 4),
        (0, 1, 1),
    ],
)
def test_parts_for_the_memory_limit(accesses: int, limit: int, parts: int) -> None:
    assert parts_for(accesses, 160.0, limit) == parts


def _store_of(con: duckdb.DuckDBPyConnection, n: int, user: str) -> None:
    clear_store(con)
    inc = Incident()
    for i in range(n):
        inc.deliver(at(i % 60), f"{user}{i % 7}", "cam_480975c5b9f04c75", "ev")
    inc.event(at(1), "login", "someone", None, None)  # not an analysed action
    inc.insert(con)


def test_parts_from_the_limit_and_the_ids_length(scratch: duckdb.DuckDBPyConnection) -> None:
    # 20-character device ids and 13+-character user ids: both kept outside the row.
    _store_of(scratch, 2000, "usr_0123456789")
    row_bytes = JOIN_ROW_BYTES + 20 + 15
    exact = 2000 * row_bytes  # the login is not counted
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=exact):
        assert join_plan(scratch).parts == 1
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=int(exact / 1.26)):
        assert join_plan(scratch).parts == 2
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=exact // 5):
        assert join_plan(scratch).parts == 5
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=None):
        assert join_plan(scratch).parts == 1


def test_short_ids_are_counted_inside_the_row(scratch: duckdb.DuckDBPyConnection) -> None:
    clear_store(scratch)
    inc = Incident()
    for i in range(1000):
        inc.deliver(at(i % 60), f"u{i % 5}", "d0", "ev")
    inc.insert(scratch)
    exact = 1000 * JOIN_ROW_BYTES
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=exact):
        assert join_plan(scratch).parts == 1
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=exact // 2):
        assert join_plan(scratch).parts == 2


def test_an_empty_store_is_one_part(scratch: duckdb.DuckDBPyConnection) -> None:
    clear_store(scratch)
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=1):
        assert join_plan(scratch).parts == 1


def test_a_store_too_large_for_its_limit_runs_in_parts_with_the_same_figures(
    tmp_path: Path,
) -> None:
    path = tmp_path / "case.duckdb"
    inc = Incident()
    for i in range(3000):
        inc.deliver(at(i % 60), f"usr_{i % 97:016d}", f"cam_{i % 13:016d}", f"ev{i % 13}")
    for d in range(13):
        inc.grant(f"cam_{d:016d}", f"usr_{d:016d}", "owner")
    for g in range(1000):  # grants of other cameras: too many for the limit's hash table
        inc.grant(f"cam_{g:016d}_x", f"usr_{g:016d}_x", "shared")
    inc.write(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        prepare_window(con, W)
        want = compute_figures(con, W)
        assert want["cross_account_deliveries"] > 0
        calls: list[int] = []
        real = materialize_query

        def counted(c: Any, name: str, params: Any = None, **kw: Any) -> None:
            if name == "unauthorized_rows":
                calls.append(params["key_part"])
            real(c, name, params, **kw)

        # a limit of 100 KB for 3,000 accesses of 160 bytes (480 KB): five parts
        with (
            mock.patch.object(exposure, "memory_limit_bytes", return_value=100_000),
            mock.patch.object(exposure, "materialize_query", counted),
        ):
            prepare_window(con, W, reuse=False)  # not what the first call kept
        assert calls == [0, 1, 2, 3, 4]
        assert compute_figures(con, W) == want
    finally:
        con.close()


@pytest.mark.parametrize(
    ("setting", "low", "high"),
    [("4GB", 3.9e9, 4.0e9), ("1.5GiB", 1.5 * 2**30 * 0.99, 1.5 * 2**30), ("200KB", 1.9e5, 2e5)],
)
def test_memory_limit_in_bytes(setting: str, low: float, high: float) -> None:
    con = duckdb.connect()
    con.execute(f"set memory_limit = '{setting}'")
    got = memory_limit_bytes(con)
    assert got is not None and low <= got <= high


@pytest.mark.parametrize("shown", ["a lot", "12", "3 furlongs", "0 bytes", "1..2 GiB", None])
def test_an_unreadable_or_empty_memory_limit_is_none(shown: str | None) -> None:
    con = mock.Mock()
    con.execute.return_value.fetchone.return_value = (shown,)
    assert memory_limit_bytes(con) is None


def test_a_limit_of_one_byte_reads_as_one() -> None:
    con = mock.Mock()
    con.execute.return_value.fetchone.return_value = ("1 byte",)
    assert memory_limit_bytes(con) == 1


def test_an_engine_is_never_appended_to() -> None:
    engine = mock.Mock(spec=Engine)
    with pytest.raises(StoreError, match="made whole"):
        materialize_query(engine, "unauthorized_rows", {}, append=True)
    engine.materialize_query.assert_not_called()


# --- which side takes the hash table ---------------------------------------------------------


def _accesses_and_grants(con: duckdb.DuckDBPyConnection, accesses: int, grants: int) -> None:
    """Only analysed accesses (the sample of events then counts them exactly) and grants of
    other cameras, every id 20 characters long (160 bytes a row in the hash table)."""
    clear_store(con)
    inc = Incident()
    for i in range(accesses):
        inc.deliver(at(i % 60), f"usr_{i % 7:016d}", f"cam_{i % 5:016d}", "ev")
    for g in range(grants):
        inc.grant(f"cam_{g:016d}_x"[:20], f"usr_{g:016d}_y"[:20], "shared")
    inc.insert(con)


def test_the_grants_take_the_hash_table_when_at_most_one_and_a_half_times_the_accesses(
    scratch: duckdb.DuckDBPyConnection,
) -> None:
    _accesses_and_grants(scratch, 400, 600)
    assert join_plan(scratch) == JoinPlan(on_grants=True)
    _accesses_and_grants(scratch, 400, 601)
    assert join_plan(scratch) == JoinPlan()
    _accesses_and_grants(scratch, 400, 0)  # nothing to build on
    assert join_plan(scratch) == JoinPlan()


def test_the_grants_take_the_hash_table_only_well_within_the_memory_limit(
    scratch: duckdb.DuckDBPyConnection,
) -> None:
    _accesses_and_grants(scratch, 1000, 1000)
    grant_bytes = 1000 * (JOIN_ROW_BYTES + 40)
    fits = int(grant_bytes / 0.8)  # the grants' hash table is 80% of the limit
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=fits):
        assert join_plan(scratch) == JoinPlan(on_grants=True)
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=fits - 1):
        assert join_plan(scratch) == JoinPlan()  # the accesses' table fits: one part
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=grant_bytes // 4):
        assert join_plan(scratch) == JoinPlan(parts=4)  # and when it does not, in parts
    with mock.patch.object(exposure, "memory_limit_bytes", return_value=None):
        assert join_plan(scratch) == JoinPlan(on_grants=True)


def _join_type(con: duckdb.DuckDBPyConnection) -> str:
    sql = get_query("unauthorized_rows").sql
    plan = "".join(
        str(r[1])
        for r in con.execute(
            "explain " + sql, {"window_start": W.start, "key_parts": 1, "key_part": 0}
        ).fetchall()
    )
    return "RIGHT_ANTI" if "RIGHT_ANTI" in plan else "ANTI"


def test_on_the_grants_duckdb_keeps_the_sides_as_written_and_the_setting_after(
    scratch: duckdb.DuckDBPyConnection,
) -> None:
    _accesses_and_grants(scratch, 50, 5000)  # DuckDB itself builds on the fewer accesses
    assert _join_type(scratch) == "RIGHT_ANTI"
    scratch.execute("set disabled_optimizers = 'compressed_materialization'")
    try:
        seen: list[tuple[set[str], str]] = []
        real = materialize_query

        def spy(c: Any, name: str, params: Any = None, **kw: Any) -> None:
            if name == "unauthorized_rows":
                setting = c.execute("select current_setting('disabled_optimizers')").fetchall()
                seen.append((set(str(setting[0][0]).split(",")), _join_type(c)))
            real(c, name, params, **kw)

        with (
            mock.patch.object(exposure, "join_plan", return_value=JoinPlan(on_grants=True)),
            mock.patch.object(exposure, "materialize_query", spy),
        ):
            prepare_window(scratch, W)
        assert seen == [({"compressed_materialization", "build_side_probe_side"}, "ANTI")]
        after = scratch.execute("select current_setting('disabled_optimizers')").fetchall()
        assert after == [("compressed_materialization",)]
        assert _join_type(scratch) == "RIGHT_ANTI"
    finally:
        scratch.execute("reset disabled_optimizers")


def test_the_setting_is_restored_when_the_join_fails(scratch: duckdb.DuckDBPyConnection) -> None:
    _accesses_and_grants(scratch, 10, 10)

    def fails(*args: Any, **kw: Any) -> None:
        raise StoreError("query unauthorized_rows", "out of memory")

    with (
        mock.patch.object(exposure, "materialize_query", fails),
        pytest.raises(StoreError, match="out of memory"),
    ):
        prepare_window(scratch, W)
    after = scratch.execute("select current_setting('disabled_optimizers')").fetchall()
    assert after == [("",)]


def test_a_lakes_engines_run_one_part() -> None:
    engine = mock.Mock(spec=Engine)
    engine.read_table.return_value = None
    prepare_window(engine, W)
    first = engine.materialize_query.call_args_list[0]
    assert first.args[0] == "unauthorized_rows"
    assert (first.args[1]["key_parts"], first.args[1]["key_part"]) == (1, 0)
