"""De-duplication against the store: keys without request_id are looked up only within the
file's time range (their duplicates share ts), keys with one among every stored event."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from tests.helpers.ingest import event, rows, run, write_ndjson, write_parquet


def _counts(report) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    (f,) = report.files
    assert f.status == "loaded", f.error
    assert f.rows_read == f.rows_loaded + f.rows_rejected + f.rows_duplicate
    return f.rows_loaded, f.rows_duplicate


T0, T1, T2 = "2024-02-16T09:00:00Z", "2024-02-16T10:00:00Z", "2024-02-16T11:00:00Z"


def test_duplicates_at_the_first_and_last_instant_of_a_file_are_found(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    stored = [event(ts=T0, user_id="a"), event(ts=T1, user_id="b"), event(ts=T2, user_id="c")]
    assert _counts(run(db, write_ndjson(tmp_path / "a.ndjson", stored))) == (3, 0)
    # The file's range is [T0, T2]: its duplicates sit exactly on both ends.
    later = [
        event(ts=T2, user_id="c"),
        event(ts="2024-02-16T10:30:00Z", user_id="new"),
        event(ts=T0, user_id="a"),
    ]
    assert _counts(run(db, write_ndjson(tmp_path / "b.ndjson", later))) == (1, 2)


def test_a_microsecond_apart_is_another_event(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    assert _counts(run(db, write_ndjson(tmp_path / "a.ndjson", [event(ts=T1)]))) == (1, 0)
    near = [event(ts="2024-02-16T09:59:59.999999Z"), event(ts="2024-02-16T10:00:00.000001Z")]
    assert _counts(run(db, write_ndjson(tmp_path / "b.ndjson", near))) == (2, 0)
    again = [event(ts=T1), event(ts=T2)]
    assert _counts(run(db, write_ndjson(tmp_path / "c.ndjson", again))) == (1, 1)


def test_a_request_id_stored_at_another_time_is_still_a_duplicate(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    first = [event(ts=T0, request_id="r1"), event(ts=T0, user_id="x")]
    assert _counts(run(db, write_ndjson(tmp_path / "a.ndjson", first))) == (2, 0)
    # Hours later, the same request_id with other content, beside keys without one.
    second = pa.Table.from_pylist(
        [
            event(ts=T2, request_id="r1", user_id="other"),
            event(ts=T2, user_id="x", request_id=None),
            event(ts=T0, user_id="x", request_id=None),
        ]
    )
    assert _counts(run(db, write_parquet(tmp_path / "b.parquet", second))) == (1, 2)
    assert rows(db, "select count(*) from events where request_id = 'r1'") == [(1,)]


def test_a_file_of_keys_without_request_id_outside_the_stored_range_loads_whole(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    assert _counts(run(db, write_ndjson(tmp_path / "a.ndjson", [event(ts=T0)]))) == (1, 0)
    other_day = [event(ts="2024-02-17T09:00:00Z"), event(ts="2024-02-17T09:00:01Z")]
    assert _counts(run(db, write_ndjson(tmp_path / "b.ndjson", other_day))) == (2, 0)
    assert rows(db, "select count(*) from events") == [(3,)]
