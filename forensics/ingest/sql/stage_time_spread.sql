-- name: stage_time_spread
-- grain: one row: the time the staged valid rows span, summed over runs of $block records, over the file, and summed over runs of $block * $per_group records (epoch microseconds)
-- params: $block (records a run), $per_group (runs a group)
with b as (
    select (rec - 1) // $block as b, min(epoch_us(ts)) as lo, max(epoch_us(ts)) as hi
    from stage
    where err is null
    group by 1
)
select coalesce(sum(hi - lo), 0),
       coalesce(max(hi) - min(lo), 0),
       (select coalesce(sum(hi - lo), 0)
        from (select min(lo) as lo, max(hi) as hi from b group by b // $per_group))
from b
