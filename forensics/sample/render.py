"""Rendering of generated events and grants: JSON lines (timestamps in every accepted style,
ids as strings or JSON numbers, optional fields) and Arrow tables for Parquet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.sample.constants import (
    ACTIONS,
    APPS,
    CACHE_NODES,
    DAY_START,
    EPOCH_MS,
    EPOCH_S,
    EPOCH_US,
    ISO_NS,
    ISO_NS9,
    ISO_OFF_MS,
    ISO_OFF_US,
    ISO_SPACE,
    ISO_Z_MS,
    ISO_Z_US,
    MINUTE,
    MS,
    NO_TIME,
    OFFSETS_MIN,
    SPECIAL_BASE,
    US,
    Arr,
)
from forensics.sample.ids import (
    Keys,
    const_cols,
    digit_cols,
    fixed_width,
    iso_cols,
    join_text,
    quote_json,
    take_pool,
)
from forensics.sample.records import Events


def _ts_json(ts: Arr, style: Arr, rng: np.random.Generator) -> pa.Array:
    """JSON fragments for timestamps in the requested styles (falls back where exactness needs)."""
    style = style.copy()
    precise = ts % MS != 0
    style[precise & (style == ISO_Z_MS)] = ISO_Z_US
    style[precise & (style == ISO_OFF_MS)] = ISO_OFF_US
    style[precise & np.isin(style, [EPOCH_MS, EPOCH_S])] = EPOCH_US
    style[(ts % US != 0) & (style == EPOCH_S)] = EPOCH_MS
    n = len(ts)
    order: list[Arr] = []
    frags: list[pa.Array] = []
    for s in np.unique(style):
        idx = np.flatnonzero(style == s)
        t = ts[idx]
        m = len(idx)
        if s in (ISO_Z_MS, ISO_Z_US, ISO_NS, ISO_NS9):
            frac = 3 if s == ISO_Z_MS else 6
            cols = [const_cols('"', m), iso_cols(t, frac)]
            if s == ISO_NS:
                cols.append(digit_cols(rng.integers(0, 1000, m), 3))
            if s == ISO_NS9:
                cols.append(const_cols("999", m))
            frag = fixed_width(np.hstack([*cols, const_cols('Z"', m)]))
        elif s in (ISO_OFF_MS, ISO_OFF_US):
            off = OFFSETS_MIN[rng.integers(0, len(OFFSETS_MIN), m)]
            local = t + off * MINUTE
            sign = np.where(off < 0, ord("-"), ord("+")).astype(np.uint8)[:, None]
            a = np.abs(off)
            frag = fixed_width(
                np.hstack(
                    [
                        const_cols('"', m),
                        iso_cols(local, 3 if s == ISO_OFF_MS else 6),
                        sign,
                        digit_cols(a // 60, 2),
                        const_cols(":", m),
                        digit_cols(a % 60, 2),
                        const_cols('"', m),
                    ]
                )
            )
        elif s == ISO_SPACE:  # no zone (UTC), space separator, trimmed fraction
            text = fixed_width(iso_cols(t, 6, sep=" "))
            text = pc.utf8_rtrim(pc.utf8_rtrim(text, characters="0"), characters=".")
            frag = quote_json(text)
        else:
            div = {EPOCH_MS: MS, EPOCH_S: US, EPOCH_US: 1}[int(s)]
            frag = pc.cast(pa.array(t // div), pa.large_string())
        order.append(idx)
        frags.append(frag)
    inverse = np.empty(n, dtype=np.int64)
    inverse[np.concatenate(order)] = np.arange(n)
    return pa.concat_arrays([f.cast(pa.large_string()) for f in frags]).take(pa.array(inverse))


def optional_field(key: str, present: Arr, value: pa.Array) -> pa.Array:
    """`,"key":value` where present, else empty."""
    return pc.if_else(pa.array(present), join_text(f',"{key}":', value), "")


def event_lines(
    ev: Events,
    keys: Keys,
    req_text: pa.Array,
    styles: Arr,
    p_user_num: float,
    rng: np.random.Generator,
) -> pa.Array:
    c = ev.cols
    n = ev.n
    user_text = keys.user_text(c["user"])
    user_num = keys.legacy_user_mask(c["user"]) & (
        (rng.random(n) < p_user_num) | (c["user"] >= SPECIAL_BASE)
    )
    user = pc.if_else(pa.array(user_num), user_text, quote_json(user_text))
    has_dev = c["device"] >= 0
    dev_text = keys.device_text(np.maximum(c["device"], 0))
    dev_num = keys.legacy_device_mask(np.maximum(c["device"], 0)) & (rng.random(n) < p_user_num)
    dev = pc.if_else(pa.array(dev_num), dev_text, quote_json(dev_text))
    has_clip = c["clip"] >= 0
    clip = quote_json(keys.clip_text(np.maximum(c["clip"], 0)))
    rq = c["req_fmt"]
    req = pc.if_else(
        pa.array(rq == 2), '""', pc.if_else(pa.array(rq == 3), "null", quote_json(req_text))
    )
    st, sf = c["status"], c["status_fmt"]
    status_text = pc.cast(pa.array(st.astype(np.int64)), pa.large_string())
    status = pc.if_else(
        pa.array(sf == 2),
        "null",
        pc.if_else(pa.array(sf == 1), quote_json(status_text), status_text),
    )
    node = quote_json(take_pool(CACHE_NODES, np.maximum(c["node"], 0)))
    app = quote_json(take_pool(APPS, c["app"]))
    action = quote_json(take_pool(ACTIONS, c["action"]))
    return join_text(
        '{"ts":',
        _ts_json(c["ts"], styles, rng),
        ',"action":',
        action,
        ',"user_id":',
        user,
        optional_field("device_id", has_dev, dev),
        optional_field("event_id", has_clip, clip),
        optional_field("request_id", rq != 1, req),
        optional_field("status", (st != 0) | (sf == 2), status),
        optional_field("cache_node", c["node"] >= 0, node),
        ',"app":',
        app,
        "}",
    )


def event_table(ev: Events, keys: Keys, req_text: pa.Array, unit: str, tz: str | None) -> pa.Table:
    c = ev.cols
    ts = c["ts"] if unit == "us" else c["ts"] // MS
    rq = c["req_fmt"]
    null = pa.scalar(None, pa.large_string())
    req = pc.if_else(pa.array(rq == 0), req_text, pc.if_else(pa.array(rq == 2), "", null))
    st = c["status"].astype(np.int32)
    return pa.table(
        {
            "ts": pa.array(ts, pa.timestamp(unit, tz=tz)),
            "action": take_pool(ACTIONS, c["action"]).cast(pa.string()),
            "user_id": keys.user_text(c["user"]).cast(pa.string()),
            "device_id": pc.if_else(
                pa.array(c["device"] >= 0), keys.device_text(np.maximum(c["device"], 0)), None
            ).cast(pa.string()),
            "event_id": pc.if_else(
                pa.array(c["clip"] >= 0), keys.clip_text(np.maximum(c["clip"], 0)), None
            ).cast(pa.string()),
            "request_id": req.cast(pa.string()),
            "status": pa.array(st, pa.int32(), mask=st == 0),
            "cache_node": pc.if_else(
                pa.array(c["node"] >= 0), take_pool(CACHE_NODES, np.maximum(c["node"], 0)), None
            ).cast(pa.string()),
            "app": take_pool(APPS, c["app"]).cast(pa.string()),
        }
    )


def pick_styles(
    rng: np.random.Generator, n: int, choices: Sequence[int], p: Sequence[float]
) -> Arr:
    return np.asarray(choices)[rng.choice(len(choices), n, p=p)]


# ---------------------------------------------------------------- grants


def _iso_or_null(t: Arr, rng: np.random.Generator) -> pa.Array:
    styles = pick_styles(
        rng, len(t), [ISO_Z_MS, ISO_OFF_MS, EPOCH_MS, ISO_Z_US], [0.6, 0.2, 0.1, 0.1]
    )
    frag = _ts_json(np.where(t == NO_TIME, DAY_START, t), styles, rng)
    return pc.if_else(pa.array(t == NO_TIME), "null", frag)


def grant_lines(g: dict[str, Arr], keys: Keys, rng: np.random.Generator) -> pa.Array:
    n = len(g["device"])
    ut = keys.user_text(g["user"])
    unum = keys.legacy_user_mask(g["user"]) & ((rng.random(n) < 0.5) | (g["user"] >= SPECIAL_BASE))
    dt = keys.device_text(g["device"])
    dnum = keys.legacy_device_mask(g["device"]) & (rng.random(n) < 0.5)
    role = quote_json(take_pool(("owner", "shared", "owner"), g["role"]))
    omit_from = (g["valid_from"] == NO_TIME) & (rng.random(n) < 0.5)
    omit_to = (g["valid_to"] == NO_TIME) & (rng.random(n) < 0.7)
    return join_text(
        '{"device_id":',
        pc.if_else(pa.array(dnum), dt, quote_json(dt)),
        ',"user_id":',
        pc.if_else(pa.array(unum), ut, quote_json(ut)),
        optional_field("role", g["role"] != 2, role),
        optional_field("valid_from", ~omit_from, _iso_or_null(g["valid_from"], rng)),
        optional_field("valid_to", ~omit_to, _iso_or_null(g["valid_to"], rng)),
        "}",
    )


def grant_table(g: dict[str, Arr], keys: Keys) -> pa.Table:
    def ts(v: Arr) -> pa.Array:
        return pa.array(v, pa.timestamp("us", tz="UTC"), mask=v == NO_TIME)

    return pa.table(
        {
            "device_id": keys.device_text(g["device"]).cast(pa.string()),
            "user_id": keys.user_text(g["user"]).cast(pa.string()),
            "role": pa.array(
                np.array(["owner", "shared", ""])[g["role"]], pa.string(), mask=g["role"] == 2
            ),
            "valid_from": ts(g["valid_from"]),
            "valid_to": ts(g["valid_to"]),
        }
    )


def select_rows(g: dict[str, Arr], mask: Arr) -> dict[str, Arr]:
    return {k: v[mask] for k, v in g.items()}
