"""The CSV bytes contract and safe file writing of forensics.export (SPEC §6, HOSTILE_INPUTS
"CSV out" and "Output safety"), independent of any store."""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forensics import export
from forensics.errors import OutputError, StoreError
from forensics.export import (
    commit_files,
    encode_row,
    format_time,
    neutralize_formula,
    prepare_out_dir,
    quote_field,
    write_bytes_pending,
    write_csv_pending,
)

UTC = timezone.utc


def reader(columns: dict[str, pa.Array]) -> pa.RecordBatchReader:
    batch = pa.RecordBatch.from_arrays(list(columns.values()), names=list(columns))
    return pa.RecordBatchReader.from_batches(batch.schema, [batch])


def write(tmp_path: Path, columns: dict[str, pa.Array], **kw: Any) -> bytes:
    """Write one CSV through the real writer and commit it; return its bytes."""
    final = tmp_path / "t.csv"
    kw.setdefault("sanitize", True)
    kw.setdefault("excel", False)
    p = write_csv_pending(final, list(columns), reader(columns), **kw)
    commit_files([p], tmp_path)
    return final.read_bytes()


def text_col(*values: str | None) -> pa.Array:
    return pa.array(list(values), pa.string())


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# --- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2024, 2, 16, 9, 41, 7, 250000, UTC), "2024-02-16T09:41:07.25Z"),
        (datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC), "2024-02-16T09:41:07Z"),
        (datetime(2024, 2, 16, 9, 41, 7, 1, UTC), "2024-02-16T09:41:07.000001Z"),
        (datetime(2024, 2, 16, 9, 41, 7, 123456, UTC), "2024-02-16T09:41:07.123456Z"),
        (datetime(2024, 2, 16, 9, 41, 7, 100000, UTC), "2024-02-16T09:41:07.1Z"),
        (
            datetime(2024, 2, 16, 11, 41, 7, tzinfo=timezone(timedelta(hours=2))),
            "2024-02-16T09:41:07Z",
        ),
        (datetime(1999, 12, 31, 23, 59, 59, 999999, UTC), "1999-12-31T23:59:59.999999Z"),
    ],
)
def test_times_are_utc_with_z_and_their_fraction(value: datetime, text: str) -> None:
    assert format_time(value) == text


def test_time_from_epoch_microseconds() -> None:
    micros = datetime(2024, 2, 16, 9, 41, 7, 250000, UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    assert format_time(micros // timedelta(microseconds=1)) == "2024-02-16T09:41:07.25Z"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(datetime(2024, 2, 16))


def test_time_cells_from_arrow_keep_microseconds(tmp_path: Path) -> None:
    ts = pa.array(
        [
            datetime(2024, 2, 16, 9, 41, 7, 250000, UTC),
            None,
            datetime(2024, 2, 16, 9, 41, 7, tzinfo=UTC),
        ],
        pa.timestamp("us", tz="UTC"),
    )
    data = write(tmp_path, {"t": ts})
    assert data == b"t\r\n2024-02-16T09:41:07.25Z\r\n\r\n2024-02-16T09:41:07Z\r\n"


# --- formula injection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://evil.example","x")',
        "+1 555 0100",
        "-x",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "=",
        "-",
    ],
)
def test_formula_cells_get_a_quote_prefix(text: str) -> None:
    assert neutralize_formula(text) == "'" + text


@pytest.mark.parametrize("text", ["", "x", " =x", "'=x", "a=b", "1+1", "x-", "\u2212x", "\nx"])
def test_other_cells_are_left_alone(text: str) -> None:
    assert neutralize_formula(text) == text


def test_sanitising_touches_text_cells_only(tmp_path: Path) -> None:
    data = write(
        tmp_path,
        {
            "name": text_col("=1+2", "-x", "ok", None),
            "n": pa.array([-5, 0, 7, None], pa.int64()),
        },
    )
    assert data == b"name,n\r\n'=1+2,-5\r\n'-x,0\r\nok,7\r\n,\r\n"


def test_no_sanitize_writes_text_cells_as_they_are(tmp_path: Path) -> None:
    data = write(tmp_path, {"name": text_col("=1+2", "@x", "\tx")}, sanitize=False)
    assert data == b"name\r\n=1+2\r\n@x\r\n\tx\r\n"


