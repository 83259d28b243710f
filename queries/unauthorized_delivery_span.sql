-- name: unauthorized_delivery_span
-- grain: one row when any unauthorized thumbnail delivery is stored (none otherwise): the
--        first and last of them in the window, and of all of them, in or out of the window
-- params: $window_start (inclusive), $window_end (exclusive)
-- Reads the temp table unauthorized_accesses (forensics.exposure.prepare_window).
select
    min(case when u.ts >= $window_start and u.ts < $window_end then u.ts end) as first_in_window,
    max(case when u.ts >= $window_start and u.ts < $window_end then u.ts end) as last_in_window,
    min(u.ts) as first_overall,
    max(u.ts) as last_overall
from unauthorized_accesses as u
where u.action = 'thumbnail_delivered'
having count(*) > 0
