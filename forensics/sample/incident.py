"""The incident and every trap of SPEC §2-5, planted in chunk 0.

Counts are exact by construction: RECIPIENTS recipients and TAPPERS tappers for any seed and
scale (see `Incident`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from forensics.sample.constants import (
    ANY_JSON,
    DAY_START,
    DELIVERED,
    EPOCH_MS,
    EPOCH_US,
    EVENTS_LIST,
    FREE,
    ISO_NS9,
    ISO_OFF_MS,
    ISO_OFF_US,
    ISO_SPACE,
    ISO_Z_MS,
    ISO_Z_US,
    MIN_USERS,
    MINUTE,
    MS,
    PLAYED,
    SPECIAL_BASE,
    TAPPED,
    US,
    WINDOW_END,
    WINDOW_START,
    Arr,
)
from forensics.sample.ids import Keys
from forensics.sample.records import Events, Grants, failure_status, rand_ms, success_status
from forensics.sample.world import (
    Clips,
    World,
    deliver_to_members,
    device_gid,
    faulty_nodes,
    random_apps,
    random_nodes,
)


@dataclass(frozen=True)
class _Delivered:
    """The plain recipients' cross-account deliveries, one row each (users as local indices)."""

    gid: Arr  # user gids
    user: Arr  # local user indices
    gdev: Arr
    clip: Arr
    t1: Arr
    first: Arr  # the first non-boundary row of each user
    by_user: dict[int, int]  # local user -> that row

    def rows_of(self, users: Arr) -> Arr:
        return np.array([self.by_user[int(u)] for u in users])


