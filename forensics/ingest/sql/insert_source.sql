-- name: insert_source
-- grain: inserts the file's one sources row
-- params: $source_id, $path, $kind, $format, $size_bytes, $sha256, $rows_read, $rows_loaded, $rows_rejected, $rows_duplicate, $ingested_at, $tool_version, $assume_tz, $map_sha256, $notes
insert into sources (
    source_id, path, kind, format, size_bytes, sha256, rows_read, rows_loaded, rows_rejected,
    rows_duplicate, ingested_at, tool_version, assume_tz, map_sha256, notes
) values (
    $source_id, $path, $kind, $format, $size_bytes, $sha256, $rows_read, $rows_loaded,
    $rows_rejected, $rows_duplicate, $ingested_at, $tool_version, $assume_tz, $map_sha256, $notes
)
