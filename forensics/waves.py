"""Notification waves (SPEC §6): each `notify` run is a wave; `--previous DIR` lists only the
people who are new or whose severity rose since every earlier wave of DIR's chain, and only
the deliveries no earlier wave listed. A wave's manifest records its number and the SHA-256
of the previous wave's manifest, so `verify_notices` can re-check a chain end to end.

Works on the lists' rows after they are computed (Arrow), whatever engine computed them.
Waves on disk and their chains are read in wave_chain.py; the comparison with what earlier
waves listed is in wave_delta.py; this module writes a new wave.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from forensics.csv_text import neutralize_column
from forensics.errors import UsageError
from forensics.export import NotifyResult, write_notifications
from forensics.pseudonym import (
    CONTACT_COLUMNS,
    DIGITS,
    ID_COLUMNS,
    KEY_ENV,
    METHOD,
    Pseudonymizer,
    load_key,
)
from forensics.wave_chain import ChainCheck, Wave, read_chain, read_wave, verify_notices, walk_chain
from forensics.wave_delta import SEVERITY_RANK, delivery_keys, read_delta, severity_ranks
from forensics.window import Window

__all__ = [
    "SEVERITY_RANK",
    "ChainCheck",
    "Wave",
    "WaveResult",
    "delivery_keys",
    "neutralize_column",
    "read_chain",
    "read_wave",
    "severity_ranks",
    "verify_notices",
    "walk_chain",
    "write_wave",
]


@dataclass(frozen=True)
class WaveResult:
    """What `write_wave` wrote: the files, the wave's number and link, and counts only."""

    notify: NotifyResult
    number: int
    previous: Wave | None
    pseudonymized: bool
    changes: Mapping[str, Mapping[str, int]]
    warnings: tuple[str, ...] = ()

    @property
    def nothing_new(self) -> bool:
        return self.previous is not None and not any(self.notify.rows.values())


def _pseudonym_manifest(pz: Pseudonymizer | None) -> dict[str, Any]:
    if pz is None:
        return {"pseudonymized": False}
    return {
        "pseudonymized": True,
        "method": METHOD,
        "digits": DIGITS,
        "columns": {name: list(cols) for name, cols in ID_COLUMNS.items()},
        "contact_columns_emptied": list(CONTACT_COLUMNS),
        "key_check": pz.key_check,
    }


def write_wave(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    out_dir: Path,
    *,
    previous: Path | None = None,
    pseudonymize: bool = False,
    key_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    force: bool = False,
    sanitize: bool = True,
    excel: bool = False,
) -> WaveResult:
    """Write one wave of notification lists: the whole lists (wave 1), or with `previous`
    only what its chain did not list, with a `change` column; pseudonymised on request.

    Everything is checked before the output folder is touched: the key (UsageError when
    missing or not the key of a pseudonymised earlier wave) and every file and link of the
    previous chain (InputError naming the file). Raises as write_notifications does.
    """
    env = os.environ if environ is None else environ
    key = load_key(key_file, env) if pseudonymize else None
    chain = read_chain(previous) if previous is not None else []
    pz = _chain_pseudonymizer(key, key_file, env, chain)
    resolved_out = _check_out_dir(out_dir, chain)
    delta = read_delta(chain, pz, pz if pseudonymize else None)
    last = chain[-1] if chain else None
    number = last.number + 1 if last else 1

    def manifest_extra() -> Mapping[str, Any]:
        wave: dict[str, Any] = {"number": number, "previous": None}
        if last is not None:
            wave["previous"] = {
                "number": last.number,
                "manifest_sha256": last.manifest_sha256,
                "folder": os.path.relpath(last.folder.resolve(), resolved_out),
                "window": last.window,
            }
            wave["changes"] = delta.changes
        return {"wave": wave, "pseudonymization": _pseudonym_manifest(delta.pseudonymizer)}

    result = write_notifications(
        con,
        window,
        out_dir,
        force=force,
        sanitize=sanitize,
        excel=excel,
        list_rows=delta,
        manifest_extra=manifest_extra,
    )
    return WaveResult(
        notify=result,
        number=number,
        previous=last,
        pseudonymized=pz is not None and pseudonymize,
        changes=delta.changes,
        warnings=tuple(_wave_warnings(window, last, pseudonymize, key_file, env)),
    )


def _chain_pseudonymizer(
    key: bytes | None, key_file: Path | None, env: Mapping[str, str], chain: list[Wave]
) -> Pseudonymizer | None:
    """The pseudonymizer for this wave and the chain: its key must be every earlier wave's.

    A pseudonymised earlier wave needs the key even when this wave is not pseudonymised
    (its lists can only be compared through it). Raises UsageError.
    """
    pseudonymized_waves = [w for w in chain if w.pseudonymized]
    if key is None and pseudonymized_waves:
        if key_file is None and not env.get(KEY_ENV):
            first = pseudonymized_waves[0]
            raise UsageError(
                "pseudonym key",
                f"missing: wave {first.number} ({first.folder}) is pseudonymised, and "
                "comparing with it needs its key",
                f"Set ${KEY_ENV} or pass --key-file FILE",
            )
        key = load_key(key_file, env)
    if key is None and key_file is not None:
        raise UsageError(
            "--key-file", "is used only with --pseudonymize or a pseudonymised previous wave"
        )
    pz = Pseudonymizer(key) if key is not None else None
    for w in pseudonymized_waves:
        if pz is None or w.key_check != pz.key_check:
            raise UsageError(
                "pseudonym key",
                f"is not the key wave {w.number} ({w.folder}) was pseudonymised with",
                "Use the same key for every wave of a chain",
            )
    return pz


def _check_out_dir(out_dir: Path, chain: list[Wave]) -> Path:
    """The resolved output folder; UsageError when it is a wave of the previous chain."""
    resolved_out = out_dir.resolve()
    for w in chain:
        if w.folder.resolve() == resolved_out:
            raise UsageError(
                "--out", f"is wave {w.number} of the previous chain; choose a new folder"
            )
    return resolved_out


def _wave_warnings(
    window: Window,
    last: Wave | None,
    pseudonymize: bool,
    key_file: Path | None,
    env: Mapping[str, str],
) -> list[str]:
    """A key set but unused; an earlier wave over another window."""
    warnings = []
    if not pseudonymize and (key_file is not None or env.get(KEY_ENV)):
        warnings.append(
            "a pseudonym key is set but --pseudonymize was not given: "
            "the lists hold raw ids and contact fields"
        )
    if last is not None and last.window != window.to_json():
        warnings.append(
            f"wave {last.number} used another window ({_window_text(last.window)}); "
            f"people and deliveries were compared across both"
        )
    return warnings


def _window_text(w: Any) -> str:
    if isinstance(w, dict):
        return f"{w.get('start')}/{w.get('end')}"
    return "unknown"
