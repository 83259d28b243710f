"""Load the SQL in queries/ and run it with bound $params.

Each .sql file holds one query, named after the rows it returns, with a header:
    -- name: <file stem>
    -- grain: <what one row is>
    -- params: $a (meaning), $b (meaning)      (or "-- params: none")
A query that fails raises StoreError: a broken rule must never look like "nothing found".
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from forensics.engines.base import Engine
from forensics.errors import StoreError
from forensics.store import engine_error

if TYPE_CHECKING:  # DuckDB imports Arrow when it makes a table: a short command may need none
    import pyarrow as pa

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_HEADER = re.compile(r"^--\s*(name|grain|params):\s*(.*)$")


@dataclass(frozen=True)
class Query:
    name: str
    grain: str
    params: tuple[str, ...]
    sql: str
    path: Path


def queries_dir() -> Path:
    """queries/ inside the installed wheel, else beside the package in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "queries", here.parent / "queries"):
        if candidate.is_dir():
            return candidate
    raise StoreError("queries/", "the SQL files are missing from this installation")


def parse_query(path: Path) -> Query:
    """Parse one .sql file; raises StoreError if its header is missing or wrong."""
    text = path.read_text(encoding="utf-8")
    header: dict[str, str] = {}
    for line in text.splitlines():
        m = _HEADER.match(line.strip())
        if m:
            header[m.group(1)] = m.group(2).strip()
        elif line.strip() and not line.startswith("--"):
            break
    missing = {"name", "grain", "params"} - header.keys()
    if missing:
        raise StoreError(f"query {path.name}", f"header lacks {', '.join(sorted(missing))}")
    if header["name"] != path.stem:
        raise StoreError(f"query {path.name}", f"header names {header['name']!r}")
    declared = tuple(dict.fromkeys(_PARAM.findall(header["params"])))
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--"))
    used = set(_PARAM.findall(body))
    if used != set(declared):
        raise StoreError(
            f"query {path.name}",
            f"declares {sorted(declared)} but uses {sorted(used)}",
        )
    return Query(header["name"], header["grain"], declared, text, path)


@cache
def load_queries() -> dict[str, Query]:
    """Every query in queries/, by name."""
    return {p.stem: parse_query(p) for p in sorted(queries_dir().glob("*.sql"))}


def get_query(name: str) -> Query:
    try:
        return load_queries()[name]
    except KeyError:
        raise StoreError(f"query {name}", "no such file in queries/") from None


def bind_params(q: Query, params: Mapping[str, object]) -> dict[str, object]:
    """The values of the parameters `q` declares; raises StoreError if one is missing."""
    missing = [p for p in q.params if p not in params]
    if missing:
        raise StoreError(f"query {q.name}", f"missing parameters {missing}")
    return {p: params[p] for p in q.params}


def run_query(
    con: duckdb.DuckDBPyConnection | Engine, name: str, params: Mapping[str, object] | None = None
) -> pa.Table:
    """Run queries/<name>.sql and return its rows as an Arrow table."""
    if isinstance(con, Engine):
        return con.run_query(name, params)
    q = get_query(name)
    try:
        with warnings.catch_warnings():
            # DuckDB 2 warns on stderr that a DB-API result is copied into Arrow; con.sql
            # would avoid the copy but refuses to run while a caller's result is unfinished.
            warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
            return con.execute(q.sql, bind_params(q, params or {})).to_arrow_table()
    except duckdb.Error as e:
        raise engine_error(f"query {name}", e) from None


def query_rows(
    con: duckdb.DuckDBPyConnection | Engine, name: str, params: Mapping[str, object] | None = None
) -> list[dict[str, Any]]:
    """Run queries/<name>.sql and return its rows as dicts, column name to value: for the
    few rows a figure or a check needs. On a store no Arrow table is made (importing
    pyarrow is about a quarter of a short command's start); values are DuckDB's Python
    values (times in UTC, counts as int)."""
    if isinstance(con, Engine):
        rows: list[dict[str, Any]] = con.run_query(name, params).to_pylist()
        return rows
    q = get_query(name)
    try:
        cur = con.execute(q.sql, bind_params(q, params or {}))
        columns = [d[0] for d in cur.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    except duckdb.Error as e:
        raise engine_error(f"query {name}", e) from None


def materialize_query(
    con: duckdb.DuckDBPyConnection | Engine,
    name: str,
    params: Mapping[str, object] | None = None,
    *,
    append: bool = False,
) -> None:
    """Store queries/<name>.sql's rows as the temp table <name>, for later queries to read
    (with `append`, a case store's only: add them to the table an earlier call made)."""
    if isinstance(con, Engine):
        if append:
            raise StoreError(f"query {name}", "an engine's tables are made whole, not added to")
        con.materialize_query(name, params)
        return
    q = get_query(name)
    body = q.sql.strip().rstrip(";")
    into = f"insert into temp.{name}" if append else f"create or replace temp table {name} as"
    try:
        con.execute(f"{into} {body}", bind_params(q, params or {}))  # noqa: S608 - name is a file stem from queries/
    except duckdb.Error as e:
        raise engine_error(f"query {name}", e) from None
