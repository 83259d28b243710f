-- name: affected_people
-- grain: one row per (role, country, locale) among the people affected in the window:
--        role 'recipient' (received a cross-account delivery) or 'owner' (held an owner
--        grant on a device at the time of a cross-account delivery); counts only
-- params: none
-- Reads the temp table cross_account_deliveries (forensics.exposure.prepare_window).
-- Contact details come from accounts_latest (SPEC §2.3: the record ingested last wins);
-- a person without an account record has no country, locale or email. Unreachable: no
-- email, or an empty or blank one (as notify counts them).
with people as (
    select distinct 'recipient' as role, c.recipient_id as user_id
    from cross_account_deliveries as c
    union all
    select distinct 'owner' as role, o.owner_id as user_id
    from (select unnest(c.owner_ids) as owner_id from cross_account_deliveries as c) as o
)
select
    p.role,
    nullif(trim(a.country), '') as country,
    nullif(trim(a.locale), '') as locale,
    count(*) as people,
    count(*) filter (where a.email is null or trim(a.email) = '') as unreachable
from people as p
left join accounts_latest as a
    on a.user_id = p.user_id
group by p.role, nullif(trim(a.country), ''), nullif(trim(a.locale), '')
order by p.role desc, people desc, country nulls last, locale nulls last
