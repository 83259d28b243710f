"""The synthetic incident behind `forensics sample` and the shipped sample_logs/ (SPEC §7).

`write_sample(out, seed=, scale=)` writes events/, grants/, accounts/ and incident.toml such that
SPEC §5 over the window gives exactly RECIPIENTS recipients and TAPPERS tappers, for any seed and
scale, by construction of the data (every trap of SPEC §2-5 included); the other figures vary.
Work is chunked by users, so memory stays bounded at any scale. Never prints: progress goes to
an optional callback.
"""

from __future__ import annotations

from forensics.sample.accounts import HOSTILE_NAMES
from forensics.sample.constants import (
    CACHE_NODES,
    CHUNK_USERS,
    DEFAULT_SEED,
    RECIPIENTS,
    TAPPERS,
    WINDOW_END,
    WINDOW_START,
)
from forensics.sample.write import SampleSummary, write_sample

__all__ = [
    "CACHE_NODES",
    "CHUNK_USERS",
    "DEFAULT_SEED",
    "HOSTILE_NAMES",
    "RECIPIENTS",
    "TAPPERS",
    "WINDOW_END",
    "WINDOW_START",
    "SampleSummary",
    "write_sample",
]
