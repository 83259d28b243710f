-- name: insert_rejects
-- grain: inserts one rejects row per rejected record of the staged file, in record order
-- params: $sid (the file's source_id)
insert into rejects
select $sid, rec, err, raw
from stage
where err is not null
order by rec
