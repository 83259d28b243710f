"""Open a test's case store on the engine under test: DuckDB as it is, or Spark over a lake.

The `engine` fixture (tests/conftest.py) sets which; a test that does not ask for it runs
on DuckDB. With Spark the store is exported to a fresh lake beside it (forensics export),
so the same scenario runs through export, the lake and the transpiled queries.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from forensics.engines.duckdb import DuckDBEngine
from forensics.exposure import Connection
from forensics.lake import export_store
from forensics.store import StoreOptions, open_store

SPARK_TEST_MASTER = "local[1]"
# Spark settings for tiny data: one partition, no code generation or adaptive planning (each
# costs more than it saves on a few rows); the product's own settings are in engines/spark.py.
SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
}

_current = ["duckdb"]


def current_engine() -> str:
    return _current[0]


def set_engine(name: str) -> None:
    _current[0] = name


def open_case(store: Path, engine: str | None = None) -> Connection:
    """The store read-only (duckdb), or an engine over a lake exported from it (spark,
    duckdb-lake). Close it with .close()."""
    engine = engine or current_engine()
    if engine == "duckdb":
        return open_store(StoreOptions(store), read_only=True)
    lake = store.parent / f"lake-{uuid.uuid4().hex[:8]}"
    export_store(StoreOptions(store), str(lake))
    if engine == "duckdb-lake":
        from forensics.engines.base import EngineOptions

        return DuckDBEngine.open_lake(EngineOptions("duckdb", str(lake)))
    from forensics.engines.spark import SparkEngine

    return SparkEngine.open_lake(str(lake), SPARK_TEST_MASTER)


def table_rows(con: Connection, table: str, columns: tuple[str, ...]) -> list[tuple[object, ...]]:
    """Some columns of a (temp) table, in the table's order, on either engine."""
    import duckdb

    if isinstance(con, duckdb.DuckDBPyConnection):
        got = con.sql(f"select * from {table}").to_arrow_table()  # noqa: S608
    else:
        read = con.read_table(table)
        assert read is not None, table
        got = read
    return [tuple(r[c] for c in columns) for r in got.to_pylist()]
