"""Make any Arrow column something DuckDB can scan, or say why it is left out (SPEC §2.6).

DuckDB 2.0.1 cannot take float16 ("Unsupported Internal Arrow Type e"), decimal256, dense
unions, and reads a binary column tagged `geoarrow.wkb` as geometry, failing on bytes it
cannot parse ("Unsupported geometry flag"). A Parquet file must not fail for an extra column
of such a type: each column is converted to the nearest type DuckDB takes (float16 to
float32, exactly; decimal256 to its decimal text; an extension type to its storage), and a
column that still cannot be scanned is left out, with the reason, for the file's `sources`
row. The plan is made once per schema (files of one export share it) and applied to every
batch; only columns of a type beyond the plain ones are tried on DuckDB.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

# Extension types DuckDB reads as what they mean; any other is read as its storage type.
KNOWN_EXTENSIONS = {"arrow.uuid", "arrow.json", "arrow.bool8"}
_EXT_NAME = b"ARROW:extension:name"
_EXT_META = b"ARROW:extension:metadata"


@dataclass
class ColumnPlan:
    """How a file's columns reach DuckDB: a conversion per column, columns left out."""

    convert: dict[str, Callable[[pa.Array | pa.ChunkedArray], pa.Array | pa.ChunkedArray]] = field(
        default_factory=dict
    )
    fields: dict[str, pa.Field] = field(default_factory=dict)  # the converted columns' fields
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with its columns converted and the left-out ones removed."""
        if not self.convert and not self.dropped:
            return batch
        arrays, fields = [], []
        for f, col in zip(batch.schema, batch.columns, strict=True):
            if f.name in self.dropped:
                continue
            if f.name in self.convert:
                col = self.convert[f.name](col)
                f = self.fields[f.name]
            arrays.append(col)
            fields.append(f)
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _safe_type(t: pa.DataType) -> tuple[pa.DataType, str | None]:
    """The type to cast to (t itself when fine) and what was done, for the notes."""
    if isinstance(t, pa.ExtensionType):
        if t.extension_name in KNOWN_EXTENSIONS:
            return t, None
        inner, _ = _safe_type(t.storage_type)
        return inner, f"extension type {t.extension_name} read as {inner}"
    if pa.types.is_float16(t):
        return pa.float32(), "float16 read as float32"
    if pa.types.is_decimal256(t):
        return pa.string(), "decimal256 kept as text"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        inner, why = _safe_type(t.value_type)
        if why is None:
            return t, None
        if pa.types.is_large_list(t):
            return pa.large_list(t.value_field.with_type(inner)), why
        if pa.types.is_fixed_size_list(t):
            return pa.list_(t.value_field.with_type(inner), t.list_size), why
        return pa.list_(t.value_field.with_type(inner)), why
    if pa.types.is_map(t):
        k, kwhy = _safe_type(t.key_type)
        v, vwhy = _safe_type(t.item_type)
        if kwhy is None and vwhy is None:
            return t, None
        return pa.map_(k, v), kwhy or vwhy
    if pa.types.is_struct(t):
        children = [_safe_type(t.field(i).type) for i in range(t.num_fields)]
        whys = [w for _, w in children if w]
        if not whys:
            return t, None
        return pa.struct([t.field(i).with_type(c) for i, (c, _) in enumerate(children)]), whys[0]
    if pa.types.is_dictionary(t):
        inner, why = _safe_type(t.value_type)
        return (t, None) if why is None else (inner, why)
    return t, None


def _untagged(f: pa.Field) -> tuple[pa.Field, str | None]:
    """The field without extension metadata DuckDB would act on (geometry, say)."""
    meta = f.metadata or {}
    name = meta.get(_EXT_NAME)
    if name is None or name.decode("utf-8", "replace") in KNOWN_EXTENSIONS:
        return f, None
    rest = {k: v for k, v in meta.items() if k not in (_EXT_NAME, _EXT_META)}
    return f.with_metadata(rest or None), (
        f"extension type {name.decode('utf-8', 'replace')} read as {f.type}"
    )


def plan_columns(schema: pa.Schema) -> ColumnPlan:
    """Decide, once per schema, how each column is converted or why it is left out.

    The plan is shared by every file of that schema: callers read it, never change it.
    DuckDB is asked on an in-memory connection of its own (readers hold no store state),
    opened only when a column's type is not a plain one."""
    return _plan_of(schema.serialize().to_pybytes())


