"""SQL text in one place: quoting of identifiers, string literals and JSON pointers.

Values are bound as `$params` wherever DuckDB allows. These helpers are for what cannot be a
parameter: column names found in a file, JSON paths spliced into a select list, and the
constant literals of macro bodies. Nothing here interprets escapes: a literal holds its
characters as they are (DuckDB reads `e'\\v'` as the letter `v`, so no `e'...'` strings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# What "blank" means for an id or any text (SPEC §2.4): space, tab, LF, VT, FF, CR.
BLANK_CHARS = " \t\n\r" + chr(11) + chr(12)
# Whitespace JSON allows around a value (RFC 8259), and a line's own end.
JSON_SPACE = " \t\r\n"
LINE_END = "\r\n"


def ident(name: str) -> str:
    """A quoted identifier: any column name, `"` doubled."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A standard SQL string literal: `'` doubled, every other character as it is."""
    return "'" + text.replace("'", "''") + "'"


def code_in(expr: str, chars: str) -> str:
    """SQL true when the integer `expr` is the code point of one of `chars`: ranges of
    consecutive codes as `between`, the rest compared one by one. Not `expr in (...)`: DuckDB
    plans an IN list of five or more constants as a join, which costs more and does not
    keep the rows in order (measured on DuckDB 2.0.1)."""
    points = sorted({ord(c) for c in chars})
    runs: list[list[int]] = []
    for p in points:
        if runs and p == runs[-1][-1] + 1:
            runs[-1].append(p)
        else:
            runs.append([p])
    parts: list[str] = []
    for r in runs:
        if len(r) > 2:
            parts.append(f"{expr} between {r[0]} and {r[-1]}")
        else:
            parts += [f"{expr} = {c}" for c in r]
    if len(parts) == 1:
        return "(" + parts[0] + ")"
    # Most values fall outside the whole span: one comparison settles them.
    return f"({expr} between {points[0]} and {points[-1]} and (" + " or ".join(parts) + "))"


def json_pointer(key_path: Iterable[str]) -> str:
    """A JSON pointer (RFC 6901) for a path of keys; any characters allowed in the keys."""
    return "".join("/" + k.replace("~", "~0").replace("/", "~1") for k in key_path)


def pointer_key(pointer: str) -> str:
    """The key of a one-step JSON pointer (the inverse of json_pointer([key]))."""
    return pointer[1:].replace("~1", "/").replace("~0", "~")


def struct_path(column: str, path: Iterable[str]) -> str:
    """A column and a path into its struct fields: `"col"['a']['b']`."""
    return ident(column) + "".join(f"[{literal(p)}]" for p in path)


def used_params(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses (DuckDB refuses unused named parameters)."""
    return {k: v for k, v in params.items() if f"${k}" in sql}
