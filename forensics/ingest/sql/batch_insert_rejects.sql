-- name: batch_insert_rejects
-- grain: inserts one rejects row per rejected record of the staged batch, by file then record
-- params: $shift (bits of a batched record number below the file number), $mask (those bits)
insert into rejects
select b.sid, s.rec & $mask, s.err, s.raw
from bstage s
join batch_files b on b.file = s.rec >> $shift
where s.err is not null
order by s.rec
