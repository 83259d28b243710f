-- name: stage_key_totals
-- grain: one row: the staged file's valid events, and how many of them have a request_id
-- params: none
select count(*), count(request_id)
from stage
where err is null
