-- name: batch_insert_grants
-- grain: inserts one grants row per valid record of the staged batch, by file then record
-- params: $shift (bits of a batched record number below the file number), $mask (those bits)
insert into grants (device_id, user_id, role, valid_from, valid_to, source_id, source_record)
select s.device_id, s.user_id, s.role, s.valid_from, s.valid_to, b.sid, s.rec & $mask
from bstage s
join batch_files b on b.file = s.rec >> $shift
where s.err is null
order by s.rec
