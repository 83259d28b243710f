-- name: stage_counts
-- grain: one row: the staged file's records read, and how many of them are rejected
-- params: none
select count(*) as rows_read, count(err) as rows_rejected
from stage
