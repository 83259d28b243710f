-- name: batch_tuple_span
-- grain: one row: the least and the greatest ts of the staged batch's valid events without request_id
-- params: none
select min(ts), max(ts)
from bstage
where err is null and request_id is null
