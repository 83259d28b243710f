-- name: event_time_range
-- grain: one row: how many events the store holds, and the first and last event time
-- params: none
select
    count(*) as events,
    min(ts) as first_ts,
    max(ts) as last_ts
from events