def test_leading_carriage_return_is_prefixed_and_quoted(tmp_path: Path) -> None:
    data = write(tmp_path, {"name": text_col("\rcmd")})
    assert data == b'name\r\n"\'\rcmd"\r\n'
    assert parse(data)[1] == ["'\rcmd"]


# --- RFC 4180 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("plain", "plain"),
        ("a,b", '"a,b"'),
        ('say "hi"', '"say ""hi"""'),
        ("two\nlines", '"two\nlines"'),
        ("crlf\r\nin", '"crlf\r\nin"'),
        ("", ""),
        (" spaced ", " spaced "),
    ],
)
def test_fields_are_quoted_per_rfc_4180(text: str, field: str) -> None:
    assert quote_field(text) == field


def test_rows_end_in_crlf() -> None:
    assert encode_row(["a", "b,c", ""]) == b'a,"b,c",\r\n'


def test_embedded_separators_round_trip_as_one_row(tmp_path: Path) -> None:
    nasty = ['Smith, "Al"', "line1\nline2", "cr\rlf\r\n", '"', ",", "x"]
    data = write(tmp_path, {"name": text_col(*nasty), "k": pa.array(range(6), pa.int64())})
    rows = parse(data)
    assert rows[0] == ["name", "k"]
    assert rows[1:] == [[v, str(i)] for i, v in enumerate(nasty)]


@pytest.mark.parametrize(
    "name",
    [
        "محمد عبد الله",  # Arabic (right-to-left)
        "דוד כהן",  # Hebrew
        "张伟",  # CJK
        "山田 太郎",
        "🦊 👩\u200d👩\u200d👧",  # emoji, ZWJ sequence
        "Zoe\u0308 Ame\u0301lie",  # combining marks (not normalised)
        "\u202eevil\u202c",  # bidi override: kept as data
        "\x00nul",  # a NUL byte in a text field
    ],
)
def test_names_in_any_script_are_preserved_byte_for_byte(tmp_path: Path, name: str) -> None:
    data = write(tmp_path, {"name": text_col(name)})
    assert data == b"name\r\n" + name.encode("utf-8") + b"\r\n"


def test_excel_mode_only_adds_a_bom(tmp_path: Path) -> None:
    plain = write(tmp_path, {"name": text_col("é")})
    with_bom = write(tmp_path, {"name": text_col("é")}, excel=True)
    assert with_bom == export.BOM + plain


def test_header_comes_from_the_schema_even_with_no_rows(tmp_path: Path) -> None:
    schema = pa.schema([("a", pa.string()), ("b", pa.int64())])
    final = tmp_path / "t.csv"
    p = write_csv_pending(
        final,
        ["a", "b"],
        pa.RecordBatchReader.from_batches(schema, []),
        sanitize=True,
        excel=False,
    )
    commit_files([p], tmp_path)
    assert final.read_bytes() == b"a,b\r\n"
    assert p.rows == 0


