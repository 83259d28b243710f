-- name: window_event_count
-- grain: one row: how many stored events (of any action) have ts in the window
-- params: $window_start (inclusive), $window_end (exclusive)
select count(*) as events
from events
where ts >= $window_start and ts < $window_end
