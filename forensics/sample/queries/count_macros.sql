-- name: count_macros
-- grain: none: defines the macros that read SPEC §2.4 values for the other count_* queries
-- params: none
-- A JSON value is passed as its type (json_type) and its text (->> '$'); a macro returns
-- NULL for a value that is missing or that SPEC §2.4 rejects (`given` tells them apart).

-- The value is there and not JSON null.
create or replace temp macro given(t) as t is not null and t != 'NULL';

-- An RFC 3339 / ISO 8601 instant: T, t or a space; seconds optional; any fraction; Z,
-- ±HH:MM, ±HHMM or ±HH. Non-matching text gives empty fields.
create or replace temp macro iso_parts(s) as regexp_extract(
    s,
    '^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?$',
    ['y', 'mo', 'd', 'h', 'mi', 's', 'f', 'off']
);

create or replace temp macro offset_hours(off) as
    case when off = '' or upper(off) = 'Z' then 0 else substr(off, 2, 2)::integer end;

create or replace temp macro offset_mins(off) as
    case
        when off = '' or upper(off) = 'Z' then 0
        else coalesce(nullif(replace(substr(off, 4), ':', ''), '')::integer, 0)
    end;

-- Microseconds since the epoch; fractions beyond microseconds are truncated. make_timestamp
-- rolls 24:00 or :60 over to the next hour or minute, so they are refused before it.
create or replace temp macro iso_us(p) as
    case
        when p.y = '' then null
        when p.h::integer > 23 or p.mi::integer > 59 or coalesce(nullif(p.s, ''), '0')::integer > 59
            then null
        when offset_mins(p.off) > 59 or offset_hours(p.off) * 60 + offset_mins(p.off) > 18 * 60
            then null
        else epoch_us(try(make_timestamp(
                p.y::bigint, p.mo::bigint, p.d::bigint, p.h::bigint, p.mi::bigint,
                coalesce(nullif(p.s, ''), '0')::double
            )))
            + rpad(left(p.f, 6), 6, '0')::bigint
            - (case when left(p.off, 1) = '-' then -1 else 1 end)
            * (offset_hours(p.off) * 60 + offset_mins(p.off))::bigint * 60000000
    end;

-- A number of seconds (below 1e11), milliseconds (below 1e14) or microseconds.
create or replace temp macro epoch_number_us(x) as
    floor(
        case
            when abs(x) < 1e11 then x * 1000000
            when abs(x) < 1e14 then x * 1000
            else x
        end
    )::bigint;

-- Instants from 1990-01-01 up to 2100-01-01 only.
create or replace temp macro in_time_range(us) as
    us >= 631152000000000 and us < 4102444800000000;

-- p: iso_parts(x), computed once as a column (a macro argument is copied where it is used).
create or replace temp macro json_us(t, x, p) as
    case
        when t in ('BIGINT', 'UBIGINT', 'DOUBLE')
            then epoch_number_us(try_cast(x as decimal(38, 9)))
        when t = 'VARCHAR' then iso_us(p)
    end;

-- A time that is given but unreadable or out of range.
create or replace temp macro time_bad(t, us) as given(t) and not coalesce(in_time_range(us), false);

-- Ids are text; a JSON integer is its decimal text; blank text is missing.
create or replace temp macro json_id(t, x) as
    case
        when t = 'VARCHAR' and not regexp_full_match(x, '\s*') then x
        when t in ('BIGINT', 'UBIGINT') then x
    end;

create or replace temp macro json_id_bad(t) as
    t is not null and t not in ('NULL', 'VARCHAR', 'BIGINT', 'UBIGINT');

-- A JSON integer or a string of digits.
create or replace temp macro json_status(t, x) as
    case
        when t in ('BIGINT', 'UBIGINT') then try_cast(x as bigint)
        when t = 'VARCHAR' and regexp_full_match(x, '[0-9]+') then try_cast(x as bigint)
    end;

create or replace temp macro json_status_bad(t, x) as given(t) and json_status(t, x) is null;

-- A line that holds NaN, Infinity or Inf as a value, at any depth: not standard JSON.
create or replace temp macro has_nonstandard_number(line) as
    regexp_matches(line, '[:\[,]\s*-?(NaN|Infinity|Inf)\s*[,}\]]');

create or replace temp macro blank_as_null(s) as
    case when regexp_full_match(s, '\s*') then null else s end;