def test_columns_other_than_the_contract_are_an_error(tmp_path: Path) -> None:
    schema = pa.schema([("a", pa.string()), ("c", pa.int64())])
    with pytest.raises(StoreError, match="expected"):
        write_csv_pending(
            tmp_path / "t.csv",
            ["a", "b"],
            pa.RecordBatchReader.from_batches(schema, []),
            sanitize=True,
            excel=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_column_type_without_a_rule_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no CSV rule"):
        write(tmp_path, {"x": pa.array([1.5], pa.float64())})
    assert list(tmp_path.iterdir()) == []


def test_rows_and_hash_describe_the_bytes_written(tmp_path: Path) -> None:
    import hashlib

    final = tmp_path / "t.csv"
    p = write_csv_pending(
        final, ["a"], reader({"a": text_col("x", "y")}), sanitize=True, excel=True
    )
    commit_files([p], tmp_path)
    assert p.rows == 2
    assert p.sha256 == hashlib.sha256(final.read_bytes()).hexdigest()
    assert p.size_bytes == final.stat().st_size


# --- the output folder and atomic private files -----------------------------------------------


def test_new_folder_is_0700_and_files_0600_under_umask_022(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    out = tmp_path / "a" / "b"
    assert prepare_out_dir(out, force=False) is True
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    p = write_bytes_pending(out / "f.json", b"{}\n")
    commit_files([p], out)
    assert stat.S_IMODE((out / "f.json").stat().st_mode) == 0o600


def test_new_folder_is_0700_even_under_a_permissive_umask(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0)
    out = tmp_path / "out"
    prepare_out_dir(out, force=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def test_existing_non_empty_folder_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".hidden").write_text("x")
    with pytest.raises(OutputError, match="not empty") as e:
        prepare_out_dir(out, force=False)
    assert "--force" in e.value.one_line()
    assert prepare_out_dir(out, force=True) is False
    assert (out / ".hidden").read_text() == "x"


def test_existing_empty_folder_is_accepted(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert prepare_out_dir(out, force=False) is False


def test_out_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        prepare_out_dir(out, force=True)
    assert out.read_text() == "x"


def test_a_folder_in_place_of_a_list_is_refused_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "owners.csv").mkdir(parents=True)
    with pytest.raises(OutputError, match="is a folder"):
        prepare_out_dir(out, force=True)


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.RecordBatch.from_arrays([text_col("x")], names=["a"])
        raise KeyboardInterrupt

    schema = pa.schema([("a", pa.string())])
    with pytest.raises(KeyboardInterrupt):
        write_csv_pending(
            tmp_path / "t.csv",
            ["a"],
            pa.RecordBatchReader.from_batches(schema, batches()),
            sanitize=True,
            excel=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_nothing_has_its_final_name_before_commit(tmp_path: Path) -> None:
    p = write_bytes_pending(tmp_path / "f.csv", b"a\r\n", rows=0)
    assert not (tmp_path / "f.csv").exists()
    assert p.tmp.parent == tmp_path and p.tmp.name.startswith(".f.csv.")
    commit_files([p], tmp_path)
    assert (tmp_path / "f.csv").read_bytes() == b"a\r\n"
    assert [q.name for q in tmp_path.iterdir()] == ["f.csv"]


def test_commit_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / "f.csv").symlink_to(target)
    commit_files([write_bytes_pending(out / "f.csv", b"new")], out)
    assert target.read_text() == "keep"
    assert not (out / "f.csv").is_symlink()
    assert (out / "f.csv").read_bytes() == b"new"


# --- the vectorised writer equals the per-cell reference --------------------------------------

_MIN_US = (datetime(1990, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
    microseconds=1
)
_MAX_US = (datetime(2100, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
    microseconds=1
) - 1
# Text that starts with a trigger or holds a separator often; otherwise anything Unicode.
_TEXT = st.one_of(
    st.text(),
    st.tuples(
        st.sampled_from(["=", "+", "-", "@", "\t", "\r", "'", " ", ""]),
        st.text(alphabet=st.sampled_from(list(',"\r\n=+-@\t ax\u05d3\u4e2d'))),
    ).map("".join),
)
_US = st.one_of(
    st.integers(_MIN_US, _MAX_US),
    st.integers(_MIN_US // 1_000_000, _MAX_US // 1_000_000).map(lambda s: s * 1_000_000),
    st.integers(_MIN_US // 1000, _MAX_US // 1000).map(lambda ms: ms * 1000),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.none() | _TEXT, st.none() | st.integers(-(2**63), 2**63 - 1), st.none() | _US),
        max_size=12,
    ),
    sanitize=st.booleans(),
)
def test_arrow_rendering_equals_the_per_cell_reference(
    rows: list[tuple[str | None, int | None, int | None]], sanitize: bool
) -> None:
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array([r[0] for r in rows], pa.string()),
            pa.array([r[1] for r in rows], pa.int64()),
            pa.array([r[2] for r in rows], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        ],
        names=["t", "n", "ts"],
    )
    expected = b"".join(
        encode_row(
            [
                "" if t is None else neutralize_formula(t) if sanitize else t,
                "" if n is None else str(n),
                "" if us is None else format_time(us),
            ]
        )
        for t, n, us in rows
    )
    assert export.render_batch(batch, sanitize=sanitize) == expected


def test_times_in_another_arrow_zone_are_written_in_utc(tmp_path: Path) -> None:
    ts = pa.array([datetime(2024, 2, 16, 9, 41, 7, 5000, UTC)], pa.timestamp("us", tz="UTC"))
    data = write(tmp_path, {"t": ts.cast(pa.timestamp("us", tz="America/New_York"))})
    assert data == b"t\r\n2024-02-16T09:41:07.005Z\r\n"
