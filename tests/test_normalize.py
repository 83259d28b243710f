"""normalize.py: the fast timestamp cast agrees with the general SPEC §2.4 parser."""

from __future__ import annotations

import random

import duckdb

from forensics.normalize import FAST_TS, MACROS


def test_fast_timestamp_cast_equals_the_general_parser_on_its_whole_shape() -> None:
    # Every string FAST_TS admits is read by DuckDB's cast; the general path (regex split +
    # fx_ts_parts) must give the same instant, or NULL for both. The fields run past their
    # ranges (month 19, day 39, minute and second 69) so invalid dates are in the sample.
    rng = random.Random(7)
    texts = []
    for _ in range(20_000):
        frac = rng.choice(
            ["", "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 6)))]
        )
        sign, hh, mm = rng.choice("+-"), rng.randint(0, 17), rng.randint(0, 59)
        off = rng.choice(["Z", f"{sign}{hh:02d}:{mm:02d}", "+18:00", "-18:00"])
        texts.append(
            f"{rng.choice(['19', '20', '21'])}{rng.randint(0, 99):02d}-{rng.randint(0, 19):02d}-"
            f"{rng.randint(0, 39):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 69):02d}:"
            f"{rng.randint(0, 69):02d}{frac}{off}"
        )
    texts += [
        "2024-02-29T12:00:00Z",
        "2023-02-29T12:00:00Z",
        "2000-02-29T00:00:00+18:00",
        "1900-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2016-12-31T23:59:60Z",
    ]
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    con.execute(MACROS)
    con.execute("create table t (s varchar)")
    con.executemany("insert into t values (?)", [(t,) for t in texts])
    row = con.execute(
        "select count(*), count(*) filter (where fast is distinct from general), "
        "count(fast) from (select epoch_us(try_cast(s as timestamptz)) as fast, "
        "fx_ts_parts(fx_ts_split(s), null::varchar) as general from t "
        "where regexp_full_match(s, $re))",
        {"re": FAST_TS},
    ).fetchone()
    assert row is not None
    total, differ, valid = row
    assert total == len(texts)  # the sample is all of the fast shape
    assert differ == 0
    assert 0 < valid < total  # both valid and invalid instants were compared
