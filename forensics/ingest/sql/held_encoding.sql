-- name: held_encoding
-- grain: one row: the held records (a file with no JSON object), and how many of them are
--   not UTF-8 (the reader's reason)
-- params: none
select count(*) as records, count(*) filter (where pre_err = 'invalid UTF-8') as not_utf8
from temp.held
