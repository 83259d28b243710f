-- name: batch_insert_sources
-- grain: inserts one sources row per file of the batch being stored, in file order
-- params: none
insert into sources by name
select * from batch_sources
order by source_id
