-- name: cross_account_deliveries
-- grain: one row per cross-account delivery (SPEC §5): a successful thumbnail_delivered
--        in the window to a user not authorized for the device at that instant, with the
--        owners of the device at that instant (sorted, empty when there are none)
-- params: $window_start (inclusive), $window_end (exclusive)
-- Reads the temp table unauthorized_accesses.
-- No ORDER BY: a temp table, materialised unordered; every reader sorts or aggregates.
select
    d.ts as delivered_at,
    d.user_id as recipient_id,
    d.device_id,
    d.event_id,
    d.request_id,
    d.source_id,
    d.source_record,
    -- array_distinct drops the NULL that the left join gives a device without owners
    array_sort(array_distinct(list(o.user_id))) as owner_ids
from unauthorized_accesses as d
left join grants as o
    on o.device_id = d.device_id
    and o.role = 'owner'
    and (o.valid_from is null or o.valid_from <= d.ts)
    and (o.valid_to is null or d.ts < o.valid_to)
where d.action = 'thumbnail_delivered'
    and d.ts >= $window_start
    and d.ts < $window_end
group by
    d.ts, d.user_id, d.device_id, d.event_id, d.request_id, d.source_id, d.source_record
