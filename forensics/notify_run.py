"""`forensics notify` in one call: open the store read-only, write the lists, say what the
window held (its events, and the deliveries outside it) so that empty lists are never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.engines.base import EngineOptions, open_case
from forensics.export import NotifyResult
from forensics.exposure import window_params
from forensics.queries import run_query
from forensics.status import WindowCoverage, window_coverage
from forensics.store import StoreOptions
from forensics.waves import WaveResult, write_wave
from forensics.window import Window


@dataclass(frozen=True)
class NotifyRun:
    """What was written, the window's coverage, and the deliveries outside the window."""

    result: NotifyResult
    wave: WaveResult
    coverage: WindowCoverage
    outside_window: int


def run_notify(
    store: StoreOptions,
    window: Window,
    out: Path,
    *,
    engine: EngineOptions | None = None,
    **options: Any,
) -> NotifyRun:
    """Write the notification lists for `window` into `out` (options as waves.write_wave:
    the whole lists, or one later wave of them; pseudonymised on request).

    With `engine`, the lists are read from a case lake by that engine instead of the store.
    Raises StoreError, OutputError.
    """
    with open_case(store, engine) as con:
        wave = write_wave(con, window, out, **options)
        # The window's temp tables are prepared: one count over them, not every figure again.
        row = run_query(con, "deliveries_outside_window", window_params(window)).to_pylist()
        coverage = window_coverage(con, window)
    outside = int(row[0]["cross_account_deliveries_outside_window"])
    return NotifyRun(wave.notify, wave, coverage, outside)
