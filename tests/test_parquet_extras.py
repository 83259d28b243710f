"""SPEC §2.6: a readable Parquet file never fails for the type of an extra column."""

from __future__ import annotations

import decimal
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.ingest.readers.arrow_types import _plain, _Probe, plan_columns
from tests.helpers.ingest import event, rows, run

GEO = {"ARROW:extension:name": "geoarrow.wkb", "ARROW:extension:metadata": "{}"}


def _events_with(name: str, column: pa.Array, field: pa.Field | None = None) -> pa.Table:
    t = pa.table({k: [v] * len(column) for k, v in event(request_id="r").items()})
    t = t.set_column(
        t.schema.get_field_index("request_id"),
        "request_id",
        pa.array([f"r{i}" for i in range(len(column))]),
    )
    return t.append_column(field or pa.field(name, column.type), column)


EXTRAS = {
    "float16": (pa.array(np.array([1.5, -2.0], dtype=np.float16)), [1.5, -2.0]),
    "decimal256": (
        pa.array(
            [decimal.Decimal("1234567890123456789012345678901234567890.5"), None],
            pa.decimal256(50, 1),
        ),
        ["1234567890123456789012345678901234567890.5", None],
    ),
    "decimal128": (pa.array([decimal.Decimal("1.25"), None], pa.decimal128(5, 2)), [1.25, None]),
    "list_of_float16": (
        pa.array([np.array([0.5], dtype=np.float16), None], pa.list_(pa.float16())),
        [[0.5], None],
    ),
    "map": (pa.array([[("a", 1)], []], pa.map_(pa.string(), pa.int64())), [{"a": 1}, {}]),
    "nested_lists": (pa.array([[[1, 2], []], None]), [[[1, 2], []], None]),
    "dictionary": (pa.array(["x", "y"]).dictionary_encode(), ["x", "y"]),
    "large_string": (pa.array(["x", "y"], pa.large_string()), ["x", "y"]),
    "large_list": (pa.array([[1], [2]], pa.large_list(pa.int64())), [[1], [2]]),
    "struct_with_float16": (
        pa.array([{"h": np.float16(0.25)}, {"h": None}], pa.struct([("h", pa.float16())])),
        [{"h": 0.25}, {"h": None}],
    ),
}


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_extra_column_of_any_type_is_kept_as_json(tmp_path: Path, name: str) -> None:
    column, expected = EXTRAS[name]
    f = tmp_path / "e.parquet"
    pq.write_table(_events_with("x", column), f)
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.status, r.rows_loaded, r.error) == ("loaded", 2, None)
    got = [json.loads(x)["x"] for (x,) in rows(db, "select extra from events order by request_id")]
    assert got == expected


def _strict(text: str) -> object:
    def refuse(token: str) -> object:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("t", [pa.float64(), pa.float32()], ids=str)
def test_nan_and_infinities_of_an_extra_column_are_kept_as_text(
    tmp_path: Path, t: pa.DataType
) -> None:
    # SPEC §2.6, strict JSON everywhere: DuckDB wrote them bare (`{"x":NaN}`) into extra.
    column = pa.array([float("nan"), float("inf"), float("-inf"), 1.5], t)
    f = tmp_path / "e.parquet"
    pq.write_table(_events_with("x", column), f)
    db = tmp_path / "s.duckdb"
    run(db, f)
    got = [_strict(x)["x"] for (x,) in rows(db, "select extra from events order by request_id")]  # type: ignore[index]
    assert got == ["NaN", "Infinity", "-Infinity", 1.5]


def test_geometry_that_duckdb_cannot_parse_is_kept_as_bytes_text(tmp_path: Path) -> None:
    bad_wkb = pa.array([b"\x01\xff\xff\x00\x00", b"\x01\x07\x00\x00\x00\x00\x00\x00\x00"])
    f = tmp_path / "e.parquet"
    pq.write_table(_events_with("geom", bad_wkb, pa.field("geom", pa.binary(), metadata=GEO)), f)
    # Without the conversion DuckDB reads the column as geometry and fails on these bytes.
    with pytest.raises(duckdb.Error):
        _duck_scan(pq.read_table(f))
    db = tmp_path / "s.duckdb"
    r = run(db, f).files[0]
    assert (r.status, r.rows_loaded) == ("loaded", 2)
    notes = rows(db, "select notes from sources")[0][0]
    assert "column geom: extension type geoarrow.wkb read as binary" in notes
    assert all(json.loads(x)["geom"] for (x,) in rows(db, "select extra from events"))


def _duck_scan(t: pa.Table) -> None:
    con = duckdb.connect()
    con.register("t", t)
    con.execute("select to_json(t)::varchar from t").fetchall()


def test_float16_alone_fails_in_duckdb_but_not_in_forensics(tmp_path: Path) -> None:
    column = pa.array(np.array([1.5], dtype=np.float16))
    with pytest.raises(duckdb.Error):
        _duck_scan(pa.table({"x": column}))
    f = tmp_path / "e.parquet"
    pq.write_table(_events_with("x", column), f)
    db = tmp_path / "s.duckdb"
    assert run(db, f).files[0].status == "loaded"
    assert rows(db, "select notes from sources") == [("column x: float16 read as float32",)]


