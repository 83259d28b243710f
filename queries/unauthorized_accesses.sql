-- name: unauthorized_accesses
-- grain: one row per access (SPEC §5) whose user was not authorized for its device at its
--        own ts: every such thumbnail_delivered, and such thumbnail_tapped / video_played
--        from the window start on (earlier ones cannot follow an in-window delivery)
-- params: $window_start (inclusive)
-- Authorization is checked against ALL grants of (device, user), [valid_from, valid_to)
-- with nulls open, so overlapping grants work (an ASOF join would see only one of them).
-- ANTI JOIN is DuckDB's and Spark SQL's spelling of the same anti semi join.
-- The anti join carries only what it needs (keys, ts, provenance): every column it carries
-- is copied into its hash table for each analysed access. action, event_id and request_id
-- are looked up afterwards, for the few unauthorized rows only.
with unauthorized as (
    select
        e.ts,
        e.user_id,
        e.device_id,
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
)
select
    u.ts,
    r.action,
    u.user_id,
    u.device_id,
    r.event_id,
    r.request_id,
    u.source_id,
    u.source_record
from unauthorized as u
-- (source_id, source_record) is the row; ts = ts lets the scan skip row groups by time
inner join events as r
    on r.source_id = u.source_id
    and r.source_record = u.source_record
    and r.ts = u.ts
