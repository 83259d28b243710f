"""SPEC §2.4 value rules at ingest: timestamps, ids, status, required fields, grants."""

from __future__ import annotations

import decimal
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forensics.ingest.json_sql import ONE_CONCAT_EXTRAS, json_extra
from tests.helpers.ingest import accounted, event, rows, run, write_ndjson, write_parquet

UTC = timezone.utc


def _ts_of(tmp_path: Path, value: object, **opts: object) -> datetime | str:
    """Ingest one event with ts=value; return the stored instant or the reject reason."""
    f = write_ndjson(tmp_path / "e.ndjson", [event(ts=value, request_id="r")])
    db = tmp_path / "s.duckdb"
    report = run(db, f, **opts)
    assert accounted(report)
    got = rows(db, "select ts from events")
    if got:
        return got[0][0]
    return rows(db, "select reason from rejects")[0][0]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-02-16T09:41:07Z", datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07+00:00", datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)),
        ("2024-02-16 09:41:07", datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)),
        ("2024-02-16t09:41:07z", datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07+05:45", datetime(2024, 2, 16, 3, 56, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07-12:00", datetime(2024, 2, 16, 21, 41, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07+14:00", datetime(2024, 2, 15, 19, 41, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07+18:00", datetime(2024, 2, 15, 15, 41, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07.25Z", datetime(2024, 2, 16, 9, 41, 7, 250000, tzinfo=UTC)),
        ("2024-02-16T09:41:07.123456789Z", datetime(2024, 2, 16, 9, 41, 7, 123456, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        ("1990-01-01T00:00:00Z", datetime(1990, 1, 1, tzinfo=UTC)),
        ("2099-12-31T23:59:59.999999Z", datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2000-01-01T00:30:00+01:00", datetime(1999, 12, 31, 23, 30, tzinfo=UTC)),
        ("2024-02-16T09:41:07.000001-17:59", datetime(2024, 2, 17, 3, 40, 7, 1, tzinfo=UTC)),
        ("2024-02-16T23:59:59.999999-18:00", datetime(2024, 2, 17, 17, 59, 59, 999999, tzinfo=UTC)),
        # ±HH, as PostgreSQL writes timestamptz (SPEC §2.6), up to ±18.
        ("2024-02-16 09:41:07+00", datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)),
        ("2025-03-14 07:35:10.159+00", datetime(2025, 3, 14, 7, 35, 10, 159000, tzinfo=UTC)),
        ("2024-02-16 09:41:07-05", datetime(2024, 2, 16, 14, 41, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07+18", datetime(2024, 2, 15, 15, 41, 7, tzinfo=UTC)),
        ("2024-02-16T09:41:07-18", datetime(2024, 2, 17, 3, 41, 7, tzinfo=UTC)),
    ],
)
def test_accepted_timestamp_strings_become_utc_instants(
    tmp_path: Path, text: str, expected: datetime
) -> None:
    assert _ts_of(tmp_path, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-16T09:41:07+24:00",
        "2024-02-16T09:41:07+99:99",
        "2024-02-16T09:41:07+18:01",
        "2024-02-16T09:41:07+05:60",
        "2024-02-16T09:41:07.5-00:99",
        "2024-02-16 09:41:07+19",  # ±HH beyond 18
        "2024-02-16 09:41:07-19",
        "2024-02-16 09:41:07+5",  # one digit
        "2024-02-16 09:41:07+053",  # three digits
        "2024-02-30T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-02-16T24:00:00Z",
        "2024-02-16T09:60:00Z",
        "2016-12-31T23:59:60Z",
        "1989-12-31T23:59:59.999999Z",
        "2100-01-01T00:00:00Z",
        "yesterday",
        "2024-02-16",
        "",
    ],
)
def test_invalid_or_out_of_range_timestamps_reject_the_record(tmp_path: Path, text: str) -> None:
    got = _ts_of(tmp_path, text)
    assert isinstance(got, str)
    assert "ts" in got


def test_epoch_seconds_millis_and_micros_give_the_same_instant(tmp_path: Path) -> None:
    expected = datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)
    for i, v in enumerate([1708076467, 1708076467000, 1708076467000000, "2024-02-16T09:41:07Z"]):
        d = tmp_path / str(i)
        d.mkdir()
        assert _ts_of(d, v) == expected


def test_fractional_epoch_seconds_keep_microseconds(tmp_path: Path) -> None:
    assert _ts_of(tmp_path, 1708076467.25) == datetime(2024, 2, 16, 9, 41, 7, 250000, tzinfo=UTC)


def test_epoch_millis_just_below_1e11_are_read_as_seconds(tmp_path: Path) -> None:
    # 1e11 is the seconds/milliseconds boundary: 1e11 - 1 as seconds is year 5138 (rejected);
    # 1e11 as milliseconds is 1973 (rejected too, but as a different instant).
    got = _ts_of(tmp_path, 100000000000)
    assert isinstance(got, str) and "out of range" in got


def test_seconds_epoch_far_in_future_is_rejected_not_clamped(tmp_path: Path) -> None:
    got = _ts_of(tmp_path, 99999999999)  # year 5138, in seconds
    assert isinstance(got, str) and "out of range" in got


def test_an_epoch_number_beyond_bigint_rejects_its_record_not_the_file(tmp_path: Path) -> None:
    # 1e19 and more, as JSON numbers with an exponent and as a Parquet double, once failed
    # the whole file on a cast to BIGINT; now each is one record's reject.
    huge = [1e19, 1e20, -1e25]
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [event(ts=v, request_id=f"h{i}") for i, v in enumerate(huge)]
        + [event(ts=1708076467.25, request_id="ok")],
    )
    p = write_parquet(
        tmp_path / "e.parquet",
        {
            "ts": pa.array([1e20, 1708076467.5], pa.float64()),
            "action": ["a", "a"],
            "user_id": ["u", "u"],
            "request_id": ["ph", "pok"],
        },
    )
    db = tmp_path / "s.duckdb"
    report = run(db, f, p)
    assert accounted(report)
    assert [r.status for r in report.files] == ["loaded", "loaded"]
    assert rows(db, "select request_id from events order by 1") == [("ok",), ("pok",)]
    assert rows(db, "select reason, count(*) from rejects group by 1") == [("invalid ts", 4)]


def test_assume_tz_applies_to_naive_strings_only(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            event(ts="2024-07-01T12:00:00", request_id="a"),
            event(ts="2024-07-01T12:00:00Z", request_id="b"),
        ],
    )
    db = tmp_path / "s.duckdb"
    run(db, f, assume_tz="America/New_York")
    got = dict(rows(db, "select request_id, ts from events"))
    assert got["a"] == datetime(2024, 7, 1, 16, 0, tzinfo=UTC)
    assert got["b"] == datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
    assert rows(db, "select assume_tz from sources") == [("America/New_York",)]


@pytest.mark.parametrize("fmt", ["ndjson", "csv", "parquet"])
def test_a_local_time_the_zone_skips_is_rejected_not_moved(tmp_path: Path, fmt: str) -> None:
    # 02:30 on 2024-03-31 never happened in Berlin (clocks went from 02:00 to 03:00); the
    # times just before and after the gap are kept.
    times = ["2024-03-31 01:59:59", "2024-03-31 02:30:00", "2024-03-31 03:00:00"]
    ids = ["before", "skipped", "after"]
    f = tmp_path / f"e.{fmt}"
    if fmt == "ndjson":
        write_ndjson(f, [event(ts=t, request_id=i) for t, i in zip(times, ids, strict=True)])
    elif fmt == "csv":
        head = "ts,action,user_id,device_id,event_id,request_id\n"
        f.write_text(head + "".join(f"{t},a,u,d,e,{i}\n" for t, i in zip(times, ids, strict=True)))
    else:
        stamps = [datetime.fromisoformat(t) for t in times]
        write_parquet(
            f,
            {
                "ts": pa.array(stamps, pa.timestamp("us")),
                "action": ["a"] * 3,
                "user_id": ["u"] * 3,
                "request_id": ids,
            },
        )
    db = tmp_path / "s.duckdb"
    report = run(db, f, assume_tz="Europe/Berlin", kind="events")
    assert accounted(report)
    got = dict(rows(db, "select request_id, ts from events"))
    assert got == {
        "before": datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC),
        "after": datetime(2024, 3, 31, 1, 0, tzinfo=UTC),
    }
    assert rows(db, "select reason from rejects") == [("invalid ts",)]


