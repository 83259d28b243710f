"""The ForensicsError family and the process exit codes (SPEC §7).

Core modules raise these; only the CLI turns them into a one-line message and an exit code.
Messages never contain record contents (personal data).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130


class ForensicsError(Exception):
    """An error with a `what` (the subject) and a `why`; rendered `forensics: error: what: why`."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, what: str, why: str, hint: str = "") -> None:
        super().__init__(f"{what}: {why}")
        self.what = what
        self.why = why
        self.hint = hint

    def one_line(self) -> str:
        text = f"{self.what}: {self.why}"
        if self.hint:
            text += f". {self.hint}"
        return " ".join(text.split())


class UsageError(ForensicsError):
    """Bad option or argument value (exit 2)."""

    exit_code = ExitCode.USAGE


class StoreError(ForensicsError):
    """The case store is missing, locked, or a query on it failed (exit 1)."""


class StoreInUseError(StoreError):
    """Another process holds the case store."""


class InputError(ForensicsError):
    """An input file cannot be read (exit 1); other files go on."""


class OutputError(ForensicsError):
    """An output cannot be written safely (exit 1)."""
