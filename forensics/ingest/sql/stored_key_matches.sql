-- name: stored_key_matches
-- grain: one row per stored event whose key hash is one of the file's request_id key hashes (its rowid only)
-- params: none
-- A request_id may be stored with any ts, so every stored key hash is looked at.
create or replace temp table maybe as
select e.rowid as rid
from events e
semi join (select dkey from file_keys where with_id > 0) s on e.dkey = s.dkey
