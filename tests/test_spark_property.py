"""The notify-list and ingest property tests, on Spark: the same models, fewer examples (each
one goes through a lake and Spark jobs; the DuckDB versions run 50 and 25)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics.engines.base import EngineOptions
from forensics.exposure import prepare_window
from forensics.ingest import IngestOptions
from forensics.lake import open_lake_duckdb
from forensics.lake_ingest import ingest_lake
from forensics.queries import run_query
from tests.helpers.engines import open_case
from tests.helpers.incident import Incident, window
from tests.helpers.ingest import accounted
from tests.test_exposure import incidents_st
from tests.test_ingest_property import _model, records, write_cut
from tests.test_notify import LIST_COLUMNS, model_lists

pytestmark = pytest.mark.spark

_SPARK_SETTINGS = settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@_SPARK_SETTINGS
@given(inc=incidents_st(), bounds=st.tuples(st.integers(-1, 7), st.integers(1, 6)))
def test_list_queries_equal_the_model_on_spark(
    tmp_path_factory: pytest.TempPathFactory,
    spark_session: Any,
    inc: Incident,
    bounds: tuple[int, int],
) -> None:
    w = window(bounds[0] * 5, (bounds[0] + bounds[1]) * 5)
    store = inc.write(tmp_path_factory.mktemp("lists") / "case.duckdb")
    con = open_case(store, "spark")
    try:
        prepare_window(con, w)
        expected = model_lists(inc, w)
        for name, columns in LIST_COLUMNS.items():
            rows = run_query(con, name).to_pylist()
            assert [tuple(r[c] for c in columns) for r in rows] == expected[name], name
    finally:
        con.close()


@settings(_SPARK_SETTINGS, max_examples=4)
@given(
    data=st.lists(records(), min_size=1, max_size=30),
    cuts=st.lists(st.integers(0, 30), max_size=3),
    formats=st.lists(st.sampled_from(["ndjson", "gz", "array"]), min_size=4, max_size=4),
)
def test_lake_ingest_on_spark_equals_a_plain_reading_of_spec(
    spark_session: Any,
    data: list[tuple[str, tuple[Any, ...] | None]],
    cuts: list[int],
    formats: list[str],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files, order = write_cut(folder, data, cuts, formats)
        lake = folder / "lake"
        report = ingest_lake(
            EngineOptions("spark", str(lake), "local[1]"),
            [str(f) for f in files],
            IngestOptions(kind="events"),
        )
        assert accounted(report)
        assert all(f.status == "loaded" for f in report.files), report
        expected, rejected, dup = _model([e for _, e in order])
        con = open_lake_duckdb(str(lake))
        try:
            got = set(
                con.execute(
                    "select ts, action, user_id, device_id, event_id, request_id, status "
                    "from events"
                ).fetchall()
            )
        finally:
            con.close()
        assert got == expected
        totals = report.totals()
        assert totals["rows_rejected"] == rejected
        assert totals["rows_duplicate"] == dup
        assert totals["rows_read"] == len(order)
