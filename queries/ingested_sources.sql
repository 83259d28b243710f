-- name: ingested_sources
-- grain: one row per ingested file, by source_id: what `forensics sources` lists (the sources
--        table of SPEC §3 but the notes, which only a store keeps)
-- params: none
select
    source_id,
    path,
    kind,
    format,
    size_bytes,
    sha256,
    rows_read,
    rows_loaded,
    rows_rejected,
    rows_duplicate,
    ingested_at,
    tool_version,
    assume_tz,
    map_sha256
from sources
order by source_id
