"""`ingest --map FILE.toml`: source fields → canonical fields (SPEC §2.5).

`load_mapping` reads and checks the TOML (one table per kind; each value a field name, a
dotted path, or `{ sql = "EXPR" }`) and raises UsageError naming the bad key. Expressions are
parsed by DuckDB and accepted only when they can do nothing but read the record. `FileMapper`
applies a mapping to one file: it types JSON records for expressions, evaluates expressions
into a temp table, and fails the file (InputError naming the map key) when a mapped field is
in no record or an expression cannot be bound or evaluated.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from forensics.errors import InputError, UsageError, engine_message
from forensics.normalize import CANONICAL, Source
from forensics.sqltext import ident, json_pointer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

RESERVED = "__forensics"  # prefix of the helper columns ingest adds; no source field may use it
MAPPED_TABLE = "forensics_mapped"  # temp table holding one batch's expression values
RECORD_TABLE = "forensics_record"  # temp table holding one JSON batch's typed fields
_REC = f"{RESERVED}_rec"

# Expression node classes that only compute on values (see `_check_expression`).
_ALLOWED_CLASSES = {
    "CONSTANT",
    "COLUMN_REF",
    "FUNCTION",
    "OPERATOR",
    "COMPARISON",
    "CONJUNCTION",
    "CASE",
    "CAST",
    "BETWEEN",
    "LAMBDA",
    "COLLATE",
    "TYPE",
}
# Scalar functions that read the session, the catalog, the clock or the environment: an
# expression must depend on the record alone, so the same file always maps the same way.
_DENIED_FUNCTIONS = {
    "current_setting",
    "getvariable",
    "current_database",
    "current_catalog",
    "current_schema",
    "current_schemas",
    "current_query",
    "current_user",
    "current_role",
    "session_user",
    "user",
    "in_search_path",
    "txid_current",
    "version",
    "now",
    "today",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_localtime",
    "current_localtimestamp",
    "get_current_time",
    "get_current_timestamp",
    "transaction_timestamp",
    "localtime",
    "localtimestamp",
    "ago",
    "json_serialize_sql",
    "json_deserialize_sql",
    "json_serialize_plan",
    "unnest",
    "generate_subscripts",
    "regexp_split_to_table",
    "get_block_size",
    "assert_true",
    "error",
    "pg_sleep",
    "sleep_ms",
}
# System macros that are plain scalar rewrites (others query the catalog or aggregate).
_ALLOWED_MACROS = {
    "if",
    "nullif",
    "split_part",
    "json",
    "date_add",
    "fdiv",
    "days_in_month",
    "array_append",
    "array_pop_back",
    "array_pop_front",
    "array_prepend",
    "array_push_back",
    "array_push_front",
    "array_reverse",
    "array_to_string",
    "array_to_string_comma_default",
    "list_append",
    "list_prepend",
    "list_reverse",
    "map_contains_entry",
    "map_contains_value",
    "md5_number_lower",
    "md5_number_upper",
    "list_any_value",
    "list_approx_count_distinct",
    "list_avg",
    "list_bit_and",
    "list_bit_or",
    "list_bit_xor",
    "list_bool_and",
    "list_bool_or",
    "list_count",
    "list_entropy",
    "list_first",
    "list_histogram",
    "list_kurtosis",
    "list_kurtosis_pop",
    "list_last",
    "list_mad",
    "list_max",
    "list_median",
    "list_min",
    "list_mode",
    "list_product",
    "list_sem",
    "list_skewness",
    "list_stddev_pop",
    "list_stddev_samp",
    "list_string_agg",
    "list_sum",
    "list_var_pop",
    "list_var_samp",
}


@dataclass(frozen=True)
class FieldMap:
    """Where one canonical field comes from: a key path, or a checked DuckDB expression."""

    key: str  # "events.device_id": the map key, for messages
    path: tuple[str, ...] | None = None
    sql: str | None = None  # re-printed by DuckDB from the checked parse tree
    refs: tuple[tuple[str, ...], ...] = ()  # source field paths the expression reads

    @property
    def reads(self) -> tuple[tuple[str, ...], ...]:
        """Every source field path this map key names."""
        return (self.path,) if self.path is not None else self.refs


@dataclass(frozen=True)
class Mapping:
    """A loaded, checked map file."""

    path: Path
    sha256: str
    tables: dict[str, dict[str, FieldMap]] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    # kind -> the member of a wrapped JSON document that holds its records (SPEC §2.5)
    records: dict[str, str] = field(default_factory=dict)

    def field(self, kind: str, name: str) -> FieldMap | None:
        """The map of canonical field `name` of `kind`; None when unmapped."""
        return self.tables.get(kind, {}).get(name)

    def source_path(self, kind: str, name: str) -> list[str] | None:
        """Key path of the source field for `name`: [name] when unmapped, None for `sql`."""
        fm = self.field(kind, name)
        if fm is None:
            return [name]
        return list(fm.path) if fm.path is not None else None

    def expressions(self, kind: str) -> dict[str, FieldMap]:
        return {n: fm for n, fm in self.tables.get(kind, {}).items() if fm.sql is not None}

    def file_mapper(self, kind: str) -> FileMapper | None:
        """A FileMapper for one file of `kind`; None when the map has no [kind] table."""
        return FileMapper(self, kind) if self.tables.get(kind) else None

    def canonical_names(
        self, source_fields: Iterable[str], kind: str, *, constants: bool = True
    ) -> set[str]:
        """Canonical fields of `kind` that records with these top-level fields would have.

        An expression counts when every field it reads is there; one that reads no field
        (a constant) counts only with `constants`.
        """
        fields = set(source_fields)
        names: set[str] = set()
        for name in CANONICAL[kind]:
            fm = self.field(kind, name)
            if fm is None:
                have = name in fields
            elif not fm.reads:
                have = constants
            else:
                have = all(r[0] in fields for r in fm.reads)
            if have:
                names.add(name)
        return names


# --------------------------------------------------------------------------- loading


def load_mapping(path: Path) -> Mapping:
    """Read and check a map file. Raises UsageError naming the file and the bad key."""
    what = f"--map {path}"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(what, f"cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(what, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(what, f"not valid TOML ({e})") from None
    tables: dict[str, dict[str, FieldMap]] = {}
    actions: dict[str, str] = {}
    records: dict[str, str] = {}
    checker: _ExpressionChecker | None = None
    for kind, table in doc.items():
        if kind not in CANONICAL:
            raise UsageError(
                what, f"unknown table [{kind}]; the tables are [events], [grants] and [accounts]"
            )
        if not isinstance(table, dict):
            raise UsageError(what, f"{kind} must be a table ([{kind}])")
        fields: dict[str, FieldMap] = {}
        for name, value in table.items():
            key = f"{kind}.{name}"
            if name == "actions" and kind == "events":
                actions = _actions(what, value)
                continue
            if name == "records":
                if not isinstance(value, str) or not value:
                    raise UsageError(
                        what,
                        f"{key}: must be the name of the member that "
                        'holds the records (e.g. records = "Records")',
                    )
                records[kind] = value
                continue
            if name not in CANONICAL[kind]:
                raise UsageError(
                    what,
                    f"{key}: not a canonical field of {kind} (they are "
                    f"{', '.join(CANONICAL[kind])})",
                )
            if isinstance(value, str):
                fields[name] = FieldMap(key, path=_split_path(what, key, value))
            elif (
                isinstance(value, dict) and set(value) == {"sql"} and isinstance(value["sql"], str)
            ):
                if checker is None:
                    checker = _ExpressionChecker()
                sql, refs = checker.check(what, key, value["sql"])
                fields[name] = FieldMap(key, sql=sql, refs=refs)
            else:
                raise UsageError(
                    what, f'{key}: must be a field name, a dotted path, or {{ sql = "EXPRESSION" }}'
                )
        tables[kind] = fields
    if checker is not None:
        checker.close()
    return Mapping(Path(path), hashlib.sha256(data).hexdigest(), tables, actions, records)


def _split_path(what: str, key: str, value: str) -> tuple[str, ...]:
    parts = tuple(value.split("."))
    if not value or any(p == "" for p in parts):
        raise UsageError(what, f"{key}: {value!r} is not a field name or dotted path")
    if parts[0].startswith(RESERVED):
        raise UsageError(what, f"{key}: field names starting with {RESERVED} are reserved")
    return parts


def _actions(what: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UsageError(what, "events.actions must be a table ([events.actions])")
    out: dict[str, str] = {}
    for source, canonical in value.items():
        if not isinstance(canonical, str) or not canonical.strip():
            raise UsageError(what, f"events.actions.{source}: must be a non-empty action name")
        out[source] = canonical
    return out


class _ExpressionChecker:
    """Parses expressions with DuckDB and accepts only pure reads of the record."""

    def __init__(self) -> None:
        self.con = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
            },
        )
        rows = self.con.execute(
            "select function_name from duckdb_functions() where function_type = 'scalar' "
            "group by function_name "
            "having not bool_or(coalesce(has_side_effects, false) or stability = 'VOLATILE')"
        ).fetchall()
        self.functions = {str(r[0]) for r in rows} | _ALLOWED_MACROS
        self.functions -= _DENIED_FUNCTIONS
        self.functions = {f for f in self.functions if not f.startswith("__")}

    def close(self) -> None:
        self.con.close()

    def _parse(self, text: str) -> dict[str, Any]:
        row = self.con.execute("select json_serialize_sql($s)", {"s": text}).fetchall()
        return dict(json.loads(row[0][0])) if row else {"error": True}

    def check(self, what: str, key: str, expr: str) -> tuple[str, tuple[tuple[str, ...], ...]]:
        """The expression re-printed from its checked parse tree, and the fields it reads."""
        if not expr.strip():
            raise UsageError(what, f"{key}: the sql expression is empty")
        tree = self._parse("SELECT " + expr)
        node = self._one_expression(what, key, tree)
        refs = _check_expression(what, key, node, self.functions)
        # Run exactly what was checked: DuckDB prints the parse tree back as SQL, and the
        # print must parse to the same tree.
        row = self.con.execute(
            "select json_deserialize_sql(json_serialize_sql($s))", {"s": "SELECT " + expr}
        ).fetchall()
        printed = str(row[0][0]) if row else ""
        if not printed.startswith("SELECT "):
            raise UsageError(what, f"{key}: the sql expression cannot be checked")
        sql = printed[len("SELECT ") :]
        again = self._one_expression(what, key, self._parse("SELECT " + sql))
        if _strip_locations(again) != _strip_locations(node):
            raise UsageError(what, f"{key}: the sql expression cannot be checked")
        return sql, refs

    @staticmethod
    def _one_expression(what: str, key: str, tree: dict[str, Any]) -> dict[str, Any]:
        if tree.get("error"):
            why = engine_message(str(tree.get("error_message", ""))) or "not a valid expression"
            if "Only SELECT" in why:
                why = "not a single expression"
            raise UsageError(what, f"{key}: the sql expression does not parse ({why})")
        statements = tree.get("statements") or []
        node = statements[0].get("node", {}) if len(statements) == 1 else {}
        if (
            len(statements) != 1
            or node.get("type") != "SELECT_NODE"
            or node.get("from_table", {}).get("type") != "EMPTY"
            or node.get("where_clause") is not None
            or node.get("group_expressions")
            or node.get("having") is not None
            or node.get("qualify") is not None
            or node.get("sample") is not None
            or node.get("modifiers")
            or node.get("cte_map", {}).get("map")
            or len(node.get("select_list", [])) != 1
        ):
            raise UsageError(
                what,
                f"{key}: must be a single expression over the record's "
                "fields (no FROM, subquery, clause or statement)",
            )
        expr = node["select_list"][0]
        if not isinstance(expr, dict):
            raise UsageError(what, f"{key}: not a valid expression")
        if expr.get("alias"):
            raise UsageError(what, f"{key}: the expression must not have an alias (AS)")
        return expr


def _strip_locations(o: Any) -> Any:
    if isinstance(o, dict):
        return {
            k: _strip_locations(v)
            for k, v in o.items()
            if k not in ("query_location", "query_location_length")
        }
    if isinstance(o, list):
        return [_strip_locations(v) for v in o]
    return o


def _check_expression(
    what: str, key: str, node: dict[str, Any], functions: set[str]
) -> tuple[tuple[str, ...], ...]:
    """Reject anything but scalar computation; return the field paths the expression reads."""
    walk = _ExpressionWalk(what, key, functions)
    walk.visit(node, frozenset())
    return tuple(dict.fromkeys(walk.refs))


_DISALLOWED_KINDS = {
    "SUBQUERY": "a subquery",
    "WINDOW": "a window function",
    "STAR": "* or COLUMNS()",
    "PARAMETER": "a parameter",
    "POSITIONAL_REFERENCE": "a positional reference",
}


@dataclass
class _ExpressionWalk:
    """One walk over a parsed expression: checks each node, collects the fields it reads."""

    what: str
    key: str
    functions: set[str]
    refs: list[tuple[str, ...]] = field(default_factory=list)

    def bad(self, why: str) -> UsageError:
        return UsageError(
            self.what, f"{self.key}: {why}; an expression may only compute on the record's fields"
        )

    def visit(self, o: Any, scope: frozenset[str]) -> None:
        """Check `o` and everything under it; `scope` holds the lambda parameters in force."""
        if isinstance(o, list):
            for v in o:
                self.visit(v, scope)
            return
        if not isinstance(o, dict):
            return
        cls = o.get("class")
        if cls is None:
            for v in o.values():
                self.visit(v, scope)
            return
        if cls not in _ALLOWED_CLASSES:
            raise self.bad(f"{_DISALLOWED_KINDS.get(str(cls), str(cls).lower())} is not allowed")
        if cls == "COLUMN_REF":
            self.visit_column(o, scope)
        elif cls == "FUNCTION":
            self.visit_function(o, scope)
        elif cls == "LAMBDA":
            self.visit_lambda(o, scope)
        else:
            for k, v in o.items():
                if k not in ("class", "type"):
                    self.visit(v, scope)

    def visit_column(self, o: dict[str, Any], scope: frozenset[str]) -> None:
        names = tuple(str(n) for n in o.get("column_names", []))
        if not names:
            raise self.bad("an empty column reference")
        if names[0] in scope:
            return
        if names[0].startswith(RESERVED):
            raise self.bad(f"names starting with {RESERVED} are reserved")
        self.refs.append(names)

    def visit_function(self, o: dict[str, Any], scope: frozenset[str]) -> None:
        name = str(o.get("function_name", ""))
        if o.get("schema") or o.get("catalog"):
            raise self.bad(f"a qualified function name ({name})")
        if (
            o.get("filter") is not None
            or o.get("distinct")
            or (o.get("order_bys") or {}).get("orders")
        ):
            raise self.bad(f"{name}() is an aggregate")
        if name.lower() not in self.functions:
            raise self.bad(
                f"the function {name}() is not allowed (only scalar functions of the record are)"
            )
        self.visit(o.get("arguments", []), scope)

    def visit_lambda(self, o: dict[str, Any], scope: frozenset[str]) -> None:
        lhs, body = o.get("lhs"), o.get("expr")
        if (
            o.get("syntax_type") == "SINGLE_ARROW"
            and isinstance(body, dict)
            and body.get("class") == "CONSTANT"
        ):
            # `x -> '$.a'`: the JSON arrow, not a lambda; x is a field.
            self.visit(lhs, scope)
            self.visit(body, scope)
            return
        params = _lambda_params(lhs)
        if params is None:
            raise self.bad("a lambda's parameters must be plain names")
        self.visit(body, scope | params)


def _lambda_params(lhs: Any) -> frozenset[str] | None:
    if not isinstance(lhs, dict):
        return None
    if lhs.get("class") == "COLUMN_REF" and len(lhs.get("column_names", [])) == 1:
        return frozenset([str(lhs["column_names"][0])])
    if lhs.get("class") == "FUNCTION" and lhs.get("function_name") == "row":
        out: set[str] = set()
        for arg in lhs.get("arguments", []):
            sub = _lambda_params(arg.get("expression") if isinstance(arg, dict) else None)
            if sub is None:
                return None
            out |= sub
        return frozenset(out)
    return None


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
            fm.key: fm.reads for fm in mapping.tables.get(kind, {}).values() if fm.reads
        }
        self.seen: set[tuple[str, ...]] = set()
        self.records = 0  # records that could have had the fields (JSON objects, rows)
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
        for paths in self.needed.values():
            for p in paths:
                if p in self.seen or p[0] not in keys:
                    continue
                if len(p) == 1 or _has_path(structures.get(p[0]), p[1:]):
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
                    raise InputError(f"map key {key}", f"no record has the field {'.'.join(p)}")


# --------------------------------------------------------------------------- JSON structures


def _has_path(structure: Any, tail: tuple[str, ...]) -> bool:
    """Whether some record has the path (a digit step goes into an array, as in a JSON
    pointer)."""
    for part in tail:
        if isinstance(structure, list) and part.isdigit() and structure:
            structure = structure[0]
        elif isinstance(structure, dict) and part in structure:
            structure = structure[part]
        else:
            return False
    return True


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
    if not isinstance(structure, dict):
        return _rewrite(structure)
    out: dict[str, Any] = {}
    for head in dict.fromkeys(t[0] for t in tails):
        sub = [t[1:] for t in tails if t[0] == head]
        out[head] = _typed(structure[head], sub) if head in structure else _absent(sub)
    return out


def _absent(tails: list[tuple[str, ...]]) -> Any:
    tails = [t for t in tails if t]
    if not tails:
        return "NULL"  # binds with any type; its values are all missing
    return {
        h: _absent([t[1:] for t in tails if t[0] == h]) for h in dict.fromkeys(t[0] for t in tails)
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
