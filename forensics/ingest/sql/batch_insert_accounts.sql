-- name: batch_insert_accounts
-- grain: inserts one accounts row per valid record of the staged batch, by file then record
-- params: $shift (bits of a batched record number below the file number), $mask (those bits)
insert into accounts (user_id, email, name, locale, country, source_id, source_record)
select s.user_id, s.email, s.name, s.locale, s.country, b.sid, s.rec & $mask
from bstage s
join batch_files b on b.file = s.rec >> $shift
where s.err is null
order by s.rec
