-- name: tool_versions
-- grain: one row per tool version that ingested files into the store, oldest first
-- params: none
select
    tool_version,
    count(*) as files,
    min(ingested_at) as first_ingested_at,
    max(ingested_at) as last_ingested_at
from sources
group by tool_version
order by min(ingested_at), tool_version
