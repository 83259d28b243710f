"""The JSON stage's SQL text: one parse of each record (`parsed`), the record-level checks
DuckDB's lenient parser leaves to us (shape, duplicate keys, NaN/Infinity and trailing
commas, depth), and the `extra` column written from the extracted members (`json_extra`).
Used by forensics.ingest.stage and forensics.ingest.batch.
"""

from __future__ import annotations

import json
from typing import Any

from forensics.ingest.readers.json_split import MAX_DEPTH
from forensics.sqltext import JSON_SPACE, literal


def parsed(src: str) -> str:
    """One parse of each line of `src`: json_keys fails on malformed JSON (NULL under try)
    and gives [] for any other value; a valid document opening with '{' is an object. JSON
    allows the line's own CR/LF as whitespace; blank lines are not records."""
    return f"""
    select rec, raw, pre_err, t, case when t = 'OBJECT' then k end as k
    from (
        select rec, raw, pre_err, k,
               case when k is null then null
                    when starts_with(raw, '{{') then 'OBJECT'  -- ltrim copies
                    when left(ltrim(raw, {literal(JSON_SPACE)}), 1) = '{{' then 'OBJECT'
                    else 'OTHER' end as t
        from (
            select rec, raw, pre_err,
                   case when pre_err is null then try(json_keys(raw)) end as k
            from {src}
        )
    )
    -- Blank lines are not records. Tested on raw alone: a test of t (null for a blank line)
    -- would have DuckDB compute json_keys a second time, for the filter.
    where regexp_matches(raw, {literal("[^" + JSON_SPACE + "]")})
"""  # noqa: S608 - `src` is a fixed relation name or a subquery built here


# Record-level JSON problems DuckDB's lenient parser lets through (HOSTILE_INPUTS #1, #4):
# duplicate keys, NaN/Infinity and trailing commas (checked outside string literals).
JSON_ERR_SHAPE = (
    "case when pre_err is not null then pre_err "
    "when t is null then 'malformed JSON' "
    "when t <> 'OBJECT' then 'not a JSON object' end"
)
JSON_ERR_DUP = "case when len(k) <> len(list_distinct(k)) then 'duplicate key' end"
# DuckDB 2.0.1 also takes NaN, Inf and Infinity in any case, with a sign, at any depth
# (tests/test_ingest_strict.py lists what it accepts). Outside strings such a token
# follows `:`, `,` or `[`: each test below begins with that byte, which the regex engine
# finds by a fast scan; string literals are stripped only for the few records that match.
_NON_FINITE = "-?(?:[nN][aA]|[iI])"
STANDARD_CANDIDATE = (
    f"(regexp_matches(raw, ':\\s*{_NON_FINITE}') "
    f"or regexp_matches(raw, ',\\s*(?:[\\]}}]|{_NON_FINITE})') "
    f"or (contains(raw, '[') and regexp_matches(raw, '\\[\\s*{_NON_FINITE}')))"
)
STANDARD_CHECK = (
    "regexp_matches(regexp_replace(raw, '\"(?:[^\"\\\\]|\\\\.)*\"', '\"\"', 'g'), "
    "'(?i)nan|inf|,\\s*[\\]}]')"
)
NOT_STANDARD = "not standard JSON (NaN, Infinity or a trailing comma)"
JSON_ERR_STANDARD = f"case when {STANDARD_CANDIDATE} and {STANDARD_CHECK} then '{NOT_STANDARD}' end"
# An array element is also checked at its own top (`NaN` alone) and must be valid JSON.
ELEMENT_ERR = (
    "case when not json_valid(raw) then 'not valid JSON' "
    f"when ({STANDARD_CANDIDATE} or regexp_matches(raw, '^\\s*{_NON_FINITE}')) "
    f"and {STANDARD_CHECK} then '{NOT_STANDARD}' end"
)
# Deeper than MAX_DEPTH (DuckDB parses any depth): more brackets than that, counted
# cheaply, then the exact string-aware depth (fx_json_depth) for those few records.
JSON_ERR_DEEP = (
    f"when strlen(raw) - strlen(replace(replace(raw, '{{', ''), '[', '')) > {MAX_DEPTH} "
    f"and fx_json_depth(raw) > {MAX_DEPTH} then 'nested too deep' "
)


def json_err_shape(maybe_deep: bool) -> str:
    """JSON_ERR_SHAPE, with the depth check for a batch that may hold deep records."""
    return JSON_ERR_SHAPE.replace(
        "when t is null", (JSON_ERR_DEEP if maybe_deep else "") + "when t is null", 1
    )


JSON_ERR = f"coalesce({JSON_ERR_SHAPE}, {JSON_ERR_DUP}, {JSON_ERR_STANDARD})"


def dup_by_count(n_paths: int) -> str:
    """'duplicate key' when a record lists more keys than it has distinct ones.

    `v` holds every top-level key of the file (json_extract gives NULL only for a key the
    record lacks), so the distinct keys are the non-NULL entries; counting them costs far
    less than list_distinct(k) on every record.
    """
    present = " + ".join(f"(v[{i}] is not null)::int" for i in range(1, n_paths + 1)) or "0"
    return f"case when len(k) <> {present} then 'duplicate key' end"


# Up to this many extra members, `extra` is written by one concat (json_extra).
ONE_CONCAT_EXTRAS = 16


def json_extra(values: list[str], names: list[str], params: dict[str, Any]) -> str:
    """SQL for a JSON object of the members `names` whose JSON texts are the SQL `values`
    (NULL: the record lacks the key, and the member is left out; JSON null is kept); NULL
    when it lacks them all. The keys, quoted, are bound into `params`.

    The key and the value as json_extract wrote them are joined without parsing either
    again. With few members, in one concat, each member's separator chosen by whether one
    before it is present (0.049 s for 645,087 records with two extras, against 0.074-0.084 s
    joining member texts with concat_ws); with many, whose separators would cost a test of
    every member before, by concat_ws."""
    if not values:
        return "null::json"
    params.update({f"xk{i}": json.dumps(k) + ":" for i, k in enumerate(names)})
    if len(values) > ONE_CONCAT_EXTRAS:
        members = ", ".join(f"$xk{i} || {v}" for i, v in enumerate(values))
        return f"'{{' || nullif(concat_ws(',', {members}), '') || '}}'"
    params.update({f"xc{i}": "," + json.dumps(k) + ":" for i, k in enumerate(names) if i})
    pieces = [f"case when {values[0]} is null then '' else $xk0 end", f"coalesce({values[0]}, '')"]
    for i, v in enumerate(values[1:], start=1):
        before = f"coalesce({', '.join(values[:i])})"
        pieces.append(
            f"case when {v} is null then '' when {before} is null then $xk{i} else $xc{i} end"
        )
        pieces.append(f"coalesce({v}, '')")
    anything = f"coalesce({', '.join(values)})"
    return (
        f"case when {anything} is null then null else concat('{{', {', '.join(pieces)}, '}}') end"
    )
