-- name: unauthorized_rows
-- grain: one row per access (SPEC §5) whose user was not authorized for its device at its
--        own ts: every such thumbnail_delivered, and such thumbnail_tapped / video_played
--        from the window start on (earlier ones cannot follow an in-window delivery); its
--        ts, ids and provenance (unauthorized_accesses.sql adds the rest)
-- params: $window_start (inclusive); $key_parts, $key_part (only the accesses and grants
--         whose user_id falls in part $key_part of $key_parts; 1 and 0: all of them)
-- Authorization is checked against ALL grants of (device, user), [valid_from, valid_to)
-- with nulls open, so overlapping grants work (an ASOF join would see only one of them).
-- ANTI JOIN is DuckDB's and Spark SQL's spelling of the same anti semi join.
-- The anti join carries only what it needs (keys, ts, provenance): when its hash table is
-- built on the accesses, every column they carry is copied into it. action, event_id and
-- request_id are looked up afterwards (unauthorized_accesses.sql), for the few
-- unauthorized rows only.
-- Key parts: a grant can authorize only accesses of its own user_id, so the accesses of one
-- part of the user_ids need only that part's grants, and the parts together give every
-- row once. The case store's DuckDB runs one part at a time when the hash table of all the
-- accesses would not fit in its memory limit, and builds it on the grants when they are
-- few and fit (forensics/exposure.py, join_plan): spilling it to disk costs more than
-- reading the tables again. Elsewhere $key_parts is 1.
select
    e.ts,
    e.user_id,
    e.device_id,
    e.source_id,
    e.source_record
from events as e
anti join (
    select device_id, user_id, valid_from, valid_to
    from grants
    where $key_parts = 1 or abs(hash(user_id) % 65536)::integer % $key_parts = $key_part
) as g
    on g.device_id = e.device_id
    and g.user_id = e.user_id
    and (g.valid_from is null or g.valid_from <= e.ts)
    and (g.valid_to is null or e.ts < g.valid_to)
where (e.status is null or (e.status >= 200 and e.status <= 299))
    and (
        e.action = 'thumbnail_delivered'
        or (e.action in ('thumbnail_tapped', 'video_played') and e.ts >= $window_start)
    )
    and ($key_parts = 1 or abs(hash(e.user_id) % 65536)::integer % $key_parts = $key_part)
