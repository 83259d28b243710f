"""`ingest --lake` reports progress with the events of a store ingest: the files and bytes
to read, then each file, its bytes, records and rejects, on DuckDB and on Spark."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from forensics.engines.base import EngineOptions
from forensics.ingest import IngestOptions, ingest
from forensics.lake_ingest import ingest_lake
from forensics.store import StoreOptions
from tests.test_engines import _ingest_inputs


def _recorder() -> tuple[Counter[str], Any]:
    seen: Counter[str] = Counter()

    def progress(event: str, amount: Any) -> None:
        if isinstance(amount, int):
            seen[event] += amount

    return seen, progress


@pytest.mark.parametrize("engine_name", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_lake_ingest_progress_adds_up_like_a_store_ingest(
    tmp_path: Path, engine_name: str, request: pytest.FixtureRequest
) -> None:
    if engine_name == "spark":
        request.getfixturevalue("spark_session")
    paths = _ingest_inputs(tmp_path)
    want, on_store = _recorder()
    ingest(StoreOptions(tmp_path / "case.duckdb"), paths, IngestOptions(), on_store)
    got, on_lake = _recorder()
    report = ingest_lake(
        EngineOptions(engine_name, str(tmp_path / "lake"), "local[1]"),
        paths,
        IngestOptions(),
        on_lake,
    )
    assert got["files"] == want["files"] >= len(report.files) - 1  # the missing one is not
    assert got["total_bytes"] == want["total_bytes"] > 0
    assert got["file"] == want["file"] == got["files"]
    assert got["records"] == want["records"] == sum(f.rows_read for f in report.files) > 0
    assert got["rejects"] == want["rejects"] > 0
    if want["bytes"] == want["total_bytes"]:
        assert got["bytes"] == got["total_bytes"]
