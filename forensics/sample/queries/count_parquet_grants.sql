-- name: count_parquet_grants
-- grain: one row per grant record of a Parquet file that SPEC §2.4 accepts
-- params: none
-- Reads the view count_parquet (the file; Arrow timestamps without a zone are UTC).
with grants as (
    select
        blank_as_null(device_id::varchar) as device_id,
        blank_as_null(user_id::varchar) as user_id,
        epoch_us(valid_from) as valid_from,
        epoch_us(valid_to) as valid_to
    from count_parquet
)

select device_id, user_id, valid_from, valid_to
from grants
where device_id is not null and user_id is not null
    and (valid_from is null or in_time_range(valid_from))
    and (valid_to is null or in_time_range(valid_to))
    and (valid_from is null or valid_to is null or valid_to > valid_from)
