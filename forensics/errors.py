"""The ForensicsError family and the process exit codes (SPEC §7).

Core modules raise these; only the CLI turns them into a one-line message and an exit code.
Messages never contain record contents (personal data).
"""

from __future__ import annotations

import os
import re
from enum import IntEnum

_RECORD_ECHO = re.compile(r'Input: ".*')  # DuckDB's JSON errors quote the record here
# DuckDB's errors of these types quote the value (e.g. "Could not convert string 'x@y'",
# 'invalid date field format: "Ann"', "decimal value 1000 to type INT64"): quoted text and
# numbers are hidden, type names (INT64) kept.
_VALUE_ECHO = ("Conversion Error:", "Out of Range Error:")
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"\\]|\\.)*\"")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d.]*(?:[eE][-+]?\d+)?(?![\w.])")
# DuckDB's errors from the operating system end with its number: `..., "errno":"28"}`
_ERRNO = re.compile(r'"errno"\s*:\s*"?(\d+)')


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
        return single_line(text)


def single_line(text: str) -> str:
    """Text on one line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(text.split())


# A lone surrogate: a byte that was not UTF-8, kept by Python's surrogateescape (PEP 383),
# in a file's text or a path's name.
SURROGATE = re.compile("[\ud800-\udfff]")


def hide_quoted(line: str) -> str:
    """`line` with every quoted text ('...' or "...") shown as '…': an engine quotes values."""
    return _QUOTED.sub("'…'", line)


def engine_message(e: BaseException | str, limit: int = 200) -> str:
    """The first line of an engine's message, cut short, without the record it may quote.

    DuckDB and Arrow echo records (personal data) in later lines and after `Input: "`; an
    empty message gives the exception's class name.
    """
    text = str(e).strip()
    if not text:
        return type(e).__name__ if isinstance(e, BaseException) else ""
    line = _RECORD_ECHO.sub("", text.splitlines()[0])
    if line.startswith(_VALUE_ECHO):
        line = _NUMBER.sub("…", hide_quoted(line))
    # The operating system's reason (e.g. "No space left on device") comes last, after the
    # paths: when the cut would lose it, it is put back from the error's number.
    m = _ERRNO.search(text)
    if m and len(line) > limit:
        try:
            reason = os.strerror(int(m.group(1)))
        except (ValueError, OverflowError):
            reason = ""
        if reason and reason not in line[:limit]:
            return line[: max(0, limit - len(reason) - 3)] + "…: " + reason
    return line[:limit]


class UsageError(ForensicsError):
    """Bad option or argument value (exit 2)."""

    exit_code = ExitCode.USAGE


class StoreError(ForensicsError):
    """The case store is missing, locked, or a query on it failed (exit 1)."""


class StoreInUseError(StoreError):
    """Another process holds the case store."""


class InputError(ForensicsError):
    """An input file cannot be read (exit 1); other files go on."""


# For a JSON file read as records that may be one object wrapping them (SPEC §2.5).
WRAPPED_HINT = (
    "If the file is one object holding its records in an array member beside other "
    "members, name that member with records = in a map"
)


class OutputError(ForensicsError):
    """An output cannot be written safely (exit 1)."""