def test_results_do_not_depend_on_the_host_time_zone(tmp_path: Path) -> None:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        got = _ts_of(tmp_path, "2024-02-16 09:41:07")
        assert got == datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_ids_keep_their_exact_text(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text(
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":9007199254740992,"request_id":"1"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":9007199254740993,"request_id":"2"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":123456789012345678901234567890,'
        '"request_id":"3"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"0123","request_id":"4"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":123,"request_id":"5"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":-7,"request_id":6}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":-0 ,"request_id":-0}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":0,"request_id":0}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"-0","request_id":"x","n":-0}\n'
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    got = rows(db, "select request_id, user_id from events order by source_record")
    assert got == [
        ("1", "9007199254740992"),
        ("2", "9007199254740993"),
        ("3", "123456789012345678901234567890"),
        ("4", "0123"),
        ("5", "123"),
        ("6", "-7"),
        ("-0", "-0"),  # not "0": JSON's parser gives -0 as 0, and the key then was 0's
        ("0", "0"),
        ("x", "-0"),
    ]


@pytest.mark.parametrize(
    "name, text",
    [
        ("e.ndjson", '{"ts":"2024-02-16T09:00:00Z","action":"a","User_Id":"u1"}\n'),
        ("e.csv", "TS,action,user_id\n2024-02-16T09:00:00Z,a,u1\n"),
        ("e.tsv", "ts\tAction\tuser_id\n2024-02-16T09:00:00Z\ta\tu1\n"),
        ("s.csv", "ts,action,user_id \r\n2024-02-16T09:00:00Z,a,u1\r\n"),
        ("s.ndjson", '{"ts":"2024-02-16T09:00:00Z","action":"a"," User_Id":"u1"}\n'),
        ("s.parquet", None),
    ],
)
def test_a_field_named_in_another_case_is_named_in_the_reason(
    tmp_path: Path, name: str, text: str | None
) -> None:
    # Or but for blanks around it (a spreadsheet's `user_id `), shown quoted.
    f = tmp_path / name
    if text is None:
        write_parquet(f, pa.table({"ts": ["2024-02-16T09:00:00Z"], "\taction": ["a"]}))
    else:
        f.write_text(text)
    db = tmp_path / "s.duckdb"
    report = run(db, f, kind="events")
    assert report.files[0].rows_rejected == 1
    field = {"e.csv": "ts", "e.tsv": "action", "s.parquet": "action"}.get(name, "user_id")
    shown = {"e.ndjson": "User_Id", "e.csv": "TS", "e.tsv": "Action", "s.csv": '"user_id "'}
    found = (shown | {"s.ndjson": '" User_Id"', "s.parquet": '"\\taction"'})[name]
    assert rows(db, "select reason from rejects") == [
        (f"missing {field} (the record has {found})",)
    ]


@pytest.mark.parametrize("fmt", ["csv", "tsv", "log", "parquet"])
def test_columns_named_alike_but_for_case_are_two_columns(tmp_path: Path, fmt: str) -> None:
    header = ["ts", "action", "User_Id", "user_id", "Note", "note", "NOTE"]
    values = [
        ["2024-02-16T09:00:00Z", "a", "U1", "u1", "x", "y", "z"],
        ["2024-02-16T09:00:01Z", "a", "U2", "", "x", "", "z"],
    ]
    f = tmp_path / f"e.{fmt}"
    if fmt == "parquet":
        cols = list(zip(*values, strict=True))
        write_parquet(f, pa.table([pa.array([v or None for v in c]) for c in cols], names=header))
    elif fmt == "log":
        lines = ["#Fields: " + " ".join(header)] + [" ".join(v or "-" for v in r) for r in values]
        f.write_text("\n".join(lines) + "\n")
    else:
        sep = "," if fmt == "csv" else "\t"
        f.write_text("\n".join(sep.join(r) for r in [header, *values]) + "\n")
    db = tmp_path / "s.duckdb"
    report = run(db, f, kind="events")
    assert accounted(report) and report.files[0].rows_loaded == 1
    got = rows(db, "select user_id, extra from events")
    assert [(u, json.loads(x)) for u, x in got] == [
        ("u1", {"User_Id": "U1", "Note": "x", "note": "y", "NOTE": "z"})
    ]
    reason, raw = rows(db, "select reason, raw from rejects")[0]
    assert reason == "missing user_id (the record has User_Id)"
    assert json.loads(raw) == dict(zip(header, [v or None for v in values[1]], strict=True))


def test_a_field_in_another_case_in_some_records_only(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            {"ts": "2024-02-16T09:00:00Z", "action": "a", "USER_ID": "u1"},
            {"ts": "2024-02-16T09:00:00Z", "action": "a"},
            {"ts": "2024-02-16T09:00:00Z", "action": "a", "user_id": "u3"},
        ],
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert rows(db, "select source_record, reason from rejects order by source_record") == [
        (1, "missing user_id (the record has USER_ID)"),
        (2, "missing user_id"),
    ]


@pytest.mark.parametrize(
    "value", ["1e0", "1.5", "true", "{}", "[]", '"  "', '""', '"\\t \\n"', "null"]
)
def test_unusable_user_ids_reject_the_record(tmp_path: Path, value: str) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text(f'{{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":{value}}}\n')
    db = tmp_path / "s.duckdb"
    report = run(db, f)
    assert report.files[0].rows_rejected == 1
    assert "user_id" in rows(db, "select reason from rejects")[0][0]


@pytest.mark.parametrize(
    "value, expected",
    [("200", 200), ('"200"', 200), ("404", 404), ("null", None), ('"0200"', 200)],
)
def test_status_integer_or_digit_string(tmp_path: Path, value: str, expected: int | None) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text(f'{{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"u","status":{value}}}\n')
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert rows(db, "select status from events") == [(expected,)]


@pytest.mark.parametrize("value", ['"ok"', "200.5", '" 200"', '""', "true", "[200]"])
def test_status_anything_else_rejects(tmp_path: Path, value: str) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text(f'{{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"u","status":{value}}}\n')
    db = tmp_path / "s.duckdb"
    report = run(db, f)
    assert report.files[0].rows_rejected == 1
    assert rows(db, "select reason from rejects") == [("invalid status",)]


def test_mixed_status_types_in_one_file_are_read_per_record(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            event(status="200", request_id="a"),
            event(status=200, request_id="b"),
            event(status="x", request_id="c"),
        ],
    )
    db = tmp_path / "s.duckdb"
    report = run(db, f)
    assert rows(db, "select request_id, status from events order by 1") == [("a", 200), ("b", 200)]
    assert report.files[0].rows_rejected == 1


def test_analysed_actions_need_device_and_event(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            event(device_id=..., request_id="a"),
            event(event_id="", request_id="b"),
            event(action="login", device_id=..., event_id=..., request_id="c"),
            event(action=..., request_id="d"),
        ],
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert rows(db, "select request_id from events") == [("c",)]
    assert [r[0] for r in rows(db, "select reason from rejects order by source_record")] == [
        "missing device_id for an analysed action",
        "missing event_id for an analysed action",
        "missing action",
    ]


def test_extra_fields_are_kept_with_the_event(tmp_path: Path) -> None:
    f = write_ndjson(tmp_path / "e.ndjson", [event(cache_node="c7", app={"v": 3}, request_id="a")])
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert rows(db, "select extra->>'cache_node', extra->'app'->>'v' from events") == [("c7", "3")]


def test_an_events_extra_holds_exactly_the_keys_and_values_it_came_with(tmp_path: Path) -> None:
    """Keys that need escaping come back as written; JSON null is kept; a key only other
    records have is not added; a record with no extra key has none (NULL)."""
    odd = 'k"\\\u00e9\n'
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            event(request_id="a", **{odd: [1, {"x": None}], "big": 123456789012345678901234567890}),
            event(request_id="b", cache_node=None),
            event(request_id="c"),
        ],
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    got = rows(db, "select request_id, extra::varchar from events order by 1")
    assert [r[0] for r in got] == ["a", "b", "c"]
    assert json.loads(got[0][1]) == {odd: [1, {"x": None}], "big": 123456789012345678901234567890}
    assert json.loads(got[1][1]) == {"cache_node": None}
    assert got[2][1] is None
    assert rows(db, "select count(*) from events where json_valid(extra)") == [(2,)]


