"""Fixtures shared by the test modules."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import duckdb
import pytest

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
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test; the one before is restored after it."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)
