-- name: rejects_by_reason
-- grain: one row per (kind, placement, reason): rejected records counted by where they
--        fall against the window; placement 'in_window', 'outside' or 'unknown' for event
--        files, 'not_timed' for grants and accounts (they bear on every figure)
-- params: $window_start (inclusive), $window_end (exclusive)
-- A rejected record's own ts may be missing or unreadable, so an event reject is placed by
-- its neighbours in its file: the stored events with the nearest record numbers before and
-- after it. It is 'in_window' when the span between them meets [start, end), 'outside'
-- when it does not, 'unknown' when its file stored no event. Logs run roughly in time
-- order, so this brackets the time the record was written.
with event_rejects as (
    select r.source_id, r.source_record, r.reason
    from rejects as r
    inner join sources as s
        on s.source_id = r.source_id
    where s.kind = 'events'
),
ordered as (
    select source_id, source_record, reason, cast(null as timestamptz) as ts
    from event_rejects
    union all
    select e.source_id, e.source_record, cast(null as varchar) as reason, e.ts
    from events as e
    where e.source_id in (select distinct source_id from event_rejects)
),
bracketed as (
    select
        reason,
        last_value(ts ignore nulls) over (
            partition by source_id order by source_record
            rows between unbounded preceding and 1 preceding
        ) as before_ts,
        first_value(ts ignore nulls) over (
            partition by source_id order by source_record
            rows between 1 following and unbounded following
        ) as after_ts
    from ordered
),
placed as (
    select
        reason,
        case
            when before_ts is null and after_ts is null then 'unknown'
            when greatest(coalesce(before_ts, after_ts), coalesce(after_ts, before_ts))
                    >= $window_start
                and least(coalesce(before_ts, after_ts), coalesce(after_ts, before_ts))
                    < $window_end
                then 'in_window'
            else 'outside'
        end as placement
    from bracketed
    where reason is not null
)
select 'events' as kind, placement, reason, count(*) as records
from placed
group by placement, reason
union all
select s.kind, 'not_timed' as placement, r.reason, count(*) as records
from rejects as r
inner join sources as s
    on s.source_id = r.source_id
where s.kind <> 'events'
group by s.kind, r.reason
order by kind, placement, records desc, reason
