-- name: grant_time_range
-- grain: one row: how many grants the store holds, the earliest start and latest end of validity, and how many are open-ended
-- params: none
select
    count(*) as grants,
    min(valid_from) as first_valid_from,
    max(valid_to) as last_valid_to,
    count(case when valid_from is null then 1 end) as open_start,
    count(case when valid_to is null then 1 end) as open_end
from grants
