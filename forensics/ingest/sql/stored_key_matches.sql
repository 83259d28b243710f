-- name: stored_key_matches
-- grain: one row per stored event whose key hash is one of the file's (its rowid only)
-- params: none
create or replace temp table maybe as
select e.rowid as rid
from events e
semi join file_keys s on e.dkey = s.dkey
