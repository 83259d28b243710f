"""The world of one chunk of users: households, devices, grants, and a normal day of traffic
(clips delivered to the members of their camera, taps, plays, logins, device-list views).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forensics.sample.constants import (
    APP_P,
    APPS,
    CACHE_NODES,
    DAY_END,
    DAY_START,
    DELIVERED,
    EVENTS_LIST,
    FAULTY_NODES,
    LOGIN,
    MS,
    NO_TIME,
    PLAYED,
    TAPPED,
    US,
    Arr,
)
from forensics.sample.records import Events, Grants, failure_status, rand_ms, success_status


@dataclass
class World:
    """Users, households, devices and grants of one chunk of users (gids lo..hi-1)."""

    chunk: int
    users: Arr  # user gids
    household: Arr  # household id per local user
    dev_gid: Arr
    dev_owner: Arr  # local user index
    dev_install: Arr
    mem_ptr: Arr  # CSR: valid members (owner first, then sharers) of each device
    mem_user: Arr  # local user indices
    grants: Grants


def device_gid(chunk: int, local: Arr) -> Arr:
    return np.int64(chunk) * (1 << 22) + local.astype(np.int64)


def build_world(rng: np.random.Generator, chunk: int, lo: int, hi: int) -> World:
    n = hi - lo
    sizes = rng.choice(np.arange(1, 6), size=n, p=[0.45, 0.30, 0.15, 0.07, 0.03])
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    household = np.repeat(np.arange(len(sizes)), sizes)[:n]
    hh_start = np.searchsorted(household, np.arange(len(sizes)))
    hh_size = np.bincount(household, minlength=len(sizes))
    pos = np.arange(n) - hh_start[household]
    # The first member of a household owns 1-4 cameras; others own 0-2 of their own.
    ndev = np.where(
        pos == 0,
        1 + rng.choice(4, n, p=[0.6, 0.25, 0.1, 0.05]),
        rng.choice(3, n, p=[0.7, 0.25, 0.05]),
    )
    owner = np.repeat(np.arange(n), ndev)
    nd = len(owner)
    if nd >= 1 << 22:
        raise ValueError("chunk too large")
    gid = device_gid(chunk, np.arange(nd))
    install = DAY_START - rand_ms(rng, 5 * 86_400, 3 * 365 * 86_400, nd)
    grants = Grants()
    owner_from = np.where(rng.random(nd) < 0.2, NO_TIME, install)
    grants.add(gid, lo + owner, np.where(rng.random(nd) < 0.1, 2, 0), owner_from)
    # Household members share each other's cameras (most of the time).
    h = household[owner]
    rep = np.repeat(np.arange(nd), hh_size[h])
    member = hh_start[h][rep] + (
        np.arange(len(rep)) - np.repeat(np.cumsum(hh_size[h]) - hh_size[h], hh_size[h])
    )
    keep = (member != owner[rep]) & (rng.random(len(rep)) < 0.8)
    sd, su = rep[keep], member[keep]
    span = np.maximum(DAY_START - 86_400 * US - install[sd], MS)
    share_from = install[sd] + (rng.random(len(sd)) * span).astype(np.int64) // MS * MS
    share_from = np.where(rng.random(len(sd)) < 0.1, NO_TIME, share_from)
    grants.add(gid[sd], lo + su, 1, share_from)
    # Long-expired shares (ex-partners, house-sitters): valid before the data, never after.
    ex = np.flatnonzero(rng.random(nd) < 0.02)
    # Entirely before the data (install is at least 5 days before it): never valid in it.
    ex_from = np.minimum(
        install[ex] + rand_ms(rng, 3600, 30 * 86_400, len(ex)), DAY_START - 3 * 86_400 * US
    )
    ex_to = np.minimum(
        ex_from + rand_ms(rng, 86_400, 200 * 86_400, len(ex)), DAY_START - 2 * 86_400 * US
    )
    grants.add(gid[ex], lo + rng.integers(0, n, len(ex)), 1, ex_from, ex_to)
    # Valid members per device: owner first, then sharers.
    m_dev = np.concatenate([np.arange(nd), sd])
    m_user = np.concatenate([owner, su])
    order = np.lexsort((np.concatenate([np.zeros(nd), np.ones(len(sd))]), m_dev))
    ptr = np.concatenate([[0], np.cumsum(np.bincount(m_dev, minlength=nd))])
    return World(
        chunk,
        np.arange(lo, hi, dtype=np.int64),
        household,
        gid,
        owner,
        install,
        ptr,
        m_user[order],
        grants,
    )


def _members(world: World, dev: Arr) -> tuple[Arr, Arr]:
    """(row index into `dev`, local member) for every valid member of each device."""
    counts = world.mem_ptr[dev + 1] - world.mem_ptr[dev]
    rep = np.repeat(np.arange(len(dev)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return rep, world.mem_user[world.mem_ptr[dev][rep] + np.arange(len(rep)) - first]


def random_nodes(rng: np.random.Generator, n: int) -> Arr:
    return rng.integers(0, len(CACHE_NODES), n)


def faulty_nodes(rng: np.random.Generator, n: int) -> Arr:
    return FAULTY_NODES[rng.choice(3, n, p=[0.5, 0.3, 0.2])]


def random_apps(rng: np.random.Generator, n: int) -> Arr:
    return rng.choice(len(APPS), n, p=APP_P)


class Clips:
    """Clip (camera event) gid allocator for a chunk."""

    def __init__(self, chunk: int) -> None:
        self.base = np.int64(chunk) << np.int64(36)
        self.next = 0

    def new(self, n: int) -> Arr:
        out = self.base + np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return out


def deliver_to_members(
    rng: np.random.Generator, world: World, dev: Arr, clips: Arr, t_clip: Arr, p: float = 0.93
) -> tuple[Events, Arr, Arr]:
    """Authorized deliveries of clips to their device's valid members, plus some taps/plays."""
    row, member = _members(world, dev)
    keep = rng.random(len(row)) < p
    row, member = row[keep], member[keep]
    n = len(row)
    ts = t_clip[row] + rand_ms(rng, 0.2, 3.0, n)
    fail = rng.random(n) < 0.012
    status, sfmt = success_status(rng, n)
    fstatus, ffmt = failure_status(rng, n)
    status = np.where(fail, fstatus, status)
    sfmt = np.where(fail, ffmt, sfmt)
    app = random_apps(rng, n)
    gdev, gclip, guser = world.dev_gid[dev[row]], clips[row], world.users[member]
    node = random_nodes(rng, n)
    delivered = Events.of(
        DELIVERED, guser, gdev, gclip, ts, status=status, status_fmt=sfmt, node=node, app=app
    )
    parts = [delivered]

    def follow(action: int, rows: Arr, t: Arr, **values: Any) -> Events:
        """Taps or plays of the clips delivered at `rows`, by the same users on the same app."""
        return Events.of(action, guser[rows], gdev[rows], gclip[rows], t, app=app[rows], **values)

    tap = np.flatnonzero(rng.random(n) < 0.08)
    t_tap = ts[tap] + MS * (300 + rng.exponential(480_000, len(tap)).astype(np.int64))
    node = random_nodes(rng, len(tap))  # drawn before the statuses: the same seed, the same data
    status = np.where(rng.random(len(tap)) < 0.005, 500, 0)
    parts.append(follow(TAPPED, tap, t_tap, node=node, status=status))
    play = tap[rng.random(len(tap)) < 0.35]
    t_play = t_tap[np.searchsorted(tap, play)] + rand_ms(rng, 0.5, 6, len(play))
    parts.append(follow(PLAYED, play, t_play, node=random_nodes(rng, len(play))))
    return Events.concat(parts), member, ts


