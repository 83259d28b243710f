-- name: sources_by_kind
-- grain: one row per kind of record ingested (events, grants, accounts): its files and the accounting of their rows
-- params: none
select
    kind,
    count(*) as files,
    cast(sum(size_bytes) as bigint) as size_bytes,
    cast(sum(rows_read) as bigint) as rows_read,
    cast(sum(rows_loaded) as bigint) as rows_loaded,
    cast(sum(rows_rejected) as bigint) as rows_rejected,
    cast(sum(rows_duplicate) as bigint) as rows_duplicate,
    max(ingested_at) as last_ingested_at
from sources
group by kind
order by kind