def test_grants_reject_empty_intervals_and_default_to_owner(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "g.ndjson",
        [
            {"device_id": "d", "user_id": "a"},
            {
                "device_id": "d",
                "user_id": "b",
                "role": "shared",
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_to": "2024-01-01T00:00:00.000001Z",
            },
            {
                "device_id": "d",
                "user_id": "c",
                "valid_from": "2024-01-01T00:00:00Z",
                "valid_to": "2024-01-01T00:00:00Z",
            },
            {"device_id": "d", "user_id": "e", "valid_to": None},
        ],
    )
    db = tmp_path / "s.duckdb"
    report = run(db, f)
    assert report.files[0].kind == "grants"
    assert rows(db, "select user_id, role from grants order by 1") == [
        ("a", "owner"),
        ("b", "shared"),
        ("e", "owner"),
    ]
    assert rows(db, "select reason from rejects") == [("valid_to is not after valid_from",)]


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_grant_bound_of_infinity_is_open_and_the_wrong_infinity_rejects(
    tmp_path: Path, fmt: str
) -> None:
    # PostgreSQL exports an open-ended timestamptz as infinity; read as a date, every such
    # grant was rejected, and its owner's own accesses counted as cross-account.
    bounds = [
        ("a", "2024-01-01T00:00:00Z", "infinity"),
        ("b", "-Infinity", " +infinity "),
        ("c", "infinity", ""),  # a start at +infinity: no instant is in it
        ("d", "", "-infinity"),
        ("e", "", "infinity-ish"),
    ]
    f = tmp_path / f"g.{fmt}"
    if fmt == "csv":
        lines = ["device_id,user_id,valid_from,valid_to"]
        lines += [f"d,{u},{start},{end}" for u, start, end in bounds]
        f.write_text("\n".join(lines) + "\n")
    else:
        write_ndjson(
            f,
            [
                {"device_id": "d", "user_id": u, "valid_from": a or None, "valid_to": b or None}
                for u, a, b in bounds
            ],
        )
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert rows(db, "select user_id, valid_from, valid_to from grants order by 1") == [
        ("a", datetime(2024, 1, 1, tzinfo=UTC), None),
        ("b", None, None),
    ]
    assert rows(db, "select reason from rejects order by source_record") == [
        ("invalid valid_from",),
        ("invalid valid_to",),
        ("invalid valid_to",),
    ]
    # An event's time is never open: infinity rejects it.
    e = write_ndjson(tmp_path / "e.ndjson", [event(ts="infinity")])
    run(db, e)
    assert rows(db, "select reason from rejects where raw like '%action%'") == [("invalid ts",)]


