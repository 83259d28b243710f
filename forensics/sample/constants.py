"""Fixed parameters of the synthetic incident: target figures, sizes, instants, and the codes
shared by the generator and the writers (actions, cache nodes, apps, output files, time styles).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[Any]
ProgressFn = Callable[[int, int], None]

RECIPIENTS = 13_000
TAPPERS = 1_504
DEFAULT_SEED = 1
BASE_USERS = 16_000  # users at --scale 1; background traffic is proportional to users
MIN_USERS = 15_000  # the incident needs this many users (below --scale 0.94 it stays here)
CHUNK_USERS = 1_000_000  # users generated and written at a time (bounds memory)
MAX_SCALE = 10_000.0

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = 1_000_000
MS = 1_000
MINUTE = 60 * US


def _instant(text: str) -> int:
    """Microseconds since the epoch of an ISO instant."""
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - EPOCH) // timedelta(
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
