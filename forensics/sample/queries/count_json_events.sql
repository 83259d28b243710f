-- name: count_json_events
-- grain: one row per event record of a JSON lines file that SPEC §2.4 accepts
-- params: $file_no (the file's place in the reading order: earlier files win duplicates)
-- Reads the table count_records (count_json_records.sql: v, the values of the fields in
-- the order of count.py's paths). Materialized: the filters below must not copy the
-- parsing into every condition.
with fields as materialized (
    select
        json_type(v[1]) as ts_t,
        v[1] ->> '$' as ts_x,
        iso_parts(v[1] ->> '$') as ts_p,
        json_type(v[2]) as action_t,
        v[2] ->> '$' as action,
        json_type(v[3]) as user_t,
        json_id(json_type(v[3]), v[3] ->> '$') as user_id,
        json_type(v[4]) as device_t,
        json_id(json_type(v[4]), v[4] ->> '$') as device_id,
        json_type(v[5]) as event_t,
        json_id(json_type(v[5]), v[5] ->> '$') as event_id,
        json_type(v[6]) as request_t,
        json_id(json_type(v[6]), v[6] ->> '$') as request_id,
        json_status_bad(json_type(v[7]), v[7] ->> '$') as status_bad,
        json_status(json_type(v[7]), v[7] ->> '$') as status
    from count_records
),

events as materialized (
    select *, json_us(ts_t, ts_x, ts_p) as ts
    from fields
    where not (json_id_bad(user_t) or json_id_bad(device_t) or json_id_bad(event_t))
        and not (json_id_bad(request_t) or status_bad)
        and action_t = 'VARCHAR' and blank_as_null(action) is not null
        and user_id is not null
        and (
            action not in ('thumbnail_delivered', 'thumbnail_tapped', 'video_played')
            or (device_id is not null and event_id is not null)
        )
)

select $file_no as file_no, ts, action, user_id, device_id, event_id, request_id, status
from events
where given(ts_t) and not time_bad(ts_t, ts)
