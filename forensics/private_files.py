"""Atomic private output files: each file is written to a 0600 temp file beside its final
name, hashed as written and fsynced, then all are renamed together (a manifest last) and the
folder fsynced; on failure the temp files, and a folder made for them, are removed. A new
output folder is 0700.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb

from forensics.errors import OutputError
from forensics.store import engine_error

MANIFEST = "manifest.json"  # renamed last: a folder without it is an incomplete set


@dataclass
class PendingFile:
    """A fully written, fsynced temp file waiting to be renamed onto its final name."""

    tmp: Path
    final: Path
    rows: int | None
    sha256: str
    size_bytes: int

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def written(self) -> OutputFile:
        """What the file is once renamed onto its final name."""
        return OutputFile(self.final.name, self.final, self.rows, self.sha256, self.size_bytes)


@dataclass(frozen=True)
class OutputFile:
    """A file written and renamed into place (rows is None where a file has no rows: a
    manifest, a report)."""

    name: str
    path: Path
    rows: int | None
    sha256: str
    size_bytes: int


class HashingWriter:
    """Writes bytes to a file and hashes exactly the bytes written."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.hash.update(data)
        self.size += len(data)


@contextlib.contextmanager
def private_temp(final: Path) -> Iterator[tuple[HashingWriter, Path]]:
    """A 0600 temp file beside `final`; flushed and fsynced on success, removed on any error."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o600)  # mkstemp already makes it 0600; say so whatever the platform
        with os.fdopen(fd, "wb", buffering=1 << 20) as raw:
            writer = HashingWriter(raw)
            yield writer, tmp
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_pending(final: Path, data: bytes, rows: int | None = None) -> PendingFile:
    """Write `data` to a private temp file beside `final` (not yet renamed)."""
    with private_temp(final) as (w, tmp):
        w.write(data)
    return PendingFile(tmp, final, rows, w.hash.hexdigest(), w.size)


def commit_files(pending: Sequence[PendingFile], directory: Path) -> None:
    """Rename every temp file onto its final name, the manifest last, then fsync the folder.

    An old manifest is removed first: a folder whose manifest is missing, or whose hashes do
    not match, is an incomplete set (an interrupt between two renames).
    """
    manifest = [p for p in pending if p.final.name == MANIFEST]
    others = [p for p in pending if p.final.name != MANIFEST]
    if manifest:
        with contextlib.suppress(FileNotFoundError):
            manifest[0].final.unlink()
    for p in others + manifest:
        os.replace(p.tmp, p.final)
    fsync_path(directory)


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare_out_dir(
    out_dir: Path,
    *,
    force: bool,
    names: Sequence[str],
    replaces: str,
) -> bool:
    """Check or create the output folder before anything is computed; True if created here.

    An existing non-empty folder is refused without `force`, with nothing changed. A new
    folder is made 0700 whatever the umask (missing parents are made as `mkdir -p` would).
    `names` are the files the caller will write; `replaces` names them in the hint.
    """
    what = f"output folder {out_dir}"
    try:
        if out_dir.exists():
            if not out_dir.is_dir():
                raise OutputError(what, "exists and is not a folder")
            if not force and any(out_dir.iterdir()):
                raise OutputError(
                    what,
                    "exists and is not empty",
                    f"Pass --force to replace {replaces} in it, or choose a new folder",
                )
            for name in names:
                target = out_dir / name
                if target.is_dir() and not target.is_symlink():
                    raise OutputError(f"{target}", "is a folder; cannot replace it with a file")
            if not os.access(out_dir, os.W_OK | os.X_OK):
                raise OutputError(what, "is not writable")
            return False
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir(mode=0o700)
        os.chmod(out_dir, 0o700)  # mkdir's mode is filtered by the umask; chmod is not
        return True
    except OSError as e:
        if e.errno in (errno.EEXIST, errno.ENOTDIR) and _file_on_the_way(out_dir):
            raise OutputError(what, "a part of its path is a file, not a folder") from None
        raise OutputError(what, e.strerror or type(e).__name__) from None


def _file_on_the_way(path: Path) -> bool:
    """Whether a parent of `path` exists and is not a folder (mkdir -p then fails)."""
    return any(p.exists() and not p.is_dir() for p in path.parents)


def folder_warnings(out_dir: Path, created: bool) -> list[str]:
    """A warning when a folder this call did not create is open to other users."""
    warnings: list[str] = []
    if not created:
        with contextlib.suppress(OSError):
            if stat.S_IMODE(out_dir.stat().st_mode) & 0o077:
                warnings.append(
                    f"output folder {out_dir} is accessible to other users "
                    "(the files in it are 0600)"
                )
    return warnings


def abandon_files(pending: Sequence[PendingFile], out_dir: Path, created: bool) -> None:
    """Undo an unfinished export: remove temp files, and the folder if this run made it."""
    for p in pending:
        p.discard()
    if created:
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only if still empty: never removes anything else


@contextlib.contextmanager
def writing_files(out_dir: Path, created: bool, what: str) -> Iterator[list[PendingFile]]:
    """The list an output set's pending files join as they are written; on any error or
    interrupt they are removed (with the folder, if `created` and still empty) and the error
    raised: an engine error as StoreError naming `what`, an OS error as OutputError."""
    pending: list[PendingFile] = []
    try:
        yield pending
    except duckdb.Error as e:  # raised while streaming a query's rows
        abandon_files(pending, out_dir, created)
        raise engine_error(what, e) from None
    except OSError as e:
        abandon_files(pending, out_dir, created)
        raise OutputError(f"output folder {out_dir}", e.strerror or type(e).__name__) from None
    except BaseException:
        abandon_files(pending, out_dir, created)
        raise
