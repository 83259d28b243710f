-- name: cross_account_taps
-- grain: one row per cross-account tap (SPEC §5): a successful thumbnail_tapped by U on
--        event E at t2, U not authorized for the device at t2, after a cross-account
--        delivery of E to U at some t1 <= t2 (t2 may be after the window)
-- params: none
-- Reads the temp tables unauthorized_accesses and cross_account_deliveries.
-- No ORDER BY: a temp table, materialised unordered; every reader sorts or aggregates.
select
    t.ts as tapped_at,
    t.user_id,
    t.device_id,
    t.event_id,
    t.request_id,
    t.source_id,
    t.source_record
from unauthorized_accesses as t
inner join (
    select recipient_id, event_id, min(delivered_at) as first_delivered_at
    from cross_account_deliveries
    group by recipient_id, event_id
) as f
    on f.recipient_id = t.user_id
    and f.event_id = t.event_id
    and f.first_delivered_at <= t.ts
where t.action = 'thumbnail_tapped'
