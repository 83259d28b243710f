-- name: owners
-- grain: one row per exposed owner (SPEC §6 owners.csv): a user holding an owner grant
--        on the device at the time of a cross-account delivery, sorted by user_id;
--        never names a recipient
-- params: none
-- Reads the temp tables cross_account_deliveries/_taps/_plays made by exposure.prepare_window;
-- owner_ids there are the owners at delivery time.
with owned as (
    -- one row per (owner, delivery): owner_ids are distinct (cross_account_deliveries.sql)
    select
        o.owner_id as user_id,
        d.delivered_at,
        d.recipient_id,
        d.device_id,
        d.event_id
    from cross_account_deliveries d, unnest(d.owner_ids) as o(owner_id)
    where o.owner_id is not null
),
-- A delivery is linked to a tap (play) of the same user and event at or after it exactly
-- when the latest such tap (play) is at or after the delivery.
last_tap as (
    select user_id, event_id, max(tapped_at) as last_at
    from cross_account_taps
    group by user_id, event_id
),
last_play as (
    select user_id, event_id, max(played_at) as last_at
    from cross_account_plays
    group by user_id, event_id
),
per_owner as (
    select
        w.user_id,
        count(distinct w.device_id) as devices,
        count(*) as thumbnails,
        count(distinct w.recipient_id) as viewers,
        min(w.delivered_at) as first_exposed,
        max(w.delivered_at) as last_exposed,
        max(case when lp.last_at >= w.delivered_at then 1 else 0 end) as video,
        max(case when lt.last_at >= w.delivered_at then 1 else 0 end) as tapped
    from owned w
    left join last_play lp on lp.user_id = w.recipient_id and lp.event_id = w.event_id
    left join last_tap lt on lt.user_id = w.recipient_id and lt.event_id = w.event_id
    group by w.user_id
)
select
    p.user_id,
    a.email,
    a.name,
    a.locale,
    p.devices,
    p.thumbnails,
    p.viewers,
    p.first_exposed,
    p.last_exposed,
    case
        when p.video = 1 then 'video'
        when p.tapped = 1 then 'tapped'
        else 'thumbnail'
    end as severity
from per_owner p
left join accounts_latest a on a.user_id = p.user_id
order by p.user_id
