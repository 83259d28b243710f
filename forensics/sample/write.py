"""`write_sample`: generate the incident chunk by chunk and write its files deterministically
(the same seed and scale give the same bytes), then the incident file and the summary.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from forensics.errors import OutputError, UsageError
from forensics.sample import formats
from forensics.sample.accounts import HOSTILE_NAMES, account_lines, account_table, make_accounts
from forensics.sample.constants import (
    ANY_JSON,
    BASE_USERS,
    BIG_IDS,
    CHUNK_USERS,
    DEFAULT_SEED,
    DEST_P,
    EDGE,
    EPOCH,
    EPOCH_MS,
    EPOCH_S,
    EPOCH_US,
    FREE,
    GATEWAY,
    ISO_NS,
    ISO_OFF_MS,
    ISO_SPACE,
    ISO_Z_MS,
    ISO_Z_US,
    LEGACY,
    MAX_SCALE,
    MIN_USERS,
    MOBILE,
    MS,
    REEXPORT,
    SPECIAL_BASE,
    WINDOW_END,
    WINDOW_START,
    Arr,
    ProgressFn,
)
from forensics.sample.count import SampleCounts, count_sample
from forensics.sample.ids import Keys, lines_bytes
from forensics.sample.incident import Incident
from forensics.sample.records import Events, Grants
from forensics.sample.render import (
    event_lines,
    event_table,
    grant_lines,
    grant_table,
    pick_styles,
    select_rows,
)
from forensics.sample.world import Clips, background, build_world

INCIDENT_FILE = "incident.toml"


@dataclass(frozen=True)
class SampleSummary:
    """What `write_sample` wrote; `traps` counts each planted trap (for README and tests).

    `recipients` and `tappers` are counted from the files written (forensics.sample.count),
    not taken from what the generator meant to write.
    """

    out: Path
    seed: int
    scale: float
    window_start: str
    window_end: str
    recipients: int
    tappers: int
    users: int
    devices: int
    event_records: int
    grant_records: int
    account_records: int
    files: tuple[str, ...]
    traps: dict[str, int]


# ---------------------------------------------------------------- writing


class _Writer:
    """Writes files under OUT deterministically (gzip without name or time)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.files: list[str] = []
        self.records = {"events": 0, "grants": 0, "accounts": 0}

    def _path(self, rel: str) -> Path:
        p = self.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(rel)
        return p

    def text(self, rel: str, payload: bytes, kind: str, records: int) -> None:
        path = self._path(rel)
        if rel.endswith(".gz"):
            level = 6 if len(payload) < 32 << 20 else 1  # large scales: speed over size
            with (
                open(path, "wb") as raw,
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level
                ) as gz,
            ):
                gz.write(payload)
        elif rel.endswith(".zst"):
            path.write_bytes(zstandard.ZstdCompressor(level=10).compress(payload))
        else:
            path.write_bytes(payload)
        self.records[kind] += records

    def parquet(self, rel: str, table: pa.Table, kind: str) -> None:
        pq.write_table(table, self._path(rel), compression="zstd", row_group_size=262_144)
        self.records[kind] += table.num_rows


def _check_args(out: Path, seed: int, scale: float) -> None:
    if not (isinstance(seed, int) and 0 <= seed < 2**63):
        raise UsageError("--seed", "must be an integer from 0 to 2^63-1")
    if not (np.isfinite(scale) and 0 < scale <= MAX_SCALE):
        raise UsageError("--scale", f"must be a number above 0 and at most {MAX_SCALE:g}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(
            f"output folder {out}",
            "exists and is not empty",
            "Choose a new folder, or remove this one first",
        )


