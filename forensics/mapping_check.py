"""Which SQL expressions a map file may hold (`{ sql = "EXPR" }`, SPEC §2.5).

DuckDB parses each expression; it is accepted only when it can do nothing but compute on the
record's own fields (no subquery, table, session, clock or side effect), and is re-printed
from its checked parse tree. `ExpressionChecker.check` raises UsageError naming the map key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from forensics.errors import UsageError, engine_message

RESERVED = "__forensics"  # prefix of the helper columns ingest adds; no source field may use it

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


class ExpressionChecker:
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
