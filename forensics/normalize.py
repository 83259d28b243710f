"""SPEC §2.4's value rules as SQL: one expression per canonical field, for any source type.

A source column is either a JSON value (per-record type, from NDJSON/JSON arrays) or a typed
column (Parquet/Arrow). For each canonical field the builder returns a value expression and a
`bad` expression (the value is present but unreadable); `row_checks` turns them into the
first reason a record is rejected. Nothing here is clamped or guessed: a value that does not
follow §2.4 rejects its record.
"""

from __future__ import annotations

from dataclasses import dataclass

from forensics.sqltext import BLANK_CHARS, code_in, literal

# Canonical fields per kind, in the order their problems are reported.
CANONICAL: dict[str, tuple[str, ...]] = {
    "events": ("ts", "action", "user_id", "device_id", "event_id", "request_id", "status"),
    "grants": ("device_id", "user_id", "role", "valid_from", "valid_to"),
    "accounts": ("user_id", "email", "name", "locale", "country"),
}
TIME_FIELDS = {"ts", "valid_from", "valid_to"}
REQUIRED: dict[str, tuple[str, ...]] = {
    "events": ("ts", "action", "user_id"),
    "grants": ("device_id", "user_id"),
    "accounts": ("user_id",),
}
ANALYSED_ACTIONS = ("thumbnail_delivered", "thumbnail_tapped", "video_played")

# 1990-01-01T00:00:00Z and 2100-01-01T00:00:00Z in microseconds since the epoch.
MIN_US = 631_152_000_000_000
MAX_US = 4_102_444_800_000_000

_TS_RE = (
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$"  # ±HH:MM, ±HHMM or ±HH (SPEC §2.6)
)

# Temp macros, created once per connection. Each takes a typed input and returns NULL when
# the value cannot be read; callers decide whether NULL means "missing" or "invalid".
MACROS = f"""
create or replace temp macro fx_text(s) as
    -- Blank means empty or whitespace only; only a string opening with whitespace (or empty:
    -- ascii('') = 0) is trimmed. Nested CASE, not OR/AND: DuckDB then runs trim() only on
    -- the rows selected (3x faster on ids than the flat condition).
    case when {code_in("ascii(s)", chr(0) + BLANK_CHARS)}
         then case when trim(s, {literal(BLANK_CHARS)}) = '' then null else s end
         else s end;
-- The offset's minutes: none written (±HH) is 0.
create or replace temp macro fx_ts_om(r) as
    case when r.om = '' then 0 else r.om::bigint end;
-- A local time in zone tz as µs since the epoch; NULL for one the zone skips (the spring
-- gap: 02:30 on 2024-03-31 in Europe/Berlin never happened), which is rejected, not moved.
create or replace temp macro fx_local_us(l, tz) as
    case when timezone(tz, timezone(tz, l)) = l then epoch_us(timezone(tz, l)) end;
create or replace temp macro fx_ts_parts(r, tz) as
    case
        when r.y = '' then null
        when try_cast(r.y || '-' || r.mo || '-' || r.d as date) is null then null
        when r.h::int > 23 or r.mi::int > 59 or (r.s <> '' and r.s::int > 59) then null
        when r.sg <> '' and (fx_ts_om(r) > 59 or r.oh::int * 60 + fx_ts_om(r) > 1080) then null
        when r.sg = '' and r.z = '' and tz is not null then fx_local_us(make_timestamp(
            epoch_us(try_cast(r.y || '-' || r.mo || '-' || r.d as date)::timestamp)
            + r.h::bigint * 3600000000 + r.mi::bigint * 60000000
            + (case when r.s = '' then 0 else r.s::bigint end) * 1000000
            + (case when r.f = '' then 0 else rpad(left(r.f, 6), 6, '0')::bigint end)), tz)
        else epoch_us(try_cast(r.y || '-' || r.mo || '-' || r.d as date)::timestamp)
            + r.h::bigint * 3600000000 + r.mi::bigint * 60000000
            + (case when r.s = '' then 0 else r.s::bigint end) * 1000000
            + (case when r.f = '' then 0 else rpad(left(r.f, 6), 6, '0')::bigint end)
            - (case r.sg when '+' then 1 when '-' then -1 else 0 end)
              * (case when r.sg = '' then 0 else r.oh::bigint * 60 + fx_ts_om(r) end)
              * 60000000
    end;
create or replace temp macro fx_ts_split(s) as
    regexp_extract(s, {literal(_TS_RE)},
                   ['y', 'mo', 'd', 'h', 'mi', 's', 'f', 'z', 'sg', 'oh', 'om']);
create or replace temp macro fx_ts_int(n) as
    case when abs(n) < 100000000000 then n * 1000000
         when abs(n) < 100000000000000 then n * 1000
         else n end;
-- A number beyond BIGINT microseconds is NULL (rejected as invalid), never a failed cast.
create or replace temp macro fx_ts_dec(x) as
    case when abs(x) < 100000000000 then floor(x * 1000000)::bigint
         when abs(x) < 100000000000000 then floor(x * 1000)::bigint
         else try_cast(floor(x) as bigint) end;
create or replace temp macro fx_status_str(s) as
    case when regexp_matches(s, '^[0-9]+$') then try_cast(s as integer) end;
create or replace temp macro fx_us_ok(us) as (us >= {MIN_US} and us < {MAX_US});
create or replace temp macro fx_us_ts(us) as
    case when us >= {MIN_US} and us < {MAX_US} then timezone('UTC', make_timestamp(us)) end;
"""