def write_sample(
    out: Path,
    *,
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    progress: ProgressFn | None = None,
    chunk_users: int = CHUNK_USERS,
) -> SampleSummary:
    """Write the synthetic incident to a new or empty folder `out`.

    `chunk_users` users are generated and written at a time (it bounds memory; the incident
    needs at least MIN_USERS in the first chunk). Raises UsageError for a bad seed/scale,
    OutputError when `out` is not new or empty or cannot be written.
    """
    _check_args(out, seed, scale)
    if chunk_users < MIN_USERS:
        raise ValueError(f"chunk_users must be at least {MIN_USERS}")
    n_users = max(MIN_USERS, int(round(BASE_USERS * scale)))
    n_chunks = -(-n_users // chunk_users)
    keys = Keys(seed)
    w = _Writer(out)
    traps: dict[str, int] = {}
    devices = 0
    done = 0

    def step() -> None:  # 4 steps a chunk (generate, events, grants, accounts), then count
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, 4 * n_chunks + 1)

    try:
        out.mkdir(parents=True, exist_ok=True)
        for chunk in range(n_chunks):
            lo, hi = chunk * chunk_users, min(n_users, (chunk + 1) * chunk_users)
            devices += _write_chunk(w, keys, seed, chunk, lo, hi, traps, step)
        counts = count_sample(out, WINDOW_START, WINDOW_END)
        step()
        window = {"start": _iso(WINDOW_START), "end": _iso(WINDOW_END)}
        payload = _incident_toml(window, seed, scale, counts)
        (out / INCIDENT_FILE).write_text(payload, encoding="utf-8")
        w.files.append(INCIDENT_FILE)
    except OSError as e:
        raise OutputError(f"output folder {out}", e.strerror or type(e).__name__) from None
    return SampleSummary(
        out=out,
        seed=seed,
        scale=scale,
        window_start=window["start"],
        window_end=window["end"],
        recipients=counts.recipients,
        tappers=counts.tappers,
        users=n_users + len(BIG_IDS),
        devices=devices,
        event_records=w.records["events"],
        grant_records=w.records["grants"],
        account_records=w.records["accounts"],
        files=tuple(w.files),
        traps=traps,
    )


def _incident_toml(window: dict[str, str], seed: int, scale: float, counts: SampleCounts) -> str:
    """The incident file: its window as `--window @FILE` reads it, and the expected figures."""
    return (
        "# A synthetic incident written by `forensics sample` (every id, name and email in it\n"
        "# is made up). Its window, for `forensics exposure --window @incident.toml`:\n"
        f'window = "{window["start"]}/{window["end"]}"\n'
        f"seed = {seed}\n"
        f"scale = {scale!r}\n"
        "\n"
        "# SPEC §5 over the window, counted from the files written here.\n"
        "[expected]\n"
        f"recipients = {counts.recipients}\n"
        f"tappers = {counts.tappers}\n"
    )


