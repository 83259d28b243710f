"""One file's use of a mapping (`FileMapper`): which mapped fields its records have, and
the expression values of each batch, evaluated into a temp table that staging joins.

A mapped field that is in no record of the file, or an expression that cannot be bound or
evaluated, fails the file (InputError naming the map key, never a record value).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import duckdb

from forensics.errors import WRAPPED_HINT, InputError, engine_message
from forensics.mapping_check import RESERVED
from forensics.normalize import Source
from forensics.sqltext import ident, json_pointer

if TYPE_CHECKING:
    from forensics.mapping import Mapping

MAPPED_TABLE = "forensics_mapped"  # temp table holding one batch's expression values
RECORD_TABLE = "forensics_record"  # temp table holding one JSON batch's typed fields
_REC = f"{RESERVED}_rec"

# --------------------------------------------------------------------------- one file


def _safe_error(e: BaseException) -> str:
    """An engine error's kind, without its message (which may quote record values)."""
    name = type(e).__name__.replace("Exception", "").replace("Error", "")
    return f"{name} error" if name else "engine error"


def _binder_message(e: BaseException) -> str:
    """A binding error's first line: it names types and functions, never record values."""
    line = re.sub(r"^Binder Error:\s*", "", engine_message(e, limit=10_000))
    line = re.sub(r"\s*Candidate bindings:.*$", "", line)
    return line[:200]