@dataclass(frozen=True)
class Source:
    """Where a canonical field's value comes from: an SQL expression and its type.

    `type` is "json" for a JSON value whose type varies per record (`expr` is then its JSON
    text as VARCHAR, e.g. `"abc"`, `12`, `null`), "missing" when the source has no such
    field, else the DuckDB type name of a typed column.
    """

    expr: str
    type: str
    # For a JSON id: SQL true when the record wrote the number as -0, which the JSON
    # parser gives as 0 (two texts, two ids: SPEC §2.4's decimal text).
    minus_zero: str | None = None


VALUE = "__VALUE__"  # stands for the field's computed value column in `type_bad`


@dataclass(frozen=True)
class Field:
    """A canonical field's value (SQL), whether the source has it, and when it is invalid.

    `type_bad` is SQL for "present but of an unusable type"; with `null_bad`, a present
    value whose conversion gives NULL is invalid too (a timestamp that does not parse).
    """

    value: str
    present: str
    type_bad: str = "false"
    null_bad: bool = False
    pre: tuple[tuple[str, str], ...] = ()  # (alias, expr) computed one level below `value`


_INT_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "HUGEINT",
    "UHUGEINT",
)
_FLOAT_TYPES = ("FLOAT", "DOUBLE")


def _category(t: str) -> str:
    t = t.upper()
    if t in ("VARCHAR", "JSON"):
        return "text" if t == "VARCHAR" else "json"
    if t in _INT_TYPES or (t.startswith("DECIMAL(") and t.replace(" ", "").endswith(",0)")):
        return "int"  # DECIMAL(p,0): a warehouse's NUMBER(38,0) id, written to Parquet
    if t in _FLOAT_TYPES or t.startswith("DECIMAL"):
        return "float"
    if t in ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "DATETIME"):
        return "naive"
    if t == "TIMESTAMP_NS":
        return "naive_ns"
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return "tz"
    if t == "TIMESTAMPTZ_NS":  # Arrow's timestamp('ns', tz=...)
        return "tz_ns"
    if t == "NULL":
        return "null"
    return "other"


def _inside(j: str) -> str:
    """JSON string `j` without its quotes. substr, not the slice j[2:-2]: 3x faster."""
    return f"substr({j}, 2, length({j}) - 2)"


def _unescape(j: str) -> str:
    """The text of JSON string `j`: its inside, unless it holds escapes (then the parser)."""
    j = f"({j})"
    return f"case when contains({j}, '\\') then json_extract_string({j}, '$') else {_inside(j)} end"


def _blank(j: str) -> str:
    """JSON string `j` is empty or all blank. Without escapes it can only hold spaces
    (raw control characters are not JSON), so a slice and a trim decide cheaply."""
    j = f"({j})"
    return (
        f"(length({j}) = 2 or (substr({j}, 2, 1) = ' ' and trim({_inside(j)}) = '') "
        f"or (contains({j}, '\\') and fx_text(json_extract_string({j}, '$')) is null))"
    )


def _minus_zero(e: str, written: str | None) -> str:
    return e if written is None else f"case when {e} = '0' and {written} then '-0' else {e} end"


