-- name: rejects_total
-- grain: one row: how many rejected records the case holds
-- params: none
select count(*) as rejects from rejects
