-- name: seen_ids
-- grain: one row per distinct request_id among the stored events that share a key hash with the file
-- params: none
create or replace temp table seen_ids as
select distinct request_id
from events
where rowid in (select rid from maybe)
  and request_id is not null
