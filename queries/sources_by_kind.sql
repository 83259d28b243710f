-- name: sources_by_kind
-- grain: one row per kind of record ingested (events, grants, accounts): its files and the accounting of their rows
-- params: none
select
    kind,
    count(*) as files,
    sum(size_bytes) as size_bytes,
    sum(rows_read) as rows_read,
    sum(rows_loaded) as rows_loaded,
    sum(rows_rejected) as rows_rejected,
    sum(rows_duplicate) as rows_duplicate,
    max(ingested_at) as last_ingested_at
from sources
group by kind
order by kind
