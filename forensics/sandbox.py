"""Ad-hoc SQL over the case store (`forensics sql`, SPEC §7): read-only and locked down.

Before the user's SQL runs, external access is switched off and the configuration locked:
the query can read the store's tables, but not write them, read or write any other file,
attach databases, install or load extensions, or change settings. Errors are one line.
"""

from __future__ import annotations

import base64
import datetime as dt
import glob
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from forensics.engines.base import EngineOptions
from forensics.errors import ForensicsError, StoreError, UsageError, hide_quoted
from forensics.store import StoreOptions, engine_error, open_store
from forensics.window import format_time

_WHAT = "sql"


def open_sandbox(options: StoreOptions) -> duckdb.DuckDBPyConnection:
    """The store, read-only, with external access off and the configuration locked."""
    return _locked_down(open_store(options, read_only=True))


def _locked_down(
    con: duckdb.DuckDBPyConnection, allowed_paths: list[str] | None = None
) -> duckdb.DuckDBPyConnection:
    """`con` with external access off (but for `allowed_paths`) and its configuration
    locked; closed, with a one-line error, if that cannot be done."""
    try:
        # Order matters: once the configuration is locked nothing can be switched back on.
        if allowed_paths is not None:
            con.execute("set allowed_paths = $p", {"p": allowed_paths})
        con.execute("set enable_external_access = false")
        con.execute("set allow_community_extensions = false")
        con.execute("set lock_configuration = true")
    except duckdb.Error as e:
        con.close()
        why = engine_error(_WHAT, e).why
        raise StoreError(_WHAT, f"cannot lock down the connection: {why}") from None
    return con


_BATCH = 2048


@dataclass
class SqlResult:
    """Column names (made unique, in order) and the rows of one query, fetched in batches
    while the connection stays open."""

    columns: list[str]
    types: list[str]
    rows: Iterator[tuple[Any, ...]]


def run_sql(con: duckdb.DuckDBPyConnection, query: str) -> SqlResult:
    """Run `query` (the last statement's rows are returned). Raises UsageError / StoreError."""
    if not query.strip():
        raise UsageError(_WHAT, "the query is empty")
    try:
        con.execute(query)
        description = con.description or []
    except duckdb.Error as e:
        raise sql_error(e) from None
    names = [str(d[0]) for d in description]
    return SqlResult(unique_names(names), [str(d[1]) for d in description], _fetch(con))


@contextmanager
def query_store(options: StoreOptions, query: str) -> Iterator[SqlResult]:
    """Open the locked-down store, run `query`, yield its result; the store closes after."""
    con = open_sandbox(options)
    try:
        yield run_sql(con, query)
    finally:
        con.close()


@contextmanager
def query_case(
    options: StoreOptions, query: str, engine: EngineOptions | None = None
) -> Iterator[SqlResult]:
    """`query` over the store, or over a case lake through `engine` (as locked down: only
    SELECT on DuckDB with no file but the lake's readable; one checked SELECT on Spark)."""
    if engine is None:
        with query_store(options, query) as result:
            yield result
        return
    if engine.engine == "spark":
        from forensics.engines.base import open_engine
        from forensics.engines.spark import SparkEngine

        spark = open_engine(engine)
        try:
            if not isinstance(spark, SparkEngine):
                raise StoreError(_WHAT, "no Spark engine")
            schema, batches = spark.stream(spark.user_query(query), _WHAT)
            yield SqlResult(
                unique_names(schema.names), [str(f.type) for f in schema], _rows(batches)
            )
        finally:
            spark.close()
        return
    con = open_lake_sandbox(engine)
    try:
        _only_select(con, query)
        yield run_sql(con, query)
    finally:
        con.close()


def open_lake_sandbox(engine: EngineOptions) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over the lake in place, locked down: external access off but for
    the lake's own Parquet files, configuration locked."""
    from forensics.lake import TABLES, local_lake, open_lake_duckdb, table_files

    lake = local_lake(engine.lake or "")
    store = StoreOptions(lake, engine.memory_limit, engine.threads)
    con = open_lake_duckdb(str(lake), store)
    files = [f for t in TABLES for f in table_files(lake, t)]
    files += [os.path.abspath(f) for f in files]
    # The views name each file glob-escaped (a lake path may hold * ? [), and DuckDB checks
    # that name before it expands it to the file: both forms are allowed, no other file.
    return _locked_down(con, sorted(set(files) | {glob.escape(f) for f in files}))


def _only_select(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """On a lake the readable files are the lake's own, and COPY could overwrite them: only
    SELECT (and EXPLAIN) statements run."""
    if not query.strip():
        raise UsageError(_WHAT, "the query is empty")
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as e:
        raise sql_error(e) from None
    allowed = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
    if any(st.type not in allowed for st in statements):
        raise UsageError(
            _WHAT,
            "not allowed: on a case lake `forensics sql` runs SELECT statements only",
            "Write SELECT (WITH …) queries over events, grants, accounts, sources, rejects",
        )


def _rows(batches: Iterator[Any]) -> Iterator[tuple[Any, ...]]:
    for batch in batches:
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def _fetch(con: duckdb.DuckDBPyConnection) -> Iterator[tuple[Any, ...]]:
    while True:
        try:
            batch = con.fetchmany(_BATCH)
        except duckdb.Error as e:
            raise sql_error(e) from None
        if not batch:
            return
        yield from batch


def sql_error(e: duckdb.Error) -> ForensicsError:
    """The engine's first line, values in quotes hidden when they may come from records."""
    line = engine_error(_WHAT, e).why
    # Conversion errors, and parsers' (strptime, json_transform_strict), quote the value.
    if isinstance(e, duckdb.DataError | duckdb.InvalidInputException):
        line = hide_quoted(line)
    if isinstance(e, duckdb.PermissionException) or "configuration has been locked" in line:
        return UsageError(
            _WHAT,
            f"not allowed: {line}",
            "`forensics sql` reads the case store only and cannot change settings",
        )
    if isinstance(e, (duckdb.ProgrammingError, duckdb.DataError)):
        return UsageError(_WHAT, line)
    return StoreError(_WHAT, line)


def unique_names(names: list[str]) -> list[str]:
    """Duplicate column names get `_2`, `_3`… so no column is lost in JSON objects."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return out


def to_json_value(value: Any) -> Any:
    """A DuckDB value as JSON: times ISO 8601, decimals as exact text, blobs base64."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, dt.datetime):
        return format_time(value, naive_as_is=True)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def to_text(value: Any) -> str:
    """A DuckDB value as one text cell (NULL → empty): for CSV and tables."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(to_json_value(value), ensure_ascii=False)
    converted = to_json_value(value)
    return converted if isinstance(converted, str) else json.dumps(converted)


def iter_json_rows(result: SqlResult) -> Iterator[dict[str, Any]]:
    """Rows as JSON objects; a JSON-typed column (events.extra) is nested, not a string."""
    is_json = [t == "JSON" for t in result.types]
    for row in result.rows:
        yield {
            name: _parse_json(v) if nested else to_json_value(v)
            for name, v, nested in zip(result.columns, row, is_json, strict=True)
        }


def _parse_json(value: Any) -> Any:
    if not isinstance(value, str):
        return to_json_value(value)
    try:
        return json.loads(value)
    except ValueError:
        return value