@functools.lru_cache(maxsize=256)
def _plan_of(serialised: bytes) -> ColumnPlan:
    """The plan for a schema in Arrow's IPC form (field metadata and all)."""
    probe = _Probe()
    try:
        return _plan(pa.ipc.read_schema(pa.py_buffer(serialised)), probe)
    finally:
        probe.close()


def _plan(schema: pa.Schema, probe: _Probe) -> ColumnPlan:
    plan = ColumnPlan()
    for f in schema:
        target, why = _safe_type(f.type)
        g, tag_why = _untagged(f.with_type(target))
        why = why or tag_why
        if why is None:
            continue
        if target.equals(f.type):
            plan.convert[f.name] = _storage_of
        else:
            plan.convert[f.name] = _caster(target)
        plan.fields[f.name] = g
        plan.notes.append(f"column {f.name}: {why}")
    # What DuckDB still refuses (a type it has no mapping for) is left out.
    for f in schema:
        g = plan.fields.get(f.name, f)
        if not _plain(g) and not probe.scannable(g):
            plan.dropped.append(f.name)
            plan.convert.pop(f.name, None)
            plan.notes = [n for n in plan.notes if not n.startswith(f"column {f.name}:")]
            plan.notes.append(f"column {f.name} left out: its type {f.type} cannot be read")
    # A conversion that pyarrow cannot make is found on an empty column of the type.
    for name, conv in list(plan.convert.items()):
        try:
            conv(pa.schema([schema.field(name)]).empty_table().column(0))
        except (pa.ArrowException, ValueError, TypeError):
            plan.convert.pop(name)
            plan.dropped.append(name)
            plan.notes = [n for n in plan.notes if not n.startswith(f"column {name}:")]
            plan.notes.append(
                f"column {name} left out: its type {schema.field(name).type} cannot be read"
            )
    return plan


def _storage_of(a: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return a.storage if isinstance(a, pa.ExtensionArray) else a


def _caster(target: pa.DataType) -> Callable[[pa.Array | pa.ChunkedArray], pa.Array]:
    def cast(a: pa.Array | pa.ChunkedArray) -> pa.Array:
        a = _deep_storage(a)
        return a.cast(target)

    return cast


def _deep_storage(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    if isinstance(a, pa.ExtensionArray):
        return _deep_storage(a.storage)
    return a


def _plain(f: pa.Field) -> bool:
    """A column DuckDB scans for certain: a plain type, no extension metadata."""
    t = f.type
    if (f.metadata or {}).get(_EXT_NAME):
        return False
    if pa.types.is_timestamp(t):
        return t.tz in (None, "UTC", "+00:00")
    return (
        pa.types.is_integer(t)
        or (pa.types.is_floating(t) and not pa.types.is_float16(t))
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_date(t)
    )


class _Probe:
    """An in-memory DuckDB connection, opened on the first column to try."""

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def scannable(self, f: pa.Field) -> bool:
        """Whether DuckDB can scan a column of this field (tried on an empty table)."""
        try:
            table = pa.schema([f]).empty_table()
        except pa.ArrowException:
            return False  # not even an empty column of it can be made
        if self._con is None:
            self._con = duckdb.connect()
        try:
            self._con.register("__type_probe", table)
            try:
                self._con.execute("select to_json(p)::varchar from __type_probe p").fetchall()
            finally:
                self._con.unregister("__type_probe")
        except duckdb.Error:
            return False
        return True

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
