-- name: seen_tuples
-- grain: one row per distinct key tuple of the stored events without request_id that share a key hash with the file
-- params: none
create or replace temp table seen_tuples as
select distinct ts, action, user_id, device_id, event_id, status
from events
where rowid in (select rid from maybe)
  and request_id is null
