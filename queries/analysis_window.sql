-- name: analysis_window
-- grain: one row: the window the cross-account temp tables were last prepared for
-- params: $window_start (inclusive), $window_end (exclusive)
select
    $window_start as window_start,
    $window_end as window_end
