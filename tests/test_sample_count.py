"""forensics.sample.count: the sample's own count of recipients and tappers, from its files.

Each rule of SPEC §2.4 and §5 that the count reads, on both sides of its boundary, on tiny
hand-written folders laid out as `forensics sample` writes them.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from forensics.errors import OutputError
from forensics.sample.count import count_sample

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def us(text: str) -> int:
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(
        microseconds=1
    )


# A wide window for the rules about values, a narrow one for the window's own edges.
WIDE = (us("2024-02-01T00:00:00Z"), us("2024-04-01T00:00:00Z"))
NARROW = (us("2024-02-16T09:00:00Z"), us("2024-02-16T13:00:00Z"))
OWNER_GRANT = {"device_id": "d1", "user_id": "owner"}


def delivery(**over: Any) -> dict[str, Any]:
    rec = {
        "ts": "2024-02-16T10:00:00Z",
        "action": "thumbnail_delivered",
        "user_id": "stranger",
        "device_id": "d1",
        "event_id": "e1",
    }
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not ...}


def line(rec: dict[str, Any]) -> str:
    return json.dumps(rec, separators=(",", ":"))


def folder(
    root: Path,
    events: list[str],
    grants: list[dict[str, Any]] | None = None,
    name: str = "edge-0000.ndjson",
) -> Path:
    (root / "events").mkdir(parents=True, exist_ok=True)
    (root / "grants").mkdir(parents=True, exist_ok=True)
    (root / "events" / name).write_text("".join(e + "\n" for e in events), encoding="utf-8")
    glines = [line(g) for g in (grants if grants is not None else [OWNER_GRANT])]
    (root / "grants" / "owners.ndjson").write_text("\n".join(glines) + "\n", encoding="utf-8")
    return root


def recipients(root: Path, window: tuple[int, int] = WIDE) -> int:
    return count_sample(root, *window).recipients


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2024-02-16T09:00:00Z", 1),  # the window start is inside
        ("2024-02-16T08:59:59.999999Z", 0),
        ("2024-02-16T13:00:00Z", 0),  # the window end is outside
        ("2024-02-16T12:59:59.999999999Z", 1),  # truncated to µs, not rounded
        ("2024-02-16T14:00:00+01:00", 0),  # = 13:00Z
        ("2024-02-16T13:59:59.999+01:00", 1),
    ],
)
def test_the_window_is_half_open(tmp_path: Path, ts: str, expected: int) -> None:
    assert recipients(folder(tmp_path, [line(delivery(ts=ts))]), NARROW) == expected


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2024-02-16T10:00:00Z", 1),
        ("2024-02-16 10:00:00", 1),  # a space, no zone: UTC
        ("2024-02-16t10:00z", 1),  # no seconds, lower case
        ("2024-02-16T10:00:00+18:00", 1),
        ("2024-02-16T10:00:00-18:00", 1),
        ("2024-02-16T10:00:00+18:01", 0),
        ("2024-02-16T10:00:00+05", 1),
        ("2024-02-16T10:00:00+0530", 1),
        ("2024-02-16T10:00:00+05:60", 0),
        ("2024-02-16T10:00:00+99:99", 0),
        ("2024-02-29T10:00:00Z", 1),
        ("2024-02-30T10:00:00Z", 0),  # not rolled over to March 1
        ("2024-02-16T23:59:59Z", 1),
        ("2024-02-16T24:00:00Z", 0),
        ("2024-02-16T10:59:00Z", 1),
        ("2024-02-16T10:60:00Z", 0),
        ("2024-02-16T10:00:60Z", 0),  # no leap seconds
        ("16/02/2024 10:00", 0),
        (1708077600, 1),  # epoch seconds
        (1708077600250, 1),  # milliseconds
        (1708077600250123, 1),  # microseconds
        (1708077600.5, 1),
        (0, 0),  # 1970: before 1990
        (True, 0),
        (None, 0),
        (..., 0),
    ],
)
def test_event_times(tmp_path: Path, ts: Any, expected: int) -> None:
    assert recipients(folder(tmp_path, [line(delivery(ts=ts))])) == expected


def test_times_from_1990_up_to_2100_only(tmp_path: Path) -> None:
    for grant_from, expected in (("1989-12-31T23:59:59.999999Z", 1), ("1990-01-01T00:00:00Z", 0)):
        grants = [{"device_id": "d1", "user_id": "stranger", "valid_from": grant_from}]
        root = folder(tmp_path / grant_from[:4], [line(delivery())], grants)
        assert recipients(root) == expected, grant_from  # a rejected grant authorizes nothing
    for grant_to, expected in (("2099-12-31T23:59:59.999999Z", 0), ("2100-01-01T00:00:00Z", 1)):
        grants = [{"device_id": "d1", "user_id": "stranger", "valid_to": grant_to}]
        root = folder(tmp_path / grant_to[:4], [line(delivery())], grants)
        assert recipients(root) == expected, grant_to


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (..., 1),
        (None, 1),
        (200, 1),
        ("200", 1),
        (299, 1),
        (204, 1),
        (199, 0),
        (300, 0),
        (403, 0),
        ("403", 0),
        ("OK", 0),
        (" 200", 0),
        (200.0, 0),
        (True, 0),
    ],
)
def test_only_successful_deliveries_count(tmp_path: Path, status: Any, expected: int) -> None:
    assert recipients(folder(tmp_path, [line(delivery(status=status))])) == expected


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"user_id": 9007199254740993}, 1),  # an integer id is its exact text
        ({"user_id": 1e0}, 0),
        ({"user_id": "  "}, 0),
        ({"user_id": ""}, 0),
        ({"user_id": False}, 0),
        ({"user_id": ...}, 0),
        ({"device_id": ...}, 0),
        ({"event_id": None}, 0),
        ({"action": ...}, 0),
        ({"action": " "}, 0),
        ({"action": "thumbnail_tapped"}, 0),
        ({"request_id": 12}, 1),
        ({"request_id": [1]}, 0),
    ],
)
def test_required_fields_and_ids(tmp_path: Path, over: dict[str, Any], expected: int) -> None:
    assert recipients(folder(tmp_path, [line(delivery(**over))])) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (line(delivery()), 1),
        (line(delivery())[:-1], 0),  # cut off
        (line(delivery()) + " x", 0),  # trailing text
        (line(delivery()).replace('"user_id":"stranger"', '"user_id":"a","user_id":"stranger"'), 0),
        (line(delivery(cache_node=1)).replace(":1}", ":NaN}"), 0),
        (line(delivery(extra=[1, 2])).replace("2]", "Infinity]"), 0),
        (line(delivery()).replace('"', "'"), 0),
        ("[" + line(delivery()) + "]", 0),
        ("\ufeff" + line(delivery()) + "\r", 1),  # a byte-order mark, CRLF
    ],
)
def test_only_standard_json_objects_are_records(tmp_path: Path, text: str, expected: int) -> None:
    assert recipients(folder(tmp_path, [text])) == expected


@pytest.mark.parametrize(
    ("grant", "expected"),
    [
        ({}, 0),
        ({"valid_from": "2024-02-16T10:00:00Z"}, 0),  # from is inclusive
        ({"valid_from": "2024-02-16T10:00:00.000001Z"}, 1),
        ({"valid_to": "2024-02-16T10:00:00.000001Z"}, 0),
        ({"valid_to": "2024-02-16T10:00:00Z"}, 1),  # to is exclusive
        ({"valid_from": None, "valid_to": None}, 0),
        ({"valid_from": "2024-02-16T11:00:00Z", "valid_to": "2024-02-16T09:00:00Z"}, 1),
        ({"valid_from": "2024-02-16T09:00:00Z", "valid_to": "2024-02-16T09:00:00Z"}, 1),
        ({"valid_from": "2024-02-16T09:00:00+99:99"}, 1),  # a rejected grant
        ({"user_id": "  "}, 1),
    ],
)
def test_grants_authorize_within_their_interval(
    tmp_path: Path, grant: dict[str, Any], expected: int
) -> None:
    g = {"device_id": "d1", "user_id": "stranger", **grant}
    assert recipients(folder(tmp_path, [line(delivery())], [OWNER_GRANT, g])) == expected


def tap(ts: str, **over: Any) -> str:
    return line(delivery(ts=ts, action="thumbnail_tapped", **over))


@pytest.mark.parametrize(
    ("taps", "expected"),
    [
        ([tap("2024-02-16T10:00:00Z")], 1),  # at the delivery instant
        ([tap("2024-02-16T09:59:59.999Z")], 0),  # before it
        ([tap("2024-02-16T15:00:00Z")], 1),  # after the window: still linked
        ([tap("2024-02-16T10:05:00Z", event_id="e2")], 0),  # another clip
        ([tap("2024-02-16T10:05:00Z", status=500)], 0),
    ],
)
def test_tappers_are_linked_to_a_cross_account_delivery(
    tmp_path: Path, taps: list[str], expected: int
) -> None:
    root = folder(tmp_path, [line(delivery()), *taps])
    assert count_sample(root, *NARROW).tappers == expected


def test_duplicates_are_counted_once_the_earliest_file_winning(tmp_path: Path) -> None:
    failed = line(delivery(request_id="r1", status=403))
    ok = line(delivery(request_id="r1"))
    # Files are read in sorted order: edge-0000-reexport before edge-0000.
    root = folder(tmp_path / "a", [failed], name="edge-0000-reexport.ndjson")
    folder(root, [ok])
    assert recipients(root) == 0
    root = folder(tmp_path / "b", [ok], name="edge-0000-reexport.ndjson")
    folder(root, [failed])
    assert recipients(root) == 1
    # Without a request_id, only equal content is a duplicate.
    root = folder(tmp_path / "c", [line(delivery(status=403))], name="a.ndjson")
    folder(root, [line(delivery())])
    assert recipients(root) == 1


def test_parquet_and_gzip_files_are_read(tmp_path: Path) -> None:
    root = folder(tmp_path, [])
    t = pa.table(
        {
            "ts": pa.array(
                [us("2024-02-16T10:00:00Z") // 1000], pa.timestamp("ms")
            ),  # no zone: UTC
            "action": ["thumbnail_delivered"],
            "user_id": ["p"],
            "device_id": ["d1"],
            "event_id": ["e9"],
            "request_id": [""],
            "status": pa.array([None], pa.int32()),
        }
    )
    pq.write_table(t, root / "events" / "gateway-0000.parquet")
    gz = line(delivery(user_id="g", event_id="e8")).encode() + b"\n"
    (root / "events" / "mobile-0000.ndjson.gz").write_bytes(gzip.compress(gz))
    assert count_sample(root, *WIDE).recipients == 2
    grants = pa.table(
        {
            "device_id": ["d1"],
            "user_id": ["p"],
            "role": ["owner"],
            "valid_from": pa.array([None], pa.timestamp("us", tz="UTC")),
            "valid_to": pa.array([None], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(grants, root / "grants" / "more.parquet")
    assert count_sample(root, *WIDE).recipients == 1


def test_an_unreadable_file_is_an_output_error_that_quotes_nothing(tmp_path: Path) -> None:
    root = folder(tmp_path, [line(delivery(user_id="alice@example.org"))])
    (root / "events" / "gateway-0000.parquet").write_bytes(b"PAR1 alice@example.org")
    with pytest.raises(OutputError) as err:
        count_sample(root, *WIDE)
    assert "alice" not in err.value.one_line()
