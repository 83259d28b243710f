"""`forensics sample`: the synthetic incident gives exactly 13,000 recipients and 1,504 tappers.

The figures are checked by a small reading of SPEC §2 and §5 written here (plain Python for
the records, DuckDB SQL for the rules), independent of forensics.ingest and forensics.exposure.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import zstandard
from typer.testing import CliRunner

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from forensics import sample
from forensics.cli import app
from forensics.errors import OutputError, UsageError
from forensics.sample import DEFAULT_SEED, RECIPIENTS, TAPPERS, write_sample
from forensics.window import parse_window

REPO = Path(__file__).resolve().parents[1]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LOW = (datetime(1990, 1, 1, tzinfo=timezone.utc) - EPOCH) // timedelta(microseconds=1)
HIGH = (datetime(2100, 1, 1, tzinfo=timezone.utc) - EPOCH) // timedelta(microseconds=1)
ANALYSED = ("thumbnail_delivered", "thumbnail_tapped", "video_played")
ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?"
)


class Rejected(Exception):
    pass


# ---------------------------------------------------------------- a reading of SPEC §2


def _ts(v: Any) -> int:
    """Microseconds since the epoch (SPEC §2.4), or Rejected."""
    if isinstance(v, bool):
        raise Rejected("ts")
    if isinstance(v, int | float):
        a = abs(v)
        us = int(v * 1_000_000) if a < 1e11 else int(v * 1_000) if a < 1e14 else int(v)
    elif isinstance(v, str):
        m = ISO.fullmatch(v.strip())
        if not m:
            raise Rejected("ts")
        y, mo, d, h, mi, s, frac, zone = m.groups()
        try:
            dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
        except ValueError:
            raise Rejected("ts") from None
        off = 0
        if zone and zone != "Z":
            oh, om = int(zone[1:3]), int(zone[4:6])
            if om > 59 or oh * 60 + om > 18 * 60:
                raise Rejected("offset")
            off = (oh * 60 + om) * (-1 if zone[0] == "-" else 1)
        us = (dt - EPOCH) // timedelta(microseconds=1) - off * 60_000_000
        us += int((frac or "").ljust(6, "0")[:6])  # finer fractions are truncated
    else:
        raise Rejected("ts")
    if not LOW <= us < HIGH:
        raise Rejected("range")
    return us


def _id(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | str):
        raise Rejected("id")
    text = str(v)
    return text if text.strip() else None


def _status(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    raise Rejected("status")


def _no_dup_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise Rejected("duplicate key")
    return dict(pairs)


def _no_constant(text: str) -> Any:
    raise Rejected(text)


def _json_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of an NDJSON file and the number of lines that are not JSON objects."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    text = raw.decode("utf-8-sig")
    records, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line, object_pairs_hook=_no_dup_keys, parse_constant=_no_constant)
        except (ValueError, Rejected):
            bad += 1
            continue
        if not isinstance(rec, dict):
            bad += 1
            continue
        records.append(rec)
    return records, bad


def _text(path: Path) -> str:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif path.name.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return raw.decode("utf-8-sig")


def _w3c_records(path: Path) -> list[dict[str, Any]]:
    """A W3C extended log: names from `#Fields:`, tab-separated values, `-` for none."""
    names: list[str] = []
    out = []
    for line in _text(path).splitlines():
        if line.startswith("#Fields:"):
            names = line.split()[1:]
        elif line and not line.startswith("#"):
            values = line.split("\t")
            assert len(values) == len(names)
            out.append({k: None if v == "-" else v for k, v in zip(names, values, strict=True)})
    return out


def _csv_records(path: Path) -> list[dict[str, Any]]:
    with io.StringIO(_text(path), newline="") as f:
        return [{k: v or None for k, v in row.items()} for row in csv.DictReader(f)]


def _document_records(path: Path) -> list[dict[str, Any]]:
    """A JSON document: an array of records, or an object whose one member is that array."""
    doc = json.loads(_text(path), object_pairs_hook=_no_dup_keys, parse_constant=_no_constant)
    if isinstance(doc, dict) and len(doc) == 1:
        doc = next(iter(doc.values()))
    assert isinstance(doc, list) and all(isinstance(r, dict) for r in doc)
    return doc


def _parquet_records(path: Path) -> list[dict[str, Any]]:
    t = pq.read_table(path)
    cols = {}
    for name in t.column_names:
        col = t[name]
        if pa.types.is_timestamp(col.type):
            col = pc.cast(col.cast(pa.timestamp("us", tz=col.type.tz)), pa.int64())
        cols[name] = col.to_pylist()
    return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def _files(root: Path, kind: str) -> list[Path]:
    return sorted(p for p in (root / kind).rglob("*") if p.is_file())


def _records(root: Path, kind: str) -> tuple[list[dict[str, Any]], int, int]:
    """All records of a kind; Parquet timestamps are already µs integers."""
    out: list[dict[str, Any]] = []
    bad_json = n_files = 0
    for p in _files(root, kind):
        n_files += 1
        if p.suffix == ".parquet":
            out += [dict(r, _parquet=True) for r in _parquet_records(p)]
        elif p.name.endswith((".log", ".log.gz")):
            out += _w3c_records(p)
        elif p.name.endswith(".csv"):
            out += _csv_records(p)
        elif p.name.endswith((".json", ".json.gz", ".json.zst")):
            out += _document_records(p)
        else:
            recs, bad = _json_records(p)
            out += recs
            bad_json += bad
    return out, bad_json, n_files


def _time(r: dict[str, Any], key: str) -> int | None:
    v = r.get(key)
    if v is None:
        return None
    return int(v) if r.get("_parquet") else _ts(v)


def load_case(root: Path) -> dict[str, Any]:
    """Normalise and de-duplicate the sample like SPEC §2; returns tables and counts."""
    stats: Counter[str] = Counter()
    events: dict[Any, tuple[Any, ...]] = {}
    recs, bad, _ = _records(root, "events")
    stats["malformed_json"] = bad
    for r in recs:
        try:
            ts = _time(r, "ts")
            action, user = r.get("action"), _id(r.get("user_id"))
            device, event = _id(r.get("device_id")), _id(r.get("event_id"))
            req, status = _id(r.get("request_id")), _status(r.get("status"))
            if ts is None or not isinstance(action, str) or not action.strip() or user is None:
                raise Rejected("required")
            if action in ANALYSED and (device is None or event is None):
                raise Rejected("required")
        except Rejected:
            stats["rejected_events"] += 1
            continue
        row = (ts, action, user, device, event, req, status, r.get("cache_node"))
        key = ("r", req) if req is not None else ("t", ts, action, user, device, event, status)
        if key in events:
            stats["duplicates"] += 1
            continue
        events[key] = row
    grants = []
    grecs, gbad, _ = _records(root, "grants")
    stats["malformed_grants"] = gbad
    for r in grecs:
        try:
            device, user = _id(r.get("device_id")), _id(r.get("user_id"))
            vf, vt = _time(r, "valid_from"), _time(r, "valid_to")
            if device is None or user is None or (vf is not None and vt is not None and vt <= vf):
                raise Rejected("grant")
        except Rejected:
            stats["rejected_grants"] += 1
            continue
        grants.append((device, user, r.get("role") or "owner", vf, vt))
    arecs, _, _ = _records(root, "accounts")
    accounts = {}
    for r in arecs:
        uid = _id(r.get("user_id"))
        if uid is not None:
            accounts[uid] = r  # the later record wins
    return {
        "events": list(events.values()),
        "grants": grants,
        "accounts": accounts,
        "stats": stats,
        "account_records": len(arecs),
    }


# ---------------------------------------------------------------- a reading of SPEC §5


FIGURES_SQL = """
create temp table acc as select * from ev
where action in ('thumbnail_delivered', 'thumbnail_tapped', 'video_played')
  and (status is null or status between 200 and 299);