def test_accounts_last_ingested_record_wins(tmp_path: Path) -> None:
    a = write_ndjson(
        tmp_path / "a1.ndjson",
        [{"user_id": "u", "email": "old@x"}, {"user_id": "u", "email": "mid@x"}],
    )
    b = write_ndjson(tmp_path / "a2.ndjson", [{"user_id": "u", "email": "new@x"}])
    db = tmp_path / "s.duckdb"
    run(db, a)
    assert rows(db, "select email from accounts_latest") == [("mid@x",)]
    run(db, b)
    assert rows(db, "select email from accounts_latest") == [("new@x",)]


def test_parquet_timestamp_columns_become_utc(tmp_path: Path) -> None:
    instant = datetime(2024, 2, 16, 9, 41, 7, 123456, tzinfo=UTC)
    n = 6
    cols = {
        "action": ["a"] * n,
        "user_id": ["u"] * n,
        "request_id": ["naive", "utc", "tokyo", "nanos", "nanos utc", "nanos tokyo"],
    }
    nanos = 1708076467123456789
    tables = [
        pa.table(dict(cols, ts=pa.array([instant.replace(tzinfo=None)] * n, pa.timestamp("us")))),
        pa.table(dict(cols, ts=pa.array([instant] * n, pa.timestamp("us", tz="UTC")))),
        pa.table(dict(cols, ts=pa.array([instant] * n, pa.timestamp("us", tz="Asia/Tokyo")))),
        pa.table(dict(cols, ts=pa.array([nanos] * n, pa.timestamp("ns")))),
        pa.table(dict(cols, ts=pa.array([nanos] * n, pa.timestamp("ns", tz="UTC")))),
        pa.table(dict(cols, ts=pa.array([nanos] * n, pa.timestamp("ns", tz="Asia/Tokyo")))),
    ]
    db = tmp_path / "s.duckdb"
    for i, t in enumerate(tables):
        sub = t.filter(pc.equal(t["request_id"], cols["request_id"][i]))
        write_parquet(tmp_path / f"{i}.parquet", sub)
    run(db, *sorted(tmp_path.glob("*.parquet")))
    got = rows(db, "select distinct ts from events")
    assert got == [(instant,)]
    assert rows(db, "select count(*) from events") == [(n,)]