class Incident:
    """Plants the incident and every trap in chunk 0; counts are exact by construction.

    Recipients: 12,831 plain + 96 revoked sharers + 48 previous owners + 24 late sharers + 1
    (the 2^53 + 1 id) = 13,000. Tappers: 1,443 plain + 40 + 20 + 1 = 1,504.
    """

    N_PLAIN = 12_831
    N_REVOKED_AFTER, N_REVOKED_EXACT, N_REVOKED_BEFORE, N_REVOKED_BEFORE_TAP = 96, 8, 40, 10
    N_TRANSFER_AFTER, N_TRANSFER_EXACT, N_TRANSFER_BEFORE, N_NEW_OWNER_EXACT = 48, 5, 30, 5
    N_LATE_SHARE = 24
    N_TAP_PLAIN, N_TAP_REVOKED, N_TAP_TRANSFER = 1_443, 40, 20
    N_LATE_ONLY, N_TIE, N_VIEWERS, N_PLAY_ONLY = 131, 9, 187, 6
    N_TAP_BEFORE, N_TAP_FAILED, N_TAP_UNDELIVERED = 41, 57, 23
    N_FAILED, N_FAILED_TAP = 212, 31
    N_OUTSIDE, N_OUTSIDE_AT_END, N_OUTSIDE_BEFORE_START = 37, 4, 3
    N_TAIL = 60
    N_GRANT_START = 10
    N_LIST_NOISE = 50
    N_NO_ACCOUNT = 37

    def __init__(self, rng: np.random.Generator, world: World, clips: Clips) -> None:
        self.rng, self.world, self.clips = rng, world, clips
        self.parts: list[Events] = []
        self.grants = Grants()
        self.traps: dict[str, int] = {}
        self.next_device = len(world.dev_gid)
        n = len(world.users)
        if n < MIN_USERS:
            raise ValueError("the incident needs MIN_USERS users in chunk 0")
        self.order = rng.permutation(n)
        self.taken = 0
        self.no_account: Arr = np.zeros(0, dtype=np.int64)
        self.hostile_users: Arr = np.zeros(0, dtype=np.int64)
        self.victim_devices: Arr = np.zeros(0, dtype=np.int64)
        self.recipient_locals: Arr = np.zeros(0, dtype=np.int64)

    # -- helpers

    def users(self, k: int) -> Arr:
        """k distinct local users not used by any other role."""
        out = self.order[self.taken : self.taken + k]
        self.taken += k
        return out

    def gid(self, local: Arr) -> Arr:
        return self.world.users[local]

    def add(
        self, action: int, users: Arr, dev_gid: Arr, clips: Arr, ts: Arr, **values: Any
    ) -> None:
        values.setdefault("app", random_apps(self.rng, len(users)))
        self.parts.append(Events.of(action, users, dev_gid, clips, ts, **values))

    def new_devices(self, k: int) -> Arr:
        local = np.arange(self.next_device, self.next_device + k)
        self.next_device += k
        return device_gid(0, local)

    def window_times(self, k: int, lo: int = WINDOW_START, hi: int = WINDOW_END) -> Arr:
        """Instants in [lo, hi), whole ms, shaped like a recovery: a fast rise, a long tail."""
        frac = self.rng.beta(1.6, 2.6, k)
        return lo + (frac * ((hi - lo) // MS)).astype(np.int64) * MS

    def foreign_devices(self, local_users: Arr) -> Arr:
        """Background devices of another household than each user's (so never granted)."""
        w, rng = self.world, self.rng
        nd = len(w.dev_gid)
        dev = rng.integers(0, nd, len(local_users))
        while True:
            bad = np.flatnonzero(w.household[w.dev_owner[dev]] == w.household[local_users])
            if len(bad) == 0:
                return dev
            dev[bad] = rng.integers(0, nd, len(bad))

    def victim_clips(self, dev: Arr, t1: Arr) -> Arr:
        """New clips of background devices, delivered to their members just before t1."""
        gclips = self.clips.new(len(dev))
        t_clip = t1 - rand_ms(self.rng, 0.3, 4.0, len(dev))
        ev, _, _ = deliver_to_members(self.rng, self.world, dev, gclips, t_clip, p=0.97)
        self.parts.append(ev)
        return gclips

    def cross(
        self, users: Arr, dev_gid: Arr, clips: Arr, ts: Arr, *, failed: bool = False, **extra: Any
    ) -> None:
        """Deliveries of other people's clips through the faulty cache nodes."""
        n = len(users)
        status, sfmt = (failure_status if failed else success_status)(self.rng, n)
        extra.setdefault("status", status)
        extra.setdefault("status_fmt", sfmt)
        self.add(DELIVERED, users, dev_gid, clips, ts, node=faulty_nodes(self.rng, n), **extra)

    def act(self, action: int, users: Arr, dev_gid: Arr, clips: Arr, ts: Arr, **extra: Any) -> None:
        n = len(users)
        extra.setdefault("node", random_nodes(self.rng, n))
        self.add(action, users, dev_gid, clips, ts, **extra)

    def owned_device(self, owners_local: Arr, owner_from: Arr | None = None) -> Arr:
        """A new camera for each owner (outside any household sharing)."""
        k = len(owners_local)
        dev = self.new_devices(k)
        install = DAY_START - rand_ms(self.rng, 30 * 86_400, 900 * 86_400, k)
        frm = install if owner_from is None else owner_from
        self.grants.add(dev, self.gid(owners_local), np.where(self.rng.random(k) < 0.3, 2, 0), frm)
        return dev

    def deliver(self, users_gid: Arr, dev: Arr, clips: Arr, ts: Arr) -> None:
        status, sfmt = success_status(self.rng, len(users_gid))
        self.act(DELIVERED, users_gid, dev, clips, ts, status=status, status_fmt=sfmt)

    # -- the incident

    def build(self) -> None:
        plain = self.users(self.N_PLAIN)
        revoked_after = self.users(self.N_REVOKED_AFTER)
        transfer_after = self.users(self.N_TRANSFER_AFTER)
        late_share = self.users(self.N_LATE_SHARE)
        self.recipient_locals = np.concatenate([plain, revoked_after, transfer_after, late_share])
        self.plain_recipients(plain)
        self.revoked_shares(revoked_after)
        self.transfers(transfer_after)
        self.late_shares(late_share)
        self.big_ids()
        self.failed_deliveries()
        self.outside_window()
        self.grant_starts()
        self.list_noise()
        rng = self.rng
        self.no_account = rng.choice(self.recipient_locals, self.N_NO_ACCOUNT, replace=False)
        # Hostile names: some recipients and some owners of exposed cameras.
        owners = np.unique(self.world.dev_owner[self.victim_devices[:50]])
        self.hostile_users = np.concatenate(
            [rng.choice(plain, 4, replace=False), rng.permutation(owners)[:3]]
        )
        self.traps["recipients_without_account"] = self.N_NO_ACCOUNT

    def plain_recipients(self, plain: Arr) -> None:
        """The bulk of recipients: other people's clips through the faulty cache nodes."""
        rest = plain[5:]
        d = self._plain_deliveries(plain)
        pool, retries = self._plain_taps(d, rest)
        self._plain_non_tapper_traps(d, pool, retries)
        self._tail(rest)

    def _plain_deliveries(self, plain: Arr) -> _Delivered:
        rng = self.rng
        # 3 receive their only cross-account thumbnail at exactly the window start, 2 at the
        # last microsecond of the window (written with 9 fraction digits, which truncate).
        at_start, at_end_ns, rest = plain[:3], plain[3:5], plain[5:]
        pairs_per = np.where(rng.random(len(rest)) < 0.15, 2, 1)
        pair_user = np.concatenate([at_start, at_end_ns, np.repeat(rest, pairs_per)])
        pair_dev = self.foreign_devices(pair_user)
        self.victim_devices = pair_dev
        clips_per = np.concatenate(
            [[1] * 5, rng.choice([1, 2, 3], len(pair_user) - 5, p=[0.7, 0.22, 0.08])]
        )
        d_user = np.repeat(pair_user, clips_per)
        d_dev = np.repeat(pair_dev, clips_per)
        t1 = self.window_times(len(d_user))
        t1[:3] = WINDOW_START
        t1[3:5] = WINDOW_END - 1
        d_clip = self.victim_clips(d_dev, t1)
        ts_fmt = np.full(len(d_user), -1)
        ts_fmt[:5] = [EPOCH_MS, ISO_OFF_MS, ISO_Z_MS, ISO_NS9, ISO_NS9]
        dest = np.full(len(d_user), FREE)
        dest[:5] = ANY_JSON
        gdev = self.world.dev_gid[d_dev]
        self.cross(self.gid(d_user), gdev, d_clip, t1, ts_fmt=ts_fmt, dest=dest)
        self.traps.update(
            {"deliveries_at_window_start": 3, "deliveries_in_last_microsecond_nanosecond_text": 2}
        )
        # One delivery row per recipient to act on (taps, plays); never the boundary ones.
        first = np.unique(d_user[5:], return_index=True)[1] + 5
        by_user = {int(u): int(i) for u, i in zip(d_user[first], first, strict=True)}
        return _Delivered(self.gid(d_user), d_user, gdev, d_clip, t1, first, by_user)

    def _plain_taps(self, d: _Delivered, rest: Arr) -> tuple[Arr, int]:
        """Tappers (some only after the window, some at the delivery instant), their retries
        after a failed tap, second taps and plays.

        Returns the recipients left to be non-tappers, and the number of retries.
        """
        rng = self.rng
        pool = rng.permutation(rest)
        tappers, pool = pool[: self.N_TAP_PLAIN], pool[self.N_TAP_PLAIN :]
        row = d.rows_of(tappers)
        late_only, tie = (
            row[: self.N_LATE_ONLY],
            row[self.N_LATE_ONLY : self.N_LATE_ONLY + self.N_TIE],
        )
        normal = row[self.N_LATE_ONLY + self.N_TIE :]
        t1 = d.t1
        t2 = np.concatenate(
            [
                WINDOW_END + rand_ms(rng, 20, 3 * 3600, len(late_only)),
                t1[tie],
                t1[normal] + MS * (1000 + rng.exponential(45_000, len(normal)).astype(np.int64)),
            ]
        )
        rows = np.concatenate([late_only, tie, normal])
        # 8% retry after a failed first attempt.
        retry = rng.random(len(rows)) < 0.08
        fs, ffmt = failure_status(rng, int(retry.sum()))
        r = rows[retry]
        t_retry = t2[retry] - rand_ms(rng, 0.5, 4, int(retry.sum()))
        self.act(TAPPED, d.gid[r], d.gdev[r], d.clip[r], t_retry, status=fs, status_fmt=ffmt)
        self.act(TAPPED, d.gid[rows], d.gdev[rows], d.clip[rows], t2)
        self.traps["late_taps_after_window"] = int((t2 >= WINDOW_END).sum())
        self.traps["tappers_only_after_window"] = self.N_LATE_ONLY
        self.traps["taps_at_delivery_instant"] = self.N_TIE
        # Some of them tap a second thumbnail they received.
        second = np.setdiff1d(np.arange(5, len(d.user)), d.first)
        second = second[np.isin(d.user[second], d.user[normal])]
        second = second[rng.random(len(second)) < 0.5]
        t_second = t1[second] + rand_ms(rng, 2, 300, len(second))
        self.act(TAPPED, d.gid[second], d.gdev[second], d.clip[second], t_second)
        # Some play the video (in some instances), after their tap.
        view = rng.choice(len(rows), self.N_VIEWERS, replace=False)
        v = rows[view]
        t_view = t2[view] + rand_ms(rng, 1, 15, len(view))
        self.act(PLAYED, d.gid[v], d.gdev[v], d.clip[v], t_view)
        return pool, int(retry.sum())

    def _plain_non_tapper_traps(self, d: _Delivered, pool: Arr, retries: int) -> None:
        """Traps on the non-tapping recipients: none of these is a cross-account tap."""
        rng = self.rng
        k = 0

        def take(m: int) -> Arr:
            nonlocal k
            out = d.rows_of(pool[k : k + m])
            k += m
            return out

        r = take(self.N_PLAY_ONLY)  # played straight from a notification: viewers, not tappers
        t = d.t1[r] + rand_ms(rng, 2, 60, len(r))
        self.act(PLAYED, d.gid[r], d.gdev[r], d.clip[r], t)
        r = take(self.N_TAP_BEFORE)  # tap logged before its delivery (clock skew): not linked
        t = d.t1[r] - rand_ms(rng, 2, 90, len(r))
        self.act(TAPPED, d.gid[r], d.gdev[r], d.clip[r], t)
        r = take(self.N_TAP_FAILED)  # the tap failed or was blocked
        fs, ffmt = failure_status(rng, len(r))
        t = d.t1[r] + rand_ms(rng, 1, 120, len(r))
        self.act(TAPPED, d.gid[r], d.gdev[r], d.clip[r], t, status=fs, status_fmt=ffmt)
        r = take(self.N_TAP_UNDELIVERED)  # a tap on someone else's clip never delivered to them
        other_dev = self.foreign_devices(d.user[r])
        t_o = self.window_times(len(r))
        other_clip = self.victim_clips(other_dev, t_o)
        t = t_o + rand_ms(rng, 5, 600, len(r))
        self.act(TAPPED, d.gid[r], self.world.dev_gid[other_dev], other_clip, t)
        self.traps.update(
            {
                "plays_without_tap": self.N_PLAY_ONLY,
                "taps_before_their_delivery": self.N_TAP_BEFORE,
                "failed_taps_by_non_tappers": self.N_TAP_FAILED,
                "taps_on_clips_never_delivered": self.N_TAP_UNDELIVERED,
                "failed_tap_retries_by_tappers": retries,
            }
        )

    def _tail(self, rest: Arr) -> None:
        """Some recipients also get a cross-account thumbnail just after the window (a check
        on the window); nobody taps those."""
        rng = self.rng
        tail = rng.choice(rest, self.N_TAIL, replace=False)
        tdev = self.foreign_devices(tail)
        tt = WINDOW_END + rand_ms(rng, 1, 40 * 60, len(tail))
        self.cross(self.gid(tail), self.world.dev_gid[tdev], self.victim_clips(tdev, tt), tt)
        self.traps["recipients_with_delivery_after_window"] = self.N_TAIL

    def revoked_shares(self, after: Arr) -> None:
        """Shares revoked during the window; the stale cache kept serving some sharers."""
        rng = self.rng
        before = self.users(self.N_REVOKED_BEFORE)
        sharers = np.concatenate([after, before])
        k = len(sharers)
        owners = self.users(k)
        dev = self.owned_device(owners)
        t_rev = self.window_times(k, WINDOW_START + 20 * MINUTE, WINDOW_END - 20 * MINUTE)
        share_from = DAY_START - rand_ms(rng, 86_400, 400 * 86_400, k)
        self.grants.add(dev, self.gid(sharers), 1, share_from, t_rev)
        gs, go = self.gid(sharers), self.gid(owners)
        # Before revocation: both owner and sharer get clips (authorized).
        c0 = self.clips.new(k)
        t0 = t_rev - rand_ms(rng, 60, 90 * 60, k)
        self.deliver(go, dev, c0, t0 + rand_ms(rng, 0.2, 2, k))
        self.deliver(gs, dev, c0, t0 + rand_ms(rng, 0.2, 2, k))
        # After: the owner always; the first group's sharers too, via the faulty nodes.
        c1 = self.clips.new(k)
        na = len(after)
        t1 = t_rev + np.minimum(rand_ms(rng, 1, 40 * 60, k), WINDOW_END - t_rev - MS) // MS * MS
        t1[: self.N_REVOKED_EXACT] = t_rev[: self.N_REVOKED_EXACT]  # at valid_to: not authorized
        self.deliver(go, dev, c1, t1 - rand_ms(rng, 0.2, 1, k))
        self.cross(gs[:na], dev[:na], c1[:na], t1[:na])
        tap = rng.choice(na, self.N_TAP_REVOKED, replace=False)
        self.act(TAPPED, gs[tap], dev[tap], c1[tap], t1[tap] + rand_ms(rng, 1, 600, len(tap)))
        # Some of the second group tap the clip they legitimately got, after the revocation.
        b = np.arange(na, na + self.N_REVOKED_BEFORE_TAP)
        self.act(TAPPED, gs[b], dev[b], c0[b], t_rev[b] + rand_ms(rng, 1, 600, len(b)))
        self.traps.update(
            {
                "shares_revoked_in_window": k,
                "revoked_sharers_served_after_revocation": na,
                "deliveries_at_revocation_instant": self.N_REVOKED_EXACT,
                "revoked_sharers_served_only_before": len(before),
                "taps_after_revocation_on_clip_delivered_before": len(b),
            }
        )

    def transfers(self, after: Arr) -> None:
        """Cameras sold/given during the window; some previous owners kept receiving clips."""
        rng = self.rng
        before = self.users(self.N_TRANSFER_BEFORE)
        old = np.concatenate([after, before])
        k = len(old)
        new = self.users(k)
        dev = self.new_devices(k)
        t_x = self.window_times(k, WINDOW_START + 20 * MINUTE, WINDOW_END - 20 * MINUTE)
        install = DAY_START - rand_ms(rng, 30 * 86_400, 900 * 86_400, k)
        self.grants.add(dev, self.gid(old), 0, install, t_x)
        self.grants.add(dev, self.gid(new), np.where(rng.random(k) < 0.3, 2, 0), t_x)
        g_old, g_new = self.gid(old), self.gid(new)
        c0 = self.clips.new(k)
        t0 = t_x - rand_ms(rng, 60, 90 * 60, k)
        self.deliver(g_old, dev, c0, t0)
        c1 = self.clips.new(k)
        t1 = t_x + np.minimum(rand_ms(rng, 1, 40 * 60, k), WINDOW_END - t_x - MS) // MS * MS
        na = len(after)
        t1[: self.N_TRANSFER_EXACT] = t_x[: self.N_TRANSFER_EXACT]
        t_new = t1.copy()
        t_new[na : na + self.N_NEW_OWNER_EXACT] = t_x[na : na + self.N_NEW_OWNER_EXACT]
        self.deliver(g_new, dev, c1, t_new)
        self.cross(g_old[:na], dev[:na], c1[:na], t1[:na])
        tap = rng.choice(na, self.N_TAP_TRANSFER, replace=False)
        self.act(TAPPED, g_old[tap], dev[tap], c1[tap], t1[tap] + rand_ms(rng, 1, 600, len(tap)))
        self.traps.update(
            {
                "ownership_transfers_in_window": k,
                "previous_owners_served_after_transfer": na,
                "deliveries_to_previous_owner_at_transfer_instant": self.N_TRANSFER_EXACT,
                "deliveries_to_new_owner_at_transfer_instant": self.N_NEW_OWNER_EXACT,
            }
        )

    def late_shares(self, users: Arr) -> None:
        """Invited to a camera after its clip reached them by mistake; they tap once invited."""
        rng = self.rng
        k = len(users)
        owners = self.users(k)
        dev = self.owned_device(owners)
        g, go = self.gid(users), self.gid(owners)
        c = self.clips.new(k)
        t1 = self.window_times(k, WINDOW_START + 10 * MINUTE, WINDOW_END - 70 * MINUTE)
        self.deliver(go, dev, c, t1 - rand_ms(rng, 0.2, 2, k))
        self.cross(g, dev, c, t1)
        t_grant = t1 + rand_ms(rng, 5 * 60, 30 * 60, k)
        self.grants.add(dev, g, 1, t_grant)
        self.act(TAPPED, g, dev, c, t_grant + rand_ms(rng, 60, 20 * 60, k))  # authorized by then
        c2 = self.clips.new(k)
        t2 = t_grant + rand_ms(rng, 60, 30 * 60, k)
        self.deliver(go, dev, c2, t2)
        self.deliver(g, dev, c2, t2 + rand_ms(rng, 0.2, 2, k))
        self.traps["taps_authorized_by_a_share_granted_after_delivery"] = k

    def big_ids(self) -> None:
        """Users 2**53 (owner) and 2**53 + 1 (recipient, tapper): equal once read as doubles."""
        owner, other = np.array([SPECIAL_BASE]), np.array([SPECIAL_BASE + 1])
        dev = self.new_devices(1)
        self.grants.add(dev, owner, 0, DAY_START - 200 * 86_400 * US)
        c = self.clips.new(2)
        t = np.sort(self.window_times(2, hi=WINDOW_END - 10 * MINUTE))
        self.deliver(np.repeat(owner, 2), np.repeat(dev, 2), c, t)
        self.cross(other, dev, c[:1], t[:1] + 700 * MS, dest=ANY_JSON, status=0, status_fmt=0)
        self.act(TAPPED, other, dev, c[:1], t[:1] + 9_000 * MS, dest=ANY_JSON)
        self.traps["recipient_id_2_53_plus_1_next_to_owner_2_53"] = 1

    def failed_deliveries(self) -> None:
        """Cross-account deliveries that failed or were blocked: not accesses, not counted."""
        rng = self.rng
        users = self.users(self.N_FAILED)
        per = np.where(rng.random(len(users)) < 0.2, 2, 1)
        u = np.repeat(users, per)
        dev = self.foreign_devices(u)
        t1 = self.window_times(len(u))
        c = self.victim_clips(dev, t1)
        self.cross(self.gid(u), self.world.dev_gid[dev], c, t1, failed=True)
        first = np.unique(u, return_index=True)[1][: self.N_FAILED_TAP]
        self.act(
            TAPPED,
            self.gid(u[first]),
            self.world.dev_gid[dev[first]],
            c[first],
            t1[first] + rand_ms(rng, 2, 300, len(first)),
        )
        self.traps.update(
            {
                "users_with_only_failed_cross_account_deliveries": len(users),
                "failed_cross_account_deliveries": len(u),
                "successful_taps_after_failed_delivery": len(first),
            }
        )

    def outside_window(self) -> None:
        """Cross-account deliveries only just outside the window, at both edges."""
        rng = self.rng
        users = self.users(self.N_OUTSIDE)
        n = len(users)
        dev = self.foreign_devices(users)
        t = np.where(
            rng.random(n) < 0.5,
            WINDOW_START - rand_ms(rng, 1, 40 * 60, n),
            WINDOW_END + rand_ms(rng, 0, 40 * 60, n),
        )
        a, b = self.N_OUTSIDE_AT_END, self.N_OUTSIDE_AT_END + self.N_OUTSIDE_BEFORE_START
        t[:a] = WINDOW_END
        t[a:b] = WINDOW_START - 1
        ts_fmt = np.full(n, -1)
        ts_fmt[:b] = [ISO_OFF_MS, ISO_Z_MS, EPOCH_MS, ISO_SPACE, ISO_Z_US, ISO_OFF_US, EPOCH_US]
        dest = np.where(np.arange(n) < b, ANY_JSON, FREE)
        c = self.victim_clips(dev, t)
        self.cross(self.gid(users), self.world.dev_gid[dev], c, t, ts_fmt=ts_fmt, dest=dest)
        self.traps.update(
            {
                "users_with_cross_account_deliveries_only_outside_window": n,
                "deliveries_at_window_end": a,
                "deliveries_one_microsecond_before_window_start": b - a,
            }
        )

    def grant_starts(self) -> None:
        """New shares starting in the window, first clip delivered at exactly valid_from."""
        users = self.users(self.N_GRANT_START)
        owners = self.users(self.N_GRANT_START)
        k = len(users)
        dev = self.owned_device(owners)
        t_g = self.window_times(k)
        self.grants.add(dev, self.gid(users), 1, t_g)
        c = self.clips.new(k)
        self.deliver(self.gid(owners), dev, c, t_g - 800 * MS)
        self.deliver(self.gid(users), dev, c, t_g)
        self.traps["deliveries_at_share_valid_from"] = k

    def list_noise(self) -> None:
        """Device-list views of other people's cameras: not an analysed action."""
        users = self.users(self.N_LIST_NOISE)
        dev = self.foreign_devices(users)
        self.act(
            EVENTS_LIST,
            self.gid(users),
            self.world.dev_gid[dev],
            np.full(len(users), -1),
            self.window_times(len(users)),
        )
        self.traps["events_list_of_other_peoples_cameras"] = len(users)

    def malformed_lines(self, keys: Keys) -> list[str]:
        """Lines that ingest must reject; each would add a recipient if it were accepted."""
        users = self.users(12)
        ut = keys.user_text(self.gid(users)).to_pylist()
        dev = self.foreign_devices(users)
        dt = keys.device_text(self.world.dev_gid[dev]).to_pylist()
        ct = keys.clip_text(self.clips.new(len(users))).to_pylist()
        t = "2024-02-16T10:4{}:1{}.250Z"

        def rec(i: int, **over: Any) -> dict[str, Any]:
            r: dict[str, Any] = {
                "ts": t.format(i % 10, i % 10),
                "action": "thumbnail_delivered",
                "user_id": ut[i],
                "device_id": dt[i],
                "event_id": ct[i],
                "cache_node": "cache-12",
                "app": "android/7.2.0",
            }
            r.update(over)
            return r

        def dumps(r: dict[str, Any]) -> str:
            return json.dumps(r, ensure_ascii=False, separators=(",", ":"))

        bad_json = [
            dumps(rec(0))[:97],  # cut off mid-record
            dumps(rec(1)).replace(
                f'"user_id":"{ut[1]}"', f'"user_id":"{ut[1]}","user_id":"{ut[2]}"'
            ),
            dumps(rec(3)).replace("}", ',"status":NaN}'),
            dumps(rec(4)) + " trailing",
            dumps(rec(5)).replace('"', "'"),
            "[]",
        ]
        bad_values = [
            dumps(rec(6, status="OK")),
            dumps(rec(7, ts="2024-02-16T10:47:17+99:99")),
            dumps(rec(8, user_id="   ")),
            dumps({k: v for k, v in rec(9).items() if k != "event_id"}),
            dumps(rec(10, ts="2024-02-30T10:47:17Z")),
            dumps(rec(11, ts=0)),
        ]
        self.traps["malformed_json_lines"] = len(bad_json)
        self.traps["records_with_invalid_values"] = len(bad_values)
        return bad_json + bad_values

    def invalid_grants(self) -> int:
        """Grants whose valid_to is not after valid_from: rejected at ingest."""
        users = self.users(2)
        dev = self.world.dev_gid[self.foreign_devices(users)]
        self.grants.add(dev, self.gid(users), 1, WINDOW_END, np.array([WINDOW_START, WINDOW_END]))
        self.traps["grants_with_valid_to_not_after_valid_from"] = 2
        return 2

    def events(self) -> Events:
        return Events.concat(self.parts)
