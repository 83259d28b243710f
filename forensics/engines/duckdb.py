"""DuckDB: the queries run as written, on a case store or on a lake's Parquet in place."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import duckdb
import pyarrow as pa

from forensics import queries
from forensics.engines.base import Engine, EngineOptions
from forensics.store import StoreOptions, engine_error


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    @classmethod
    def open_lake(cls, options: EngineOptions) -> DuckDBEngine:
        from pathlib import Path

        from forensics.lake import open_lake_duckdb

        lake = options.lake or ""
        store = StoreOptions(Path(lake), options.memory_limit, options.threads)
        return cls(open_lake_duckdb(lake, store))

    def run_query(self, name: str, params: Mapping[str, object] | None = None) -> pa.Table:
        return queries.run_query(self.con, name, params)

    def materialize_query(self, name: str, params: Mapping[str, object] | None = None) -> None:
        queries.materialize_query(self.con, name, params)

    def read_table(self, name: str) -> pa.Table | None:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Arrow output", UserWarning)
                return self.con.execute(f"select * from {name}").to_arrow_table()  # noqa: S608
        except duckdb.CatalogException:
            return None
        except duckdb.Error as e:
            raise engine_error(f"table {name}", e) from None

    def query_reader(self, name: str) -> pa.RecordBatchReader:
        q = queries.get_query(name)
        try:
            return self.con.sql(q.sql).to_arrow_reader(65_536)
        except duckdb.Error as e:
            raise engine_error(f"query {name}", e) from None

    def close(self) -> None:
        self.con.close()
