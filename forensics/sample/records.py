"""Generated records before rendering: event columns (users, devices and clips as gids, and
how each value is to be written) and grant columns; random durations and HTTP statuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forensics.sample.constants import FREE, MS, NO_TIME, Arr

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
class Events:
    """Columns of generated events; users/devices/clips are gids, rendered at write time."""

    cols: dict[str, Arr]

    @property
    def n(self) -> int:
        return len(self.cols["ts"])

    @staticmethod
    def make(n: int, **values: Any) -> Events:
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
        return Events(cols)

    @staticmethod
    def of(action: int, user: Arr, device: Arr, clip: Arr, ts: Arr, **values: Any) -> Events:
        """Events of one action on clips, one for each user (the other columns as `make`)."""
        return Events.make(
            len(user), ts=ts, action=action, user=user, device=device, clip=clip, **values
        )

    @staticmethod
    def concat(parts: Sequence[Events]) -> Events:
        return Events({k: np.concatenate([p.cols[k] for p in parts]) for k in _EVENT_FIELDS})

    def take(self, idx: Arr) -> Events:
        return Events({k: v[idx] for k, v in self.cols.items()})


@dataclass
class Grants:
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


def rand_ms(rng: np.random.Generator, lo_s: float, hi_s: float, n: int) -> Arr:
    """Random durations in whole milliseconds, in µs."""
    return rng.integers(int(lo_s * 1000), int(hi_s * 1000) + 1, n).astype(np.int64) * MS


def success_status(rng: np.random.Generator, n: int) -> tuple[Arr, Arr]:
    """Success statuses as logs write them: mostly absent, some 200 / "200" / 204 / null."""
    kind = rng.choice(5, n, p=[0.80, 0.10, 0.05, 0.03, 0.02])
    status = np.select([kind == 1, kind == 2, kind == 3], [200, 200, 204], 0)
    fmt = np.select([kind == 2, kind == 4], [1, 2], 0)
    return status, fmt


def failure_status(rng: np.random.Generator, n: int) -> tuple[Arr, Arr]:
    status = rng.choice(np.array([403, 404, 429, 500, 502, 503]), n)
    return status, (rng.random(n) < 0.15).astype(np.int8)
