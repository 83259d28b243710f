"""The synthetic incident behind `forensics sample` and the shipped sample_logs/ (SPEC §7).

`write_sample(out, seed=, scale=)` writes events/, grants/, accounts/ and incident.json such that
SPEC §5 over the window gives exactly RECIPIENTS recipients and TAPPERS tappers, for any seed and
scale, by construction of the data (every trap of SPEC §2-5 included); the other figures vary.
Work is chunked by users, so memory stays bounded at any scale. Never prints: progress goes to
an optional callback.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forensics.errors import OutputError, UsageError

Arr = npt.NDArray[Any]
ProgressFn = Callable[[int, int], None]

RECIPIENTS = 13_000
TAPPERS = 1_504
DEFAULT_SEED = 1
BASE_USERS = 16_000  # users at --scale 1; background traffic is proportional to users
MIN_USERS = 15_000  # the incident needs this many users (below --scale 0.94 it stays here)
CHUNK_USERS = 1_000_000  # users generated and written at a time (bounds memory)
MAX_SCALE = 10_000.0

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = 1_000_000
MS = 1_000
MINUTE = 60 * US


def _instant(text: str) -> int:
    """Microseconds since the epoch of an ISO instant."""
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - _EPOCH) // timedelta(
        microseconds=1
    )


WINDOW_START = _instant("2024-02-16T09:14:00Z")
WINDOW_END = _instant("2024-02-16T13:32:00Z")
DAY_START = _instant("2024-02-16T00:00:00Z")
DAY_END = _instant("2024-02-17T00:00:00Z")
REEXPORT = (_instant("2024-02-16T12:45:00Z"), _instant("2024-02-16T13:05:00Z"))

# Actions (codes used internally, names written).
DELIVERED, TAPPED, PLAYED, EVENTS_LIST, LOGIN = 0, 1, 2, 3, 4
ACTIONS = ("thumbnail_delivered", "thumbnail_tapped", "video_played", "events_list", "login")

CACHE_NODES = tuple(f"cache-{i:02d}" for i in range(1, 25))
FAULTY_NODES = np.array([6, 11, 18])  # cache-07, cache-12, cache-19 ran the faulty cache build
APPS = ("ios/7.2.1", "ios/7.1.4", "android/7.2.0", "android/7.1.9", "web/2024.02.1")
APP_P = np.array([0.30, 0.12, 0.30, 0.13, 0.15])

# Output files ("dest") of an event; FREE lets the writer choose, ANY_JSON picks a JSON file.
GATEWAY, LEGACY, EDGE, MOBILE = 0, 1, 2, 3
FREE, ANY_JSON = -1, 4
DEST_P = np.array([0.53, 0.20, 0.245, 0.025])

# Timestamp renderings in JSON (Parquet files use Arrow timestamps).
(
    ISO_Z_MS,
    ISO_Z_US,
    ISO_OFF_MS,
    ISO_OFF_US,
    ISO_SPACE,
    EPOCH_MS,
    EPOCH_S,
    EPOCH_US,
    ISO_NS,
    ISO_NS9,
) = range(10)
OFFSETS_MIN = np.array([330, -480, 60, 540, -180, 345, 840, -720, -210, 120])

SPECIAL_BASE = 1 << 62  # user gids at and above are the special users below
BIG_IDS = (9007199254740992, 9007199254740993)  # 2**53 and 2**53 + 1: equal as doubles
NO_TIME = np.iinfo(np.int64).min  # a missing valid_from / valid_to


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class SampleSummary:
    """What `write_sample` wrote; `traps` counts each planted trap (for README and tests)."""

    out: Path
    seed: int
    scale: float
    window_start: str
    window_end: str
    recipients: int
    tappers: int
    users: int
    devices: int
    event_records: int
    grant_records: int
    account_records: int
    files: tuple[str, ...]
    traps: dict[str, int]


# ---------------------------------------------------------------- ids and text


def _mix64(x: Arr, key: int) -> Arr:
    """A bijection on uint64 (splitmix64 finaliser): distinct inputs give distinct ids."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(key & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


_M48 = np.uint64((1 << 48) - 1)


def _mix48(x: Arr, key: int) -> Arr:
    """A bijection on [0, 2^48) (odd multipliers and xor-shifts), for shorter unique ids."""
    with np.errstate(over="ignore"):
        z = (x.astype(np.uint64) + np.uint64(key & 0xFFFFFFFFFFFF)) & _M48
        z = (z * np.uint64(0x9E3779B97F4B)) & _M48
        z ^= z >> np.uint64(24)
        z = (z * np.uint64(0xBF58476D1CE5)) & _M48
        return z ^ (z >> np.uint64(21))


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hex_cols(x: Arr) -> Arr:
    """(n, 16) ASCII hex digits of uint64 values."""
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nib = (x[:, None] >> shifts) & np.uint64(15)
    return _HEX[nib.astype(np.intp)]


