-- name: events_per_minute_by_source
-- grain: one row per (events source file, UTC minute) with any stored event in the
--        coverage span, every action counted (the log's own traffic, not only analysed rows)
-- params: $coverage_start (inclusive), $coverage_end (exclusive)
-- Minutes without events have no row: the report fills them with zeros to find gaps.
select
    e.source_id,
    date_trunc('minute', e.ts) as minute,
    count(*) as events
from events as e
where e.ts >= $coverage_start
    and e.ts < $coverage_end
group by e.source_id, date_trunc('minute', e.ts)
order by e.source_id, minute
