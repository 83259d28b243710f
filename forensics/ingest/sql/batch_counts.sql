-- name: batch_counts
-- grain: one row per file of the staged batch with records: its number in the batch, records read, records rejected
-- params: $shift (bits of a batched record number below the file number)
select rec >> $shift as file, count(*) as rows_read, count(err) as rows_rejected
from bstage
group by 1
order by 1
