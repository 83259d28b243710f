-- name: count_json_grants
-- grain: one row per grant record of a JSON lines file that SPEC §2.4 accepts
-- params: none
-- Reads the table count_records (count_json_records.sql: v, the values of the fields in
-- the order of count.py's paths). Materialized: the filters below must not copy the
-- parsing into every condition.
with fields as materialized (
    select
        json_type(v[1]) as device_t,
        json_id(json_type(v[1]), v[1] ->> '$') as device_id,
        json_type(v[2]) as user_t,
        json_id(json_type(v[2]), v[2] ->> '$') as user_id,
        json_type(v[3]) as from_t,
        v[3] ->> '$' as from_x,
        iso_parts(v[3] ->> '$') as from_p,
        json_type(v[4]) as to_t,
        v[4] ->> '$' as to_x,
        iso_parts(v[4] ->> '$') as to_p
    from count_records
),

grants as materialized (
    select
        device_id,
        user_id,
        from_t,
        to_t,
        json_us(from_t, from_x, from_p) as valid_from,
        json_us(to_t, to_x, to_p) as valid_to
    from fields
    where not (json_id_bad(device_t) or json_id_bad(user_t))
        and device_id is not null and user_id is not null
)

select device_id, user_id, valid_from, valid_to
from grants
where not (time_bad(from_t, valid_from) or time_bad(to_t, valid_to))
    and (valid_from is null or valid_to is null or valid_to > valid_from)
