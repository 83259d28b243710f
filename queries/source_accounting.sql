-- name: source_accounting
-- grain: one row per ingested file, by source_id: path, SHA-256 and how every record was
--        accounted for (rows_read = rows_loaded + rows_rejected + rows_duplicate)
-- params: none
select
    s.source_id,
    s.path,
    s.kind,
    s.format,
    s.size_bytes,
    s.sha256,
    s.rows_read,
    s.rows_loaded,
    s.rows_rejected,
    s.rows_duplicate,
    s.ingested_at,
    s.tool_version
from sources as s
order by s.source_id
