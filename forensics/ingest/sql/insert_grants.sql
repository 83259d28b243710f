-- name: insert_grants
-- grain: inserts one grants row per valid staged record, in the stage's order
--        (record order within each piece staged on one thread; README, 'Storage')
-- params: $sid (the file's source_id)
insert into grants (device_id, user_id, role, valid_from, valid_to, source_id, source_record)
select device_id, user_id, role, valid_from, valid_to, $sid, rec
from stage
where err is null