def text_field(src: Source) -> Field:
    """Ids and other text (§2.4): exact text, numbers as their decimal text, blank = missing."""
    e, cat = src.expr, ("missing" if src.type == "missing" else _category(src.type))
    if cat == "missing" or cat == "null":
        return Field("null::varchar", "false")
    if cat == "text":
        return Field(f"fx_text({e})", f"({e} is not null)")
    if cat == "int":
        return Field(f"({e})::varchar", f"({e} is not null)")
    if cat == "json":
        # The JSON text `e` tells the type by its first character, with no second parse.
        # An integer literal keeps its exact text (DuckDB keeps big integers as raw text);
        # a number with a fraction or exponent has no unambiguous id text, so it rejects.
        # A string without escapes is sliced; only one opening with a space can be blank
        # (raw control characters are not JSON). Nested CASEs, so each test runs only on
        # the rows that reach it.
        e = f"({e})"  # a map expression may end in a cast, which a slice cannot follow
        value = (
            f"case when starts_with({e}, '\"') then "
            f"case when contains({e}, '\\') then fx_text(json_extract_string({e}, '$')) "
            f"when {e} = '\"\"' then null "
            f"when starts_with({e}, '\" ') "
            f"then case when trim({_inside(e)}) = '' then null else {_inside(e)} end "
            f"else {_inside(e)} end "
            f"when regexp_matches({e}, '^-?[0-9]+$') then {_minus_zero(e, src.minus_zero)} end"
        )
        present = f"({e} is not null and {e} <> 'null')"
        # Read only where the value came out NULL: present, and not a (blank) string.
        bad = f"{VALUE} is null and {present} and left({e}, 1) <> '\"'"
        return Field(value, present, bad)
    return Field("null::varchar", f"({e} is not null)", f"({e} is not null)")


# The usual shape of a log timestamp, for which DuckDB's own TIMESTAMPTZ cast gives exactly
# what fx_ts_parts would (4x faster than splitting): 'T', seconds, at most 6 fraction digits,
# Z or an offset within ±18:00 with minutes below 60, hours 00-23, years 1900-2199. The cast
# itself refuses what the shape lets through (2024-02-30, minute or second 60). Anything
# else (space or 't', no seconds, no offset, 7+ digits, ±HHMM, ...) takes the general path.
FAST_TS = (
    r"(19|20|21)\d\d-\d\d-\d\dT([01]\d|2[0-3]):\d\d:\d\d(\.\d{1,6})?"
    r"(Z|[+-](0\d|1[0-7]):[0-5]\d|[+-]18:00)"
)


def _ts_text(s: str, r: str, tz_param: str, quoted: str | None = None) -> tuple[str, str]:
    """(value, split) for timestamp text `s`: the fast cast, or fx_ts_parts of the split.

    The split `r` is NULL exactly where the text has the usual shape (or is NULL), so the
    value reads the shape test from it instead of matching the text a second time. With
    `quoted` (the JSON string that `s` unescapes), the shape is tested on that, which
    spares unquoting every value for the test; a string with an escape then takes the
    general path, which reads it the same (an unescaped shape has no backslash, so the cast
    reads the plain text).
    """
    if quoted is None:
        fast, cast = f"regexp_full_match({s}, {literal(FAST_TS)})", s
    else:
        shape = literal('"' + FAST_TS + '"')
        fast = f"regexp_full_match({quoted}, {shape})"
        cast = f"substr({quoted}, 2, length({quoted}) - 2)"
    value = (
        f"case when {r} is null then epoch_us(try_cast({cast} as timestamptz)) "
        f"else fx_ts_parts({r}, {tz_param}) end"
    )
    return value, f"case when not {fast} then fx_ts_split({s}) end"


