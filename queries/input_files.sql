-- name: input_files
-- grain: one row per ingested file (the inputs a manifest names), by source_id
-- params: none
select source_id, path, kind, format, size_bytes, sha256
from sources
order by source_id
