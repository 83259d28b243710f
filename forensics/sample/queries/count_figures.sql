-- name: count_figures
-- grain: one row: recipients and tappers of SPEC §5 for the window
-- params: $window_start (inclusive, µs since the epoch), $window_end (exclusive, µs)
-- Reads the tables count_events (file_no, ts in µs, action, user_id, device_id, event_id,
-- request_id, status) and count_grants (device_id, user_id, valid_from, valid_to in µs).
with events as (
    -- Duplicates (equal request_id; without one, equal content) are counted once, the
    -- earliest file's record winning.
    select *
    from count_events
    qualify row_number() over (
        partition by
            request_id,
            case
                when request_id is null
                    then row(ts, action, user_id, device_id, event_id, status)
            end
        order by file_no, ts, action, user_id, device_id, event_id, status
    ) = 1
),

accesses as (
    select ts, action, user_id, device_id, event_id
    from events
    where action in ('thumbnail_delivered', 'thumbnail_tapped', 'video_played')
        and (status is null or (status >= 200 and status <= 299))
),

unauthorized as (
    select a.*
    from accesses as a
    where not exists (
        select 1
        from count_grants as g
        where g.device_id = a.device_id
            and g.user_id = a.user_id
            and (g.valid_from is null or g.valid_from <= a.ts)
            and (g.valid_to is null or a.ts < g.valid_to)
    )
),

cross_deliveries as (
    select user_id, event_id, ts
    from unauthorized
    where action = 'thumbnail_delivered' and ts >= $window_start and ts < $window_end
),

cross_taps as (
    select t.user_id
    from unauthorized as t
    where t.action = 'thumbnail_tapped'
        and exists (
            select 1
            from cross_deliveries as c
            where c.user_id = t.user_id and c.event_id = t.event_id and c.ts <= t.ts
        )
)

select
    (select count(distinct user_id) from cross_deliveries) as recipients,
    (select count(distinct user_id) from cross_taps) as tappers
