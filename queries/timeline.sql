-- name: timeline
-- grain: one row per UTC minute that has any cross-account delivery
-- params: none
-- Reads the temp table cross_account_deliveries.
select
    date_trunc('minute', c.delivered_at) as minute,
    count(*) as cross_account_deliveries,
    count(distinct c.recipient_id) as recipients
from cross_account_deliveries as c
group by date_trunc('minute', c.delivered_at)
order by minute
