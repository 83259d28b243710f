"""Engines that run the SQL in queries/: DuckDB (a store or a lake, in place) and Spark (a lake).

`open_engine` is the way in. Engine differences live in this package only: the queries
themselves are one source, written for DuckDB and transpiled for Spark (engines/spark.py).
"""

from __future__ import annotations

from forensics.engines.base import ENGINES, Engine, EngineOptions, open_case, open_engine

__all__ = ["ENGINES", "Engine", "EngineOptions", "open_case", "open_engine"]
