-- name: batch_file_keys
-- grain: one row per distinct de-duplication key hash (dkey) of the staged batch's valid events
-- params: none
create or replace temp table file_keys as
select dkey, count(*) as n, count(request_id) as with_id
from bstage
where err is null
group by 1
