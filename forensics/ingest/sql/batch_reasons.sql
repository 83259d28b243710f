-- name: batch_reasons
-- grain: one row per file of the staged batch and reject reason, with its count, most frequent first
-- params: $shift (bits of a batched record number below the file number)
select rec >> $shift as file, err, count(*) as n
from bstage
where err is not null
group by 1, 2
order by 1, 3 desc, 2
