"""Which files to read (SPEC §2.5): paths, folders (walked, hidden skipped) and globs.

A path that exists is taken literally, so a real file named `x*.ndjson` is read alone; only
a path that does not exist is expanded as a glob. URLs are refused. A file reached twice
(listed again, or through a symlink) is read once. A walk follows symlinks to folders (each
folder once, so a link loop ends), and a folder it cannot list fails, named, like a file
that cannot be read.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
from pathlib import Path

from forensics.errors import SURROGATE
from forensics.ingest.options import FileResult
from forensics.ingest.readers import COMPRESSIONS, READERS
from forensics.store import SIDE_FOLDERS

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
NOT_UTF8_NAME = (
    "its path is not valid UTF-8 (a Latin-1 name, say); the store keeps paths as text, "
    "so rename it, or copy it under a UTF-8 name, and ingest it again"
)
_GLOB_CHARS = re.compile(r"[*?\[]")


def discover(
    paths: list[str], own: list[Path] | None = None
) -> tuple[list[tuple[Path, bool]], list[FileResult]]:
    """Expand files, folders (recursive, hidden skipped) and globs; refuse non-local paths.

    Returns the files to read (with whether a folder walk found them), de-duplicated by real
    path, and failures for bad paths. `own`: the files and folders the case itself writes
    (the store and what it keeps beside it, or the lake): a walk leaves them out, as it
    does hidden files, and one named on its own fails, said to be the case's own.
    """
    found: list[tuple[Path, bool]] = []
    failed: list[FileResult] = []
    for p in paths:
        if _REMOTE.match(p):
            failed.append(FileResult(p, error="only local files can be ingested"))
            continue
        path = Path(p)
        if path.is_dir():
            found.extend((w, True) for w in _walk(path, failed))
        elif os.path.lexists(p):
            found.append((path, False))
        elif _GLOB_CHARS.search(p):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                failed.append(FileResult(p, error="no file matches this pattern"))
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    found.extend((w, True) for w in _walk(mp, failed))
                elif not any(part.startswith(".") for part in mp.parts if part not in (".", "..")):
                    found.append((mp, False))
        else:
            failed.append(FileResult(p, error="no such file or folder"))
    mine = [os.path.realpath(p) for p in own or []]
    seen: set[str] = set()
    unique: list[tuple[Path, bool]] = []
    for f, walked in found:
        real = os.path.realpath(f)
        if any(real == m or real.startswith(m + os.sep) for m in mine):
            if not walked:
                failed.append(FileResult(str(f), error="is the case's own file, not evidence"))
            continue
        if real not in seen:
            seen.add(real)
            if SURROGATE.search(str(f)):
                failed.append(FileResult(str(f), error=NOT_UTF8_NAME))
                continue
            unique.append((f, walked))
    return unique, failed


def _walk(root: Path, failed: list[FileResult]) -> list[Path]:
    """The files under `root`, hidden ones and the case's side folders left out; a folder
    that cannot be listed is added to `failed`."""

    def cannot_list(e: OSError) -> None:
        failed.append(
            FileResult(str(e.filename or root), error=f"folder cannot be read ({e.strerror})")
        )

    out: list[Path] = []
    visited: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, onerror=cannot_list, followlinks=True):
        visited.add(os.path.realpath(dirpath))
        files = set(filenames)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".")
            # what a case store `X` keeps beside itself, whichever store wrote it
            and not (d.endswith(SIDE_FOLDERS) and d.rsplit(".", 1)[0] in files)
            # a folder reached again through a link (a loop, or two links to one folder)
            and os.path.realpath(os.path.join(dirpath, d)) not in visited
        )
        out.extend(Path(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    return out


def total_size(files: list[tuple[Path, bool]]) -> int:
    """The files' bytes on disk (0 for one that cannot be stat'ed), for progress."""
    total = 0
    for p, _ in files:
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total


def file_format(path: Path) -> tuple[str, str | None] | None:
    """(format, compression) from the file's name, e.g. ("ndjson", "gzip"); None if unknown."""
    name = path.name.lower()
    compression = None
    for suffix, comp in COMPRESSIONS.items():
        if name.endswith(suffix):
            compression, name = comp, name[: -len(suffix)]
    for reader in READERS:
        for suffix in reader.suffixes:
            if name.endswith(suffix):
                return suffix[1:], compression
    return None


def supported() -> str:
    """The suffixes read, for messages: `.parquet, .json, ..., +.gz/.zst`."""
    suffixes = ", ".join(s for r in READERS for s in r.suffixes)
    return f"{suffixes}, +{'/'.join(COMPRESSIONS)}"