def background(rng: np.random.Generator, world: World, clips: Clips) -> Events:
    """A normal day: clips delivered to their households, taps, plays, logins, list views."""
    nd = len(world.dev_gid)
    per_dev = rng.poisson(1.0, nd)
    dev = np.repeat(np.arange(nd), per_dev)
    gclips = clips.new(len(dev))
    # More motion (and clips) in the daytime: a mixture of uniform and a midday bump.
    frac = np.where(
        rng.random(len(dev)) < 0.6,
        rng.random(len(dev)),
        np.clip(rng.normal(0.55, 0.15, len(dev)), 0, 0.999),
    )
    t_clip = DAY_START + (frac * (DAY_END - DAY_START) / MS).astype(np.int64) * MS
    deliveries, _, _ = deliver_to_members(rng, world, dev, gclips, t_clip)
    n = len(world.users)
    nlog = rng.poisson(0.3, n)
    lu = np.repeat(np.arange(n), nlog)
    t_login = DAY_START + rng.integers(0, (DAY_END - DAY_START) // US, len(lu)) * US
    login = Events.make(
        len(lu),
        ts=t_login,
        action=LOGIN,
        user=world.users[lu],
        status=np.where(rng.random(len(lu)) < 0.03, 401, 0),
        app=random_apps(rng, len(lu)),
    )
    # Device-list views: a camera of the user's household (not always one they were granted).
    nlist = rng.poisson(0.3, n)
    vu = np.repeat(np.arange(n), nlist)
    dev_hh = world.household[world.dev_owner]  # non-decreasing: owners are in user order
    first = np.searchsorted(dev_hh, world.household[vu], side="left")
    count = np.searchsorted(dev_hh, world.household[vu], side="right") - first
    vdev = first + (rng.random(len(vu)) * count).astype(np.int64)
    t_list = DAY_START + rand_ms(rng, 0, 86_399, len(vu))
    views = Events.make(
        len(vu),
        ts=t_list,
        action=EVENTS_LIST,
        user=world.users[vu],
        device=world.dev_gid[vdev],
        node=random_nodes(rng, len(vu)),
        app=random_apps(rng, len(vu)),
    )
    return Events.concat([deliveries, login, views])
