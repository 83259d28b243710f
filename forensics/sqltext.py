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


def codes(chars: str) -> str:
    """The code points of `chars`, comma-separated, for `ascii(s) in (...)`."""
    return ", ".join(str(ord(c)) for c in sorted(set(chars)))


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
