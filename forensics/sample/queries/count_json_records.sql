-- name: count_json_records
-- grain: one row per line of a JSON lines file that is one standard JSON object
-- params: $paths (the JSON paths of the fields to read)
-- Reads the view count_lines (one row per line of the file, as text). A line that is not
-- JSON, not an object, holds NaN or Infinity, or has a duplicate key is left out (rejected).
-- Each step is materialized, and guarded by CASE, so that no JSON function sees a line an
-- earlier step refused (the optimizer would otherwise move conditions around).
with lines as materialized (
    select rtrim(ltrim(line, chr(65279)), chr(13)) as j
    from count_lines
    where line is not null
),

valid as materialized (
    select j
    from lines
    where case when json_valid(j) then not has_nonstandard_number(j) else false end
),

objects as materialized (
    select j, json_keys(j) as keys
    from valid
    where json_type(j) = 'OBJECT'
)

select json_extract(j, $paths) as v
from objects
where len(keys) = len(list_distinct(keys))
