"""The incident window (SPEC §4): a half-open interval [start, end) of UTC instants.

`parse_window("START/END")`: START an ISO 8601 instant (no offset means UTC), END an instant
or an ISO 8601 duration (`PT4H30M`, `P1D`, `P1DT2H`, `P2W`); END must be after START.
`parse_window("@FILE")` reads it from an incident file (`read_window_file`). Anything else
raises UsageError with a one-line reason. Echoed as `YYYY-MM-DDTHH:MM:SSZ`.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from forensics.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

_WHAT = "--window"
# An incident file holds a few lines; anything larger is not one (and is not read whole).
MAX_INCIDENT_FILE_BYTES = 1 << 20

# Extended ISO 8601 / RFC 3339: date, optional time (T, t or space), optional fraction,
# optional offset (Z, ±HH:MM, ±HHMM, ±HH). A date alone means its midnight.
_INSTANT = re.compile(
    r"""^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})
    (?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?
    (?P<off>[Zz]|[+-]\d{2}(?::?\d{2})?)?$""",
    re.VERBOSE,
)
# Years and months are not fixed lengths, so a duration holds weeks, days and time only.
_DURATION = re.compile(
    r"""^[Pp](?:(?P<w>\d+(?:[.,]\d+)?)[Ww])?(?:(?P<d>\d+(?:[.,]\d+)?)[Dd])?
    (?:[Tt](?:(?P<h>\d+(?:[.,]\d+)?)[Hh])?(?:(?P<m>\d+(?:[.,]\d+)?)[Mm])?
    (?:(?P<s>\d+(?:[.,]\d+)?)[Ss])?)?$""",
    re.VERBOSE,
)
_MAX_OFFSET = timedelta(hours=18)
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Window:
    """[start, end): tz-aware UTC datetimes, end after start."""

    start: datetime
    end: datetime
    # The `START/END` text it was read from (an incident file's too): for the notes on it.
    given: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None or value.utcoffset() != timedelta(0):
                raise ValueError(f"Window.{name} must be a UTC datetime")
        if not self.end > self.start:
            raise ValueError("Window.end must be after Window.start")

    def __str__(self) -> str:
        return f"{window_instant(self.start)}/{window_instant(self.end)}"

    def contains(self, t: datetime) -> bool:
        """start <= t < end."""
        return self.start <= t < self.end

    def to_json(self) -> dict[str, str]:
        return {"start": window_instant(self.start), "end": window_instant(self.end)}


def window_instant(dt: datetime) -> str:
    """A window's START or END as SPEC §4 echoes it, `YYYY-MM-DDTHH:MM:SSZ`; a fraction of
    a second given is kept (`...:SS.5Z`): the echo must give the same figures again."""
    text = format_instant(dt)
    us = dt.astimezone(timezone.utc).microsecond
    return text if not us else f"{text[:-1]}.{us:06d}".rstrip("0") + "Z"


def format_instant(dt: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` in UTC (a naive datetime is taken as UTC; fraction dropped)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    utc = dt.astimezone(timezone.utc)
    # %Y is not zero-padded below the year 1000 on every platform
    return f"{utc.year:04d}" + utc.strftime("-%m-%dT%H:%M:%SZ")


def parse_window(text: str) -> Window:
    """Parse a --window value (SPEC §4): `START/END`, or `@FILE` for an incident file.

    Raises UsageError with a one-line reason.
    """
    text = text.strip()
    if text.startswith("@"):
        return read_window_file(text[1:])
    return _parse_span(text)


def read_window_file(name: str) -> Window:
    """The window of an incident file: TOML with `window = "START/END"` (as `forensics
    sample` writes), or JSON with `{"window": {"start": ..., "end": ...}}`.

    Either format may also give the other shape (a table/object with `start` and `end`, or a
    "START/END" string); TOML dates and times may be native. The format is taken from the
    extension (`.toml`, `.json`), else from the content. Raises UsageError naming the file.
    """
    if not name:
        raise UsageError(_WHAT, "@ must be followed by a file name, e.g. @incident.toml")
    what = f"{_WHAT} @{name}"
    doc = _read_document(Path(name).expanduser(), what)
    if not isinstance(doc, dict) or "window" not in doc:
        raise UsageError(
            what,
            "has no window key",
            'Expected window = "START/END" (TOML) or {"window": {"start": ..., "end": ...}} (JSON)',
        )
    span = _span_text(doc["window"], what)
    try:
        return _parse_span(span)
    except UsageError as e:
        raise UsageError(what, f"window: {e.why}", e.hint) from None


def _read_document(path: Path, what: str) -> Any:
    """The parsed TOML or JSON document of an incident file."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_INCIDENT_FILE_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(what, "no such file") from None
    except IsADirectoryError:
        raise UsageError(what, "is a folder, not an incident file") from None
    except OSError as e:
        raise UsageError(what, f"cannot be read ({e.strerror or type(e).__name__})") from None
    if len(data) > MAX_INCIDENT_FILE_BYTES:
        raise UsageError(what, "is larger than 1 MiB: not an incident file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(what, "is not UTF-8 text: not a TOML or JSON incident file") from None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _load_json(text, what)
    if suffix == ".toml":
        return _load_toml(text, what)
    try:
        return _load_json(text, what)
    except UsageError:
        pass
    try:
        return _load_toml(text, what)
    except UsageError:
        raise UsageError(what, "is neither TOML nor JSON") from None


def _load_json(text: str, what: str) -> Any:
    def strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("a duplicate key")
        return dict(pairs)

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not standard JSON")

    try:
        return json.loads(text, object_pairs_hook=strict_object, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise UsageError(
            what, f"is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    except (ValueError, RecursionError) as e:
        raise UsageError(what, f"is not valid JSON ({e})") from None


def _load_toml(text: str, what: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(what, f"is not valid TOML ({e})") from None
    except RecursionError:
        raise UsageError(what, "is not valid TOML (nested too deep)") from None


def _span_text(value: Any, what: str) -> str:
    """`START/END` text from a window value: a string, or a table with start and end."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        missing = [k for k in ("start", "end") if k not in value]
        if missing:
            raise UsageError(what, f"window has no {' and no '.join(missing)}")
        return f"{_instant_text(value['start'], 'start', what)}/" + _instant_text(
            value["end"], "end", what
        )
    raise UsageError(what, 'window must be "START/END" or have a start and an end')


def _instant_text(value: Any, key: str, what: str) -> str:
    if isinstance(value, str):
        return value
    # TOML's own dates and times: a datetime (with or without offset) or a date alone.
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise UsageError(what, f"window {key} must be an ISO 8601 instant")


def _parse_span(text: str) -> Window:
    """`START/END` (SPEC §4)."""
    text = text.strip()
    if text.count("/") != 1:
        raise UsageError(
            _WHAT,
            "expected START/END, e.g. 2024-02-16T09:00:00Z/PT4H30M",
            "END is an instant or an ISO 8601 duration",
        )
    start_text, end_text = (part.strip() for part in text.split("/"))
    if not start_text or not end_text:
        raise UsageError(_WHAT, "START and END are both required (START/END)")
    start = parse_instant(start_text, "START")
    if end_text[:1] in ("P", "p"):
        duration = parse_duration(end_text)
        try:
            end = start + duration
        except OverflowError:
            raise UsageError(_WHAT, "END (START + duration) is out of range") from None
    else:
        end = parse_instant(end_text, "END")
    if not end > start:
        raise UsageError(_WHAT, "END must be after START")
    return Window(start, end, given=text)


def parse_instant(text: str, label: str = "instant") -> datetime:
    """An ISO 8601 instant as a UTC datetime (microseconds; finer fractions truncated)."""
    m = _INSTANT.fullmatch(text)
    if not m:
        raise UsageError(_WHAT, f"{label} is not an ISO 8601 instant (like 2024-02-16T09:00:00Z)")
    fraction = (m["f"] or "")[:6].ljust(6, "0")
    try:
        naive = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            int(fraction),
        )
    except ValueError as e:
        raise UsageError(_WHAT, f"{label} is not a valid date and time ({e})") from None
    offset = _parse_offset(m["off"], label)
    try:
        return (naive - offset).replace(tzinfo=timezone.utc)
    except OverflowError:
        raise UsageError(_WHAT, f"{label} is out of range") from None


def _parse_offset(text: str | None, label: str) -> timedelta:
    if text is None or text in ("Z", "z"):
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if minutes >= 60:
        raise UsageError(_WHAT, f"{label} has an invalid UTC offset")
    offset = timedelta(hours=hours, minutes=minutes)
    if offset > _MAX_OFFSET:
        raise UsageError(_WHAT, f"{label} has a UTC offset beyond ±18:00")
    return sign * offset


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes, seconds (`P1DT2H`, `PT4H30M`)."""
    m = _DURATION.fullmatch(text)
    if not m or not any(m.groupdict().values()) or text.upper().endswith("T"):
        why = "END is not an ISO 8601 duration (like PT4H30M, P1D, P1DT2H)"
        if re.match(r"^[Pp]\d+(?:[.,]\d+)?[YyMm]", text):
            why = "END: years and months are not fixed lengths; give days or weeks instead"
        raise UsageError(_WHAT, why)

    def num(group: str) -> float:
        value = m[group] if m else None
        return float(value.replace(",", ".")) if value else 0.0

    try:
        return timedelta(
            weeks=num("w"), days=num("d"), hours=num("h"), minutes=num("m"), seconds=num("s")
        )
    except OverflowError:
        raise UsageError(_WHAT, "END duration is out of range") from None


def format_time(value: datetime | int, *, naive_as_is: bool = False) -> str:
    """A UTC instant (aware datetime or microseconds since the epoch) as ISO 8601 with `Z`.

    The fraction of a second is kept, without trailing zeros: `2024-02-16T09:41:07.25Z`.
    A naive datetime raises ValueError, or with `naive_as_is` is written as it is, without
    `Z`: the notification lists hold instants only, while `forensics sql` shows TIMESTAMP
    columns (no time zone) unchanged.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            if naive_as_is:
                return value.isoformat()
            raise ValueError("naive datetime: times must be UTC instants")
        utc = value.astimezone(timezone.utc).replace(tzinfo=None)
        micros = (utc - _EPOCH) // timedelta(microseconds=1)
    else:
        micros = value
    instant = _EPOCH + timedelta(microseconds=micros)
    text = f"{instant.year:04d}" + instant.strftime("-%m-%dT%H:%M:%S")
    fraction = micros % 1_000_000
    if fraction:
        text += "." + f"{fraction:06d}".rstrip("0")
    return text + "Z"
