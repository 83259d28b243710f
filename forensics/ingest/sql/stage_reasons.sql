-- name: stage_reasons
-- grain: one row per reject reason of the staged file, with its count, most frequent first
-- params: none
select err, count(*)
from stage
where err is not null
group by err
order by 2 desc
