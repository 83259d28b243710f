-- name: count_parquet_events
-- grain: one row per event record of a Parquet file that SPEC §2.4 accepts
-- params: $file_no (the file's place in the reading order: earlier files win duplicates)
-- Reads the view count_parquet (the file; Arrow timestamps without a zone are UTC).
with fields as (
    select
        epoch_us(ts) as ts,
        blank_as_null(action::varchar) as action,
        blank_as_null(user_id::varchar) as user_id,
        blank_as_null(device_id::varchar) as device_id,
        blank_as_null(event_id::varchar) as event_id,
        blank_as_null(request_id::varchar) as request_id,
        status::bigint as status
    from count_parquet
)

select $file_no as file_no, ts, action, user_id, device_id, event_id, request_id, status
from fields
where in_time_range(ts)
    and action is not null
    and user_id is not null
    and (
        action not in ('thumbnail_delivered', 'thumbnail_tapped', 'video_played')
        or (device_id is not null and event_id is not null)
    )
