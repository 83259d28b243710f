"""Spark streams a list to the driver in order, a batch at a time, with DuckDB's exact rows
and types (the notify lists are written from these streams)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from forensics.export import LISTS
from forensics.exposure import prepare_window
from forensics.queries import get_query
from tests.helpers.engines import open_case
from tests.test_engines import W, odd_incident

pytestmark = pytest.mark.spark


def test_lists_stream_in_batches_with_the_rows_of_duckdb(
    tmp_path: Path, spark_session: object
) -> None:
    store = odd_incident().write(tmp_path / "case.duckdb")
    duck = open_case(store, "duckdb")
    spark = open_case(store, "spark")
    try:
        prepare_window(duck, W)
        prepare_window(spark, W)
        spark.stream_rows = 1  # type: ignore[union-attr]
        for spec in LISTS:
            want = duck.sql(get_query(spec.query).sql).to_arrow_table()  # type: ignore[union-attr]
            batches = list(spark.query_reader(spec.query))  # type: ignore[union-attr]
            assert want.num_rows > 1 and len(batches) == want.num_rows, spec.query
            got = pa.Table.from_batches(batches)
            types = [(f.name, f.type) for f in want.schema]
            assert [(f.name, f.type) for f in got.schema] == types, spec.query
            assert got.to_pylist() == want.to_pylist(), spec.query
    finally:
        duck.close()
        spark.close()
