"""Fixtures shared by the test modules."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from forensics.store import StoreOptions, open_store


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """One writable store per test module, for property tests that clear and refill it."""
    con = open_store(
        StoreOptions(tmp_path_factory.mktemp("scratch") / "case.duckdb"), read_only=False
    )
    yield con
    con.close()


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    """A CLI runner under umask 022 (the one before is restored after the test)."""
    old = os.umask(0o022)
    yield CliRunner()
    os.umask(old)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test; the one before is restored after it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


# --- engines: DuckDB and Spark (SPEC §8) ------------------------------------------------
# `engine` runs a test once per engine: a test (or module, with
# `pytestmark = pytest.mark.usefixtures("engine")`) that asks for it opens its store with
# tests.helpers.engines.open_case. One Spark session (local mode) serves the whole run.
# Without pyspark or Java the Spark runs are skipped, saying why; CI installs both.


def _spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install -e '.[test,spark]')"
    if shutil.which("java") is None:
        return "Java is not installed"
    return None


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    from pyspark.sql import SparkSession

    from tests.helpers.engines import SPARK_TEST_CONF, SPARK_TEST_MASTER

    # The workers run this interpreter, as forensics' own session has them do (an
    # activated virtualenv is not needed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    builder = (
        SparkSession.builder.master(SPARK_TEST_MASTER)
        .appName("forensics-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in SPARK_TEST_CONF.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    from tests.helpers.engines import set_engine

    if request.param == "spark":
        request.getfixturevalue("spark_session")
    set_engine(request.param)
    try:
        yield request.param
    finally:
        set_engine("duckdb")


# --- end of engines ------------------------------------------------------------------------