class FileMapper:
    """One file's use of a mapping, for one kind; ingest calls it batch by batch."""

    def __init__(self, mapping: Mapping, kind: str) -> None:
        self.mapping = mapping
        self.kind = kind
        self.exprs = mapping.expressions(kind)
        # Map key → source field paths it names; each must be in at least one record.
        self.needed: dict[str, tuple[tuple[str, ...], ...]] = {
            fm.key: fm.reads
            for fm in mapping.tables.get(kind, {}).values()
            if fm.reads and not fm.optional
        }
        self.seen: set[tuple[str, ...]] = set()
        self.records = 0  # records that could have had the fields (JSON objects, rows)
        self.json_records = 0  # of them, JSON objects
        self.staged = False

    # -- JSON ----------------------------------------------------------------------
    def json_batch(
        self,
        con: duckdb.DuckDBPyConnection,
        keys: set[str],
        table: str,
        where: str,
    ) -> dict[str, Source]:
        """Note which mapped fields this batch has; evaluate the expressions into a temp table.

        `table` holds the batch (rec, raw); `where` selects the readable JSON objects.
        Returns the Sources of the expression-mapped fields (columns of the temp table).
        """
        n = con.execute(f"select count(*) from {table} where {where}").fetchall()  # noqa: S608
        count = int(n[0][0]) if n else 0
        self.records += count
        self.json_records += count
        nested = {p[0] for paths in self.needed.values() for p in paths if len(p) > 1}
        tops = sorted((nested | self._expr_tops()) & keys)
        structures: dict[str, Any] = {}
        if tops and count:
            columns = ", ".join(
                f"json_group_structure(json_extract(raw, $p{i}))" for i in range(len(tops))
            )
            # the pointers are bound, not spliced; table and filter are ingest's own text
            query = f"select {columns} from {table} where {where}"  # noqa: S608
            row = con.execute(
                query, {f"p{i}": json_pointer([k]) for i, k in enumerate(tops)}
            ).fetchall()
            for k, s in zip(tops, row[0] if row else (), strict=False):
                if s is not None:
                    structures[k] = json.loads(s)
        varying: list[tuple[str, ...]] = []
        for paths in self.needed.values():
            for p in paths:
                if p in self.seen or p[0] not in keys:
                    continue
                reach = "yes" if len(p) == 1 else _reach(structures.get(p[0]), p[1:])
                if reach == "yes":
                    self.seen.add(p)
                elif reach == "maybe":
                    varying.append(p)
        for p in varying:
            # A parent whose type differs between records (an object in some, text in
            # others): whether some record has the field is asked record by record.
            found = con.execute(
                f"select count(*) from {table} where {where} and json_exists(raw, $p)",  # noqa: S608
                {"p": json_pointer(list(p))},
            ).fetchall()
            if found and found[0][0]:
                self.seen.add(p)
        if not self.exprs:
            return {}
        typed: list[str] = []
        params: dict[str, Any] = {}
        for i, top in enumerate(sorted(self._expr_tops())):
            tails = [r[1:] for fm in self.exprs.values() for r in fm.refs if r[0] == top]
            structure = _typed(structures[top], tails) if top in structures else _absent(tails)
            params[f"p{i}"] = json_pointer([top])
            params[f"s{i}"] = json.dumps(structure)
            typed.append(f"json_transform(json_extract(raw, $p{i}), $s{i}) as {ident(top)}")
        # Quoted identifiers only; pointers and structures are bound parameters.
        columns = "".join(", " + t for t in typed)
        con.execute(
            f"create or replace temp table {RECORD_TABLE} as "  # noqa: S608
            f"select rec as {_REC}{columns} from {table} where {where}",
            params,
        )
        return self._evaluate(con, f"temp.{RECORD_TABLE}", _REC)

    def _expr_tops(self) -> set[str]:
        return {r[0] for fm in self.exprs.values() for r in fm.refs}

    # -- Parquet -------------------------------------------------------------------
    def parquet_batch(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        columns: list[str],
        rec: str,
    ) -> dict[str, Source]:
        """Check mapped fields against the file's columns; evaluate the expressions."""
        n = con.execute(f"select count(*) from {table}").fetchall()  # noqa: S608
        self.records += int(n[0][0]) if n else 0
        cols = set(columns)
        for key, paths in self.needed.items():
            for p in paths:
                if p[0] not in cols:
                    raise InputError(f"map key {key}", f"the file has no field {'.'.join(p)}")
                # Nested fields of a struct column are checked when the field is bound.
                self.seen.add(p)
        if not self.exprs:
            return {}
        return self._evaluate(con, table, rec)

    # -- both ------------------------------------------------------------------------
    def _evaluate(self, con: duckdb.DuckDBPyConnection, table: str, rec: str) -> dict[str, Source]:
        """Compute each expression over `table` in its own statement, so that a failure names
        its map key; then gather the values in one temp table keyed by record number."""
        sources: dict[str, Source] = {}
        parts: list[str] = []
        for i, (name, fm) in enumerate(self.exprs.items()):
            col = ident(f"{RESERVED}_m_{name}")
            part = f"{MAPPED_TABLE}_{i}"
            try:
                con.execute(
                    f"create or replace temp table {part} as "  # noqa: S608 - checked expression
                    f"select {rec} as {_REC}, ({fm.sql}\n) as {col} "
                    f"from {table} as {RESERVED}_record"
                )
            except (duckdb.BinderException, duckdb.CatalogException, duckdb.ParserException) as e:
                raise InputError(
                    f"map key {fm.key}", f"the expression cannot be bound ({_binder_message(e)})"
                ) from None
            except duckdb.Error as e:
                raise InputError(
                    f"map key {fm.key}",
                    f"the expression failed on a record ({_safe_error(e)}); use try_cast() "
                    "or TRY() to read such values as missing",
                ) from None
            row = con.execute(
                "select data_type from duckdb_columns() where database_name = 'temp' "
                "and table_name = $t and column_index = 2",
                {"t": part},
            ).fetchall()
            typ = str(row[0][0]) if row else "NULL"
            if typ.upper() == "JSON":
                # A per-record JSON value: normalize tells its type from its JSON text.
                sources[name] = Source(f"({col})::varchar", "json")
            else:
                sources[name] = Source(col, "NULL" if typ == '"NULL"' else typ)
            parts.append(part)
        self.staged = True
        cols = ", ".join(
            f"{p}.{ident(f'{RESERVED}_m_{n}')}" for p, n in zip(parts, self.exprs, strict=True)
        )
        joins = "".join(f" join temp.{p} using ({_REC})" for p in parts[1:])
        con.execute(
            f"create or replace temp table {MAPPED_TABLE} as "  # noqa: S608 - fixed names
            f"select {parts[0]}.{_REC}, {cols} from temp.{parts[0]}{joins}"
        )
        for p in parts:
            con.execute(f"drop table temp.{p}")
        return sources

    def join(self, rec: str) -> str:
        """`left join` of the expression values onto a batch whose record number is `rec`."""
        return f" left join temp.{MAPPED_TABLE} on {MAPPED_TABLE}.{_REC} = {rec}"

    def columns(self) -> str:
        """`, col, col` of the expression values, for a select list."""
        return "".join(f", {ident(f'{RESERVED}_m_{n}')}" for n in self.exprs)

    def finish(self, con: duckdb.DuckDBPyConnection) -> None:
        """Fail the file if a mapped field is in no record; drop the batch's temp table."""
        if self.staged:
            con.execute(f"drop table if exists temp.{MAPPED_TABLE}")
            con.execute(f"drop table if exists temp.{RECORD_TABLE}")
        if not self.records:
            return
        for key, paths in self.needed.items():
            for p in paths:
                if p not in self.seen:
                    raise InputError(
                        f"map key {key}",
                        f"no record has the field {'.'.join(p)}",
                        WRAPPED_HINT if self.json_records == 1 else "",
                    )


