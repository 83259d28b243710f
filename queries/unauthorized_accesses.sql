-- name: unauthorized_accesses
-- grain: one row per unauthorized access (SPEC §5; the temp table unauthorized_rows, made by
--        unauthorized_rows.sql) with its action, event_id and request_id
-- params: none
select
    u.ts,
    r.action,
    u.user_id,
    u.device_id,
    r.event_id,
    r.request_id,
    u.source_id,
    u.source_record
from unauthorized_rows as u
-- (source_id, source_record) is the row; ts = ts lets the scan skip row groups by time
inner join events as r
    on r.source_id = u.source_id
    and r.source_record = u.source_record
    and r.ts = u.ts
