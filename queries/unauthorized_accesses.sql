-- name: unauthorized_accesses
-- grain: one row per access (SPEC §5) whose user was not authorized for its device at its
--        own ts: every such thumbnail_delivered, and such thumbnail_tapped / video_played
--        from the window start on (earlier ones cannot follow an in-window delivery)
-- params: $window_start (inclusive)
-- Authorization is checked against ALL grants of (device, user), [valid_from, valid_to)
-- with nulls open, so overlapping grants work (an ASOF join would see only one of them).
-- ANTI JOIN is DuckDB's and Spark SQL's spelling of the same anti semi join.
select
    e.ts,
    e.action,
    e.user_id,
    e.device_id,
    e.event_id,
    e.request_id,
    e.source_id,
    e.source_record
from events as e
anti join grants as g
    on g.device_id = e.device_id
    and g.user_id = e.user_id
    and (g.valid_from is null or g.valid_from <= e.ts)
    and (g.valid_to is null or e.ts < g.valid_to)
where (e.status is null or (e.status >= 200 and e.status <= 299))
    and (
        e.action = 'thumbnail_delivered'
        or (e.action in ('thumbnail_tapped', 'video_played') and e.ts >= $window_start)
    )