# --------------------------------------------------------------------------- JSON structures


def _reach(structure: Any, tail: tuple[str, ...]) -> str:
    """Whether some record of a merged structure has the path: "yes", "no", or "maybe"
    when the path reaches a value whose type differs between records ("JSON") before its
    end. A digit step goes into an array, as in a JSON pointer."""
    for part in tail:
        if structure == "JSON":
            return "maybe"
        if isinstance(structure, list) and part.isdigit() and structure:
            structure = structure[0]
        elif isinstance(structure, dict) and part in structure:
            structure = structure[part]
        else:
            return "no"
    return "yes"


def _typed(structure: Any, tails: list[tuple[str, ...]]) -> Any:
    """The json_transform structure an expression sees for one top-level field.

    Kept to the sub-fields the expression reads. A number that is not an integer in every
    record becomes JSON (integer ids are never rounded through a float); a value whose type
    varies between records is JSON, its type decided per record. Sub-fields that no record
    of this batch has are added with the NULL type, so the expression binds (their values
    are missing); a field null in every record keeps the NULL type too.
    """
    if not tails or () in tails:
        return _rewrite(structure)
    if structure == "NULL":  # null in every record of the batch: its sub-fields are missing
        return _absent(tails)
    if structure == "JSON":
        # An object in some records, another type in others: the sub-fields read, as JSON
        # (json_transform gives NULL where the record's value is not an object).
        return _absent(tails, leaf="JSON")
    if not isinstance(structure, dict):
        return _rewrite(structure)
    out: dict[str, Any] = {}
    for head in dict.fromkeys(t[0] for t in tails):
        sub = [t[1:] for t in tails if t[0] == head]
        out[head] = _typed(structure[head], sub) if head in structure else _absent(sub)
    return out


def _absent(tails: list[tuple[str, ...]], leaf: str = "NULL") -> Any:
    """The structure of the sub-fields read, each of type `leaf` (NULL: binds with any type,
    its values all missing)."""
    tails = [t for t in tails if t]
    if not tails:
        return leaf
    return {
        h: _absent([t[1:] for t in tails if t[0] == h], leaf)
        for h in dict.fromkeys(t[0] for t in tails)
    }


def _rewrite(structure: Any) -> Any:
    if isinstance(structure, str):
        return "JSON" if structure == "DOUBLE" else structure
    if isinstance(structure, list):
        return [_rewrite(structure[0])] if structure else ["JSON"]
    if isinstance(structure, dict):
        keys = list(structure)
        if not keys or "" in keys or len({k.lower() for k in keys}) != len(keys):
            return "JSON"  # DuckDB struct field names must be non-empty and case-distinct
        return {k: _rewrite(v) for k, v in structure.items()}
    return "JSON"
