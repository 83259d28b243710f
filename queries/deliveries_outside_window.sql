-- name: deliveries_outside_window
-- grain: one row: the cross-account deliveries outside the window (figures' last column alone)
-- params: $window_start (inclusive), $window_end (exclusive)
-- Reads the temp table unauthorized_accesses (forensics.exposure.prepare_window).
select count(*) as cross_account_deliveries_outside_window
from unauthorized_accesses as u
where u.action = 'thumbnail_delivered'
    and (u.ts < $window_start or u.ts >= $window_end)
