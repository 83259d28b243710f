-- name: deliveries_by_field
-- grain: one row per value of one stored event field among the cross-account deliveries
--        (NULL: the field is missing on those deliveries)
-- params: $field (a canonical event column or a key of events.extra), $window_start (inclusive), $window_end (exclusive)
-- Reads the temp table cross_account_deliveries. The field is a bound value, never an
-- identifier: canonical columns are chosen by CASE, other keys read from events.extra by
-- JSON Pointer ('/' + key with '~' -> '~0', '/' -> '~1'; Spark: get_json_object with '$.key').
with valued as (
    select
        c.recipient_id,
        c.device_id,
        case $field
            when 'action' then e.action
            when 'user_id' then e.user_id
            when 'device_id' then e.device_id
            when 'event_id' then e.event_id
            when 'request_id' then e.request_id
            when 'status' then cast(e.status as varchar)
            when 'source_id' then cast(e.source_id as varchar)
            else json_extract_string(
                e.extra, '/' || replace(replace($field, '~', '~0'), '/', '~1')
            )
        end as value
    from cross_account_deliveries as c
    inner join events as e
        on e.source_id = c.source_id
        and e.source_record = c.source_record
    -- the same window as the deliveries: lets the scan of events skip row groups
    where e.ts >= $window_start
        and e.ts < $window_end
)
select
    value,
    count(*) as cross_account_deliveries,
    count(distinct recipient_id) as recipients,
    count(distinct device_id) as exposed_devices
from valued
group by value
order by cross_account_deliveries desc, value nulls last