def test_a_plain_file_has_no_notes(tmp_path: Path) -> None:
    f = tmp_path / "e.parquet"
    pq.write_table(_events_with("x", pa.array([1, 2])), f)
    db = tmp_path / "s.duckdb"
    assert run(db, f).files[0].status == "loaded"
    assert rows(db, "select notes from sources") == [(None,)]


def test_a_type_duckdb_cannot_scan_is_left_out_with_the_reason() -> None:
    union = pa.dense_union([pa.field("i", pa.int64())])
    schema = pa.schema([("ok", pa.int64()), ("u", union), ("h", pa.float16())])
    plan = plan_columns(schema)
    assert plan.dropped == ["u"]
    assert any(n.startswith("column u left out: its type dense_union") for n in plan.notes)
    assert "column h: float16 read as float32" in plan.notes
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([1]),
            pa.UnionArray.from_dense(
                pa.array([0], pa.int8()), pa.array([0], pa.int32()), [pa.array([7])], ["i"]
            ),
            pa.array(np.array([0.5], dtype=np.float16)),
        ],
        schema=schema,
    )
    out = plan.apply(batch)
    assert out.schema.names == ["ok", "h"] and out.column(1).type == pa.float32()


PLAIN = [
    pa.int8(),
    pa.uint64(),
    pa.float32(),
    pa.float64(),
    pa.bool_(),
    pa.string(),
    pa.large_string(),
    pa.timestamp("ms"),
    pa.timestamp("us", tz="UTC"),
    pa.timestamp("ns", tz="+00:00"),
    pa.date32(),
    pa.date64(),
]


@pytest.mark.parametrize("t", PLAIN, ids=str)
def test_a_type_taken_as_plain_is_one_duckdb_scans(t: pa.DataType) -> None:
    # The plan skips DuckDB's probe for these: it must agree with the probe.
    f = pa.field("c", t)
    probe = _Probe()
    try:
        assert _plain(f) and probe.scannable(f)
    finally:
        probe.close()


@pytest.mark.parametrize(
    "f",
    [
        pa.field("c", pa.float16()),
        pa.field("c", pa.timestamp("us", tz="America/New_York")),
        pa.field("c", pa.binary(), metadata=GEO),
        pa.field("c", pa.list_(pa.int64())),
    ],
    ids=str,
)
def test_other_types_are_tried_on_duckdb(f: pa.Field) -> None:
    assert not _plain(f)


def test_files_of_one_schema_share_a_plan_and_each_keeps_its_notes(tmp_path: Path) -> None:
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for f, x in zip(files, (1.5, 2.5), strict=True):
        half = _events_with("x", pa.array(np.array([x], dtype=np.float16)))
        pq.write_table(half, f)
    db = tmp_path / "s.duckdb"
    assert [r.status for r in run(db, *files).files] == ["loaded", "loaded"]
    assert (
        rows(db, "select notes from sources order by source_id")
        == [("column x: float16 read as float32",)] * 2
    )
    assert plan_columns(half.schema) is plan_columns(half.schema)


def test_a_schema_differing_only_in_a_column_tag_has_a_plan_of_its_own() -> None:
    tagged = pa.schema([pa.field("g", pa.binary(), metadata=GEO)])
    plain = pa.schema([pa.field("g", pa.binary())])
    assert plan_columns(plain).notes == []
    assert plan_columns(tagged).notes == ["column g: extension type geoarrow.wkb read as binary"]
    assert plan_columns(plain).notes == []


def test_sources_command_shows_the_notes(tmp_path: Path) -> None:
    f = tmp_path / "e.parquet"
    pq.write_table(_events_with("x", pa.array(np.array([1.5], dtype=np.float16))), f)
    db = tmp_path / "s.duckdb"
    run(db, f)
    r = CliRunner().invoke(app, ["--db", str(db), "sources", "--json"])
    assert json.loads(r.stdout)[0]["notes"] == "column x: float16 read as float32"
    r = CliRunner().invoke(app, ["--db", str(db), "sources"], terminal_width=200)
    assert r.exit_code == 0 and "notes" in r.stdout


def test_a_store_from_before_notes_gains_the_column(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    f = tmp_path / "e.parquet"
    pq.write_table(_events_with("x", pa.array([1])), f)
    run(db, f)
    con = duckdb.connect(str(db))
    con.execute("alter table sources drop column notes")
    con.close()
    r = CliRunner().invoke(app, ["--db", str(db), "sources", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["notes"] is None
    g = tmp_path / "g.parquet"
    pq.write_table(_events_with("y", pa.array(np.array([1.5], dtype=np.float16))), g)
    assert run(db, g).files[0].status == "loaded"
    assert rows(db, "select notes from sources order by source_id")[-1][0] is not None
