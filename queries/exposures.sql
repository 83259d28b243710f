-- name: exposures
-- grain: one row per cross-account delivery (SPEC §6 exposures.csv), sorted by
--        delivered_at, request_id, then provenance (a total order: reruns are
--        byte-identical)
-- params: none
-- Reads the temp tables cross_account_deliveries/_taps/_plays made by exposure.prepare_window.
-- A delivery is identified by its provenance (source_id, source_record): unique per stored event.
with first_tap as (
    select d.source_id, d.source_record, min(t.tapped_at) as first_tap_at
    from cross_account_deliveries d
    join cross_account_taps t
        on t.user_id = d.recipient_id
        and t.event_id = d.event_id
        and t.tapped_at >= d.delivered_at
    group by d.source_id, d.source_record
),
first_play as (
    select d.source_id, d.source_record, min(p.played_at) as first_play_at
    from cross_account_deliveries d
    join cross_account_plays p
        on p.user_id = d.recipient_id
        and p.event_id = d.event_id
        and p.played_at >= d.delivered_at
    group by d.source_id, d.source_record
)
select
    d.delivered_at,
    d.recipient_id,
    d.device_id,
    d.event_id,
    -- owner_ids are already sorted and distinct (cross_account_deliveries.sql); a list,
    -- joined with ';' as the CSV is written, so that pseudonyms replace whole ids
    d.owner_ids,
    t.first_tap_at,
    p.first_play_at,
    d.request_id,
    s.path as source_file,
    d.source_record
from cross_account_deliveries d
left join first_tap t on t.source_id = d.source_id and t.source_record = d.source_record
left join first_play p on p.source_id = d.source_id and p.source_record = d.source_record
left join sources s on s.source_id = d.source_id
order by d.delivered_at, d.request_id nulls last, d.source_id, d.source_record