def test_parquet_double_epochs_keep_their_exact_fraction(tmp_path: Path) -> None:
    # 1708074001.25 is exact in a double; DuckDB's DOUBLE-to-DECIMAL cast made it
    # ...01.249999872, stored a microsecond early. A DECIMAL column is exact as it is.
    f = write_parquet(
        tmp_path / "e.parquet",
        {
            "ts": pa.array([1708074001.25, 1708074001.125, 1708076467.123456], pa.float64()),
            "action": ["a"] * 3,
            "user_id": ["u1", "u2", "u3"],
        },
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert [r[0] for r in rows(db, "select ts from events order by user_id")] == [
        datetime(2024, 2, 16, 9, 0, 1, 250000, tzinfo=UTC),
        datetime(2024, 2, 16, 9, 0, 1, 125000, tzinfo=UTC),
        datetime(2024, 2, 16, 9, 41, 7, 123456, tzinfo=UTC),
    ]


def test_parquet_integer_ids_and_epoch_columns(tmp_path: Path) -> None:
    f = write_parquet(
        tmp_path / "e.parquet",
        {
            "ts": pa.array([1708076467000, 1708076467], pa.int64()),
            "action": ["a", "b"],
            "user_id": pa.array([9007199254740993, 5], pa.int64()),
            "status": pa.array([200, None], pa.int32()),
            "cache_node": ["c1", "c2"],
        },
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert rows(db, "select user_id, status, extra->>'cache_node', ts from events order by 1") == [
        ("5", None, "c2", datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)),
        ("9007199254740993", 200, "c1", datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)),
    ]


