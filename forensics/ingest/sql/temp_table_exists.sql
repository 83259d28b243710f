-- name: temp_table_exists
-- grain: one row: how many temp tables have this name (0 or 1)
-- params: $name (the table name)
select count(*)
from duckdb_tables()
where temporary and table_name = $name
