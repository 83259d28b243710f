"""Notification waves on disk (SPEC §6): read a wave's folder, checking every list against its
manifest's SHA-256; walk a chain of waves back to wave 1 through each manifest's link to the
previous one; `verify_notices` reports, per folder, how far the chain holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forensics.errors import InputError
from forensics.export import LISTS, MANIFEST, TOOL_NAME
from forensics.wave_delta import check_lists

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Wave:
    """An earlier notify run whose files matched its manifest when read."""

    folder: Path
    number: int
    manifest_sha256: str
    manifest: Mapping[str, Any]
    previous_sha256: str | None
    previous_folder: str | None  # as recorded: relative to `folder`

    @property
    def pseudonymized(self) -> bool:
        return bool(self.manifest.get("pseudonymization", {}).get("pseudonymized", False))

    @property
    def key_check(self) -> str | None:
        value = self.manifest.get("pseudonymization", {}).get("key_check")
        return value if isinstance(value, str) else None

    @property
    def sanitized(self) -> bool:
        return bool(self.manifest.get("sanitization", {}).get("formula_prefix", True))

    @property
    def window(self) -> Any:
        return self.manifest.get("window")


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _bad(folder: Path, why: str) -> InputError:
    return InputError(f"notification folder {folder}", why)


def read_wave(folder: Path) -> Wave:
    """Read a notify folder and check every list against its manifest.

    Raises InputError naming the file when the manifest is missing or not one `notify`
    writes, or a list it names is missing or differs from its recorded SHA-256 or size.
    """
    path = folder / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _bad(folder, f"{MANIFEST} is missing (not a notify folder, or incomplete)") from None
    except OSError as e:
        raise InputError(f"{path}", f"cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path}", "is not valid JSON") from None
    tool = manifest.get("tool") if isinstance(manifest, dict) else None
    if not isinstance(tool, dict) or tool.get("name") != TOOL_NAME:
        raise InputError(f"{path}", f"is not a manifest written by {TOOL_NAME} notify")
    outputs = manifest.get("outputs")
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise InputError(f"{path}", "has no list of outputs")
    listed = {o["name"]: o for o in outputs if isinstance(o.get("name"), str)}
    for spec in LISTS:
        entry = listed.get(spec.file_name)
        if entry is None or not _SHA256.match(str(entry.get("sha256", ""))):
            raise InputError(f"{path}", f"does not record {spec.file_name} and its SHA-256")
        target = folder / spec.file_name
        try:
            if target.is_symlink():
                raise InputError(f"{target}", "is a symbolic link, not the list notify wrote")
            if not target.is_file():
                raise InputError(f"{target}", "is missing (the manifest lists it)")
            digest, size = _sha256_file(target)
        except OSError as e:
            raise InputError(
                f"{target}", f"cannot be read ({e.strerror or type(e).__name__})"
            ) from None
        if digest != entry["sha256"] or size != entry.get("size_bytes", size):
            raise InputError(
                f"{target}",
                "changed since the manifest was written (SHA-256 differs from manifest.json)",
            )
    for key in ("sanitization", "pseudonymization"):
        if not isinstance(manifest.get(key, {}), dict):
            raise InputError(f"{path}", f"has a {key} that is not an object")
    pseudonyms = manifest.get("pseudonymization", {})
    if pseudonyms.get("pseudonymized") and not re.match(
        r"^[0-9a-f]{32}$", str(pseudonyms.get("key_check", ""))
    ):
        raise InputError(f"{path}", "says its lists are pseudonymised but has no key check")
    number, prev_sha, prev_folder = _wave_fields(path, manifest.get("wave"))
    return Wave(
        folder=folder,
        number=number,
        manifest_sha256=hashlib.sha256(data).hexdigest(),
        manifest=manifest,
        previous_sha256=prev_sha,
        previous_folder=prev_folder,
    )


def _wave_fields(path: Path, wave: Any) -> tuple[int, str | None, str | None]:
    """(number, previous manifest SHA-256, previous folder) of a manifest's `wave`.

    A manifest without `wave` (written before waves existed) is a first wave.
    """
    if wave is None:
        return 1, None, None
    number = wave.get("number") if isinstance(wave, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise InputError(f"{path}", "has a wave without a valid number")
    previous = wave.get("previous")
    if previous is None:
        if number != 1:
            raise InputError(f"{path}", f"is wave {number} but names no previous wave")
        return 1, None, None
    sha = previous.get("manifest_sha256") if isinstance(previous, dict) else None
    folder = previous.get("folder") if isinstance(previous, dict) else None
    if not isinstance(sha, str) or not _SHA256.match(sha) or not isinstance(folder, str):
        raise InputError(f"{path}", "names its previous wave without a SHA-256 and folder")
    if number == 1:
        raise InputError(f"{path}", "is wave 1 but names a previous wave")
    if "number" in previous and (
        previous["number"] != number - 1 or isinstance(previous["number"], bool)
    ):
        raise InputError(
            f"{path}", f"is wave {number} but names wave {previous['number']!r:.20} as its previous"
        )
    return number, sha, folder


def walk_chain(folder: Path) -> Iterator[Wave]:
    """The waves of `folder`'s chain, newest first, each checked against its manifest and
    against the SHA-256 its successor recorded. Raises InputError at the first mismatch."""
    wave = read_wave(folder)
    yield wave
    while wave.previous_sha256 is not None and wave.previous_folder is not None:
        where = Path(os.path.normpath(wave.folder / wave.previous_folder))
        if not (where / MANIFEST).exists():
            raise InputError(
                f"wave {wave.number} in {wave.folder}",
                f"its previous wave is not at {where}, where it was when wave {wave.number} "
                "was written",
                "Keep the waves' folders side by side as notify wrote them",
            )
        previous = read_wave(where)
        if previous.manifest_sha256 != wave.previous_sha256:
            raise InputError(
                f"{where / MANIFEST}",
                f"is not the manifest wave {wave.number} in {wave.folder} was built on "
                "(SHA-256 differs): the chain is broken",
            )
        if previous.number != wave.number - 1:
            raise InputError(
                f"{where / MANIFEST}",
                f"is wave {previous.number}, but wave {wave.number} names it as its previous",
            )
        recorded = wave.manifest["wave"]["previous"].get("window", previous.window)
        if recorded != previous.window:
            raise InputError(
                f"{wave.folder / MANIFEST}",
                "records another window for its previous wave than that wave's manifest holds",
            )
        yield previous
        wave = previous


def read_chain(folder: Path) -> list[Wave]:
    """Every wave of `folder`'s chain, oldest first, all verified (see walk_chain)."""
    return list(walk_chain(folder))[::-1]


# --- verify-notices ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    """What `verify_notices` found for one folder: the waves verified, newest first, and the
    problem that stopped the walk (None when the chain is whole, back to wave 1)."""

    folder: Path
    waves: tuple[Wave, ...]
    problem: str | None


def verify_notices(folders: Sequence[Path]) -> list[ChainCheck]:
    """Walk each folder's chain back to wave 1, checking every file hash and every link."""
    checks = []
    for folder in folders:
        waves: list[Wave] = []
        problem = None
        try:
            for wave in walk_chain(folder):
                check_lists(wave.folder)
                waves.append(wave)
        except InputError as e:
            problem = e.one_line()
        checks.append(ChainCheck(folder, tuple(waves), problem))
    return checks