def time_field(src: Source, tz_param: str, name: str = "t") -> Field:
    """Timestamps (§2.4) as epoch microseconds (BIGINT); NULL when absent or unreadable.

    A string of the usual shape is cast (FAST_TS); any other is split by one regular
    expression one select level below (alias `<name>__r`): macros are expanded in place,
    so splitting inside would repeat it.
    """
    e, cat = src.expr, ("missing" if src.type == "missing" else _category(src.type))
    r = f"{name}__r"
    if cat == "missing" or cat == "null":
        return Field("null::bigint", "false")
    if cat == "text":
        value, split = _ts_text(e, r, tz_param)
        return Field(value, f"(fx_text({e}) is not null)", null_bad=True, pre=((r, split),))
    if cat == "int":
        return Field(f"fx_ts_int(try_cast({e} as bigint))", f"({e} is not null)", null_bad=True)
    if cat == "float":
        # A double goes through its shortest text: DuckDB's DOUBLE-to-DECIMAL cast is not
        # exact (1708074001.25 becomes 1708074001.249999872, a microsecond early).
        x = f"({e})::varchar" if src.type.upper() in _FLOAT_TYPES else e
        v = f"fx_ts_dec(try_cast({x} as decimal(38, 9)))"
        return Field(v, f"({e} is not null)", null_bad=True)
    if cat in ("naive", "naive_ns"):
        local = f"({e})::timestamp" if cat == "naive" else f"make_timestamp(epoch_ns({e}) // 1000)"
        v = (
            f"case when {tz_param} is null then epoch_us({local}) "
            f"else fx_local_us({local}, {tz_param}) end"
        )
        return Field(v, f"({e} is not null)", null_bad=True)  # NULL: a skipped local time
    if cat == "tz":
        return Field(f"epoch_us({e})", f"({e} is not null)")
    if cat == "tz_ns":
        return Field(f"epoch_ns({e}) // 1000", f"({e} is not null)")
    if cat == "json":
        text_value, text_split = _ts_text(_unescape(e), r, tz_param, quoted=e)
        v = (
            f"case when left({e}, 1) = '\"' then {text_value} "
            f"when regexp_matches({e}, '^-?[0-9]+$') then fx_ts_int(try_cast({e} as bigint)) "
            f"when regexp_matches({e}, '^-?[0-9]') "
            f"then fx_ts_dec(try_cast({e} as decimal(38, 9))) end"
        )
        present = (
            f"({e} is not null and {e} <> 'null' and not (left({e}, 1) = '\"' and {_blank(e)}))"
        )
        split = f"case when left({e}, 1) = '\"' then {text_split} end"
        return Field(v, present, null_bad=True, pre=((r, split),))
    return Field("null::bigint", f"({e} is not null)", f"({e} is not null)")


def status_field(src: Source) -> Field:
    """HTTP status (§2.4): an integer or a string of digits; anything else rejects."""
    e, cat = src.expr, ("missing" if src.type == "missing" else _category(src.type))
    if cat == "missing" or cat == "null":
        return Field("null::integer", "false")
    if cat == "int":
        return Field(f"try_cast({e} as integer)", f"({e} is not null)", null_bad=True)
    if cat == "text":
        return Field(f"fx_status_str({e})", f"({e} is not null)", null_bad=True)
    if cat == "json":
        v = (
            f"case when left({e}, 1) = '\"' then fx_status_str({_unescape(e)}) "
            f"when regexp_matches({e}, '^-?[0-9]+$') then try_cast({e} as integer) end"
        )
        return Field(v, f"({e} is not null and {e} <> 'null')", null_bad=True)
    return Field("null::integer", f"({e} is not null)", f"({e} is not null)")


@dataclass(frozen=True)
class Normalized:
    """Two select levels for one kind, so each field is converted once per record.

    `pre` (alias → expression over the source) is computed first, then `inner` (over the
    source and `pre`); `columns` (canonical name → expression) and `reason` (the first
    reject reason, or NULL) read `inner`'s aliases.
    """

    pre: dict[str, str]
    inner: dict[str, str]
    columns: dict[str, str]
    reason: str


def normalize(
    kind: str,
    sources: dict[str, Source],
    *,
    tz_param: str,
    action_map: bool,
    hints: dict[str, str] | None = None,
) -> Normalized:
    """Build the canonical columns and the first reject reason for `kind`.

    `tz_param` names the bound parameter holding --assume-tz (NULL: naive means UTC);
    with `action_map`, $action_from / $action_to lists map source action values.
    `hints`: for a required field, SQL giving the name of a field the record has that
    differs from it only in case (NULL: none), added to the `missing` reason.
    """
    fields = _build_fields(kind, sources, tz_param, action_map)
    pre: dict[str, str] = {a: x for f in fields.values() for a, x in f.pre}
    # Only values are computed for every record; presence and type checks are written
    # into the reason's CASE, where they run only for records whose value is NULL.
    inner = {_value(name): f.value for name, f in fields.items()}
    checks = _field_checks(kind, fields, hints or {}) + _record_checks(kind)
    reason = "case " + " ".join(f"when {cond} then {_reason(why)}" for cond, why in checks) + " end"
    return Normalized(pre, inner, _output_columns(kind), reason)


def _value(name: str) -> str:
    """The inner column holding a field's value, before its checks."""
    return f"{name}__v"


class ReasonSql(str):
    """A reject reason that is SQL text computing the reason, not the reason itself."""


