"""Public corpora, each ingested as one folder: every file is stored with its rows
accounted for, or fails alone with a one-line reason; nothing invalid is loaded.

tests/data/jsontestsuite: JSONTestSuite's test_parsing/ (MIT, see its LICENSE): y_ files
must be accepted, n_ files rejected, i_ files either. tests/data/parquet-testing: Apache
parquet-testing's bad_data/ and some data/ files (Apache-2.0, see LICENSE.txt).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from forensics.ingest import FileResult
from forensics.mapping import load_mapping
from tests.helpers.ingest import rows, run

DATA = Path(__file__).parent / "data"
JSON_SUITE = DATA / "jsontestsuite" / "test_parsing"
PARQUET = DATA / "parquet-testing"

# Every JSON object becomes an event (constant canonical fields): what is accepted from a
# file is then exactly what forensics takes for standard JSON objects.
ACCEPT_ALL = """
[events]
ts = { sql = "'2024-02-16T09:00:00Z'" }
action = { sql = "'seen'" }
user_id = { sql = "'u'" }
"""


def _folder(tmp_path: Path, files: list[Path]) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    return folder


def _each_accounted_or_failed_alone(results: list[FileResult], n_files: int) -> None:
    assert len(results) == n_files
    for r in results:
        assert r.status in ("loaded", "failed", "skipped"), r.path
        if r.status == "loaded":
            assert r.rows_read == r.rows_loaded + r.rows_rejected + r.rows_duplicate, r.path
        if r.status == "failed":
            assert r.error and "\n" not in r.error and len(r.error) < 300, r.path


@pytest.fixture(scope="module")
def json_files() -> list[Path]:
    files = sorted(JSON_SUITE.iterdir())
    assert len(files) == 318
    return files


def test_json_suite_with_a_kind_loads_no_invalid_record(
    tmp_path: Path, json_files: list[Path]
) -> None:
    folder = _folder(tmp_path, json_files)
    m = tmp_path / "accept.toml"
    m.write_text(ACCEPT_ALL)
    db = tmp_path / "s.duckdb"
    report = run(db, folder, kind="events", mapping=load_mapping(m))
    _each_accounted_or_failed_alone(report.files, len(json_files))
    by_name = {Path(r.path).name: r for r in report.files}
    accepted_invalid = [
        n for n, r in by_name.items() if n.startswith("n_") and r.rows_loaded + r.rows_duplicate
    ]
    assert accepted_invalid == []
    # A valid document is never failed (one may repeat another's bytes: skipped).
    assert [n for n, r in by_name.items() if n.startswith("y_") and r.status == "failed"] == []
    # The 50,000- and 100,000-deep documents fail alone; the rest of the run is stored.
    assert by_name["n_structure_100000_opening_arrays.json"].status == "failed"
    assert by_name["n_structure_open_array_object.json"].status == "failed"
    assert (
        rows(db, "select count(*) from events")[0][0]
        == sum(r.rows_loaded for r in report.files)
        > 0
    )
    # Stored records are standard JSON objects: an array document's elements, a wrapped
    # document's elements, or a one-line object.
    assert by_name["y_object_simple.json"].rows_read == 0  # {"a":[]}: a wrapped empty array
    assert by_name["y_array_heterogeneous.json"].status == "loaded"


def test_json_suite_without_a_kind_never_aborts(tmp_path: Path, json_files: list[Path]) -> None:
    folder = _folder(tmp_path, json_files)
    db = tmp_path / "s.duckdb"
    report = run(db, folder)
    _each_accounted_or_failed_alone(report.files, len(json_files))
    assert all(r.rows_loaded == 0 for r in report.files)  # no file holds canonical fields


@pytest.mark.parametrize("kind", ["events", None])
def test_parquet_collection_each_file_stored_or_failed_alone(
    tmp_path: Path, kind: str | None
) -> None:
    files = sorted(PARQUET.glob("*/*.parquet"))
    folder = _folder(tmp_path, files)
    report = run(tmp_path / "s.duckdb", folder, **({"kind": kind} if kind else {}))
    _each_accounted_or_failed_alone(report.files, len(files))
    for r in report.files:
        # "Damaged" is what pyarrow cannot read in full with page checksums verified; a
        # file it can read is never failed for a column's type, with --kind.
        try:
            pq.ParquetFile(r.path, page_checksum_verification=True).read()
            readable = True
        except Exception:  # noqa: BLE001 - any error means it cannot be read
            readable = False
        if not readable:
            assert r.status == "failed", r.path
        elif kind:
            assert r.status == "loaded", (r.path, r.error)
