"""Ids and text as Arrow arrays, without Python loops: seed-keyed bijections give distinct ids
(hex-prefixed or 10-digit legacy numbers, 2^53 next to 2^53 + 1), and fixed-width ASCII
matrices give ISO times and JSON fragments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.sample.constants import BIG_IDS, SPECIAL_BASE, US, Arr


def mix64(x: Arr, key: int) -> Arr:
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


def fixed_width(mat: Arr) -> pa.Array:
    """A string array from an (n, w) uint8 matrix of UTF-8 bytes, one row per string."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, w = mat.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(mat.tobytes())]
    )


def const_cols(text: str, n: int) -> Arr:
    return np.broadcast_to(np.frombuffer(text.encode(), dtype=np.uint8), (n, len(text)))


def prefixed_hex(prefix: str, x: Arr, digits: int = 16) -> pa.Array:
    return fixed_width(np.hstack([const_cols(prefix, len(x)), _hex_cols(x)[:, 16 - digits :]]))


def digit_cols(value: Arr, width: int) -> Arr:
    """(n, width) ASCII decimal digits, zero-padded."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (48 + (value[:, None] // powers) % 10).astype(np.uint8)


def iso_cols(ts_us: Arr, frac: int, sep: str = "T") -> Arr:
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
        digit_cols(year, 4),
        const_cols("-", n),
        digit_cols(month, 2),
        const_cols("-", n),
        digit_cols(day, 2),
        const_cols(sep, n),
        digit_cols(secs // 3600, 2),
        const_cols(":", n),
        digit_cols(secs // 60 % 60, 2),
        const_cols(":", n),
        digit_cols(secs % 60, 2),
    ]
    if frac:
        parts += [const_cols(".", n), digit_cols(micros, 6)[:, :frac]]
    return np.hstack(parts)


def join_text(*parts: Any) -> pa.Array:
    """Concatenate string arrays and Python strings element-wise (as large_string)."""
    args = [
        pa.scalar(p, pa.large_string()) if isinstance(p, str) else p.cast(pa.large_string())
        for p in parts
    ]
    return pc.binary_join_element_wise(*args, pa.scalar("", pa.large_string()))


def quote_json(values: pa.Array) -> pa.Array:
    """JSON string literals of values that need no escaping (ids, ISO times, enum text)."""
    return join_text('"', values, '"')


def take_pool(pool: Sequence[str], idx: Arr) -> pa.Array:
    return pa.array(list(pool), pa.large_string()).take(pa.array(idx.astype(np.int64)))


def lines_bytes(lines: pa.Array, eol: str = "\n") -> bytes:
    """Concatenate a string array into newline-terminated lines, without Python loops."""
    if len(lines) == 0:
        return b""
    arr = join_text(lines.cast(pa.large_string()), eol)
    arr = pa.concat_arrays([arr])  # a fresh, unsliced array: its data buffer is the payload
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[
        arr.offset : arr.offset + len(arr) + 1
    ]
    data = arr.buffers()[2]
    return bytes(memoryview(data)[int(offsets[0]) : int(offsets[-1])])


class Keys:
    """Seed-derived keys for the id bijections."""

    def __init__(self, seed: int) -> None:
        base = mix64(np.arange(16, dtype=np.uint64), seed * 0x9E3779B97F4A7C15)
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
        return special | (mix64(gid, self.legacy_user) % np.uint64(10) == 0)  # type: ignore[no-any-return]

    def legacy_device_mask(self, gid: Arr) -> Arr:
        return mix64(gid, self.legacy_device) % np.uint64(16) == 0  # type: ignore[no-any-return]

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
        hexed = prefixed_hex("usr_", mix64(plain, self.user))
        return pc.if_else(pa.array(self.legacy_user_mask(gid)), dec, hexed)

    def device_text(self, gid: Arr) -> pa.Array:
        gid = gid.astype(np.int64)
        dec = pc.cast(pa.array(self._numeric(gid, self.dev_add)), pa.large_string())
        return pc.if_else(
            pa.array(self.legacy_device_mask(gid)),
            dec,
            prefixed_hex("cam_", mix64(gid, self.device)),
        )

    # Clip and request gids stay below 2^48 (chunk << 36 | counter), so 48 bits are unique.
    def clip_text(self, gid: Arr) -> pa.Array:
        return prefixed_hex("evt_", _mix48(gid, self.clip), 12)

    def request_text(self, gid: Arr) -> pa.Array:
        return prefixed_hex("req-", _mix48(gid, self.req_a), 12)