def _reason(why: str) -> str:
    return why if isinstance(why, ReasonSql) else literal(why)


def _build_fields(
    kind: str, sources: dict[str, Source], tz_param: str, action_map: bool
) -> dict[str, Field]:
    """Each canonical field of `kind` from its source (missing: NULL), actions mapped."""
    fields: dict[str, Field] = {}
    for name in CANONICAL[kind]:
        src = sources.get(name, Source("null", "missing"))
        if name in TIME_FIELDS:
            fields[name] = _open_bound(time_field(src, tz_param, name), src, name)
        elif name == "status":
            fields[name] = status_field(src)
        else:
            fields[name] = text_field(src)
    if kind == "events" and action_map:
        f = fields["action"]
        mapped = (
            f"coalesce(list_extract($action_to, list_position($action_from, {f.value})), {f.value})"
        )
        fields["action"] = Field(mapped, f.present, f.type_bad, f.null_bad)
    return fields


# PostgreSQL's words for a range without an end (a grant's `valid_to`, exported from a
# timestamptz or tstzrange) or without a start: open, as NULL is, not a date to reject.
_OPEN_WORDS = {"valid_to": ("infinity", "+infinity"), "valid_from": ("-infinity",)}


def _open_bound(f: Field, src: Source, name: str) -> Field:
    """A grant bound written `infinity` (valid_to) or `-infinity` (valid_from) is absent.

    Only its presence changes, which is read for records whose value is NULL (as such a
    word's is); the value of every other record is computed as before."""
    words = _OPEN_WORDS.get(name)
    if words is None or src.type == "missing":
        return f
    cat = _category(src.type)
    if cat == "text":
        word = f"lower(trim({src.expr}))"
    elif cat == "json":  # a string's inside (a number's text cannot be a word)
        word = f"lower(trim({_inside(f'({src.expr})')}))"
    else:
        return f
    listed = ", ".join(literal(w) for w in words)
    return Field(
        f.value, f"({f.present} and {word} not in ({listed}))", f.type_bad, f.null_bad, f.pre
    )


def _field_checks(
    kind: str, fields: dict[str, Field], hints: dict[str, str]
) -> list[tuple[str, str]]:
    """(condition, reason) for each field in canonical order: type, presence, range."""
    v = _value
    checks: list[tuple[str, str]] = []
    for name in CANONICAL[kind]:
        f = fields[name]
        if f.type_bad != "false":
            checks.append((f"({f.type_bad.replace(VALUE, v(name))})", f"invalid {name}"))
        if f.null_bad:
            checks.append((f"{v(name)} is null and {f.present}", f"invalid {name}"))
        if name in REQUIRED[kind] and name in hints:
            found = f"coalesce(' (the record has ' || {hints[name]} || ')', '')"
            checks.append(
                (f"{v(name)} is null", ReasonSql(f"{literal(f'missing {name}')} || {found}"))
            )
        elif name in REQUIRED[kind]:
            checks.append((f"{v(name)} is null", f"missing {name}"))
        if name in TIME_FIELDS:
            checks.append(
                (
                    f"{v(name)} is not null and not fx_us_ok({v(name)})",
                    f"{name} out of range (before 1990-01-01 or from 2100-01-01)",
                )
            )
    return checks


def _record_checks(kind: str) -> list[tuple[str, str]]:
    """(condition, reason) across fields, checked after every single-field check."""
    v = _value
    checks: list[tuple[str, str]] = []
    if kind == "events":
        analysed = ", ".join(literal(a) for a in ANALYSED_ACTIONS)
        for name in ("device_id", "event_id"):
            checks.append(
                (
                    f"{v('action')} in ({analysed}) and {v(name)} is null",
                    f"missing {name} for an analysed action",
                )
            )
    if kind == "grants":
        checks.append(
            (
                f"{v('valid_from')} is not null and {v('valid_to')} is not null "
                f"and {v('valid_to')} <= {v('valid_from')}",
                "valid_to is not after valid_from",
            )
        )
    return checks


def _output_columns(kind: str) -> dict[str, str]:
    """The canonical columns from the checked values: times as UTC instants, role defaulted."""
    v = _value
    columns: dict[str, str] = {}
    for name in CANONICAL[kind]:
        columns[name] = f"fx_us_ts({v(name)})" if name in TIME_FIELDS else v(name)
    if kind == "grants":
        columns["role"] = f"coalesce({v('role')}, 'owner')"
    return columns
