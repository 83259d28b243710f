"""SQL pieces for a staged record's own columns (forensics.ingest.stage): its fields as one
JSON object (`rejects.raw`, `events.extra`), the field whose name is a canonical one's but
for case or blanks (named in a reject), a JSON id written `-0`, and columns whose names
differ only in case (one name to DuckDB).
"""

from __future__ import annotations

import json
import re

from forensics.sqltext import ident, literal


def struct_json(
    columns: list[tuple[str, str]],
    floats: frozenset[str] = frozenset(),
    decimals: frozenset[str] = frozenset(),
) -> str:
    """SQL for a JSON object of these (key, column) pairs. NaN and infinities of the
    `floats` columns, which JSON cannot hold (DuckDB writes them bare), become the texts
    "NaN", "Infinity" and "-Infinity" (SPEC §2.6: strict JSON everywhere). Keys that differ
    only in case (`Note` and `note`: one name to a DuckDB struct) are written by
    json_object. A `decimals` column keeps its exact decimal text (`1.50`): DuckDB writes a
    decimal, and parses any JSON value put in an object, as a double (`1.5`, `200.0`), so
    with one the object is joined as text."""

    def value(c: str) -> str:
        q = ident(c)
        if c not in floats:
            return q
        return (
            f"""case when isnan({q}) then '"NaN"'::json when isinf({q}) then """
            f"""case when {q} > 0 then '"Infinity"' else '"-Infinity"' end::json """
            f"else to_json({q}) end"
        )

    if any(c in decimals for _, c in columns):
        members = ", ',', ".join(
            literal(json.dumps(k, ensure_ascii=False) + ":")
            + ", coalesce("
            + (f"{ident(c)}::varchar" if c in decimals else f"to_json({value(c)})::varchar")
            + ", 'null')"
            for k, c in columns
        )
        return f"concat('{{', {members}, '}}')::json"
    if len({k.lower() for k, _ in columns}) < len(columns):
        return "json_object(" + ", ".join(f"{literal(k)}, {value(c)}" for k, c in columns) + ")"
    return (
        "to_json(struct_pack(" + ", ".join(f"{ident(k)} := {value(c)}" for k, c in columns) + "))"
    )


def is_alike(key: str, name: str) -> bool:
    """Whether a record's `key` is canonical field `name` but for case or blanks around it
    (`User_Id`, a spreadsheet's `user_id `): a reject for the missing field names it."""
    return key != name and key.strip().lower() == name.lower()


def shown(key: str) -> str:
    """`key` as a reject reason shows it: quoted when blanks around it would not show."""
    return key if key == key.strip() else json.dumps(key, ensure_ascii=False)


def minus_zero_in(spec: list[str]) -> str | None:
    """SQL true when the record writes its top-level member `spec[0]` as the number -0."""
    if len(spec) != 1:
        return None
    pattern = re.escape(json.dumps(spec[0], ensure_ascii=False)) + r"\s*:\s*-0\s*[,}]"
    return f"regexp_matches(raw, {literal(pattern)})"


def column_names(names: list[str], wanted: set[str]) -> list[tuple[str, str]]:
    """(name, column) for a batch's columns. DuckDB's names are case-insensitive: of the
    names that differ only in case, one keeps its name (the one a field is read from, else
    the first), and the others are read under an alias (`__col` and their position, a name
    no column has)."""
    groups: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        groups.setdefault(n.lower(), []).append(i)
    alias = {
        i
        for same in groups.values()
        if len(same) > 1
        for i in same
        if i != next((j for j in same if names[j] in wanted), same[0])
    }
    taken = set(groups) | {"__rec"}

    def free(i: int) -> str:
        name = f"__col{i}"
        while name.lower() in taken:
            name += "_"
        taken.add(name.lower())
        return name

    return [(n, free(i) if i in alias else n) for i, n in enumerate(names)]
