-- name: duplicates_by_source
-- grain: one row per events file that had duplicate records (SPEC §2.4), with the span
--        of its stored events and whether that span meets the window
-- params: $window_start (inclusive), $window_end (exclusive)
-- The store keeps each file's duplicate count, not the duplicates themselves (they are
-- stored once, as the first record with their key), so a file's duplicates are placed by
-- the span of the events it stored: 'in_window' when that span meets [start, end),
-- 'outside' when it does not, 'unknown' when the file stored no event.
with spans as (
    select e.source_id, min(e.ts) as first_ts, max(e.ts) as last_ts
    from events as e
    where e.source_id in (
        select s.source_id from sources as s where s.kind = 'events' and s.rows_duplicate > 0
    )
    group by e.source_id
)
select
    s.source_id,
    s.rows_duplicate,
    p.first_ts,
    p.last_ts,
    case
        when p.first_ts is null then 'unknown'
        when p.last_ts >= $window_start and p.first_ts < $window_end then 'in_window'
        else 'outside'
    end as placement
from sources as s
left join spans as p
    on p.source_id = s.source_id
where s.kind = 'events'
    and s.rows_duplicate > 0
order by s.source_id
