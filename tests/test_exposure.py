"""SPEC §5, one small scenario per rule (both sides of each boundary), and a property test
comparing every figure with the plain-Python model in tests/helpers/incident.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.errors import UsageError
from forensics.exposure import (
    FIGURE_KEYS,
    bucket_timeline,
    compute_breakdown,
    compute_figures,
    prepare_window,
)
from forensics.window import Window, parse_window
from tests.helpers.engines import current_engine, open_case, table_rows
from tests.helpers.incident import (
    Incident,
    at,
    clear_store,
    model_cross_account,
    model_figures,
    model_owners,
    window,
)

# Every scenario runs on each engine (DuckDB on the store; Spark on a lake exported from it).
pytestmark = pytest.mark.usefixtures("engine")

W = window(0, 60)  # 09:00 – 10:00 on 2024-02-16


def figures(tmp_path: Path, inc: Incident, w: Window = W) -> dict[str, Any]:
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        return compute_figures(con, w)
    finally:
        con.close()


def owned(inc: Incident, device: str = "d1", owner: str = "owner1") -> Incident:
    inc.grant(device, owner, "owner")
    return inc


# --- deliveries and the window ---------------------------------------------------------


def test_delivery_at_window_start_is_included(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(0), "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["deliveries"], f["cross_account_deliveries"], f["recipients"]) == (1, 1, 1)
    assert f["cross_account_deliveries_outside_window"] == 0


def test_delivery_at_window_end_is_excluded(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(60), "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["deliveries"], f["cross_account_deliveries"]) == (0, 0)
    assert f["cross_account_deliveries_outside_window"] == 1


def test_delivery_one_microsecond_before_window_end_is_included(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(60) - timedelta(microseconds=1), "stranger", "d1", "e1")
    assert figures(tmp_path, inc)["cross_account_deliveries"] == 1


def test_deliveries_before_and_after_window_are_counted_as_outside(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(-1), "stranger", "d1", "e1")
    inc.deliver(at(61), "stranger", "d1", "e1")
    inc.deliver(at(-5), "owner1", "d1", "e1")  # authorized: not a check on the window
    f = figures(tmp_path, inc)
    assert f["cross_account_deliveries"] == 0
    assert f["cross_account_deliveries_outside_window"] == 2


def test_authorized_delivery_counts_as_delivery_only(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "owner1", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["deliveries"], f["cross_account_deliveries"], f["exposed_devices"]) == (1, 0, 0)


@pytest.mark.parametrize(
    ("status", "counted"),
    [
        (None, True),
        (199, False),
        (200, True),
        (204, True),
        (299, True),
        (300, False),
        (404, False),
        (500, False),
    ],
)
def test_only_successful_statuses_are_accesses(
    tmp_path: Path, status: int | None, counted: bool
) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1", status=status)
    inc.deliver(at(-5), "stranger", "d1", "e1", status=status)
    f = figures(tmp_path, inc)
    assert f["deliveries"] == f["cross_account_deliveries"] == int(counted)
    assert f["cross_account_deliveries_outside_window"] == int(counted)


def test_failed_tap_is_neither_linked_nor_unlinked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1")
    inc.tap(at(6), "stranger", "d1", "e1", status=500)
    inc.play(at(7), "stranger", "d1", "e1", status=300)
    f = figures(tmp_path, inc)
    assert (f["cross_account_taps"], f["cross_account_plays"]) == (0, 0)
    assert f["unlinked_unauthorized_accesses"] == 0


def test_other_actions_are_ignored(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.event(at(5), "login", "stranger", "d1", "e1")
    inc.event(at(5), "thumbnail_deleted", "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert all(f[k] == 0 for k in FIGURE_KEYS)


# --- authorization at each access's own time ---------------------------------------------


def test_grant_valid_from_equal_to_ts_authorizes(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.grant("d1", "friend", "shared", valid_from=at(10))
    inc.deliver(at(10), "friend", "d1", "e1")
    assert figures(tmp_path, inc)["cross_account_deliveries"] == 0


def test_grant_valid_from_just_after_ts_does_not_authorize(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.grant("d1", "friend", "shared", valid_from=at(10, seconds=0.000001))
    inc.deliver(at(10), "friend", "d1", "e1")
    assert figures(tmp_path, inc)["cross_account_deliveries"] == 1


def test_grant_valid_to_equal_to_ts_does_not_authorize(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.grant("d1", "friend", "shared", valid_from=at(-100), valid_to=at(10))
    inc.deliver(at(10), "friend", "d1", "e1")
    inc.deliver(at(10) - timedelta(microseconds=1), "friend", "d1", "e2")
    f = figures(tmp_path, inc)
    assert f["cross_account_deliveries"] == 1


def test_open_grant_authorizes_always(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d1", "friend", "shared")
    inc.deliver(at(1), "friend", "d1", "e1")
    assert figures(tmp_path, inc)["cross_account_deliveries"] == 0


def test_grant_on_other_device_does_not_authorize(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d2", "friend", "owner")
    inc.deliver(at(1), "friend", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_deliveries"], f["exposed_owners"]) == (1, 0)


def test_share_starting_inside_window_splits_deliveries(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.grant("d1", "friend", "shared", valid_from=at(30))
    inc.deliver(at(29), "friend", "d1", "e1")
    inc.deliver(at(31), "friend", "d1", "e2")
    f = figures(tmp_path, inc)
    assert (f["deliveries"], f["cross_account_deliveries"]) == (2, 1)


def test_share_ending_inside_window_splits_deliveries(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.grant("d1", "friend", "shared", valid_to=at(30))
    inc.deliver(at(29), "friend", "d1", "e1")
    inc.deliver(at(31), "friend", "d1", "e2")
    inc.deliver(at(32), "friend", "d1", "e3")
    f = figures(tmp_path, inc)
    assert (f["deliveries"], f["cross_account_deliveries"], f["recipients"]) == (3, 2, 1)


def test_overlapping_grants_authorize_across_their_union(tmp_path: Path) -> None:
    # An ASOF join on the latest-starting grant would miss the first, longer grant at 40.
    inc = owned(Incident())
    inc.grant("d1", "friend", "shared", valid_from=at(0), valid_to=at(50))
    inc.grant("d1", "friend", "shared", valid_from=at(10), valid_to=at(20))
    inc.deliver(at(40), "friend", "d1", "e1")
    inc.deliver(at(55), "friend", "d1", "e2")
    assert figures(tmp_path, inc)["cross_account_deliveries"] == 1


def test_duplicate_grants_do_not_multiply_rows(tmp_path: Path) -> None:
    inc = Incident()
    for _ in range(3):
        inc.grant("d1", "owner1", "owner")
        inc.grant("d1", "owner2", "owner")
    inc.deliver(at(5), "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_deliveries"], f["exposed_owners"]) == (1, 2)


def test_ownership_transfer_changes_exposed_owner_and_authorization(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d1", "alice", "owner", valid_to=at(30))
    inc.grant("d1", "bob", "owner", valid_from=at(30))
    inc.deliver(at(10), "stranger", "d1", "e1")  # exposes alice only
    inc.deliver(at(20), "bob", "d1", "e2")  # bob not yet owner: cross-account
    inc.deliver(at(40), "alice", "d1", "e3")  # alice no longer owner: cross-account
    inc.deliver(at(40), "bob", "d1", "e3")  # bob owns it now
    f = figures(tmp_path, inc)
    assert f["cross_account_deliveries"] == 3
    assert f["recipients"] == 3
    assert f["exposed_devices"] == 1
    assert f["exposed_owners"] == 2  # alice (at 10, 20) and bob (at 40)
    con = open_case(tmp_path / "case.duckdb")
    try:
        prepare_window(con, W)
        rows = table_rows(
            con, "cross_account_deliveries", ("delivered_at", "recipient_id", "owner_ids")
        )
    finally:
        con.close()
    assert [r[1:] for r in sorted(rows)] == [
        ("stranger", ["alice"]),
        ("bob", ["alice"]),
        ("alice", ["bob"]),
    ]


def test_delivery_at_the_transfer_instant_exposes_the_new_owner_only(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d1", "alice", "owner", valid_to=at(30))
    inc.grant("d1", "bob", "owner", valid_from=at(30))
    inc.deliver(at(30), "stranger", "d1", "e1")
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        assert compute_figures(con, W)["exposed_owners"] == 1
        assert table_rows(con, "cross_account_deliveries", ("owner_ids",)) == [(["bob"],)]
    finally:
        con.close()


def test_device_without_owner_has_empty_owner_list(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d1", "sharer", "shared")
    inc.grant("d1", "old", "owner", valid_to=at(0))
    inc.deliver(at(5), "stranger", "d1", "e1")
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        f = compute_figures(con, W)
        owners = table_rows(con, "cross_account_deliveries", ("owner_ids",))
        types = (
            {}
            if current_engine() != "duckdb"
            else dict(
                con.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_name = 'cross_account_deliveries'"
                ).fetchall()
            )
        )
    finally:
        con.close()
    assert (f["exposed_devices"], f["exposed_owners"]) == (1, 0)
    assert owners == [([],)]
    # the DuckDB column types (Spark's are compared in tests/test_engines.py)
    assert current_engine() != "duckdb" or types == {
        "delivered_at": "TIMESTAMP WITH TIME ZONE",
        "recipient_id": "VARCHAR",
        "device_id": "VARCHAR",
        "event_id": "VARCHAR",
        "request_id": "VARCHAR",
        "source_id": "INTEGER",
        "source_record": "BIGINT",
        "owner_ids": "VARCHAR[]",
    }


def test_owner_ids_are_sorted_and_distinct(tmp_path: Path) -> None:
    inc = Incident()
    for owner in ("zed", "amy", "mia", "amy"):
        inc.grant("d1", owner, "owner")
    inc.grant("d1", "sharer", "shared")
    inc.deliver(at(5), "stranger", "d1", "e1")
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        prepare_window(con, W)
        assert table_rows(con, "cross_account_deliveries", ("owner_ids",)) == [
            (["amy", "mia", "zed"],)
        ]
    finally:
        con.close()


# --- taps and plays -----------------------------------------------------------------------


def test_tap_after_delivery_is_linked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1")
    inc.tap(at(6), "stranger", "d1", "e1")
    inc.tap(at(7), "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_taps"], f["tappers"], f["unlinked_unauthorized_accesses"]) == (2, 1, 0)


def test_tap_at_the_same_instant_as_delivery_is_linked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1")
    inc.tap(at(5), "stranger", "d1", "e1")
    assert figures(tmp_path, inc)["cross_account_taps"] == 1


def test_tap_before_delivery_is_not_linked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.tap(at(4), "stranger", "d1", "e1")
    inc.deliver(at(5), "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_taps"], f["tappers"]) == (0, 0)
    assert f["unlinked_unauthorized_accesses"] == 1


def test_tap_after_window_is_linked_but_not_unlinked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(59), "stranger", "d1", "e1")
    inc.tap(at(600), "stranger", "d1", "e1")
    inc.play(at(6000), "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_taps"], f["cross_account_plays"], f["video_viewers"]) == (1, 1, 1)
    assert f["unlinked_unauthorized_accesses"] == 0


def test_tap_by_someone_else_is_not_linked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1")
    inc.tap(at(6), "other", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_taps"], f["unlinked_unauthorized_accesses"]) == (0, 1)


def test_tap_on_another_event_is_not_linked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1")
    inc.tap(at(6), "stranger", "d1", "e2")
    f = figures(tmp_path, inc)
    assert (f["cross_account_taps"], f["unlinked_unauthorized_accesses"]) == (0, 1)


def test_tap_when_authorized_is_not_cross_account(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "friend", "d1", "e1")
    inc.grant("d1", "friend", "shared", valid_from=at(6))
    inc.tap(at(7), "friend", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_deliveries"], f["cross_account_taps"]) == (1, 0)
    assert f["unlinked_unauthorized_accesses"] == 0


def test_tap_linked_only_to_a_delivery_outside_the_window_is_unlinked(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(-5), "stranger", "d1", "e1")
    inc.tap(at(5), "stranger", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_taps"], f["unlinked_unauthorized_accesses"]) == (0, 1)
    assert f["cross_account_deliveries_outside_window"] == 1


def test_unlinked_accesses_count_only_inside_the_window(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.tap(at(-1), "stranger", "d1", "e1")
    inc.play(at(0), "stranger", "d1", "e1")
    inc.tap(at(59), "stranger", "d1", "e2")
    inc.play(at(60), "stranger", "d1", "e2")
    inc.tap(at(30), "owner1", "d1", "e2")  # authorized
    assert figures(tmp_path, inc)["unlinked_unauthorized_accesses"] == 2


def test_plays_are_linked_like_taps(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1")
    inc.play(at(4), "stranger", "d1", "e1")  # before the delivery
    inc.play(at(8), "stranger", "d1", "e1")
    inc.play(at(9), "someone", "d1", "e1")
    f = figures(tmp_path, inc)
    assert (f["cross_account_plays"], f["video_viewers"], f["cross_account_taps"]) == (1, 1, 0)
    assert f["unlinked_unauthorized_accesses"] == 2


def test_requests_without_request_id_are_counted(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1", request_id=None)
    inc.tap(at(6), "stranger", "d1", "e1", request_id=None)
    f = figures(tmp_path, inc)
    assert (f["cross_account_deliveries"], f["cross_account_taps"]) == (1, 1)


# --- the JSON object, timeline, empty windows ---------------------------------------------


def test_figures_have_specs_keys_window_and_timeline(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5, 1), "a", "d1", "e1")
    inc.deliver(at(5, 59.999999), "b", "d1", "e1")
    inc.deliver(at(5, 30), "a", "d1", "e2")
    inc.deliver(at(7), "a", "d1", "e3")
    f = figures(tmp_path, inc, parse_window("2024-02-16T10:00:00+01:00/PT1H"))
    assert list(f) == ["window", *FIGURE_KEYS, "timeline"]
    assert f["window"] == {"start": "2024-02-16T09:00:00Z", "end": "2024-02-16T10:00:00Z"}
    assert f["timeline"] == [
        {"minute": "2024-02-16T09:05:00Z", "cross_account_deliveries": 3, "recipients": 2},
        {"minute": "2024-02-16T09:07:00Z", "cross_account_deliveries": 1, "recipients": 1},
    ]


def test_empty_store_gives_zeros(tmp_path: Path) -> None:
    f = figures(tmp_path, Incident())
    assert all(f[k] == 0 for k in FIGURE_KEYS)
    assert f["timeline"] == []


def test_prepare_window_again_replaces_tables(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(5), "stranger", "d1", "e1")
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        assert compute_figures(con, W)["cross_account_deliveries"] == 1
        assert compute_figures(con, window(10, 20))["cross_account_deliveries"] == 0
        assert compute_figures(con, W)["cross_account_deliveries"] == 1
    finally:
        con.close()


# --- --by ---------------------------------------------------------------------------------


def test_breakdown_by_extra_key_and_canonical_field(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(1), "a", "d1", "e1", extra={"cache_node": "c7", "app": "ios"})
    inc.deliver(at(2), "b", "d1", "e1", extra={"cache_node": "c7"})
    inc.deliver(at(3), "b", "d2", "e9", extra={"cache_node": "c8"}, status=204)
    inc.deliver(at(4), "c", "d2", "e9")
    inc.deliver(at(5), "owner1", "d1", "e1", extra={"cache_node": "c9"})  # authorized
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        by_node = compute_breakdown(con, W, "cache_node").to_json()
        by_status = compute_breakdown(con, W, "status").to_json()
        by_app = compute_breakdown(con, W, "app").to_json()
    finally:
        con.close()
    assert by_node == {
        "field": "cache_node",
        "rows": [
            {"value": "c7", "cross_account_deliveries": 2, "recipients": 2, "exposed_devices": 1},
            {"value": "c8", "cross_account_deliveries": 1, "recipients": 1, "exposed_devices": 1},
            {"value": None, "cross_account_deliveries": 1, "recipients": 1, "exposed_devices": 1},
        ],
    }
    assert [(r["value"], r["cross_account_deliveries"]) for r in by_status["rows"]] == [
        (None, 3),
        ("204", 1),
    ]
    assert [(r["value"], r["cross_account_deliveries"]) for r in by_app["rows"]] == [
        (None, 3),
        ("ios", 1),
    ]


def test_breakdown_keys_with_slash_and_tilde_are_exact(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(1), "a", "d1", "e1", extra={"a/b": "slash", "c~d": 7, "a": {"b": "nested"}})
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        assert compute_breakdown(con, W, "a/b").rows[0].value == "slash"
        assert compute_breakdown(con, W, "c~d").rows[0].value == "7"
    finally:
        con.close()


def test_breakdown_unknown_field_names_the_fields_that_exist(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(1), "a", "d1", "e1", extra={"cache_node": "c7"})
    inc.deliver(at(-100), "a", "d1", "e1", extra={"app": "web"})
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        with pytest.raises(UsageError) as err:
            compute_breakdown(con, W, "cache_nod\x1b[31m")
        # a field stored on some event, just not on a cross-account delivery, is fine
        assert compute_breakdown(con, W, "app").rows[0].value is None
    finally:
        con.close()
    line = err.value.one_line()
    assert "cache_node" in line and "app" in line and "status" in line
    assert "\x1b" not in line and "\n" not in line


def test_breakdown_on_empty_store(tmp_path: Path) -> None:
    path = Incident().write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        assert compute_breakdown(con, W, "status").rows == ()
        with pytest.raises(UsageError):
            compute_breakdown(con, W, "cache_node")
    finally:
        con.close()


# --- chart buckets ------------------------------------------------------------------------


def test_bucket_timeline_per_minute_for_short_windows() -> None:
    w = window(0, 10)
    width, buckets = bucket_timeline(
        [{"minute": "2024-02-16T09:03:00Z", "cross_account_deliveries": 4, "recipients": 1}], w
    )
    assert width == timedelta(minutes=1)
    assert len(buckets) == 10
    assert [b.cross_account_deliveries for b in buckets][2:5] == [0, 4, 0]


def test_bucket_timeline_coarser_for_long_windows() -> None:
    w = Window(at(0), at(60 * 24 * 3))
    timeline = [
        {"minute": "2024-02-16T09:03:00Z", "cross_account_deliveries": 4, "recipients": 1},
        {"minute": "2024-02-16T10:59:00Z", "cross_account_deliveries": 1, "recipients": 1},
    ]
    width, buckets = bucket_timeline(timeline, w, max_buckets=40)
    assert width == timedelta(hours=2)
    assert len(buckets) <= 40
    assert sum(b.cross_account_deliveries for b in buckets) == 5
    assert buckets[0].start <= w.start < buckets[0].start + width


# --- property: SQL == plain-Python model of §5 --------------------------------------------

USERS = ["u0", "u1", "u2"]
DEVICES = ["d0", "d1"]
EVENT_IDS = {"e0": "d0", "e1": "d1", "e2": "d0"}  # an event belongs to one device
# Few distinct instants, so grant bounds, window bounds and accesses coincide often; now and
# then one microsecond off, to test both sides of each boundary.
STEPS = st.integers(min_value=-1, max_value=5)
STEP = STEPS.map(lambda m: at(m * 5))
JITTER = st.sampled_from(
    [timedelta(0)] * 4 + [timedelta(microseconds=1), timedelta(microseconds=-1)]
)
TIMES = st.builds(lambda t, j: t + j, STEP, JITTER)
STATUSES = st.sampled_from([None, None, None, 200, 299, 199, 300, 404])
FOLLOW_UP = st.sampled_from(
    [
        timedelta(0),
        timedelta(0),
        timedelta(minutes=5),
        timedelta(minutes=100),
        timedelta(minutes=-5),
        timedelta(microseconds=1),
        timedelta(microseconds=-1),
    ]
)


@st.composite
def incidents_st(draw: st.DrawFn) -> Incident:
    """Deliveries; taps/plays that often follow one of them (same user and event: same
    instant, later, much later or just before) and strays; grants that are often on a
    delivery's (device, user) or owner side, with bounds often at an access's instant."""
    inc = Incident()
    inc.event(at(0), "login", "u0", None, None, extra={"cache_node": "c0"})  # a key exists
    nodes = st.sampled_from([None, {"cache_node": "c1"}, {"cache_node": "c2"}])
    for _ in range(draw(st.integers(0, 8))):
        event_id = draw(st.sampled_from(sorted(EVENT_IDS)))
        inc.deliver(
            draw(TIMES),
            draw(st.sampled_from(USERS)),
            EVENT_IDS[event_id],
            event_id,
            status=draw(STATUSES),
            extra=draw(nodes),
            request_id=draw(st.sampled_from([None, "auto"])),
        )
    deliveries = list(inc.events[1:])
    for _ in range(draw(st.integers(0, 8))):
        action = draw(st.sampled_from(["thumbnail_tapped", "video_played", "login"]))
        if deliveries and draw(st.booleans()):
            d = draw(st.sampled_from(deliveries))
            user, event_id, ts = d.user_id, d.event_id, d.ts + draw(FOLLOW_UP)
        else:
            user, event_id = draw(st.sampled_from(USERS)), draw(st.sampled_from(sorted(EVENT_IDS)))
            ts = draw(TIMES)
        assert event_id is not None
        inc.event(ts, action, user, EVENT_IDS[event_id], event_id, status=draw(STATUSES))
    accesses = inc.events[1:]
    for _ in range(draw(st.integers(0, 6))):
        if accesses and draw(st.integers(0, 3)) > 0:
            e = draw(st.sampled_from(accesses))
            device, user = e.device_id, draw(st.sampled_from([e.user_id, e.user_id, *USERS]))
            near = [e.ts, e.ts, e.ts + timedelta(microseconds=1), e.ts - timedelta(microseconds=1)]
            bound = st.none() | st.sampled_from(near) | TIMES
        else:
            device, user = draw(st.sampled_from(DEVICES)), draw(st.sampled_from(USERS))
            bound = st.none() | TIMES
        start, end = draw(bound), draw(bound)
        if start is not None and end is not None and end <= start:
            start, end = (start, None) if end == start else (end, start)
        assert device is not None
        inc.grant(device, user, draw(st.sampled_from(["owner", "owner", "shared"])), start, end)
    return inc


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inc=incidents_st(), bounds=st.tuples(STEPS, st.integers(1, 4)))
def test_sql_figures_equal_the_model(
    scratch: duckdb.DuckDBPyConnection, inc: Incident, bounds: tuple[int, int]
) -> None:
    if current_engine() != "duckdb":
        pytest.skip("on Spark: tests/test_engines.py::test_spark_equals_the_model")
    w = window(bounds[0] * 5, (bounds[0] + bounds[1]) * 5)
    clear_store(scratch)
    inc.insert(scratch)
    prepare_window(scratch, w)
    assert compute_figures(scratch, w) == model_figures(inc.events, inc.grants, w)

    cad, taps, plays = model_cross_account(inc.events, inc.grants, w)
    got = scratch.execute(
        "select source_record, owner_ids from cross_account_deliveries order by source_record"
    ).fetchall()
    assert got == sorted((d.source_record, model_owners(inc.grants, d)) for d in cad)
    for table, rows in (("cross_account_taps", taps), ("cross_account_plays", plays)):
        got_records = scratch.execute(
            f"select source_record from {table} order by source_record"  # noqa: S608
        ).fetchall()
        assert [r[0] for r in got_records] == sorted(e.source_record for e in rows)

    by_node = {r.value: r for r in compute_breakdown(scratch, w, "cache_node").rows}
    for node in {None if d.extra is None else d.extra["cache_node"] for d in cad}:
        mine = [d for d in cad if (d.extra or {}).get("cache_node") == node]
        assert by_node[node].cross_account_deliveries == len(mine)
        assert by_node[node].recipients == len({d.user_id for d in mine})
        assert by_node[node].exposed_devices == len({d.device_id for d in mine})
    assert sum(r.cross_account_deliveries for r in by_node.values()) == len(cad)


def test_model_and_sql_agree_on_a_mixed_incident(tmp_path: Path) -> None:
    """A hand-made incident mixing every trap, checked against the model (and by hand)."""
    inc = Incident()
    inc.grant("d1", "alice", "owner", valid_to=at(30))
    inc.grant("d1", "bob", "owner", valid_from=at(30))
    inc.grant("d1", "carol", "shared", valid_from=at(10), valid_to=at(20))
    inc.grant("d1", "carol", "shared", valid_from=at(15), valid_to=at(40))
    inc.grant("d2", "dave", "owner")
    inc.deliver(at(-10), "x", "d1", "e1")  # outside
    inc.deliver(at(5), "carol", "d1", "e1")  # before her share
    inc.deliver(at(25), "carol", "d1", "e1")  # inside overlapping shares
    inc.deliver(at(45), "carol", "d1", "e2")  # after them
    inc.deliver(at(45), "x", "d2", "e3", status=503)  # failed
    inc.deliver(at(46), "x", "d2", "e3", status=299)
    inc.tap(at(50), "x", "d2", "e3")
    inc.tap(at(500), "x", "d2", "e3", status=404)
    inc.play(at(300), "carol", "d1", "e2")
    inc.tap(at(1), "x", "d1", "e1")  # follows only the outside delivery
    f = figures(tmp_path, inc)
    assert {k: f[k] for k in FIGURE_KEYS} == {
        "deliveries": 4,
        "cross_account_deliveries": 3,
        "recipients": 2,
        "cross_account_taps": 1,
        "tappers": 1,
        "cross_account_plays": 1,
        "video_viewers": 1,
        "exposed_devices": 2,
        "exposed_owners": 3,
        "unlinked_unauthorized_accesses": 1,
        "cross_account_deliveries_outside_window": 1,
    }
    assert f == model_figures(inc.events, inc.grants, W)


def test_window_in_other_offset_and_as_duration_give_the_same_figures(tmp_path: Path) -> None:
    inc = owned(Incident())
    inc.deliver(at(0), "a", "d1", "e1")
    inc.deliver(at(60), "b", "d1", "e1")
    path = inc.write(tmp_path / "case.duckdb")
    con = open_case(path)
    try:
        results = [
            compute_figures(con, parse_window(text))
            for text in (
                "2024-02-16T09:00:00Z/2024-02-16T10:00:00Z",
                "2024-02-16T04:00:00-05:00/2024-02-16T15:30:00+05:30",
                "2024-02-16T09:00:00/PT1H",
                "2024-02-16T14:45:00+05:45/PT60M",
            )
        ]
    finally:
        con.close()
    assert all(r == results[0] for r in results)
    assert results[0]["cross_account_deliveries"] == 1
    assert isinstance(results[0]["window"]["start"], str)
    assert not isinstance(results[0]["window"]["start"], datetime)
