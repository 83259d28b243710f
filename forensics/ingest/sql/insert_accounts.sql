-- name: insert_accounts
-- grain: inserts one accounts row per valid staged record, in the stage's order
--        (record order within each piece staged on one thread; README, 'Storage')
-- params: $sid (the file's source_id)
insert into accounts (user_id, email, name, locale, country, source_id, source_record)
select user_id, email, name, locale, country, $sid, rec
from stage
where err is null
