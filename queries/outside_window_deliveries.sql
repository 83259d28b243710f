-- name: outside_window_deliveries
-- grain: one row per UTC minute holding unauthorized thumbnail deliveries before or after
--        the window (the deliveries that cross_account_deliveries_outside_window counts)
-- params: $window_start (inclusive), $window_end (exclusive)
-- Reads the temp table unauthorized_accesses (forensics.exposure.prepare_window).
select
    date_trunc('minute', u.ts) as minute,
    count(*) as deliveries,
    count(distinct u.user_id) as recipients
from unauthorized_accesses as u
where u.action = 'thumbnail_delivered'
    and (u.ts < $window_start or u.ts >= $window_end)
group by date_trunc('minute', u.ts)
order by minute