def test_parquet_integral_decimals_are_integers_and_other_decimals_keep_their_text(
    tmp_path: Path,
) -> None:
    # A warehouse's NUMBER(38,0) ids reach Parquet as DECIMAL(38,0): their decimal text, as
    # an integer's; a DECIMAL with a scale is a number with a fraction, which rejects an id
    # (as 7.00 in JSON does). `raw` and `extra` keep every decimal's exact text.
    dec = decimal.Decimal
    integral = {
        "ts": pa.array([dec(1708076467000), dec(1708076467)], pa.decimal128(13, 0)),
        "action": ["a", "a"],
        "user_id": pa.array([dec(9007199254740993), dec(5)], pa.decimal128(38, 0)),
        "request_id": pa.array([dec(1), dec(2)], pa.decimal128(18, 0)),
        "status": pa.array([dec(200), dec(204)], pa.decimal128(3, 0)),
        "amount": pa.array([dec("0.10000000000000000001"), None], pa.decimal128(21, 20)),
    }
    db = tmp_path / "s.duckdb"
    run(db, write_parquet(tmp_path / "e.parquet", integral))
    got = rows(db, "select user_id, request_id, status, ts, extra::varchar from events order by 2")
    at = datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC)
    assert got == [
        ("9007199254740993", "1", 200, at, '{"amount":0.10000000000000000001}'),
        ("5", "2", 204, at, '{"amount":null}'),
    ]
    scaled = {
        "ts": ["2024-02-16T09:00:00Z"],
        "action": ["a"],
        "user_id": pa.array([dec("7.00")], pa.decimal128(10, 2)),
        "status": pa.array([dec("200.0")], pa.decimal128(4, 1)),
    }
    run(db, write_parquet(tmp_path / "f.parquet", scaled))
    assert rows(db, "select reason, raw from rejects") == [
        (
            "invalid user_id",
            '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":7.00,"status":200.0}',
        )
    ]


