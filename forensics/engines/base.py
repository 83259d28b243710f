"""One small interface over the engines: run a named query with params, materialise it as a
temp table for later queries, read a result as Arrow. Nothing here prints or exits."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from forensics.errors import UsageError
from forensics.store import StoreOptions, open_store

if TYPE_CHECKING:  # Arrow is imported by what returns it: a short command may need none
    import pyarrow as pa

ENGINES = ("duckdb", "spark")
DEFAULT_MASTER = "local[*]"


@dataclass(frozen=True)
class EngineOptions:
    """Which engine reads which data: a case store (--db) or a case lake (--lake)."""

    engine: str = "duckdb"
    lake: str | None = None
    master: str | None = None  # Spark only: --master, else $SPARK_MASTER, else local[*]
    memory_limit: str | None = None
    threads: int | None = None

    def spark_master(self) -> str:
        return self.master or os.environ.get("SPARK_MASTER") or DEFAULT_MASTER


class Engine(ABC):
    """A connection to case data on one engine; queries are named files of queries/."""

    name: str

    @abstractmethod
    def run_query(self, name: str, params: Mapping[str, object] | None = None) -> pa.Table:
        """queries/<name>.sql's rows as an Arrow table. Raises StoreError."""

    @abstractmethod
    def materialize_query(self, name: str, params: Mapping[str, object] | None = None) -> None:
        """Keep queries/<name>.sql's rows as the temp table <name> for later queries."""

    @abstractmethod
    def read_table(self, name: str) -> pa.Table | None:
        """A whole (temp) table as Arrow; None when there is no such table."""

    def query_reader(self, name: str) -> pa.RecordBatchReader:
        """A parameterless query's rows as a stream of batches."""
        return self.run_query(name).to_reader()

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_engine(options: EngineOptions) -> None:
    if options.engine not in ENGINES:
        raise UsageError("--engine", f"must be one of {', '.join(ENGINES)}")
    if options.engine == "spark" and options.lake is None:
        raise UsageError(
            "--engine spark",
            "reads a case lake, not a store",
            "Pass --lake DIR (write one with `forensics export DIR`)",
        )


def open_engine(options: EngineOptions) -> Engine:
    """The engine over the lake (or, with DuckDB and no lake, nothing: use open_store)."""
    check_engine(options)
    if options.lake is None:
        raise UsageError("--lake", "no case lake given")
    if options.engine == "spark":
        from forensics.engines.spark import SparkEngine

        return SparkEngine.open_lake(options.lake, options.spark_master())
    from forensics.engines.duckdb import DuckDBEngine

    return DuckDBEngine.open_lake(options)


def open_case(store: StoreOptions, engine: EngineOptions | None) -> AbstractContextManager[Any]:
    """The case data to read, as a context manager: the lake through `engine` when one is
    given, else the store opened read-only. Both answer the same named queries."""
    if engine is not None:
        return open_engine(engine)
    return closing(open_store(store, read_only=True))
