-- name: recipients
-- grain: one row per recipient of a cross-account delivery (SPEC §6 recipients.csv),
--        sorted by user_id; never names an owner
-- params: none
-- Reads the temp tables cross_account_deliveries/_taps/_plays made by exposure.prepare_window.
with delivered as (
    select
        recipient_id as user_id,
        count(*) as thumbnails,
        count(distinct device_id) as devices,
        min(delivered_at) as first_seen,
        max(delivered_at) as last_seen
    from cross_account_deliveries
    group by recipient_id
),
tapped as (
    select user_id, count(*) as taps
    from cross_account_taps
    group by user_id
),
played as (
    select user_id, count(*) as plays
    from cross_account_plays
    group by user_id
)
select
    d.user_id,
    a.email,
    a.name,
    a.locale,
    d.thumbnails,
    d.devices,
    coalesce(t.taps, 0) as taps,
    coalesce(p.plays, 0) as plays,
    d.first_seen,
    d.last_seen,
    case
        when coalesce(p.plays, 0) > 0 then 'video'
        when coalesce(t.taps, 0) > 0 then 'tapped'
        else 'thumbnail'
    end as severity
from delivered d
left join tapped t on t.user_id = d.user_id
left join played p on p.user_id = d.user_id
left join accounts_latest a on a.user_id = d.user_id
order by d.user_id