def test_parquet_rejects_keep_record_numbers_and_raw_text(tmp_path: Path) -> None:
    f = write_parquet(
        tmp_path / "e.parquet",
        {"ts": ["2024-02-16T09:00:00Z", "bad"], "action": ["a", "a"], "user_id": ["u", "v"]},
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    reason, rec, raw = rows(db, "select reason, source_record, raw from rejects")[0]
    assert (reason, rec) == ("invalid ts", 2)
    assert '"bad"' in raw
    assert rows(db, "select source_record from events") == [(1,)]


def test_escaped_json_strings_are_unescaped_exactly(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text(
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"caf\\u00e9","request_id":"1"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"a\\"b\\\\c","request_id":"2"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"\\ud83d\\ude00","request_id":"3"}\n'
        '{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"plain","request_id":"4"}\n'
    )
    db = tmp_path / "s.duckdb"
    run(db, f)
    assert rows(db, "select user_id from events order by request_id") == [
        ("café",),
        ('a"b\\c',),
        ("😀",),
        ("plain",),
    ]


def test_parquet_blank_text_is_missing_but_leading_space_is_kept(tmp_path: Path) -> None:
    f = write_parquet(
        tmp_path / "e.parquet",
        {
            "ts": ["2024-02-16T09:00:00Z"] * 4,
            "action": ["a"] * 4,
            "user_id": ["\t ", " x", "", "y "],
        },
    )
    db = tmp_path / "s.duckdb"
    report = run(db, f)
    assert report.files[0].rows_rejected == 2
    assert rows(db, "select user_id from events order by source_record") == [(" x",), ("y ",)]


# Blank is space, tab, LF, VT, FF, CR only: the letter v is not blank (a trim set written
# e'\v' in DuckDB is the letter v), and a vertical tab alone is.
BLANK_EDGE_IDS = [" v", "v ", "\u000b", " \u000b\u000c", "\u000bv", "vv"]
BLANK_EDGE_KEPT = [(" v",), ("v ",), ("\u000bv",), ("vv",)]


def test_parquet_text_that_is_only_blank_is_missing_and_a_v_is_not_blank(
    tmp_path: Path,
) -> None:
    n = len(BLANK_EDGE_IDS)
    f = write_parquet(
        tmp_path / "e.parquet",
        {"ts": ["2024-02-16T09:00:00Z"] * n, "action": ["a"] * n, "user_id": BLANK_EDGE_IDS},
    )
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.rows_loaded, r.rows_rejected) == (4, 2)
    assert rows(db, "select user_id from events order by source_record") == BLANK_EDGE_KEPT
    assert rows(db, "select source_record, reason from rejects order by 1") == [
        (3, "missing user_id"),
        (4, "missing user_id"),
    ]


def test_json_text_that_is_only_blank_is_missing_and_a_v_is_not_blank(tmp_path: Path) -> None:
    # json.dumps writes the control characters as \u escapes: the parsed-text path.
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            {"ts": "2024-02-16T09:00:00Z", "action": "a", "user_id": u, "request_id": str(i)}
            for i, u in enumerate(BLANK_EDGE_IDS)
        ]
        + ['{"ts":"2024-02-16T09:00:00Z","action":"a","user_id":"\\u0020v","request_id":"x"}'],
    )
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.rows_loaded, r.rows_rejected) == (5, 2)
    assert rows(db, "select user_id from events order by source_record") == [
        *BLANK_EDGE_KEPT,
        (" v",),
    ]
    assert rows(db, "select source_record, reason from rejects order by 1") == [
        (3, "missing user_id"),
        (4, "missing user_id"),
    ]


