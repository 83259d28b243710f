-- name: rejected_records
-- grain: one row per rejected record, in file and record order: its file, record number,
--        reason and raw text (the first $limit only)
-- params: $limit (how many rows at most)
select s.path as source_file, r.source_record, r.reason, r.raw
from rejects as r
join sources as s on s.source_id = r.source_id
order by r.source_id, r.source_record
limit $limit
