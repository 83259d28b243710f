-- name: figures
-- grain: one row: every figure of SPEC §5 for the window
-- params: $window_start (inclusive), $window_end (exclusive)
-- Reads the temp tables unauthorized_accesses, cross_account_deliveries,
-- cross_account_taps and cross_account_plays (forensics.exposure.prepare_window).
select
    (
        select count(*)
        from events as e
        where e.action = 'thumbnail_delivered'
            and (e.status is null or (e.status >= 200 and e.status <= 299))
            and e.ts >= $window_start
            and e.ts < $window_end
    ) as deliveries,
    (select count(*) from cross_account_deliveries) as cross_account_deliveries,
    (select count(distinct recipient_id) from cross_account_deliveries) as recipients,
    (select count(*) from cross_account_taps) as cross_account_taps,
    (select count(distinct user_id) from cross_account_taps) as tappers,
    (select count(*) from cross_account_plays) as cross_account_plays,
    (select count(distinct user_id) from cross_account_plays) as video_viewers,
    (select count(distinct device_id) from cross_account_deliveries) as exposed_devices,
    (
        select count(distinct o.owner_id)
        from (select unnest(owner_ids) as owner_id from cross_account_deliveries) as o
    ) as exposed_owners,
    (
        select count(*)
        from unauthorized_accesses as u
        anti join (
            select source_id, source_record from cross_account_taps
            union all
            select source_id, source_record from cross_account_plays
        ) as l
            on l.source_id = u.source_id and l.source_record = u.source_record
        where u.action in ('thumbnail_tapped', 'video_played')
            and u.ts >= $window_start
            and u.ts < $window_end
    ) as unlinked_unauthorized_accesses,
    (
        select count(*)
        from unauthorized_accesses as u
        where u.action = 'thumbnail_delivered'
            and (u.ts < $window_start or u.ts >= $window_end)
    ) as cross_account_deliveries_outside_window
