-- name: file_key_totals
-- grain: one row: the file's valid events, its distinct key hashes, its events with a request_id
-- params: none
select coalesce(sum(n), 0), count(*), coalesce(sum(with_id), 0)
from file_keys
