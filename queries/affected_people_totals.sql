-- name: affected_people_totals
-- grain: one row per role ('recipient', 'owner', 'any': a person counted once even when
--        both) among the people affected in the window, with how many have no email
-- params: none
-- Reads the temp table cross_account_deliveries (forensics.exposure.prepare_window).
-- Unreachable: no account record, or an empty or blank email (as notify counts them).
with people as (
    select distinct 'recipient' as role, c.recipient_id as user_id
    from cross_account_deliveries as c
    union all
    select distinct 'owner' as role, o.owner_id as user_id
    from (select unnest(c.owner_ids) as owner_id from cross_account_deliveries as c) as o
),
tagged as (
    select p.role, p.user_id, a.email is null or trim(a.email) = '' as unreachable
    from people as p
    left join accounts_latest as a
        on a.user_id = p.user_id
)
select role, count(*) as people, count(*) filter (where unreachable) as unreachable
from tagged
group by role
union all
select 'any' as role, count(distinct user_id) as people,
    count(distinct user_id) filter (where unreachable) as unreachable
from tagged
group by 'any'
order by role desc
