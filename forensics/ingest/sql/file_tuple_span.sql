-- name: file_tuple_span
-- grain: one row: the least and the greatest ts of the staged file's valid events without request_id
-- params: none
select min(ts), max(ts)
from stage
where err is null and request_id is null