def _iso(t: int) -> str:
    return (EPOCH + timedelta(microseconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_chunk(
    w: _Writer,
    keys: Keys,
    seed: int,
    chunk: int,
    lo: int,
    hi: int,
    traps: dict[str, int],
    step: Callable[[], None],
) -> int:
    """Generate and write one chunk of users with their devices, grants, accounts and events."""
    rng = np.random.default_rng([seed, chunk, 1])
    world = build_world(rng, chunk, lo, hi)
    clips = Clips(chunk)
    events = background(rng, world, clips)
    grants = world.grants
    special: Grants | None = None
    bad_lines: list[str] = []
    hostile: dict[int, str] = {}
    no_account = np.zeros(0, dtype=np.int64)
    extra_users = np.zeros(0, dtype=np.int64)
    n_dev = len(world.dev_gid)
    if chunk == 0:
        inc = Incident(np.random.default_rng([seed, 0, 2]), world, clips)
        inc.build()
        bad_lines = inc.malformed_lines(keys)
        inc.invalid_grants()
        events = Events.concat([events, inc.events()])
        special = inc.grants
        no_account = world.users[inc.no_account]
        extra_users = SPECIAL_BASE + np.arange(len(BIG_IDS), dtype=np.int64)
        targets = world.users[inc.hostile_users]
        hostile = {int(u): name for u, name in zip(targets, HOSTILE_NAMES, strict=False)}
        traps.update(inc.traps)
        traps["hostile_names"] = len(hostile)
        n_dev = inc.next_device
    step()
    _write_events(w, keys, rng, chunk, events, bad_lines, traps)
    step()
    _write_grants(w, keys, rng, chunk, grants.arrays(), special, traps)
    step()
    users = np.concatenate([world.users[~np.isin(world.users, no_account)], extra_users])
    _write_accounts(w, keys, rng, chunk, users, hostile, traps)
    step()
    return n_dev


def _write_events(
    w: _Writer,
    keys: Keys,
    rng: np.random.Generator,
    chunk: int,
    ev: Events,
    bad_lines: list[str],
    traps: dict[str, int],
) -> None:
    c = ev.cols
    n = ev.n
    # Request ids: most records have one; some log sources omit it, a few write "" or null.
    missing = rng.choice(4, n, p=[0.972, 0.022, 0.004, 0.002])
    c["req_fmt"] = np.where(c["req_fmt"] == 0, missing, c["req_fmt"]).astype(np.int8)
    req_gid = (np.int64(chunk) << np.int64(36)) + np.arange(n, dtype=np.int64)
    dest = _destinations(rng, c)
    if chunk == 0:
        traps["events_without_request_id"] = int((c["req_fmt"] != 0).sum())
        traps["events_with_blank_or_null_request_id"] = int((c["req_fmt"] >= 2).sum())
    name = f"{chunk:04d}"
    for d, rel in (
        (GATEWAY, f"events/gateway-{name}.parquet"),
        (LEGACY, f"events/legacy-gateway-{name}.parquet"),
        (EDGE, f"events/edge-{name}.ndjson.gz"),
        (MOBILE, f"events/mobile-{name}.jsonl"),
    ):
        idx = np.flatnonzero(dest == d)
        idx = idx[np.lexsort((idx, c["ts"][idx]))]
        sub = ev.take(idx)
        req = keys.request_text(req_gid[idx])
        if d == GATEWAY:
            w.parquet(rel, event_table(sub, keys, req, "us", "UTC"), "events")
        elif d == LEGACY:
            w.parquet(rel, event_table(sub, keys, req, "ms", None), "events")
        else:
            styles = _json_styles(rng, sub.cols["ts_fmt"], d)
            lines = event_lines(sub, keys, req, styles, 0.4, rng)
            # Half of the rejected lines in each JSON file, spread through it.
            mine = bad_lines[0::2] if d == EDGE else bad_lines[1::2]
            lines = _interleave(rng, lines, mine) if bad_lines else lines
            w.text(rel, lines_bytes(lines), "events", len(lines))
    if chunk == 0:
        _write_reexport(w, keys, rng, ev, req_gid, traps)
        cdn = formats.cdn_rows(c)
        sub = ev.take(cdn)
        log = formats.w3c_log(sub.cols, keys, keys.request_text(req_gid[cdn]))
        w.text(formats.CDN_FILE, log, "events", len(cdn))
        traps["cdn_log_duplicate_events"] = len(cdn)


def _destinations(rng: np.random.Generator, c: dict[str, Arr]) -> Arr:
    """The output file of each event (GATEWAY, LEGACY, EDGE or MOBILE)."""
    dest = c["dest"].copy()
    free = dest == FREE
    dest[free] = rng.choice(4, int(free.sum()), p=DEST_P)
    precise = c["ts"] % MS != 0
    dest[precise & (dest == LEGACY)] = GATEWAY  # millisecond Parquet cannot hold them
    big = c["user"] >= SPECIAL_BASE
    dest[big & (dest < EDGE)] = ANY_JSON  # Parquet ids are strings; the 2^53 trap is in JSON
    any_json = dest == ANY_JSON
    dest[any_json] = np.where(rng.random(int(any_json.sum())) < 0.5, EDGE, MOBILE)
    return dest


def _json_styles(rng: np.random.Generator, ts_fmt: Arr, d: int) -> Arr:
    """Timestamp styles of one JSON file: the planted ones, the file's usual mix elsewhere."""
    styles = ts_fmt.copy()
    freest = styles < 0
    if d == EDGE:
        styles[freest] = pick_styles(
            rng, int(freest.sum()), [ISO_Z_MS, EPOCH_MS, ISO_OFF_MS], [0.6, 0.3, 0.1]
        )
    else:
        styles[freest] = pick_styles(
            rng,
            int(freest.sum()),
            [ISO_Z_MS, ISO_OFF_MS, ISO_SPACE, EPOCH_MS, EPOCH_S, EPOCH_US, ISO_NS, ISO_Z_US],
            [0.25, 0.25, 0.15, 0.15, 0.05, 0.05, 0.05, 0.05],
        )
    return styles


def _interleave(rng: np.random.Generator, lines: pa.Array, extra: list[str]) -> pa.Array:
    """`lines` with the `extra` lines inserted at random places, in order."""
    at = np.sort(rng.integers(0, max(len(lines), 1), len(extra)))
    pieces: list[pa.Array] = []
    prev = 0
    for pos, line in zip(at, extra, strict=True):
        pieces += [lines.slice(prev, int(pos) - prev), pa.array([line], pa.large_string())]
        prev = int(pos)
    pieces.append(lines.slice(prev))
    return pa.concat_arrays(pieces)


def _write_reexport(
    w: _Writer,
    keys: Keys,
    rng: np.random.Generator,
    ev: Events,
    req_gid: Arr,
    traps: dict[str, int],
) -> None:
    """An overlapping re-export of part of the day, partly in other timestamp styles."""
    c = ev.cols
    idx = np.flatnonzero((c["ts"] >= REEXPORT[0]) & (c["ts"] < REEXPORT[1]))
    idx = idx[np.lexsort((idx, c["ts"][idx]))]
    sub = ev.take(idx)
    styles = pick_styles(rng, len(idx), [ISO_OFF_MS, ISO_Z_US, EPOCH_MS], [0.4, 0.4, 0.2])
    lines = event_lines(sub, keys, keys.request_text(req_gid[idx]), styles, 0.4, rng)
    w.text("events/edge-0000-reexport.ndjson.gz", lines_bytes(lines), "events", len(lines))
    traps["reexported_duplicate_events"] = len(lines)
    traps["reexported_duplicates_without_request_id"] = int((sub.cols["req_fmt"] != 0).sum())


def _write_grants(
    w: _Writer,
    keys: Keys,
    rng: np.random.Generator,
    chunk: int,
    g: dict[str, Arr],
    special: Grants | None,
    traps: dict[str, int],
) -> None:
    name = f"{chunk:04d}"
    shared = g["role"] == 1
    w.parquet(f"grants/owners-{name}.parquet", grant_table(select_rows(g, ~shared), keys), "grants")
    lines = grant_lines(select_rows(g, shared), keys, rng)
    if special is not None:
        # Some shares come in an audit export instead: one wrapped JSON document.
        audit = np.zeros(len(lines), dtype=bool)
        audit[formats.moved(np.arange(len(lines)))] = True
        doc = formats.wrapped_json(lines.filter(pa.array(audit)).to_pylist())
        w.text(formats.AUDIT_FILE, doc, "grants", int(audit.sum()))
        traps["grants_in_a_wrapped_json_document"] = int(audit.sum())
        lines = lines.filter(pa.array(~audit))
    w.text(f"grants/shares-{name}.ndjson.gz", lines_bytes(lines), "grants", len(lines))
    if special is not None:
        # The day's grant changes, exported from a Windows tool: CRLF line ends.
        lines = grant_lines(special.arrays(), keys, rng)
        w.text("grants/changes-2024-02-16.ndjson", lines_bytes(lines, "\r\n"), "grants", len(lines))
        traps["grant_change_records"] = len(lines)


def _write_accounts(
    w: _Writer,
    keys: Keys,
    rng: np.random.Generator,
    chunk: int,
    users: Arr,
    hostile: dict[int, str],
    traps: dict[str, int],
) -> None:
    acc = make_accounts(rng, keys, users, hostile)
    n = len(users)
    dest = rng.choice(3, n, p=[0.7, 0.26, 0.04])
    dest[users >= SPECIAL_BASE] = 2  # numeric 2^53 ids only where JSON numbers exist
    if chunk == 0:
        # A CRM's CSV export: some of the Parquet group, and the hostile names (RFC 4180
        # quoting of commas, quotes and newlines).
        to_csv = np.isin(users, np.array(list(hostile), dtype=np.int64))
        to_csv[formats.moved(np.flatnonzero(dest == 0))] = True
        dest[to_csv] = 3
        csv_idx = np.flatnonzero(to_csv)
        table = account_table(acc, csv_idx, keys)
        w.text(formats.CSV_FILE, formats.csv_export(table), "accounts", len(csv_idx))
        traps["accounts_in_a_csv_export"] = len(csv_idx)
    name = f"{chunk:04d}"
    w.parquet(
        f"accounts/accounts-{name}.parquet",
        account_table(acc, np.flatnonzero(dest == 0), keys),
        "accounts",
    )
    gz = np.flatnonzero(dest == 1)
    # Some users appear twice in one file with a changed email: the later record wins.
    again = rng.choice(gz, min(20, len(gz)), replace=False)
    acc2 = make_accounts(rng, keys, users[again], hostile)
    lines = pa.concat_arrays(
        [account_lines(acc, gz, keys, rng), account_lines(acc2, np.arange(len(again)), keys, rng)]
    )
    w.text(f"accounts/accounts-{name}.ndjson.gz", lines_bytes(lines), "accounts", len(lines))
    js = np.flatnonzero(dest == 2)
    # A UTF-8 byte-order mark, as some exporters write.
    payload = b"\xef\xbb\xbf" + lines_bytes(account_lines(acc, js, keys, rng))
    w.text(f"accounts/accounts-{name}.jsonl", payload, "accounts", len(js))
    if chunk == 0:
        traps["accounts_listed_twice"] = len(again)