def _fixed(mat: Arr) -> pa.Array:
    """A string array from an (n, w) uint8 matrix of UTF-8 bytes, one row per string."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, w = mat.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(mat.tobytes())]
    )


def _const_cols(text: str, n: int) -> Arr:
    return np.broadcast_to(np.frombuffer(text.encode(), dtype=np.uint8), (n, len(text)))


def _prefixed_hex(prefix: str, x: Arr, digits: int = 16) -> pa.Array:
    return _fixed(np.hstack([_const_cols(prefix, len(x)), _hex_cols(x)[:, 16 - digits :]]))


def _digits(value: Arr, width: int) -> Arr:
    """(n, width) ASCII decimal digits, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (48 + (value[:, None] // powers) % 10).astype(np.uint8)


def _iso_cols(ts_us: Arr, frac: int, sep: str = "T") -> Arr:
    """(n, 20 + frac) ASCII 'YYYY-MM-DDTHH:MM:SS[.fff…]' of UTC microsecond instants."""
    ts = ts_us.astype(np.int64)
    days = ts // (86_400 * US)
    rem = ts - days * 86_400 * US
    d = days.astype("datetime64[D]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = (d.astype("datetime64[M]") - d.astype("datetime64[Y]")).astype(np.int64) + 1
    day = (d - d.astype("datetime64[M]")).astype(np.int64) + 1
    secs, micros = rem // US, rem % US
    n = len(ts)
    parts = [
        _digits(year, 4),
        _const_cols("-", n),
        _digits(month, 2),
        _const_cols("-", n),
        _digits(day, 2),
        _const_cols(sep, n),
        _digits(secs // 3600, 2),
        _const_cols(":", n),
        _digits(secs // 60 % 60, 2),
        _const_cols(":", n),
        _digits(secs % 60, 2),
    ]
    if frac:
        parts += [_const_cols(".", n), _digits(micros, 6)[:, :frac]]
    return np.hstack(parts)


def _join(*parts: Any) -> pa.Array:
    """Concatenate string arrays and Python strings element-wise (as large_string)."""
    args = [
        pa.scalar(p, pa.large_string()) if isinstance(p, str) else p.cast(pa.large_string())
        for p in parts
    ]
    return pc.binary_join_element_wise(*args, pa.scalar("", pa.large_string()))


def _quote(values: pa.Array) -> pa.Array:
    """JSON string literals of values that need no escaping (ids, ISO times, enum text)."""
    return _join('"', values, '"')


def _take_pool(pool: Sequence[str], idx: Arr) -> pa.Array:
    return pa.array(list(pool), pa.large_string()).take(pa.array(idx.astype(np.int64)))


def _lines_bytes(lines: pa.Array, eol: str = "\n") -> bytes:
    """Concatenate a string array into newline-terminated lines, without Python loops."""
    if len(lines) == 0:
        return b""
    arr = _join(lines.cast(pa.large_string()), eol)
    arr = pa.concat_arrays([arr])  # a fresh, unsliced array: its data buffer is the payload
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    data = arr.buffers()[2]
    return bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


class _Keys:
    """Seed-derived keys for the id bijections."""

    def __init__(self, seed: int) -> None:
        base = _mix64(np.arange(16, dtype=np.uint64), seed * 0x9E3779B97F4A7C15)
        self.user, self.legacy_user, self.device, self.legacy_device = (int(v) for v in base[:4])
        self.clip, self.req_a, self.email = (int(v) for v in base[4:7])
        mult = 1_000_003 + 2 * int(base[9] % 1_000_000)
        while mult % 3 == 0 or mult % 5 == 0:  # coprime to 9e9 = 2^9 3^2 5^9 (mult is odd)
            mult += 2
        self.mult = mult
        self.user_add = int(base[10] % 9_000_000_000)
        self.dev_add = int(base[11] % 9_000_000_000)

    def legacy_user_mask(self, gid: Arr) -> Arr:
        special = gid >= SPECIAL_BASE
        return special | (_mix64(gid, self.legacy_user) % np.uint64(10) == 0)  # type: ignore[no-any-return]

    def legacy_device_mask(self, gid: Arr) -> Arr:
        return _mix64(gid, self.legacy_device) % np.uint64(16) == 0  # type: ignore[no-any-return]

    def _numeric(self, gid: Arr, add: int) -> Arr:
        # An affine map mod 9e9 with a multiplier coprime to 9e9 is a bijection: distinct
        # gids (all below 9e9) give distinct 10-digit numbers.
        return 1_000_000_000 + (gid.astype(np.int64) * self.mult + add) % 9_000_000_000

    def user_text(self, gid: Arr) -> pa.Array:
        gid = gid.astype(np.int64)
        special = gid >= SPECIAL_BASE
        plain = np.where(special, 0, gid)
        num = self._numeric(plain, self.user_add)
        if special.any():
            num[special] = np.array(BIG_IDS, dtype=np.int64)[gid[special] - SPECIAL_BASE]
        dec = pc.cast(pa.array(num), pa.large_string())
        hexed = _prefixed_hex("usr_", _mix64(plain, self.user))
        return pc.if_else(pa.array(self.legacy_user_mask(gid)), dec, hexed)

    def device_text(self, gid: Arr) -> pa.Array:
        gid = gid.astype(np.int64)
        dec = pc.cast(pa.array(self._numeric(gid, self.dev_add)), pa.large_string())
        return pc.if_else(
            pa.array(self.legacy_device_mask(gid)),
            dec,
            _prefixed_hex("cam_", _mix64(gid, self.device)),
        )

    # Clip and request gids stay below 2^48 (chunk << 36 | counter), so 48 bits are unique.
    def clip_text(self, gid: Arr) -> pa.Array:
        return _prefixed_hex("evt_", _mix48(gid, self.clip), 12)

    def request_text(self, gid: Arr) -> pa.Array:
        return _prefixed_hex("req-", _mix48(gid, self.req_a), 12)


# ---------------------------------------------------------------- events


_EVENT_FIELDS = (
    "ts",
    "action",
    "user",
    "device",
    "clip",
    "status",
    "status_fmt",
    "req_fmt",
    "node",
    "app",
    "ts_fmt",
    "dest",
)
_EVENT_TYPES = (
    np.int64,
    np.int8,
    np.int64,
    np.int64,
    np.int64,
    np.int16,
    np.int8,
    np.int8,
    np.int8,
    np.int8,
    np.int8,
    np.int8,
)
# status_fmt: 0 a number (or omitted when status is 0), 1 a string of digits, 2 explicit null.
# req_fmt: 0 a request_id, 1 omitted, 2 blank "", 3 null.


@dataclass
class _Events:
    """Columns of generated events; users/devices/clips are gids, rendered at write time."""

    cols: dict[str, Arr]

    @property
    def n(self) -> int:
        return len(self.cols["ts"])

    @staticmethod
    def make(n: int, **values: Any) -> _Events:
        defaults: dict[str, Any] = {
            "device": -1,
            "clip": -1,
            "status": 0,
            "status_fmt": 0,
            "req_fmt": 0,
            "node": -1,
            "app": 0,
            "ts_fmt": -1,
            "dest": FREE,
        }
        cols: dict[str, Arr] = {}
        for name, typ in zip(_EVENT_FIELDS, _EVENT_TYPES, strict=True):
            v = values.get(name, defaults.get(name))
            if v is None:
                raise ValueError(name)
            cols[name] = np.array(np.broadcast_to(np.asarray(v), (n,)), dtype=typ)
        return _Events(cols)

    @staticmethod
    def concat(parts: Sequence[_Events]) -> _Events:
        return _Events({k: np.concatenate([p.cols[k] for p in parts]) for k in _EVENT_FIELDS})

    def take(self, idx: Arr) -> _Events:
        return _Events({k: v[idx] for k, v in self.cols.items()})


@dataclass
class _Grants:
    device: list[Arr] = field(default_factory=list)
    user: list[Arr] = field(default_factory=list)
    role: list[Arr] = field(default_factory=list)  # 0 owner, 1 shared, 2 missing (= owner)
    valid_from: list[Arr] = field(default_factory=list)
    valid_to: list[Arr] = field(default_factory=list)

    def add(
        self, device: Any, user: Any, role: Any, valid_from: Any = NO_TIME, valid_to: Any = NO_TIME
    ) -> None:
        n = len(np.atleast_1d(device))
        for lst, v, t in (
            (self.device, device, np.int64),
            (self.user, user, np.int64),
            (self.role, role, np.int8),
            (self.valid_from, valid_from, np.int64),
            (self.valid_to, valid_to, np.int64),
        ):
            lst.append(np.array(np.broadcast_to(np.asarray(v), (n,)), dtype=t))

    def arrays(self) -> dict[str, Arr]:
        def cat(lst: list[Arr], t: Any) -> Arr:
            return np.concatenate(lst) if lst else np.zeros(0, dtype=t)

        return {
            "device": cat(self.device, np.int64),
            "user": cat(self.user, np.int64),
            "role": cat(self.role, np.int8),
            "valid_from": cat(self.valid_from, np.int64),
            "valid_to": cat(self.valid_to, np.int64),
        }


def _ms(rng: np.random.Generator, lo_s: float, hi_s: float, n: int) -> Arr:
    """Random durations in whole milliseconds, in µs."""
    return rng.integers(int(lo_s * 1000), int(hi_s * 1000) + 1, n).astype(np.int64) * MS


def _success_status(rng: np.random.Generator, n: int) -> tuple[Arr, Arr]:
    """Success statuses as logs write them: mostly absent, some 200 / "200" / 204 / null."""
    kind = rng.choice(5, n, p=[0.80, 0.10, 0.05, 0.03, 0.02])
    status = np.select([kind == 1, kind == 2, kind == 3], [200, 200, 204], 0)
    fmt = np.select([kind == 2, kind == 4], [1, 2], 0)
    return status, fmt


def _failure_status(rng: np.random.Generator, n: int) -> tuple[Arr, Arr]:
    status = rng.choice(np.array([403, 404, 429, 500, 502, 503]), n)
    return status, (rng.random(n) < 0.15).astype(np.int8)


# ---------------------------------------------------------------- the world of one chunk


@dataclass
class _World:
    """Users, households, devices and grants of one chunk of users (gids lo..hi-1)."""

    chunk: int
    users: Arr  # user gids
    household: Arr  # household id per local user
    dev_gid: Arr
    dev_owner: Arr  # local user index
    dev_install: Arr
    mem_ptr: Arr  # CSR: valid members (owner first, then sharers) of each device
    mem_user: Arr  # local user indices
    grants: _Grants


def _device_gid(chunk: int, local: Arr) -> Arr:
    return np.int64(chunk) * (1 << 22) + local.astype(np.int64)


def _build_world(rng: np.random.Generator, chunk: int, lo: int, hi: int) -> _World:
    n = hi - lo
    sizes = rng.choice(np.arange(1, 6), size=n, p=[0.45, 0.30, 0.15, 0.07, 0.03])
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    household = np.repeat(np.arange(len(sizes)), sizes)[:n]
    hh_start = np.searchsorted(household, np.arange(len(sizes)))
    hh_size = np.bincount(household, minlength=len(sizes))
    pos = np.arange(n) - hh_start[household]
    # The first member of a household owns 1-4 cameras; others own 0-2 of their own.
    ndev = np.where(
        pos == 0,
        1 + rng.choice(4, n, p=[0.6, 0.25, 0.1, 0.05]),
        rng.choice(3, n, p=[0.7, 0.25, 0.05]),
    )
    owner = np.repeat(np.arange(n), ndev)
    nd = len(owner)
    if nd >= 1 << 22:
        raise ValueError("chunk too large")
    gid = _device_gid(chunk, np.arange(nd))
    install = DAY_START - _ms(rng, 5 * 86_400, 3 * 365 * 86_400, nd)
    grants = _Grants()
    owner_from = np.where(rng.random(nd) < 0.2, NO_TIME, install)
    grants.add(gid, lo + owner, np.where(rng.random(nd) < 0.1, 2, 0), owner_from)
    # Household members share each other's cameras (most of the time).
    h = household[owner]
    rep = np.repeat(np.arange(nd), hh_size[h])
    member = hh_start[h][rep] + (
        np.arange(len(rep)) - np.repeat(np.cumsum(hh_size[h]) - hh_size[h], hh_size[h])
    )
    keep = (member != owner[rep]) & (rng.random(len(rep)) < 0.8)
    sd, su = rep[keep], member[keep]
    span = np.maximum(DAY_START - 86_400 * US - install[sd], MS)
    share_from = install[sd] + (rng.random(len(sd)) * span).astype(np.int64) // MS * MS
    share_from = np.where(rng.random(len(sd)) < 0.1, NO_TIME, share_from)
    grants.add(gid[sd], lo + su, 1, share_from)
    # Long-expired shares (ex-partners, house-sitters): valid before the data, never after.
    ex = np.flatnonzero(rng.random(nd) < 0.02)
    # Entirely before the data (install is at least 5 days before it): never valid in it.
    ex_from = np.minimum(
        install[ex] + _ms(rng, 3600, 30 * 86_400, len(ex)), DAY_START - 3 * 86_400 * US
    )
    ex_to = np.minimum(
        ex_from + _ms(rng, 86_400, 200 * 86_400, len(ex)), DAY_START - 2 * 86_400 * US
    )
    grants.add(gid[ex], lo + rng.integers(0, n, len(ex)), 1, ex_from, ex_to)
    # Valid members per device: owner first, then sharers.
    m_dev = np.concatenate([np.arange(nd), sd])
    m_user = np.concatenate([owner, su])
    order = np.lexsort((np.concatenate([np.zeros(nd), np.ones(len(sd))]), m_dev))
    ptr = np.concatenate([[0], np.cumsum(np.bincount(m_dev, minlength=nd))])
    return _World(
        chunk,
        np.arange(lo, hi, dtype=np.int64),
        household,
        gid,
        owner,
        install,
        ptr,
        m_user[order],
        grants,
    )


def _members(world: _World, dev: Arr) -> tuple[Arr, Arr]:
    """(row index into `dev`, local member) for every valid member of each device."""
    counts = world.mem_ptr[dev + 1] - world.mem_ptr[dev]
    rep = np.repeat(np.arange(len(dev)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return rep, world.mem_user[world.mem_ptr[dev][rep] + np.arange(len(rep)) - first]


def _random_nodes(rng: np.random.Generator, n: int) -> Arr:
    return rng.integers(0, len(CACHE_NODES), n)


def _faulty_nodes(rng: np.random.Generator, n: int) -> Arr:
    return FAULTY_NODES[rng.choice(3, n, p=[0.5, 0.3, 0.2])]


def _apps(rng: np.random.Generator, n: int) -> Arr:
    return rng.choice(len(APPS), n, p=APP_P)


class _Clips:
    """Clip (camera event) gid allocator for a chunk."""

    def __init__(self, chunk: int) -> None:
        self.base = np.int64(chunk) << np.int64(36)
        self.next = 0

    def new(self, n: int) -> Arr:
        out = self.base + np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return out


def _deliver_to_members(
    rng: np.random.Generator, world: _World, dev: Arr, clips: Arr, t_clip: Arr, p: float = 0.93
) -> tuple[_Events, Arr, Arr]:
    """Authorized deliveries of clips to their device's valid members, plus some taps/plays."""
    row, member = _members(world, dev)
    keep = rng.random(len(row)) < p
    row, member = row[keep], member[keep]
    n = len(row)
    ts = t_clip[row] + _ms(rng, 0.2, 3.0, n)
    fail = rng.random(n) < 0.012
    status, sfmt = _success_status(rng, n)
    fstatus, ffmt = _failure_status(rng, n)
    status = np.where(fail, fstatus, status)
    sfmt = np.where(fail, ffmt, sfmt)
    app = _apps(rng, n)
    gdev, gclip, guser = world.dev_gid[dev[row]], clips[row], world.users[member]
    parts = [
        _Events.make(
            n,
            ts=ts,
            action=DELIVERED,
            user=guser,
            device=gdev,
            clip=gclip,
            status=status,
            status_fmt=sfmt,
            node=_random_nodes(rng, n),
            app=app,
        )
    ]
    tap = np.flatnonzero(rng.random(n) < 0.08)
    t_tap = ts[tap] + MS * (300 + rng.exponential(480_000, len(tap)).astype(np.int64))
    parts.append(
        _Events.make(
            len(tap),
            ts=t_tap,
            action=TAPPED,
            user=guser[tap],
            device=gdev[tap],
            clip=gclip[tap],
            node=_random_nodes(rng, len(tap)),
            app=app[tap],
            status=np.where(rng.random(len(tap)) < 0.005, 500, 0),
        )
    )
    play = tap[rng.random(len(tap)) < 0.35]
    t_play = t_tap[np.searchsorted(tap, play)] + _ms(rng, 0.5, 6, len(play))
    parts.append(
        _Events.make(
            len(play),
            ts=t_play,
            action=PLAYED,
            user=guser[play],
            device=gdev[play],
            clip=gclip[play],
            node=_random_nodes(rng, len(play)),
            app=app[play],
        )
    )
    return _Events.concat(parts), member, ts


def _background(rng: np.random.Generator, world: _World, clips: _Clips) -> _Events:
    """A normal day: clips delivered to their households, taps, plays, logins, list views."""
    nd = len(world.dev_gid)
    per_dev = rng.poisson(1.0, nd)
    dev = np.repeat(np.arange(nd), per_dev)
    gclips = clips.new(len(dev))
    # More motion (and clips) in the daytime: a mixture of uniform and a midday bump.
    frac = np.where(
        rng.random(len(dev)) < 0.6,
        rng.random(len(dev)),
        np.clip(rng.normal(0.55, 0.15, len(dev)), 0, 0.999),
    )
    t_clip = DAY_START + (frac * (DAY_END - DAY_START) / MS).astype(np.int64) * MS
    deliveries, _, _ = _deliver_to_members(rng, world, dev, gclips, t_clip)
    n = len(world.users)
    nlog = rng.poisson(0.3, n)
    lu = np.repeat(np.arange(n), nlog)
    t_login = DAY_START + rng.integers(0, (DAY_END - DAY_START) // US, len(lu)) * US
    login = _Events.make(
        len(lu),
        ts=t_login,
        action=LOGIN,
        user=world.users[lu],
        status=np.where(rng.random(len(lu)) < 0.03, 401, 0),
        app=_apps(rng, len(lu)),
    )
    # Device-list views: a camera of the user's household (not always one they were granted).
    nlist = rng.poisson(0.3, n)
    vu = np.repeat(np.arange(n), nlist)
    dev_hh = world.household[world.dev_owner]  # non-decreasing: owners are in user order
    first = np.searchsorted(dev_hh, world.household[vu], side="left")
    count = np.searchsorted(dev_hh, world.household[vu], side="right") - first
    vdev = first + (rng.random(len(vu)) * count).astype(np.int64)
    t_list = DAY_START + _ms(rng, 0, 86_399, len(vu))
    views = _Events.make(
        len(vu),
        ts=t_list,
        action=EVENTS_LIST,
        user=world.users[vu],
        device=world.dev_gid[vdev],
        node=_random_nodes(rng, len(vu)),
        app=_apps(rng, len(vu)),
    )
    return _Events.concat([deliveries, login, views])


# ---------------------------------------------------------------- the incident (chunk 0)


class _Incident:
    """Plants the incident and every trap in chunk 0; counts are exact by construction.

    Recipients: 12,831 plain + 96 revoked sharers + 48 previous owners + 24 late sharers + 1
    (the 2^53 + 1 id) = 13,000. Tappers: 1,443 plain + 40 + 20 + 1 = 1,504.
    """

    N_PLAIN = 12_831
    N_REVOKED_AFTER, N_REVOKED_EXACT, N_REVOKED_BEFORE, N_REVOKED_BEFORE_TAP = 96, 8, 40, 10
    N_TRANSFER_AFTER, N_TRANSFER_EXACT, N_TRANSFER_BEFORE, N_NEW_OWNER_EXACT = 48, 5, 30, 5
    N_LATE_SHARE = 24
    N_TAP_PLAIN, N_TAP_REVOKED, N_TAP_TRANSFER = 1_443, 40, 20
    N_LATE_ONLY, N_TIE, N_VIEWERS, N_PLAY_ONLY = 131, 9, 187, 6
    N_TAP_BEFORE, N_TAP_FAILED, N_TAP_UNDELIVERED = 41, 57, 23
    N_FAILED, N_FAILED_TAP = 212, 31
    N_OUTSIDE, N_OUTSIDE_AT_END, N_OUTSIDE_BEFORE_START = 37, 4, 3
    N_TAIL = 60
    N_GRANT_START = 10
    N_LIST_NOISE = 50
    N_NO_ACCOUNT = 37

    def __init__(self, rng: np.random.Generator, world: _World, clips: _Clips) -> None:
        self.rng, self.world, self.clips = rng, world, clips
        self.parts: list[_Events] = []
        self.grants = _Grants()
        self.traps: dict[str, int] = {}
        self.next_device = len(world.dev_gid)
        n = len(world.users)
        if n < MIN_USERS:
            raise ValueError("the incident needs MIN_USERS users in chunk 0")
        self.order = rng.permutation(n)
        self.taken = 0
        self.no_account: Arr = np.zeros(0, dtype=np.int64)
        self.hostile_users: Arr = np.zeros(0, dtype=np.int64)
        self.victim_devices: Arr = np.zeros(0, dtype=np.int64)
        self.recipient_locals: Arr = np.zeros(0, dtype=np.int64)

    # -- helpers

    def users(self, k: int) -> Arr:
        """k distinct local users not used by any other role."""
        out = self.order[self.taken : self.taken + k]
        self.taken += k
        return out

    def gid(self, local: Arr) -> Arr:
        return self.world.users[local]

    def add(self, n: int, **values: Any) -> None:
        values.setdefault("app", _apps(self.rng, n))
        self.parts.append(_Events.make(n, **values))

    def new_devices(self, k: int) -> Arr:
        local = np.arange(self.next_device, self.next_device + k)
        self.next_device += k
        return _device_gid(0, local)

    def window_times(self, k: int, lo: int = WINDOW_START, hi: int = WINDOW_END) -> Arr:
        """Instants in [lo, hi), whole ms, shaped like a recovery: a fast rise, a long tail."""
        frac = self.rng.beta(1.6, 2.6, k)
        return lo + (frac * ((hi - lo) // MS)).astype(np.int64) * MS

    def foreign_devices(self, local_users: Arr) -> Arr:
        """Background devices of another household than each user's (so never granted)."""
        w, rng = self.world, self.rng
        nd = len(w.dev_gid)
        dev = rng.integers(0, nd, len(local_users))
        while True:
            bad = np.flatnonzero(w.household[w.dev_owner[dev]] == w.household[local_users])
            if len(bad) == 0:
                return dev
            dev[bad] = rng.integers(0, nd, len(bad))

    def victim_clips(self, dev: Arr, t1: Arr) -> Arr:
        """New clips of background devices, delivered to their members just before t1."""
        gclips = self.clips.new(len(dev))
        t_clip = t1 - _ms(self.rng, 0.3, 4.0, len(dev))
        ev, _, _ = _deliver_to_members(self.rng, self.world, dev, gclips, t_clip, p=0.97)
        self.parts.append(ev)
        return gclips

    def cross(
        self, users: Arr, dev_gid: Arr, clips: Arr, ts: Arr, *, failed: bool = False, **extra: Any
    ) -> None:
        """Deliveries of other people's clips through the faulty cache nodes."""
        n = len(users)
        status, sfmt = (_failure_status if failed else _success_status)(self.rng, n)
        extra.setdefault("status", status)
        extra.setdefault("status_fmt", sfmt)
        self.add(
            n,
            ts=ts,
            action=DELIVERED,
            user=users,
            device=dev_gid,
            clip=clips,
            node=_faulty_nodes(self.rng, n),
            **extra,
        )

    def act(self, action: int, users: Arr, dev_gid: Arr, clips: Arr, ts: Arr, **extra: Any) -> None:
        n = len(users)
        extra.setdefault("node", _random_nodes(self.rng, n))
        self.add(n, ts=ts, action=action, user=users, device=dev_gid, clip=clips, **extra)

    def owned_device(self, owners_local: Arr, owner_from: Arr | None = None) -> Arr:
        """A new camera for each owner (outside any household sharing)."""
        k = len(owners_local)
        dev = self.new_devices(k)
        install = DAY_START - _ms(self.rng, 30 * 86_400, 900 * 86_400, k)
        frm = install if owner_from is None else owner_from
        self.grants.add(dev, self.gid(owners_local), np.where(self.rng.random(k) < 0.3, 2, 0), frm)
        return dev

    def deliver(self, users_gid: Arr, dev: Arr, clips: Arr, ts: Arr) -> None:
        status, sfmt = _success_status(self.rng, len(users_gid))
        self.act(DELIVERED, users_gid, dev, clips, ts, status=status, status_fmt=sfmt)

    # -- the incident

    def build(self) -> None:
        plain = self.users(self.N_PLAIN)
        revoked_after = self.users(self.N_REVOKED_AFTER)
        transfer_after = self.users(self.N_TRANSFER_AFTER)
        late_share = self.users(self.N_LATE_SHARE)
        self.recipient_locals = np.concatenate([plain, revoked_after, transfer_after, late_share])
        self.plain_recipients(plain)
        self.revoked_shares(revoked_after)
        self.transfers(transfer_after)
        self.late_shares(late_share)
        self.big_ids()
        self.failed_deliveries()
        self.outside_window()
        self.grant_starts()
        self.list_noise()
        rng = self.rng
        self.no_account = rng.choice(self.recipient_locals, self.N_NO_ACCOUNT, replace=False)
        # Hostile names: some recipients and some owners of exposed cameras.
        owners = np.unique(self.world.dev_owner[self.victim_devices[:50]])
        self.hostile_users = np.concatenate(
            [rng.choice(plain, 4, replace=False), rng.permutation(owners)[:3]]
        )
        self.traps["recipients_without_account"] = self.N_NO_ACCOUNT

    def plain_recipients(self, plain: Arr) -> None:
        rng = self.rng
        # 3 receive their only cross-account thumbnail at exactly the window start, 2 at the
        # last microsecond of the window (written with 9 fraction digits, which truncate).
        at_start, at_end_ns, rest = plain[:3], plain[3:5], plain[5:]
        pairs_per = np.where(rng.random(len(rest)) < 0.15, 2, 1)
        pair_user = np.concatenate([at_start, at_end_ns, np.repeat(rest, pairs_per)])
        pair_dev = self.foreign_devices(pair_user)
        self.victim_devices = pair_dev
        clips_per = np.concatenate(
            [[1] * 5, rng.choice([1, 2, 3], len(pair_user) - 5, p=[0.7, 0.22, 0.08])]
        )
        d_user = np.repeat(pair_user, clips_per)
        d_dev = np.repeat(pair_dev, clips_per)
        t1 = self.window_times(len(d_user))
        t1[:3] = WINDOW_START
        t1[3:5] = WINDOW_END - 1
        d_clip = self.victim_clips(d_dev, t1)
        ts_fmt = np.full(len(d_user), -1)
        ts_fmt[:5] = [EPOCH_MS, ISO_OFF_MS, ISO_Z_MS, ISO_NS9, ISO_NS9]
        dest = np.full(len(d_user), FREE)
        dest[:5] = ANY_JSON
        gdev = self.world.dev_gid[d_dev]
        self.cross(self.gid(d_user), gdev, d_clip, t1, ts_fmt=ts_fmt, dest=dest)
        self.traps.update(
            {"deliveries_at_window_start": 3, "deliveries_in_last_microsecond_nanosecond_text": 2}
        )
        # One delivery row per recipient to act on (taps, plays); never the boundary ones.
        first = np.unique(d_user[5:], return_index=True)[1] + 5
        by_user = {int(u): int(i) for u, i in zip(d_user[first], first, strict=True)}
        pool = rng.permutation(rest)
        tappers, pool = pool[: self.N_TAP_PLAIN], pool[self.N_TAP_PLAIN :]
        row = np.array([by_user[int(u)] for u in tappers])
        late_only, tie = (
            row[: self.N_LATE_ONLY],
            row[self.N_LATE_ONLY : self.N_LATE_ONLY + self.N_TIE],
        )
        normal = row[self.N_LATE_ONLY + self.N_TIE :]
        t2 = np.concatenate(
            [
                WINDOW_END + _ms(rng, 20, 3 * 3600, len(late_only)),
                t1[tie],
                t1[normal] + MS * (1000 + rng.exponential(45_000, len(normal)).astype(np.int64)),
            ]
        )
        rows = np.concatenate([late_only, tie, normal])
        # 8% retry after a failed first attempt.
        retry = rng.random(len(rows)) < 0.08
        fs, ffmt = _failure_status(rng, int(retry.sum()))
        self.act(
            TAPPED,
            self.gid(d_user[rows[retry]]),
            gdev[rows[retry]],
            d_clip[rows[retry]],
            t2[retry] - _ms(rng, 0.5, 4, int(retry.sum())),
            status=fs,
            status_fmt=ffmt,
        )
        self.act(TAPPED, self.gid(d_user[rows]), gdev[rows], d_clip[rows], t2)
        self.traps["late_taps_after_window"] = int((t2 >= WINDOW_END).sum())
        self.traps["tappers_only_after_window"] = self.N_LATE_ONLY
        self.traps["taps_at_delivery_instant"] = self.N_TIE
        # Some of them tap a second thumbnail they received.
        second = np.setdiff1d(np.arange(5, len(d_user)), first)
        second = second[np.isin(d_user[second], d_user[normal])]
        second = second[rng.random(len(second)) < 0.5]
        self.act(
            TAPPED,
            self.gid(d_user[second]),
            gdev[second],
            d_clip[second],
            t1[second] + _ms(rng, 2, 300, len(second)),
        )
        # Some play the video (in some instances), after their tap.
        view = rng.choice(len(rows), self.N_VIEWERS, replace=False)
        self.act(
            PLAYED,
            self.gid(d_user[rows[view]]),
            gdev[rows[view]],
            d_clip[rows[view]],
            t2[view] + _ms(rng, 1, 15, len(view)),
        )
        # Traps on the non-tapping recipients: none of these is a cross-account tap.
        k = 0

        def take(m: int) -> Arr:
            nonlocal k
            out = np.array([by_user[int(u)] for u in pool[k : k + m]])
            k += m
            return out

        r = take(self.N_PLAY_ONLY)  # played straight from a notification: viewers, not tappers
        self.act(PLAYED, self.gid(d_user[r]), gdev[r], d_clip[r], t1[r] + _ms(rng, 2, 60, len(r)))
        r = take(self.N_TAP_BEFORE)  # tap logged before its delivery (clock skew): not linked
        self.act(TAPPED, self.gid(d_user[r]), gdev[r], d_clip[r], t1[r] - _ms(rng, 2, 90, len(r)))
        r = take(self.N_TAP_FAILED)  # the tap failed or was blocked
        fs, ffmt = _failure_status(rng, len(r))
        self.act(
            TAPPED,
            self.gid(d_user[r]),
            gdev[r],
            d_clip[r],
            t1[r] + _ms(rng, 1, 120, len(r)),
            status=fs,
            status_fmt=ffmt,
        )
        r = take(self.N_TAP_UNDELIVERED)  # a tap on someone else's clip never delivered to them
        other_dev = self.foreign_devices(d_user[r])
        t_o = self.window_times(len(r))
        other_clip = self.victim_clips(other_dev, t_o)
        self.act(
            TAPPED,
            self.gid(d_user[r]),
            self.world.dev_gid[other_dev],
            other_clip,
            t_o + _ms(rng, 5, 600, len(r)),
        )
        self.traps.update(
            {
                "plays_without_tap": self.N_PLAY_ONLY,
                "taps_before_their_delivery": self.N_TAP_BEFORE,
                "failed_taps_by_non_tappers": self.N_TAP_FAILED,
                "taps_on_clips_never_delivered": self.N_TAP_UNDELIVERED,
                "failed_tap_retries_by_tappers": int(retry.sum()),
            }
        )
        # A tail: some recipients also get a cross-account thumbnail just after the window
        # (a check on the window); nobody taps those.
        tail = rng.choice(rest, self.N_TAIL, replace=False)
        tdev = self.foreign_devices(tail)
        tt = WINDOW_END + _ms(rng, 1, 40 * 60, len(tail))
        self.cross(self.gid(tail), self.world.dev_gid[tdev], self.victim_clips(tdev, tt), tt)
        self.traps["recipients_with_delivery_after_window"] = self.N_TAIL

    def revoked_shares(self, after: Arr) -> None:
        """Shares revoked during the window; the stale cache kept serving some sharers."""
        rng = self.rng
        before = self.users(self.N_REVOKED_BEFORE)
        sharers = np.concatenate([after, before])
        k = len(sharers)
        owners = self.users(k)
        dev = self.owned_device(owners)
        t_rev = self.window_times(k, WINDOW_START + 20 * MINUTE, WINDOW_END - 20 * MINUTE)
        share_from = DAY_START - _ms(rng, 86_400, 400 * 86_400, k)
        self.grants.add(dev, self.gid(sharers), 1, share_from, t_rev)
        gs, go = self.gid(sharers), self.gid(owners)
        # Before revocation: both owner and sharer get clips (authorized).
        c0 = self.clips.new(k)
        t0 = t_rev - _ms(rng, 60, 90 * 60, k)
        self.deliver(go, dev, c0, t0 + _ms(rng, 0.2, 2, k))
        self.deliver(gs, dev, c0, t0 + _ms(rng, 0.2, 2, k))
        # After: the owner always; the first group's sharers too, via the faulty nodes.
        c1 = self.clips.new(k)
        na = len(after)
        t1 = t_rev + np.minimum(_ms(rng, 1, 40 * 60, k), WINDOW_END - t_rev - MS) // MS * MS
        t1[: self.N_REVOKED_EXACT] = t_rev[: self.N_REVOKED_EXACT]  # at valid_to: not authorized
        self.deliver(go, dev, c1, t1 - _ms(rng, 0.2, 1, k))
        self.cross(gs[:na], dev[:na], c1[:na], t1[:na])
        tap = rng.choice(na, self.N_TAP_REVOKED, replace=False)
        self.act(TAPPED, gs[tap], dev[tap], c1[tap], t1[tap] + _ms(rng, 1, 600, len(tap)))
        # Some of the second group tap the clip they legitimately got, after the revocation.
        b = np.arange(na, na + self.N_REVOKED_BEFORE_TAP)
        self.act(TAPPED, gs[b], dev[b], c0[b], t_rev[b] + _ms(rng, 1, 600, len(b)))
        self.traps.update(
            {
                "shares_revoked_in_window": k,
                "revoked_sharers_served_after_revocation": na,
                "deliveries_at_revocation_instant": self.N_REVOKED_EXACT,
                "revoked_sharers_served_only_before": len(before),
                "taps_after_revocation_on_clip_delivered_before": len(b),
            }
        )

    def transfers(self, after: Arr) -> None:
        """Cameras sold/given during the window; some previous owners kept receiving clips."""
        rng = self.rng
        before = self.users(self.N_TRANSFER_BEFORE)
        old = np.concatenate([after, before])
        k = len(old)
        new = self.users(k)
        dev = self.new_devices(k)
        t_x = self.window_times(k, WINDOW_START + 20 * MINUTE, WINDOW_END - 20 * MINUTE)
        install = DAY_START - _ms(rng, 30 * 86_400, 900 * 86_400, k)
        self.grants.add(dev, self.gid(old), 0, install, t_x)
        self.grants.add(dev, self.gid(new), np.where(rng.random(k) < 0.3, 2, 0), t_x)
        g_old, g_new = self.gid(old), self.gid(new)
        c0 = self.clips.new(k)
        t0 = t_x - _ms(rng, 60, 90 * 60, k)
        self.deliver(g_old, dev, c0, t0)
        c1 = self.clips.new(k)
        t1 = t_x + np.minimum(_ms(rng, 1, 40 * 60, k), WINDOW_END - t_x - MS) // MS * MS
        na = len(after)
        t1[: self.N_TRANSFER_EXACT] = t_x[: self.N_TRANSFER_EXACT]
        t_new = t1.copy()
        t_new[na : na + self.N_NEW_OWNER_EXACT] = t_x[na : na + self.N_NEW_OWNER_EXACT]
        self.deliver(g_new, dev, c1, t_new)
        self.cross(g_old[:na], dev[:na], c1[:na], t1[:na])
        tap = rng.choice(na, self.N_TAP_TRANSFER, replace=False)
        self.act(TAPPED, g_old[tap], dev[tap], c1[tap], t1[tap] + _ms(rng, 1, 600, len(tap)))
        self.traps.update(
            {
                "ownership_transfers_in_window": k,
                "previous_owners_served_after_transfer": na,
                "deliveries_to_previous_owner_at_transfer_instant": self.N_TRANSFER_EXACT,
                "deliveries_to_new_owner_at_transfer_instant": self.N_NEW_OWNER_EXACT,
            }
        )

    def late_shares(self, users: Arr) -> None:
        """Invited to a camera after its clip reached them by mistake; they tap once invited."""
        rng = self.rng
        k = len(users)
        owners = self.users(k)
        dev = self.owned_device(owners)
        g, go = self.gid(users), self.gid(owners)
        c = self.clips.new(k)
        t1 = self.window_times(k, WINDOW_START + 10 * MINUTE, WINDOW_END - 70 * MINUTE)
        self.deliver(go, dev, c, t1 - _ms(rng, 0.2, 2, k))
        self.cross(g, dev, c, t1)
        t_grant = t1 + _ms(rng, 5 * 60, 30 * 60, k)
        self.grants.add(dev, g, 1, t_grant)
        self.act(TAPPED, g, dev, c, t_grant + _ms(rng, 60, 20 * 60, k))  # authorized by then
        c2 = self.clips.new(k)
        t2 = t_grant + _ms(rng, 60, 30 * 60, k)
        self.deliver(go, dev, c2, t2)
        self.deliver(g, dev, c2, t2 + _ms(rng, 0.2, 2, k))
        self.traps["taps_authorized_by_a_share_granted_after_delivery"] = k

    def big_ids(self) -> None:
        """Users 2**53 (owner) and 2**53 + 1 (recipient, tapper): equal once read as doubles."""
        owner, other = np.array([SPECIAL_BASE]), np.array([SPECIAL_BASE + 1])
        dev = self.new_devices(1)
        self.grants.add(dev, owner, 0, DAY_START - 200 * 86_400 * US)
        c = self.clips.new(2)
        t = np.sort(self.window_times(2, hi=WINDOW_END - 10 * MINUTE))
        self.deliver(np.repeat(owner, 2), np.repeat(dev, 2), c, t)
        self.cross(other, dev, c[:1], t[:1] + 700 * MS, dest=ANY_JSON, status=0, status_fmt=0)
        self.act(TAPPED, other, dev, c[:1], t[:1] + 9_000 * MS, dest=ANY_JSON)
        self.traps["recipient_id_2_53_plus_1_next_to_owner_2_53"] = 1

    def failed_deliveries(self) -> None:
        """Cross-account deliveries that failed or were blocked: not accesses, not counted."""
        rng = self.rng
        users = self.users(self.N_FAILED)
        per = np.where(rng.random(len(users)) < 0.2, 2, 1)
        u = np.repeat(users, per)
        dev = self.foreign_devices(u)
        t1 = self.window_times(len(u))
        c = self.victim_clips(dev, t1)
        self.cross(self.gid(u), self.world.dev_gid[dev], c, t1, failed=True)
        first = np.unique(u, return_index=True)[1][: self.N_FAILED_TAP]
        self.act(
            TAPPED,
            self.gid(u[first]),
            self.world.dev_gid[dev[first]],
            c[first],
            t1[first] + _ms(rng, 2, 300, len(first)),
        )
        self.traps.update(
            {
                "users_with_only_failed_cross_account_deliveries": len(users),
                "failed_cross_account_deliveries": len(u),
                "successful_taps_after_failed_delivery": len(first),
            }
        )

    def outside_window(self) -> None:
        """Cross-account deliveries only just outside the window, at both edges."""
        rng = self.rng
        users = self.users(self.N_OUTSIDE)
        n = len(users)
        dev = self.foreign_devices(users)
        t = np.where(
            rng.random(n) < 0.5,
            WINDOW_START - _ms(rng, 1, 40 * 60, n),
            WINDOW_END + _ms(rng, 0, 40 * 60, n),
        )
        a, b = self.N_OUTSIDE_AT_END, self.N_OUTSIDE_AT_END + self.N_OUTSIDE_BEFORE_START
        t[:a] = WINDOW_END
        t[a:b] = WINDOW_START - 1
        ts_fmt = np.full(n, -1)
        ts_fmt[:b] = [ISO_OFF_MS, ISO_Z_MS, EPOCH_MS, ISO_SPACE, ISO_Z_US, ISO_OFF_US, EPOCH_US]
        dest = np.where(np.arange(n) < b, ANY_JSON, FREE)
        c = self.victim_clips(dev, t)
        self.cross(self.gid(users), self.world.dev_gid[dev], c, t, ts_fmt=ts_fmt, dest=dest)
        self.traps.update(
            {
                "users_with_cross_account_deliveries_only_outside_window": n,
                "deliveries_at_window_end": a,
                "deliveries_one_microsecond_before_window_start": b - a,
            }
        )

    def grant_starts(self) -> None:
        """New shares starting in the window, first clip delivered at exactly valid_from."""
        users = self.users(self.N_GRANT_START)
        owners = self.users(self.N_GRANT_START)
        k = len(users)
        dev = self.owned_device(owners)
        t_g = self.window_times(k)
        self.grants.add(dev, self.gid(users), 1, t_g)
        c = self.clips.new(k)
        self.deliver(self.gid(owners), dev, c, t_g - 800 * MS)
        self.deliver(self.gid(users), dev, c, t_g)
        self.traps["deliveries_at_share_valid_from"] = k

    def list_noise(self) -> None:
        """Device-list views of other people's cameras: not an analysed action."""
        users = self.users(self.N_LIST_NOISE)
        dev = self.foreign_devices(users)
        self.act(
            EVENTS_LIST,
            self.gid(users),
            self.world.dev_gid[dev],
            np.full(len(users), -1),
            self.window_times(len(users)),
        )
        self.traps["events_list_of_other_peoples_cameras"] = len(users)

    def malformed_lines(self, keys: _Keys) -> list[str]:
        """Lines that ingest must reject; each would add a recipient if it were accepted."""
        users = self.users(12)
        ut = keys.user_text(self.gid(users)).to_pylist()
        dev = self.foreign_devices(users)
        dt = keys.device_text(self.world.dev_gid[dev]).to_pylist()
        ct = keys.clip_text(self.clips.new(len(users))).to_pylist()
        t = "2024-02-16T10:4{}:1{}.250Z"

        def rec(i: int, **over: Any) -> dict[str, Any]:
            r: dict[str, Any] = {
                "ts": t.format(i % 10, i % 10),
                "action": "thumbnail_delivered",
                "user_id": ut[i],
                "device_id": dt[i],
                "event_id": ct[i],
                "cache_node": "cache-12",
                "app": "android/7.2.0",
            }
            r.update(over)
            return r

        def dumps(r: dict[str, Any]) -> str:
            return json.dumps(r, ensure_ascii=False, separators=(",", ":"))

        bad_json = [
            dumps(rec(0))[:97],  # cut off mid-record
            dumps(rec(1)).replace(
                f'"user_id":"{ut[1]}"', f'"user_id":"{ut[1]}","user_id":"{ut[2]}"'
            ),
            dumps(rec(3)).replace("}", ',"status":NaN}'),
            dumps(rec(4)) + " trailing",
            dumps(rec(5)).replace('"', "'"),
            "[]",
        ]
        bad_values = [
            dumps(rec(6, status="OK")),
            dumps(rec(7, ts="2024-02-16T10:47:17+99:99")),
            dumps(rec(8, user_id="   ")),
            dumps({k: v for k, v in rec(9).items() if k != "event_id"}),
            dumps(rec(10, ts="2024-02-30T10:47:17Z")),
            dumps(rec(11, ts=0)),
        ]
        self.traps["malformed_json_lines"] = len(bad_json)
        self.traps["records_with_invalid_values"] = len(bad_values)
        return bad_json + bad_values

    def invalid_grants(self) -> int:
        """Grants whose valid_to is not after valid_from: rejected at ingest."""
        users = self.users(2)
        dev = self.world.dev_gid[self.foreign_devices(users)]
        self.grants.add(dev, self.gid(users), 1, WINDOW_END, np.array([WINDOW_START, WINDOW_END]))
        self.traps["grants_with_valid_to_not_after_valid_from"] = 2
        return 2

    def events(self) -> _Events:
        return _Events.concat(self.parts)


# ---------------------------------------------------------------- rendering


def _ts_json(ts: Arr, style: Arr, rng: np.random.Generator) -> pa.Array:
    """JSON fragments for timestamps in the requested styles (falls back where exactness needs)."""
    style = style.copy()
    precise = ts % MS != 0
    style[precise & (style == ISO_Z_MS)] = ISO_Z_US
    style[precise & (style == ISO_OFF_MS)] = ISO_OFF_US
    style[precise & np.isin(style, [EPOCH_MS, EPOCH_S])] = EPOCH_US
    style[(ts % US != 0) & (style == EPOCH_S)] = EPOCH_MS
    n = len(ts)
    order: list[Arr] = []
    frags: list[pa.Array] = []
    for s in np.unique(style):
        idx = np.flatnonzero(style == s)
        t = ts[idx]
        m = len(idx)
        if s in (ISO_Z_MS, ISO_Z_US, ISO_NS, ISO_NS9):
            frac = 3 if s == ISO_Z_MS else 6
            cols = [_const_cols('"', m), _iso_cols(t, frac)]
            if s == ISO_NS:
                cols.append(_digits(rng.integers(0, 1000, m), 3))
            if s == ISO_NS9:
                cols.append(_const_cols("999", m))
            frag = _fixed(np.hstack([*cols, _const_cols('Z"', m)]))
        elif s in (ISO_OFF_MS, ISO_OFF_US):
            off = OFFSETS_MIN[rng.integers(0, len(OFFSETS_MIN), m)]
            local = t + off * MINUTE
            sign = np.where(off < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
            a = np.abs(off)
            frag = _fixed(
                np.hstack(
                    [
                        _const_cols('"', m),
                        _iso_cols(local, 3 if s == ISO_OFF_MS else 6),
                        sign,
                        _digits(a // 60, 2),
                        _const_cols(":", m),
                        _digits(a % 60, 2),
                        _const_cols('"', m),
                    ]
                )
            )
        elif s == ISO_SPACE:  # no zone (UTC), space separator, trimmed fraction
            text = _fixed(_iso_cols(t, 6, sep=" "))
            text = pc.utf8_rtrim(pc.utf8_rtrim(text, characters="0"), characters=".")
            frag = _quote(text)
        else:
            div = {EPOCH_MS: MS, EPOCH_S: US, EPOCH_US: 1}[int(s)]
            frag = pc.cast(pa.array(t // div), pa.large_string())
        order.append(idx)
        frags.append(frag)
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.concatenate(order)] = np.arange(n)
    return pa.concat_arrays([f.cast(pa.large_string()) for f in frags]).take(pa.array(inverse))


def _opt(key: str, present: Arr, value: pa.Array) -> pa.Array:
    """`,"key":value` where present, else empty."""
    return pc.if_else(pa.array(present), _join(f',"{key}":', value), "")


def _event_lines(
    ev: _Events,
    keys: _Keys,
    req_text: pa.Array,
    styles: Arr,
    p_user_num: float,
    rng: np.random.Generator,
) -> pa.Array:
    c = ev.cols
    n = ev.n
    user_text = keys.user_text(c["user"])
    user_num = keys.legacy_user_mask(c["user"]) & (
        (rng.random(n) < p_user_num) | (c["user"] >= SPECIAL_BASE)
    )
    user = pc.if_else(pa.array(user_num), user_text, _quote(user_text))
    has_dev = c["device"] >= 0
    dev_text = keys.device_text(np.maximum(c["device"], 0))
    dev_num = keys.legacy_device_mask(np.maximum(c["device"], 0)) & (rng.random(n) < p_user_num)
    dev = pc.if_else(pa.array(dev_num), dev_text, _quote(dev_text))
    has_clip = c["clip"] >= 0
    clip = _quote(keys.clip_text(np.maximum(c["clip"], 0)))
    rq = c["req_fmt"]
    req = pc.if_else(
        pa.array(rq == 2), '""', pc.if_else(pa.array(rq == 3), "null", _quote(req_text))
    )
    st, sf = c["status"], c["status_fmt"]
    status_text = pc.cast(pa.array(st.astype(np.int64)), pa.large_string())
    status = pc.if_else(
        pa.array(sf == 2), "null", pc.if_else(pa.array(sf == 1), _quote(status_text), status_text)
    )
    node = _quote(_take_pool(CACHE_NODES, np.maximum(c["node"], 0)))
    app = _quote(_take_pool(APPS, c["app"]))
    action = _quote(_take_pool(ACTIONS, c["action"]))
    return _join(
        '{"ts":',
        _ts_json(c["ts"], styles, rng),
        ',"action":',
        action,
        ',"user_id":',
        user,
        _opt("device_id", has_dev, dev),
        _opt("event_id", has_clip, clip),
        _opt("request_id", rq != 1, req),
        _opt("status", (st != 0) | (sf == 2), status),
        _opt("cache_node", c["node"] >= 0, node),
        ',"app":',
        app,
        "}",
    )


def _event_table(
    ev: _Events, keys: _Keys, req_text: pa.Array, unit: str, tz: str | None
) -> pa.Table:
    c = ev.cols
    ts = c["ts"] if unit == "us" else c["ts"] // MS
    rq = c["req_fmt"]
    null = pa.scalar(None, pa.large_string())
    req = pc.if_else(pa.array(rq == 0), req_text, pc.if_else(pa.array(rq == 2), "", null))
    st = c["status"].astype(np.int32)
    return pa.table(
        {
            "ts": pa.array(ts, pa.timestamp(unit, tz=tz)),
            "action": _take_pool(ACTIONS, c["action"]).cast(pa.string()),
            "user_id": keys.user_text(c["user"]).cast(pa.string()),
            "device_id": pc.if_else(
                pa.array(c["device"] >= 0), keys.device_text(np.maximum(c["device"], 0)), None
            ).cast(pa.string()),
            "event_id": pc.if_else(
                pa.array(c["clip"] >= 0), keys.clip_text(np.maximum(c["clip"], 0)), None
            ).cast(pa.string()),
            "request_id": req.cast(pa.string()),
            "status": pa.array(st, pa.int32(), mask=st == 0),
            "cache_node": pc.if_else(
                pa.array(c["node"] >= 0), _take_pool(CACHE_NODES, np.maximum(c["node"], 0)), None
            ).cast(pa.string()),
            "app": _take_pool(APPS, c["app"]).cast(pa.string()),
        }
    )


def _styles(rng: np.random.Generator, n: int, choices: Sequence[int], p: Sequence[float]) -> Arr:
    return np.asarray(choices)[rng.choice(len(choices), n, p=p)]


# ---------------------------------------------------------------- accounts

_SCRIPTS: dict[str, tuple[list[str], list[str], str, list[tuple[str, str]]]] = {
    # script: (given names, family names, format, [(locale, country)])
    "latin": (
        [
            "Anna",
            "Lukas",
            "Sofia",
            "Mateo",
            "Emma",
            "Noah",
            "Chloé",
            "José",
            "Zoë",
            "François",
            "Björn",
            "Ingrid",
            "Łukasz",
            "Małgorzata",
            "Siobhán",
            "Øyvind",
            "Ana",
            "Kwame",
            "Aroha",
            "Niamh",
            "Jürgen",
            "Inês",
            "Tomás",
            "Aylin",
        ],
        [
            "Müller",
            "García",
            "Smith",
            "O'Brien",
            "Dvořák",
            "Nowak",
            "Rossi",
            "Jensen",
            "Silva",
            "Martin",
            "Kowalski",
            "Ó Súilleabháin",
            "Van der Berg",
            "Öztürk",
            "Mensah",
            "Ngata",
            "Fernández",
            "Lefèvre",
        ],
        "{g} {f}",
        [
            ("en-US", "US"),
            ("en-GB", "GB"),
            ("de-DE", "DE"),
            ("fr-FR", "FR"),
            ("es-MX", "MX"),
            ("pt-BR", "BR"),
            ("pl-PL", "PL"),
            ("tr-TR", "TR"),
        ],
    ),
    "arabic": (
        ["محمد", "فاطمة", "أحمد", "ليلى", "يوسف", "مريم"],
        ["العلي", "حداد", "الخطيب", "منصور"],
        "{g} {f}",
        [("ar-EG", "EG"), ("ar-SA", "SA"), ("ar-MA", "MA")],
    ),
    "hebrew": (
        ["נועה", "דוד", "תמר", "יונתן", "שירה"],
        ["כהן", "לוי", "מזרחי", "פרץ"],
        "{g} {f}",
        [("he-IL", "IL")],
    ),
    "chinese": (
        ["伟", "芳", "娜", "强", "静", "磊"],
        ["王", "李", "张", "刘", "陈"],
        "{f}{g}",
        [("zh-CN", "CN"), ("zh-TW", "TW")],
    ),
    "japanese": (
        ["さくら", "翔太", "陽菜", "蓮"],
        ["佐藤", "鈴木", "高橋", "田中"],
        "{f} {g}",
        [("ja-JP", "JP")],
    ),
    "korean": (
        ["민준", "서연", "지호", "하은"],
        ["김", "이", "박", "최"],
        "{f}{g}",
        [("ko-KR", "KR")],
    ),
    "devanagari": (
        ["अनन्या", "आरव", "प्रिया", "विहान"],
        ["शर्मा", "वर्मा", "पटेल"],
        "{g} {f}",
        [("hi-IN", "IN")],
    ),
    "cyrillic": (
        ["Алексей", "Мария", "Дмитрий", "Олена"],
        ["Иванова", "Петров", "Шевченко"],
        "{g} {f}",
        [("ru-RU", "RU"), ("uk-UA", "UA")],
    ),
    "greek": (
        ["Ελένη", "Γιώργος", "Σοφία"],
        ["Παπαδοπούλου", "Νικολάου"],
        "{g} {f}",
        [("el-GR", "GR")],
    ),
    "thai": (["สมชาย", "สุดา", "อนันต์"], ["ใจดี", "ศรีสุข"], "{g} {f}", [("th-TH", "TH")]),
    "emoji": (
        ["Mia 🌸", "🦊", "Leo 🦁", "Ravi 🇮🇳", "👩🏽‍💻 Dev"],
        ["Fox", "Park", "Sun ☀️", ""],
        "{g} {f}",
        [("en-US", "US"), ("en-IN", "IN"), ("ko-KR", "KR")],
    ),
    # Decomposed (NFD) letters: the bytes must survive unchanged, not be normalised.
    "combining": (
        ["Zoe\u0308", "Jose\u0301", "Ame\u0301lie", "Nguye\u0302\u0303n Va\u0306n"],
        ["Bronte\u0308", "Nu\u0303n\u0303ez", "An", "Lefe\u0300vre"],
        "{g} {f}",
        [("fr-FR", "FR"), ("vi-VN", "VN"), ("es-ES", "ES")],
    ),
}
_SCRIPT_P = {
    "latin": 0.5,
    "arabic": 0.08,
    "hebrew": 0.05,
    "chinese": 0.07,
    "japanese": 0.03,
    "korean": 0.02,
    "devanagari": 0.06,
    "cyrillic": 0.06,
    "greek": 0.03,
    "thai": 0.03,
    "emoji": 0.03,
    "combining": 0.04,
}
# Names that are formulas, markup or control characters to spreadsheets and terminals.
HOSTILE_NAMES = (
    '=HYPERLINK("http://example.com/refund","Claim refund")',
    "+1 555 0100",
    "@SUM(A1)",
    "-2+3",
    "\tTabbed Name",
    "[link=https://example.com]Sam[/link] \x1b[31mRed\x1b[0m",
    'Smith, "Jr."\nSecond line',
)
_DOMAINS = ("example.com", "example.net", "example.org", "mail.example", "post.example")


def _name_pool() -> tuple[list[str], list[str], list[str], Arr]:
    names, locales, countries, weights = [], [], [], []
    for script, (given, family, fmt, places) in _SCRIPTS.items():
        combos = [fmt.format(g=g, f=f).strip() for g in given for f in family]
        for i, name in enumerate(combos):
            loc, country = places[i % len(places)]
            names.append(name)
            locales.append(loc)
            countries.append(country)
            weights.append(_SCRIPT_P[script] / len(combos))
    w = np.array(weights)
    return names, locales, countries, w / w.sum()


_NAMES, _LOCALES, _COUNTRIES, _NAME_P = _name_pool()


def _accounts(
    rng: np.random.Generator, keys: _Keys, users: Arr, hostile: dict[int, str]
) -> dict[str, Any]:
    """Account columns (Python/Arrow) for user gids; `hostile` pins names of some gids."""
    n = len(users)
    pick = rng.choice(len(_NAMES), n, p=_NAME_P)
    names = _take_pool(_NAMES, pick)
    if hostile:
        pos = np.flatnonzero(np.isin(users, np.array(list(hostile))))
        lst = names.to_pylist()
        for i in pos:
            lst[i] = hostile[int(users[i])]
        names = pa.array(lst, pa.large_string())
    local = _prefixed_hex("", _mix64(users, keys.email))
    local = pc.utf8_slice_codeunits(local, 0, 10)
    domain = _take_pool(_DOMAINS, rng.integers(0, len(_DOMAINS), n))
    email = _join(local, "@", domain)
    return {
        "user": users,
        "email": email,
        "has_email": rng.random(n) >= 0.03,
        "name": names,
        "has_name": rng.random(n) >= 0.01,
        "locale": _take_pool(_LOCALES, pick),
        "has_locale": rng.random(n) >= 0.05,
        "country": _take_pool(_COUNTRIES, pick),
        "has_country": rng.random(n) >= 0.05,
    }


def _json_string_pool(values: pa.Array) -> pa.Array:
    """JSON string literals of arbitrary text (escaped like json.dumps)."""
    uniq = pc.unique(values)
    enc = pa.array([json.dumps(v, ensure_ascii=False) for v in uniq.to_pylist()], pa.large_string())
    return enc.take(pc.index_in(values, uniq))


def _account_lines(
    acc: dict[str, Any], idx: Arr, keys: _Keys, rng: np.random.Generator
) -> pa.Array:
    users = acc["user"][idx]
    ut = keys.user_text(users)
    num = keys.legacy_user_mask(users) & ((rng.random(len(idx)) < 0.5) | (users >= SPECIAL_BASE))
    sel = pa.array(idx)
    return _join(
        '{"user_id":',
        pc.if_else(pa.array(num), ut, _quote(ut)),
        _opt("email", acc["has_email"][idx], _quote(acc["email"].take(sel))),  # ASCII only
        _opt("name", acc["has_name"][idx], _json_string_pool(acc["name"].take(sel))),
        _opt("locale", acc["has_locale"][idx], _quote(acc["locale"].take(sel))),
        _opt("country", acc["has_country"][idx], _quote(acc["country"].take(sel))),
        "}",
    )


def _account_table(acc: dict[str, Any], idx: Arr, keys: _Keys) -> pa.Table:
    sel = pa.array(idx)

    def col(name: str) -> pa.Array:
        return pc.if_else(pa.array(acc[f"has_{name}"][idx]), acc[name].take(sel), None).cast(
            pa.string()
        )

    return pa.table(
        {
            "user_id": keys.user_text(acc["user"][idx]).cast(pa.string()),
            "email": col("email"),
            "name": col("name"),
            "locale": col("locale"),
            "country": col("country"),
        }
    )


# ---------------------------------------------------------------- grants


def _iso_or_null(t: Arr, rng: np.random.Generator) -> pa.Array:
    styles = _styles(rng, len(t), [ISO_Z_MS, ISO_OFF_MS, EPOCH_MS, ISO_Z_US], [0.6, 0.2, 0.1, 0.1])
    frag = _ts_json(np.where(t == NO_TIME, DAY_START, t), styles, rng)
    return pc.if_else(pa.array(t == NO_TIME), "null", frag)


def _grant_lines(g: dict[str, Arr], keys: _Keys, rng: np.random.Generator) -> pa.Array:
    n = len(g["device"])
    ut = keys.user_text(g["user"])
    unum = keys.legacy_user_mask(g["user"]) & ((rng.random(n) < 0.5) | (g["user"] >= SPECIAL_BASE))
    dt = keys.device_text(g["device"])
    dnum = keys.legacy_device_mask(g["device"]) & (rng.random(n) < 0.5)
    role = _quote(_take_pool(("owner", "shared", "owner"), g["role"]))
    omit_from = (g["valid_from"] == NO_TIME) & (rng.random(n) < 0.5)
    omit_to = (g["valid_to"] == NO_TIME) & (rng.random(n) < 0.7)
    return _join(
        '{"device_id":',
        pc.if_else(pa.array(dnum), dt, _quote(dt)),
        ',"user_id":',
        pc.if_else(pa.array(unum), ut, _quote(ut)),
        _opt("role", g["role"] != 2, role),
        _opt("valid_from", ~omit_from, _iso_or_null(g["valid_from"], rng)),
        _opt("valid_to", ~omit_to, _iso_or_null(g["valid_to"], rng)),
        "}",
    )


def _grant_table(g: dict[str, Arr], keys: _Keys) -> pa.Table:
    def ts(v: Arr) -> pa.Array:
        return pa.array(v, pa.timestamp("us", tz="UTC"), mask=v == NO_TIME)

    return pa.table(
        {
            "device_id": keys.device_text(g["device"]).cast(pa.string()),
            "user_id": keys.user_text(g["user"]).cast(pa.string()),
            "role": pa.array(
                np.array(["owner", "shared", ""])[g["role"]], pa.string(), mask=g["role"] == 2
            ),
            "valid_from": ts(g["valid_from"]),
            "valid_to": ts(g["valid_to"]),
        }
    )


def _select(g: dict[str, Arr], mask: Arr) -> dict[str, Arr]:
    return {k: v[mask] for k, v in g.items()}


# ---------------------------------------------------------------- writing


class _Writer:
    """Writes files under OUT deterministically (gzip without name or time)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: list[str] = []
        self.records = {"events": 0, "grants": 0, "accounts": 0}

    def _path(self, rel: str) -> Path:
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(rel)
        return p

    def text(self, rel: str, payload: bytes, kind: str, records: int) -> None:
        path = self._path(rel)
        if rel.endswith(".gz"):
            level = 6 if len(payload) < 32 << 20 else 1  # large scales: speed over size
            with (
                open(path, "wb") as raw,
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level
                ) as gz,
            ):
                gz.write(payload)
        else:
            path.write_bytes(payload)
        self.records[kind] += records

    def parquet(self, rel: str, table: pa.Table, kind: str) -> None:
        pq.write_table(table, self._path(rel), compression="zstd", row_group_size=262_144)
        self.records[kind] += table.num_rows


def _check_args(out: Path, seed: int, scale: float) -> None:
    if not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise UsageError("--seed", "must be an integer from 0 to 2^63-1")
    if not (np.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise UsageError("--scale", f"must be a number above 0 and at most {MAX_SCALE:g}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(
            f"output folder {out}",
            "exists and is not empty",
            "Choose a new folder, or remove this one first",
        )


def write_sample(
    out: Path, *, seed: int = DEFAULT_SEED, scale: float = 1.0, progress: ProgressFn | None = None
) -> SampleSummary:
    """Write the synthetic incident to a new or empty folder `out`.

    Raises UsageError for a bad seed/scale, OutputError when `out` is not new or empty or
    cannot be written.
    """
    _check_args(out, seed, scale)
    n_users = max(MIN_USERS, int(round(BASE_USERS * scale)))
    n_chunks = -(-n_users // CHUNK_USERS)
    keys = _Keys(seed)
    w = _Writer(out)
    traps: dict[str, int] = {}
    devices = 0
    done = 0

    def step() -> None:  # 4 steps a chunk: generate, events, grants, accounts
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, 4 * n_chunks)

    try:
        out.mkdir(parents=True, exist_ok=True)
        for chunk in range(n_chunks):
            lo, hi = chunk * CHUNK_USERS, min(n_users, (chunk + 1) * CHUNK_USERS)
            devices += _write_chunk(w, keys, seed, chunk, lo, hi, traps, step)
        window = {"start": _iso(WINDOW_START), "end": _iso(WINDOW_END)}
        payload = json.dumps({"window": window}, indent=2) + "\n"
        (out / "incident.json").write_text(payload, encoding="utf-8")
        w.files.append("incident.json")
    except OSError as e:
        raise OutputError(f"output folder {out}", e.strerror or type(e).__name__) from None
    return SampleSummary(
        out=out,
        seed=seed,
        scale=scale,
        window_start=window["start"],
        window_end=window["end"],
        recipients=RECIPIENTS,
        tappers=TAPPERS,
        users=n_users + len(BIG_IDS),
        devices=devices,
        event_records=w.records["events"],
        grant_records=w.records["grants"],
        account_records=w.records["accounts"],
        files=tuple(w.files),
        traps=traps,
    )


def _iso(t: int) -> str:
    return (_EPOCH + timedelta(microseconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_chunk(
    w: _Writer,
    keys: _Keys,
    seed: int,
    chunk: int,
    lo: int,
    hi: int,
    traps: dict[str, int],
    step: Callable[[], None],
) -> int:
    """Generate and write one chunk of users with their devices, grants, accounts and events."""
    rng = np.random.default_rng([seed, chunk, 1])
    world = _build_world(rng, chunk, lo, hi)
    clips = _Clips(chunk)
    events = _background(rng, world, clips)
    grants = world.grants
    special: _Grants | None = None
    bad_lines: list[str] = []
    hostile: dict[int, str] = {}
    no_account = np.zeros(0, dtype=np.int64)
    extra_users = np.zeros(0, dtype=np.int64)
    n_dev = len(world.dev_gid)
    if chunk == 0:
        inc = _Incident(np.random.default_rng([seed, 0, 2]), world, clips)
        inc.build()
        bad_lines = inc.malformed_lines(keys)
        inc.invalid_grants()
        events = _Events.concat([events, inc.events()])
        special = inc.grants
        no_account = world.users[inc.no_account]
        extra_users = SPECIAL_BASE + np.arange(len(BIG_IDS), dtype=np.int64)
        targets = world.users[inc.hostile_users]
        hostile = {int(u): name for u, name in zip(targets, HOSTILE_NAMES, strict=False)}
        traps.update(inc.traps)
        traps["hostile_names"] = len(hostile)
        n_dev = inc.next_device
    step()
    _write_events(w, keys, rng, chunk, events, bad_lines, traps)
    step()
    _write_grants(w, keys, rng, chunk, grants.arrays(), special, traps)
    step()
    users = np.concatenate([world.users[~np.isin(world.users, no_account)], extra_users])
    _write_accounts(w, keys, rng, chunk, users, hostile, traps)
    step()
    return n_dev


def _write_events(
    w: _Writer,
    keys: _Keys,
    rng: np.random.Generator,
    chunk: int,
    ev: _Events,
    bad_lines: list[str],
    traps: dict[str, int],
) -> None:
    c = ev.cols
    n = ev.n
    # Request ids: most records have one; some log sources omit it, a few write "" or null.
    missing = rng.choice(4, n, p=[0.972, 0.022, 0.004, 0.002])
    c["req_fmt"] = np.where(c["req_fmt"] == 0, missing, c["req_fmt"]).astype(np.int8)
    req_gid = (np.int64(chunk) << np.int64(36)) + np.arange(n, dtype=np.int64)
    dest = c["dest"].copy()
    free = dest == FREE
    dest[free] = rng.choice(4, int(free.sum()), p=DEST_P)
    precise = c["ts"] % MS != 0
    dest[precise & (dest == LEGACY)] = GATEWAY  # millisecond Parquet cannot hold them
    big = c["user"] >= SPECIAL_BASE
    dest[big & (dest < EDGE)] = ANY_JSON  # Parquet ids are strings; the 2^53 trap is in JSON
    any_json = dest == ANY_JSON
    dest[any_json] = np.where(rng.random(int(any_json.sum())) < 0.5, EDGE, MOBILE)
    if chunk == 0:
        traps["events_without_request_id"] = int((c["req_fmt"] != 0).sum())
        traps["events_with_blank_or_null_request_id"] = int((c["req_fmt"] >= 2).sum())
    name = f"{chunk:04d}"
    for d, rel in (
        (GATEWAY, f"events/gateway-{name}.parquet"),
        (LEGACY, f"events/legacy-gateway-{name}.parquet"),
        (EDGE, f"events/edge-{name}.ndjson.gz"),
        (MOBILE, f"events/mobile-{name}.jsonl"),
    ):
        idx = np.flatnonzero(dest == d)
        idx = idx[np.lexsort((idx, c["ts"][idx]))]
        sub = ev.take(idx)
        req = keys.request_text(req_gid[idx])
        if d == GATEWAY:
            w.parquet(rel, _event_table(sub, keys, req, "us", "UTC"), "events")
            continue
        if d == LEGACY:
            w.parquet(rel, _event_table(sub, keys, req, "ms", None), "events")
            continue
        styles = sub.cols["ts_fmt"].copy()
        freest = styles < 0
        if d == EDGE:
            styles[freest] = _styles(
                rng, int(freest.sum()), [ISO_Z_MS, EPOCH_MS, ISO_OFF_MS], [0.6, 0.3, 0.1]
            )
        else:
            styles[freest] = _styles(
                rng,
                int(freest.sum()),
                [ISO_Z_MS, ISO_OFF_MS, ISO_SPACE, EPOCH_MS, EPOCH_S, EPOCH_US, ISO_NS, ISO_Z_US],
                [0.25, 0.25, 0.15, 0.15, 0.05, 0.05, 0.05, 0.05],
            )
        lines = _event_lines(sub, keys, req, styles, 0.4, rng)
        records = len(lines)
        if bad_lines:  # half of the rejected lines in each JSON file, spread through it
            mine = bad_lines[0::2] if d == EDGE else bad_lines[1::2]
            at = np.sort(rng.integers(0, max(len(lines), 1), len(mine)))
            pieces: list[pa.Array] = []
            prev = 0
            for pos, line in zip(at, mine, strict=True):
                pieces += [lines.slice(prev, int(pos) - prev), pa.array([line], pa.large_string())]
                prev = int(pos)
            pieces.append(lines.slice(prev))
            lines = pa.concat_arrays(pieces)
            records += len(mine)
        w.text(rel, _lines_bytes(lines), "events", records)
    if chunk == 0:  # an overlapping re-export of one hour, partly in other timestamp styles
        idx = np.flatnonzero((c["ts"] >= REEXPORT[0]) & (c["ts"] < REEXPORT[1]))
        idx = idx[np.lexsort((idx, c["ts"][idx]))]
        sub = ev.take(idx)
        styles = _styles(rng, len(idx), [ISO_OFF_MS, ISO_Z_US, EPOCH_MS], [0.4, 0.4, 0.2])
        lines = _event_lines(sub, keys, keys.request_text(req_gid[idx]), styles, 0.4, rng)
        w.text("events/edge-0000-reexport.ndjson.gz", _lines_bytes(lines), "events", len(lines))
        traps["reexported_duplicate_events"] = len(lines)
        traps["reexported_duplicates_without_request_id"] = int((sub.cols["req_fmt"] != 0).sum())


def _write_grants(
    w: _Writer,
    keys: _Keys,
    rng: np.random.Generator,
    chunk: int,
    g: dict[str, Arr],
    special: _Grants | None,
    traps: dict[str, int],
) -> None:
    name = f"{chunk:04d}"
    shared = g["role"] == 1
    w.parquet(f"grants/owners-{name}.parquet", _grant_table(_select(g, ~shared), keys), "grants")
    lines = _grant_lines(_select(g, shared), keys, rng)
    w.text(f"grants/shares-{name}.ndjson.gz", _lines_bytes(lines), "grants", len(lines))
    if special is not None:
        # The day's grant changes, exported from a Windows tool: CRLF line ends.
        lines = _grant_lines(special.arrays(), keys, rng)
        w.text(
            "grants/changes-2024-02-16.ndjson", _lines_bytes(lines, "\r\n"), "grants", len(lines)
        )
        traps["grant_change_records"] = len(lines)


def _write_accounts(
    w: _Writer,
    keys: _Keys,
    rng: np.random.Generator,
    chunk: int,
    users: Arr,
    hostile: dict[int, str],
    traps: dict[str, int],
) -> None:
    acc = _accounts(rng, keys, users, hostile)
    n = len(users)
    dest = rng.choice(3, n, p=[0.7, 0.26, 0.04])
    dest[users >= SPECIAL_BASE] = 2  # numeric 2^53 ids only where JSON numbers exist
    name = f"{chunk:04d}"
    w.parquet(
        f"accounts/accounts-{name}.parquet",
        _account_table(acc, np.flatnonzero(dest == 0), keys),
        "accounts",
    )
    gz = np.flatnonzero(dest == 1)
    # Some users appear twice in one file with a changed email: the later record wins.
    again = rng.choice(gz, min(20, len(gz)), replace=False)
    acc2 = _accounts(rng, keys, users[again], hostile)
    lines = pa.concat_arrays(
        [_account_lines(acc, gz, keys, rng), _account_lines(acc2, np.arange(len(again)), keys, rng)]
    )
    w.text(f"accounts/accounts-{name}.ndjson.gz", _lines_bytes(lines), "accounts", len(lines))
    js = np.flatnonzero(dest == 2)
    # A UTF-8 byte-order mark, as some exporters write.
    payload = b"\xef\xbb\xbf" + _lines_bytes(_account_lines(acc, js, keys, rng))
    w.text(f"accounts/accounts-{name}.jsonl", payload, "accounts", len(js))
    if chunk == 0:
        traps["accounts_listed_twice"] = len(again)


__all__ = [
    "RECIPIENTS",
    "TAPPERS",
    "DEFAULT_SEED",
    "SampleSummary",
    "write_sample",
    "HOSTILE_NAMES",
]
