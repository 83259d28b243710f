-- name: stage_held
-- grain: inserts one stage row per held record (a batch that had no JSON object), rejected
-- params: $limit (most characters of raw text kept)
insert into stage (rec, err, raw)
select rec,
       coalesce(pre_err, case when t is null then 'malformed JSON' else 'not a JSON object' end),
       left(rtrim(raw, chr(13) || chr(10)), $limit)
from temp.held