_MEMBER_TEXTS = st.sampled_from(['"x"', '"a,b"', "null", "1", '{"k":[1,2]}', '""', '"\\"q\\""'])


@settings(max_examples=60, deadline=None)
@given(
    n=st.sampled_from([1, 2, 3, 16, 17, 20]),
    data=st.data(),
)
def test_extra_is_the_json_object_of_the_members_present(n: int, data: st.DataObject) -> None:
    """json_extra's two forms (one concat up to ONE_CONCAT_EXTRAS members, concat_ws over
    it) write exactly the object of the members a record has, in key order, and NULL for
    a record with none: records with every pattern of members present and absent."""
    names = [f"k{i}" if i % 3 else f'k "{i}"' for i in range(n)]
    records = data.draw(
        st.lists(st.lists(st.none() | _MEMBER_TEXTS, min_size=n, max_size=n), max_size=12)
    )
    params: dict[str, object] = {}
    sql = json_extra([f"v[{i + 1}]" for i in range(n)], names, params)
    con = duckdb.connect()
    got = [
        con.execute(
            f"select {sql} from (select $vals::varchar[] as v)", {**params, "vals": r}
        ).fetchone()[0]  # type: ignore[index]
        for r in records
    ]
    want = [
        None
        if all(v is None for v in r)
        else "{"
        + ",".join(json.dumps(k) + ":" + v for k, v in zip(names, r, strict=True) if v is not None)
        + "}"
        for r in records
    ]
    assert got == want
    assert (n <= ONE_CONCAT_EXTRAS) == ("concat_ws" not in sql)


@pytest.mark.parametrize(
    ("plain", "escaped"),
    [
        ("2024-02-16T09:00:00Z", "2024\\u002d02\\u002d16T09:00:00Z"),
        ("2024-02-16T09:00:00Z", "2024-02-16T09:00:00\\u005a"),
        ("2024-02-16T09:00:00.5+01:00", "2024-02-16T09:00:00.5\\u002b01:00"),
        ("2024-02-16 09:00:00Z", "2024-02-16\\u002009:00:00Z"),  # not the usual shape
        ("2024-02-30T09:00:00Z", "\\u0032024-02-30T09:00:00Z"),  # no such day
        ("2024-02-16T09:60:00Z", "2024-02-16T09:60:00\\u005A"),  # no such minute
    ],
)
def test_a_json_timestamp_with_escapes_reads_as_its_plain_text(
    tmp_path: Path, plain: str, escaped: str
) -> None:
    """The usual shape is tested on the quoted JSON text: a timestamp written with escapes
    takes the general path, and must come out as its plain text does (or be refused
    alike)."""
    f = tmp_path / "e.jsonl"
    f.write_text(
        "".join(
            f'{{"ts":"{t}","action":"login","user_id":"u","request_id":"{rid}"}}\n'
            for rid, t in (("plain", plain), ("escaped", escaped))
        )
    )
    db = tmp_path / "s.duckdb"
    assert accounted(run(db, f))
    got = dict(rows(db, "select request_id, ts from events"))
    reasons = [r[0] for r in rows(db, "select reason from rejects order by source_record")]
    assert got.get("plain") == got.get("escaped")
    assert reasons in ([], ["invalid ts", "invalid ts"])
    assert bool(got) != bool(reasons)