create temp table acc_auth as
select a.*, exists (select 1 from gr g where g.device_id = a.device_id and g.user_id = a.user_id
  and (g.valid_from is null or g.valid_from <= a.ts) and (g.valid_to is null or a.ts < g.valid_to))
  as authorized
from acc a;
create temp table cross_d as select * from acc_auth
where action = 'thumbnail_delivered' and not authorized and ts >= $s and ts < $e;
create temp table linked as select * from acc_auth t
where t.action in ('thumbnail_tapped', 'video_played') and not t.authorized
  and exists (select 1 from cross_d c where c.user_id = t.user_id and c.event_id = t.event_id
              and c.ts <= t.ts);
"""


def figures(case: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    con = duckdb.connect()
    ev = pa.table(
        list(zip(*case["events"], strict=True)),
        names=[
            "ts",
            "action",
            "user_id",
            "device_id",
            "event_id",
            "request_id",
            "status",
            "cache_node",
        ],
    )
    gr = pa.table(
        list(zip(*case["grants"], strict=True)),
        names=["device_id", "user_id", "role", "valid_from", "valid_to"],
    )
    con.register("ev", ev)
    con.register("gr", gr)
    con.register("acc_ids", pa.table({"u": pa.array(list(case["accounts"]), pa.string())}))
    for stmt in FIGURES_SQL.split(";"):
        if stmt.strip():
            con.execute(stmt.replace("$s", str(start)).replace("$e", str(end)))

    def one(sql: str) -> int:
        row = con.execute(sql).fetchone()
        assert row is not None
        return int(row[0])

    inside = f"ts >= {start} and ts < {end}"
    by_node = dict(con.execute("select cache_node, count(*) from cross_d group by all").fetchall())
    return {
        "by_cache_node": by_node,
        "deliveries": one(
            f"select count(*) from acc where action = 'thumbnail_delivered' and {inside}"
        ),
        "cross_account_deliveries": one("select count(*) from cross_d"),
        "recipients": one("select count(distinct user_id) from cross_d"),
        "cross_account_taps": one("select count(*) from linked where action = 'thumbnail_tapped'"),
        "tappers": one(
            "select count(distinct user_id) from linked where action = 'thumbnail_tapped'"
        ),
        "cross_account_plays": one("select count(*) from linked where action = 'video_played'"),
        "video_viewers": one(
            "select count(distinct user_id) from linked where action = 'video_played'"
        ),
        "exposed_devices": one("select count(distinct device_id) from cross_d"),
        "exposed_owners": one(
            "select count(distinct g.user_id) from cross_d c join gr g on g.device_id = c.device_id"
            " and g.role = 'owner' and (g.valid_from is null or g.valid_from <= c.ts)"
            " and (g.valid_to is null or c.ts < g.valid_to)"
        ),
        "unlinked_unauthorized_accesses": one(
            f"select count(*) from acc_auth a where action in ('thumbnail_tapped', 'video_played')"
            f" and not authorized and {inside} and not exists (select 1 from linked l"
            f" where l.user_id = a.user_id and l.event_id = a.event_id and l.ts = a.ts"
            f" and l.action = a.action)"
        ),
        "cross_account_deliveries_outside_window": one(
            f"select count(*) from acc_auth where action = 'thumbnail_delivered'"
            f" and not authorized and not ({inside})"
        ),
        "recipients_without_account": one(
            "select count(distinct user_id) from cross_d"
            " where user_id not in (select u from acc_ids)"
        ),
    }


def window_of(root: Path) -> tuple[int, int]:
    start, end = tomllib.loads((root / "incident.toml").read_text())["window"].split("/")
    return _ts(start), _ts(end)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def default_sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("sample") / "out"
    return out, write_sample(out, seed=DEFAULT_SEED, scale=0.1)


@pytest.fixture(scope="module")
def default_case(default_sample: tuple[Path, Any]) -> dict[str, Any]:
    return load_case(default_sample[0])


# ---------------------------------------------------------------- tests


def test_default_seed_gives_13000_recipients_and_1504_tappers(
    default_sample: tuple[Path, Any], default_case: dict[str, Any]
) -> None:
    out, summary = default_sample
    f = figures(default_case, *window_of(out))
    assert (f["recipients"], f["tappers"]) == (RECIPIENTS, TAPPERS) == (13_000, 1_504)
    assert (summary.recipients, summary.tappers) == (13_000, 1_504)
    # The traps around the figures are there too.
    assert f["cross_account_deliveries"] > f["recipients"]
    assert f["cross_account_taps"] > f["tappers"]
    assert f["video_viewers"] == 187 + 6
    assert f["unlinked_unauthorized_accesses"] > 0
    assert f["cross_account_deliveries_outside_window"] > 0
    assert f["recipients_without_account"] == 37


def test_another_seed_gives_the_same_figures_from_different_data(
    tmp_path: Path, default_sample: tuple[Path, Any]
) -> None:
    out = tmp_path / "s"
    write_sample(out, seed=987654321, scale=0.1)
    f = figures(load_case(out), *window_of(out))
    assert (f["recipients"], f["tappers"]) == (13_000, 1_504)
    a = (default_sample[0] / "events" / "mobile-0000.jsonl").read_bytes()
    assert a != (out / "events" / "mobile-0000.jsonl").read_bytes()


@pytest.mark.slow
def test_scale_spanning_several_chunks_keeps_the_figures(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    out = tmp_path / "s"
    summary = write_sample(
        out, seed=5, scale=2.0, progress=lambda d, t: seen.append((d, t)), chunk_users=20_000
    )
    assert seen == [(i, 9) for i in range(1, 10)]  # 4 steps in each of 2 chunks, then count
    assert summary.users == 32_000 + 2
    assert any(name.endswith("-0001.parquet") for name in summary.files)
    f = figures(load_case(out), *window_of(out))
    assert (f["recipients"], f["tappers"]) == (13_000, 1_504)


def test_same_seed_gives_the_same_bytes(tmp_path: Path, default_sample: tuple[Path, Any]) -> None:
    out = tmp_path / "again"
    write_sample(out, seed=DEFAULT_SEED, scale=0.1)
    first = default_sample[0]
    names = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    for name in names:
        assert _sha(first / name) == _sha(out / name), name


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_layout_formats_and_incident_toml(default_sample: tuple[Path, Any]) -> None:
    out, summary = default_sample
    assert tomllib.loads((out / "incident.toml").read_text()) == {
        "window": "2024-02-16T09:14:00Z/2024-02-16T13:32:00Z",
        "seed": DEFAULT_SEED,
        "scale": 0.1,
        "expected": {"recipients": 13_000, "tappers": 1_504},
    }
    w = parse_window(f"@{out / 'incident.toml'}")
    assert str(w) == f"{summary.window_start}/{summary.window_end}"
    assert not (out / "incident.json").exists()
    for kind in ("events", "grants", "accounts"):
        suffixes = {"".join(p.suffixes) for p in _files(out, kind)}
        assert ".parquet" in suffixes
        assert ".ndjson.gz" in suffixes
        assert suffixes & {".ndjson", ".jsonl"}
    # The other formats of SPEC §2.5, one file each.
    assert (out / "events" / "cdn-cache-12-2024-02-16.log.gz").is_file()
    assert (out / "grants" / "audit-2024-02-16.json.zst").is_file()
    assert (out / "accounts" / "crm-export-2024-02-16.csv").is_file()
    assert set(summary.files) == {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    # gzip members carry no file name or time (same seed, same bytes).
    gz = (out / "events" / "edge-0000.ndjson.gz").read_bytes()
    assert gz[3] == 0 and gz[4:8] == b"\0\0\0\0"


def test_timestamps_come_in_every_accepted_style(default_sample: tuple[Path, Any]) -> None:
    out = default_sample[0]
    text = (out / "events" / "mobile-0000.jsonl").read_text(encoding="utf-8")
    assert re.search(r'"ts":"[^"]+T[^"]+\.\d{3}Z"', text)
    assert re.search(r'"ts":"[^"]+[+-]\d\d:\d\d"', text)
    assert re.search(r'"ts":"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[^"Z+]*"', text)  # no zone: UTC
    assert re.search(r'"ts":1\d{12}[,}]', text)  # epoch ms
    assert re.search(r'"ts":1\d{9}[,}]', text)  # epoch s
    assert re.search(r'"ts":1\d{15}[,}]', text)  # epoch µs
    assert re.search(r'"ts":"[^"]+\.\d{9}Z"', text)  # nanoseconds, truncated on ingest
    types = {
        pq.read_schema(p).field("ts").type for p in _files(out, "events") if p.suffix == ".parquet"
    }
    assert types == {pa.timestamp("us", tz="UTC"), pa.timestamp("ms")}


def test_boundary_instants_are_planted(default_case: dict[str, Any]) -> None:
    start, end = sample.WINDOW_START, sample.WINDOW_END
    delivered = [e for e in default_case["events"] if e[1] == "thumbnail_delivered"]
    assert sum(e[0] == start for e in delivered) >= 3
    assert sum(e[0] == end - 1 for e in delivered) == 2  # written as …59.999999999Z
    assert sum(e[0] == end for e in delivered) >= 4
    assert sum(e[0] == start - 1 for e in delivered) == 3


def test_rejects_duplicates_and_missing_request_ids(
    default_sample: tuple[Path, Any], default_case: dict[str, Any]
) -> None:
    traps = default_sample[1].traps
    stats = default_case["stats"]
    assert stats["malformed_json"] == traps["malformed_json_lines"] == 6
    assert stats["rejected_events"] == traps["records_with_invalid_values"] == 6
    assert stats["rejected_grants"] == traps["grants_with_valid_to_not_after_valid_from"] == 2
    assert traps["reexported_duplicate_events"] > 1_000
    assert traps["cdn_log_duplicate_events"] == 2_000
    assert stats["duplicates"] == (
        traps["reexported_duplicate_events"] + traps["cdn_log_duplicate_events"]
    )
    assert traps["reexported_duplicates_without_request_id"] > 0
    assert sum(e[5] is None for e in default_case["events"]) > 1_000


def test_ids_as_json_numbers_including_2_53_plus_1(default_sample: tuple[Path, Any]) -> None:
    out = default_sample[0]
    text = (
        "".join(
            p.read_text(encoding="utf-8-sig")
            for p in _files(out, "events")
            if p.suffix in (".jsonl",)
        )
        + gzip.decompress((out / "events" / "edge-0000.ndjson.gz").read_bytes()).decode()
    )
    assert re.search(r'"user_id":\d{10}[,}]', text)
    assert '"user_id":9007199254740993' in text and '"user_id":9007199254740992' in text
    grants = (out / "grants" / "changes-2024-02-16.ndjson").read_bytes()
    assert b'"user_id":9007199254740992' in grants
    assert grants.count(b"\r\n") == grants.count(b"\n")  # CRLF export


def test_accounts_have_many_scripts_and_hostile_names(default_case: dict[str, Any]) -> None:
    names = [r.get("name") or "" for r in default_case["accounts"].values()]
    joined = "".join(names)
    for pattern in (
        r"[\u0600-\u06ff]",
        r"[\u0590-\u05ff]",
        r"[\u4e00-\u9fff]",
        r"[\u0900-\u097f]",
        "\U0001f338",
        "\u0308",
    ):
        assert re.search(pattern, joined), pattern
    for hostile in sample.HOSTILE_NAMES:
        assert hostile in names
    assert default_case["account_records"] > len(default_case["accounts"])  # listed twice


def test_the_other_formats_carry_their_traps(default_sample: tuple[Path, Any]) -> None:
    out, summary = default_sample
    # A spreadsheet's "CSV UTF-8": BOM, CRLF, and the hostile names quoted (RFC 4180).
    raw = (out / "accounts" / "crm-export-2024-02-16.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfuser_id,email,name,locale,country\r\n")
    assert b'"Smith, ""Jr.""\nSecond line"' in raw
    names = {r["name"] for r in _csv_records(out / "accounts" / "crm-export-2024-02-16.csv")}
    assert set(sample.HOSTILE_NAMES) <= names
    assert summary.traps["accounts_in_a_csv_export"] == len(raw.split(b"\r\n")) - 2 > 1_000
    # A CDN's W3C log: directives, tab-separated values, `-` for a missing one.
    log = _text(out / "events" / "cdn-cache-12-2024-02-16.log.gz")
    assert log.startswith("#Version: 1.0\n#Software: ")
    assert "\n#Fields: ts action user_id device_id event_id request_id status" in log
    assert "\t-\t" in log
    assert {
        r["cache_node"] for r in _w3c_records(out / "events" / "cdn-cache-12-2024-02-16.log.gz")
    } == {"cache-12"}
    # An audit trail's wrapped JSON document, zstd-compressed.
    doc = json.loads(_text(out / "grants" / "audit-2024-02-16.json.zst"))
    assert list(doc) == ["Records"]
    assert len(doc["Records"]) == summary.traps["grants_in_a_wrapped_json_document"] > 1_000


def test_cross_account_deliveries_all_went_through_the_faulty_cache_nodes(
    default_sample: tuple[Path, Any], default_case: dict[str, Any]
) -> None:
    f = figures(default_case, *window_of(default_sample[0]))
    assert set(f["by_cache_node"]) == {"cache-07", "cache-12", "cache-19"}
    # ... while ordinary deliveries are spread over all 24 nodes.
    nodes = Counter(e[7] for e in default_case["events"] if e[1] == "thumbnail_delivered")
    assert len(nodes) == len(sample.CACHE_NODES)


def test_refuses_a_non_empty_folder_and_bad_options(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(OutputError):
        write_sample(tmp_path, seed=1, scale=0.1)
    assert (tmp_path / "x").read_text() == "keep me"
    for scale in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(UsageError):
            write_sample(tmp_path / "new", scale=scale)
    with pytest.raises(UsageError):
        write_sample(tmp_path / "new", seed=-1)


def test_cli_sample_writes_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["sample", str(out), "--seed", "3", "--scale", "0.1", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recipients"] == 13_000 and data["tappers"] == 1_504
    assert data["window"] == {"start": "2024-02-16T09:14:00Z", "end": "2024-02-16T13:32:00Z"}
    assert (out / "incident.toml").is_file()
    bad = CliRunner().invoke(app, ["sample", str(out)])
    assert bad.exit_code == 1
    assert "forensics: error:" in bad.stderr and "not empty" in bad.stderr
    assert CliRunner().invoke(app, ["sample", str(tmp_path / "z"), "--scale", "0"]).exit_code == 2


SHIPPED = REPO / "sample_logs"


@pytest.mark.skipif(not (SHIPPED / "incident.toml").exists(), reason="sample_logs/ not generated")
def test_shipped_sample_logs_give_13000_and_1504() -> None:
    f = figures(load_case(SHIPPED), *window_of(SHIPPED))
    assert (f["recipients"], f["tappers"]) == (13_000, 1_504)


@pytest.mark.skipif(not (SHIPPED / "incident.toml").exists(), reason="sample_logs/ not generated")
def test_shipped_sample_logs_are_the_default_output(tmp_path: Path) -> None:
    out = tmp_path / "default"
    summary = write_sample(out)
    shipped = sorted(
        str(p.relative_to(SHIPPED))
        for p in SHIPPED.rglob("*")
        if p.is_file() and p.name != "README.md"
    )
    assert shipped == sorted(summary.files)
    for name in shipped:
        a, b = SHIPPED / name, out / name
        if name.endswith(".parquet"):  # compare content: writer metadata may vary by version
            assert pq.read_table(a).equals(pq.read_table(b)), name
        elif name.endswith((".gz", ".zst")):
            assert _text(a) == _text(b), name
        else:
            assert a.read_bytes() == b.read_bytes(), name


def test_summary_counts_what_was_written_not_what_was_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A broken generator: the JSON files lose every fifth delivery line.
    from forensics.sample import write as sample_write

    real = sample_write.event_lines

    def lossy(*args: Any, **kwargs: Any) -> pa.Array:
        lines = real(*args, **kwargs)
        keep = [
            i % 5 != 0 or '"action":"thumbnail_delivered"' not in line
            for i, line in enumerate(lines.to_pylist())
        ]
        return lines.filter(pa.array(keep))

    monkeypatch.setattr(sample_write, "event_lines", lossy)
    out = tmp_path / "lossy"
    summary = write_sample(out, seed=DEFAULT_SEED, scale=0.1)
    f = figures(load_case(out), *window_of(out))
    assert summary.recipients < RECIPIENTS and summary.tappers < TAPPERS
    assert (summary.recipients, summary.tappers) == (f["recipients"], f["tappers"])
    expected = tomllib.loads((out / "incident.toml").read_text())["expected"]
    assert expected == {"recipients": summary.recipients, "tappers": summary.tappers}


def test_ingest_of_the_whole_sample_folder_fails_no_file_and_gives_the_figures(
    tmp_path: Path, default_sample: tuple[Path, Any]
) -> None:
    out = default_sample[0]
    db = tmp_path / "case.duckdb"
    r = CliRunner().invoke(app, ["--db", str(db), "ingest", str(out), "--json"])
    assert r.exit_code == 0, r.stderr
    files = json.loads(r.stdout)["files"]
    status = {Path(f["path"]).relative_to(out).as_posix(): f["status"] for f in files}
    assert status.pop("incident.toml") == "skipped"  # not a log: an unknown extension
    assert set(status) == set(default_sample[1].files) - {"incident.toml"}
    assert set(status.values()) == {"loaded"}
    r = CliRunner().invoke(
        app, ["--db", str(db), "exposure", "--window", f"@{out / 'incident.toml'}", "--json"]
    )
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["recipients"], data["tappers"]) == (13_000, 1_504)
    assert data["window"] == {"start": "2024-02-16T09:14:00Z", "end": "2024-02-16T13:32:00Z"}
