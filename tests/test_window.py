"""SPEC §4: the window, half-open, START/END with END an instant or an ISO 8601 duration."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from forensics.errors import ExitCode, UsageError
from forensics.window import Window, format_instant, format_time, parse_window

UTC = timezone.utc


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        (
            "2024-02-16T09:00:00Z/2024-02-16T13:30:00Z",
            utc(2024, 2, 16, 9),
            utc(2024, 2, 16, 13, 30),
        ),
        ("2024-02-16T09:00:00Z/PT4H30M", utc(2024, 2, 16, 9), utc(2024, 2, 16, 13, 30)),
        ("2024-02-16T09:00:00/PT4H30M", utc(2024, 2, 16, 9), utc(2024, 2, 16, 13, 30)),
        ("2024-02-16 09:00:00+00:00/P1D", utc(2024, 2, 16, 9), utc(2024, 2, 17, 9)),
        ("2024-02-16T10:00:00+01:00/P1DT2H", utc(2024, 2, 16, 9), utc(2024, 2, 17, 11)),
        ("2024-02-16T14:45+05:45/PT90S", utc(2024, 2, 16, 9), utc(2024, 2, 16, 9, 1, 30)),
        (
            "2024-02-16T04:00:00-0500/2024-02-16T10:00:00-05",
            utc(2024, 2, 16, 9),
            utc(2024, 2, 16, 15),
        ),
        ("2024-02-16t09:00:00z/pt1h", utc(2024, 2, 16, 9), utc(2024, 2, 16, 10)),
        ("2024-02-16/P2W", utc(2024, 2, 16), utc(2024, 3, 1)),
        ("2024-02-16T09:00:00Z/PT0.5H", utc(2024, 2, 16, 9), utc(2024, 2, 16, 9, 30)),
        ("2024-02-28T23:00:00Z/PT2H", utc(2024, 2, 28, 23), utc(2024, 2, 29, 1)),
        (" 2024-02-16T09:00:00Z / PT1M ", utc(2024, 2, 16, 9), utc(2024, 2, 16, 9, 1)),
    ],
)
def test_valid_windows(text: str, start: datetime, end: datetime) -> None:
    w = parse_window(text)
    assert (w.start, w.end) == (start, end)
    assert w.start.utcoffset() == timedelta(0)


def test_fraction_beyond_microseconds_is_truncated() -> None:
    w = parse_window("2024-02-16T09:00:00.1234569Z/PT1S")
    assert w.start == utc(2024, 2, 16, 9, 0, 0, 123456)


def test_window_is_half_open() -> None:
    w = parse_window("2024-02-16T09:00:00Z/PT1H")
    assert w.contains(utc(2024, 2, 16, 9))
    assert w.contains(utc(2024, 2, 16, 9, 59, 59, 999999))
    assert not w.contains(utc(2024, 2, 16, 10))
    assert not w.contains(utc(2024, 2, 16, 8, 59, 59, 999999))


def test_window_echoes_in_utc_with_z() -> None:
    w = parse_window("2024-02-16T10:00:00+01:00/PT1H")
    assert w.to_json() == {"start": "2024-02-16T09:00:00Z", "end": "2024-02-16T10:00:00Z"}
    assert str(w) == "2024-02-16T09:00:00Z/2024-02-16T10:00:00Z"
    assert format_instant(datetime(2024, 2, 16, 9)) == "2024-02-16T09:00:00Z"


@pytest.mark.parametrize(
    "text, echo",
    [
        ("2024-02-16T10:00:00.75+01:00/PT1H", "2024-02-16T09:00:00.75Z/2024-02-16T10:00:00.75Z"),
        (
            "2024-02-16T09:00:00.000001Z/PT0.5S",
            "2024-02-16T09:00:00.000001Z/2024-02-16T09:00:00.500001Z",
        ),
        ("2024-02-16T09:00:00.000Z/PT1H", "2024-02-16T09:00:00Z/2024-02-16T10:00:00Z"),
    ],
)
def test_a_window_with_a_fraction_is_echoed_with_it_and_reads_back_the_same(
    text: str, echo: str
) -> None:
    # Echoed to the second, 09:00:00.75 would read back as a wider window (other figures).
    w = parse_window(text)
    assert str(w) == echo
    assert parse_window(str(w)) == w
    assert "/".join(w.to_json().values()) == echo


def test_a_year_below_1000_is_echoed_with_four_digits() -> None:
    # SPEC §4's YYYY: `%Y` alone wrote "999-01-01T00:00:00Z".
    w = parse_window("0999-01-01T00:00:00Z/P1D")
    assert str(w) == "0999-01-01T00:00:00Z/0999-01-02T00:00:00Z"
    assert format_instant(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert format_time(datetime(5, 3, 1, 0, 0, 0, 250000, tzinfo=UTC)) == "0005-03-01T00:00:00.25Z"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "START/END"),
        ("2024-02-16T09:00:00Z", "START/END"),
        ("2024-02-16T09:00:00Z/", "both required"),
        ("/PT1H", "both required"),
        ("a/b/c", "START/END"),
        ("yesterday/PT1H", "START is not an ISO 8601 instant"),
        ("2024-02-16T09:00:00Z/tomorrow", "END is not an ISO 8601 instant"),
        ("2024-02-30T09:00:00Z/PT1H", "not a valid date"),
        ("2024-13-01T09:00:00Z/PT1H", "not a valid date"),
        ("2024-02-16T24:00:00Z/PT1H", "not a valid date"),
        ("2024-02-16T09:00:60Z/PT1H", "not a valid date"),
        ("2024-02-16T09:00:00+24:00/PT1H", "beyond ±18:00"),
        ("2024-02-16T09:00:00+18:01/PT1H", "beyond ±18:00"),
        ("2024-02-16T09:00:00+05:99/PT1H", "invalid UTC offset"),
        ("2024-02-16T09:00:00Z/2024-02-16T09:00:00Z", "END must be after START"),
        ("2024-02-16T10:00:00Z/2024-02-16T09:00:00Z", "END must be after START"),
        ("2024-02-16T10:00:00+01:00/2024-02-16T09:00:00Z", "END must be after START"),
        ("2024-02-16T09:00:00Z/PT0S", "END must be after START"),
        ("2024-02-16T09:00:00Z/P", "not an ISO 8601 duration"),
        ("2024-02-16T09:00:00Z/PT", "not an ISO 8601 duration"),
        ("2024-02-16T09:00:00Z/P1DT", "not an ISO 8601 duration"),
        ("2024-02-16T09:00:00Z/PT1H2D", "not an ISO 8601 duration"),
        ("2024-02-16T09:00:00Z/-PT1H", "END is not an ISO 8601 instant"),
        ("2024-02-16T09:00:00Z/P1M", "years and months"),
        ("2024-02-16T09:00:00Z/P1Y", "years and months"),
        ("9999-12-31T23:00:00Z/P1D", "out of range"),
        ("2024-02-16T09:00\n:00Z/PT1H", "START is not an ISO 8601 instant"),
        ("2024-02-16T09:00:00Z/PT1H\n1", "not an ISO 8601 duration"),
    ],
)
def test_invalid_windows_raise_one_line_usage_errors(text: str, why: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_window(text)
    line = err.value.one_line()
    assert why in line
    assert line.startswith("--window: ")
    assert "\n" not in line
    assert err.value.exit_code == ExitCode.USAGE


def test_window_requires_utc_aware_datetimes() -> None:
    with pytest.raises(ValueError):
        Window(datetime(2024, 2, 16), datetime(2024, 2, 17))
    with pytest.raises(ValueError):
        Window(utc(2024, 2, 17), utc(2024, 2, 16))
