-- name: stored_tuple_matches
-- grain: inserts one maybe row per stored event in the file's time range whose key hash is one of the file's hashes of keys without request_id (its rowid only)
-- params: $lo, $hi (the least and the greatest ts of the file's valid events without request_id)
-- Such a key holds ts: its duplicates have the same ts, so only the stored rows within the
-- file's time range are looked at, and zone maps skip the other row groups by time.
insert into maybe
select e.rowid as rid
from events e
semi join (select dkey from file_keys where with_id < n) s on e.dkey = s.dkey
where e.ts >= $lo and e.ts <= $hi
