-- name: temp_tables
-- grain: one row per temp table of the connection (a failed file's, to be dropped)
-- params: none
select table_name
from duckdb_tables()
where temporary
order by table_name
