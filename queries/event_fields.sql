-- name: event_fields
-- grain: one row per distinct key found in events.extra (the non-canonical stored fields)
-- params: none
select distinct k.field
from (select unnest(json_keys(e.extra)) as field from events as e) as k
order by k.field
