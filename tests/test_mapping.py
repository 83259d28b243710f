"""`ingest --map` (SPEC §2.5): loading and checking map files, renamed / nested / derived
fields on JSON and Parquet, the value rules through a map, failures naming the map key, kind
inference, provenance of the map, and the two documented real-world shapes."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.errors import UsageError
from forensics.exposure import compute_figures
from forensics.ingest import IngestTuning
from forensics.mapping import load_mapping
from forensics.store import DKEY, StoreOptions, open_store
from forensics.window import parse_window
from tests.helpers.ingest import accounted, rows, run, write_ndjson, write_parquet

UTC = timezone.utc
ROOT = Path(__file__).resolve().parents[1]
GATEWAY_MAP = ROOT / "examples" / "maps" / "gateway.toml"
OCSF_MAP = ROOT / "examples" / "maps" / "ocsf_http.toml"
T0 = datetime(2024, 2, 16, 9, 0, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def write_map(tmp_path: Path, text: str, name: str = "map.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def ingest_mapped(tmp_path: Path, map_text: str, *files: Path, **kw: Any) -> Any:
    m = load_mapping(write_map(tmp_path, map_text))
    report = run(tmp_path / "s.duckdb", *files, mapping=m, **kw)
    assert accounted(report)
    return report


def stored_events(db: Path) -> list[tuple[Any, ...]]:
    return rows(
        db,
        "select ts, action, user_id, device_id, event_id, request_id, status "
        "from events order by source_id, source_record",
    )


def reasons(db: Path) -> list[tuple[int, str]]:
    return [
        (int(r), str(w))
        for r, w in rows(db, "select source_record, reason from rejects order by source_record")
    ]


# --------------------------------------------------------------------------- loading


def test_load_mapping_reads_names_paths_expressions_actions_and_hashes_the_file(
    tmp_path: Path,
) -> None:
    text = """
[events]
ts = "time"
user_id = "actor.user.uid"
device_id = { sql = "regexp_extract(http_request.url.path, '/devices/([^/]+)/', 1)" }
[events.actions]
thumbnail = "thumbnail_delivered"
[grants]
device_id = "camera"
[accounts]
email = "contact.email"
"""
    p = write_map(tmp_path, text)
    m = load_mapping(p)
    assert m.sha256 == hashlib.sha256(p.read_bytes()).hexdigest()
    assert m.source_path("events", "ts") == ["time"]
    assert m.source_path("events", "user_id") == ["actor", "user", "uid"]
    assert m.source_path("events", "action") == ["action"]  # unmapped: same-named field
    assert m.source_path("events", "device_id") is None  # an expression, not a path
    dev = m.field("events", "device_id")
    assert dev is not None and dev.refs == (("http_request", "url", "path"),)
    assert m.actions == {"thumbnail": "thumbnail_delivered"}
    assert m.source_path("grants", "device_id") == ["camera"]
    assert m.source_path("accounts", "email") == ["contact", "email"]


@pytest.mark.parametrize(
    "text, names",
    [
        ("[event]\nts = 'time'\n", "[event]"),
        ("[events]\ntimestamp = 'time'\n", "events.timestamp"),
        ("[grants]\naction = 'verb'\n", "grants.action"),
        ("[events]\nts = 5\n", "events.ts"),
        ("[events]\nts = ['a', 'b']\n", "events.ts"),
        ("[events]\nts = ''\n", "events.ts"),
        ("[events]\nts = 'a..b'\n", "events.ts"),
        ("[events]\nts = '.a'\n", "events.ts"),
        ("[events]\nts = { sql = 1 }\n", "events.ts"),
        ("[events]\nts = { sql = 'time', as = 'x' }\n", "events.ts"),
        ("[events]\nts = { expr = 'time' }\n", "events.ts"),
        ("[events]\nts = { sql = '  ' }\n", "events.ts"),
        ("[events.actions]\nthumb = 1\n", "events.actions.thumb"),
        ("[events.actions]\nthumb = ''\n", "events.actions.thumb"),
        ("[grants.actions]\nx = 'y'\n", "grants.actions"),
        ("events = 'x'\n", "events"),
        ("[events]\nuser_id = '__forensics_rec'\n", "events.user_id"),
    ],
)
def test_bad_map_is_a_usage_error_naming_the_key(tmp_path: Path, text: str, names: str) -> None:
    with pytest.raises(UsageError) as e:
        load_mapping(write_map(tmp_path, text))
    assert names in e.value.one_line()
    assert e.value.exit_code == 2


def test_unreadable_or_invalid_toml_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot be read"):
        load_mapping(tmp_path / "missing.toml")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_mapping(write_map(tmp_path, "[events\nts = 'time'\n"))


HOSTILE = [
    "read_csv('/etc/passwd')",
    "read_text('/etc/passwd')",
    "read_json_auto('/etc/passwd')",
    "query('select * from events')",
    "(select count(*) from events)",
    "path in (select user_id from accounts)",
    "exists (select 1)",
    "1; drop table events",
    "1); copy events to '/tmp/x.csv' --",
    "copy events to '/tmp/x.csv'",
    "getenv('HOME')",
    "current_setting('temp_directory')",
    "getvariable('x')",
    "nextval('source_ids')",
    "setval('source_ids', 1)",
    "main.lower(path)",
    "system.main.lower(path)",
    "count(*)",
    "sum(status)",
    "row_number() over ()",
    "*",
    "columns('.*')",
    "$tz",
    "?",
    "#1",
    "path as device",
    "now()",
    "random()",
    "error('x')",
    "unnest([1, 2])",
    "json_execute_serialized_sql('x')",
    "pg_sleep(10)",
    "get_block_size('main')",
    "1 /* unterminated",
    "__forensics_rec",
]


@pytest.mark.parametrize("expr", HOSTILE)
def test_expression_that_could_do_more_than_read_the_record_is_refused(
    tmp_path: Path, expr: str
) -> None:
    p = write_map(tmp_path, f"[events]\ndevice_id = {{ sql = {json.dumps(expr)} }}\n")
    with pytest.raises(UsageError) as e:
        load_mapping(p)
    assert "events.device_id" in e.value.one_line()


@pytest.mark.parametrize(
    "expr, refs",
    [
        ("regexp_extract(a.b.c, 'x', 1)", [("a", "b", "c")]),
        ("coalesce(a, b.c)", [("a",), ("b", "c")]),
        ("list_transform(tags, lambda t: upper(t))", [("tags",)]),  # t is the lambda's
        ("j -> '$.x'", [("j",)]),  # the JSON arrow: j is a field
        ("CASE WHEN m = 'GET' THEN 'x' ELSE lower(CAST(p AS VARCHAR)) END", [("m",), ("p",)]),
        ("user", [("user",)]),  # a field, never the session's user (see the ingest test)
    ],
)
def test_expression_reads_are_found(tmp_path: Path, expr: str, refs: list[tuple[str, ...]]) -> None:
    m = load_mapping(write_map(tmp_path, f"[events]\ndevice_id = {{ sql = {json.dumps(expr)} }}\n"))
    fm = m.field("events", "device_id")
    assert fm is not None and list(fm.refs) == refs


def test_expression_runs_as_checked_comment_cannot_swallow_the_rest(tmp_path: Path) -> None:
    m = load_mapping(write_map(tmp_path, '[events]\ndevice_id = { sql = "d -- note" }\n'))
    fm = m.field("events", "device_id")
    assert fm is not None and fm.sql == "d"


def test_cli_bad_map_exits_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    p = write_map(tmp_path, "[events]\nuser = 'uid'\n")
    f = write_ndjson(tmp_path / "e.ndjson", [{"x": 1}])
    r = CliRunner().invoke(
        app, ["--db", str(tmp_path / "s.duckdb"), "ingest", "--map", str(p), str(f)]
    )
    assert r.exit_code == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "events.user" in lines[0]
    assert lines[0].startswith("forensics: error:")
    assert not (tmp_path / "s.duckdb").exists()


# --------------------------------------------------------------------------- JSON and Parquet


NESTED_MAP = """
[events]
ts = "time"
user_id = "actor.user.uid"
request_id = "meta.id"
status = "resp.code"
device_id = { sql = "regexp_extract(req.path, '/devices/([^/]+)/', 1)" }
event_id = { sql = "regexp_extract(req.path, '/events/([^/]+)/', 1)" }
action = { sql = "req.verb" }
[events.actions]
thumb = "thumbnail_delivered"
"""


def nested_record(
    i: int, uid: Any, path: str, *, verb: str = "thumb", code: Any = 200
) -> dict[str, Any]:
    return {
        "time": T0_MS + i * 1000,
        "actor": {"user": {"uid": uid}},
        "meta": {"id": f"r{i}"},
        "resp": {"code": code},
        "req": {"verb": verb, "path": path},
        "app": "ios",
    }


def nested_table(records: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(records)


def test_nested_renamed_and_derived_fields_json_and_parquet_store_the_same_rows(
    tmp_path: Path,
) -> None:
    recs = [
        nested_record(1, "u1", "/v1/devices/d1/events/e1/thumb.jpg"),
        nested_record(2, "u2", "/v1/devices/d2/events/e2/thumb.jpg", verb="view_list"),
        nested_record(3, "u3", "/v1/devices/d3/events/e3/thumb.jpg", code=404),
    ]
    j = tmp_path / "j"
    q = tmp_path / "q"
    j.mkdir()
    q.mkdir()
    write_ndjson(j / "e.ndjson", recs)
    write_parquet(q / "e.parquet", nested_table(recs))
    m = load_mapping(write_map(tmp_path, NESTED_MAP))
    rj = run(tmp_path / "j.duckdb", j / "e.ndjson", mapping=m)
    rq = run(tmp_path / "q.duckdb", q / "e.parquet", mapping=m)
    assert [f.status for f in rj.files + rq.files] == ["loaded", "loaded"]
    expected = [
        (T0 + timedelta(seconds=1), "thumbnail_delivered", "u1", "d1", "e1", "r1", 200),
        (T0 + timedelta(seconds=2), "view_list", "u2", "d2", "e2", "r2", 200),  # passes through
        (T0 + timedelta(seconds=3), "thumbnail_delivered", "u3", "d3", "e3", "r3", 404),
    ]
    assert stored_events(tmp_path / "j.duckdb") == expected
    assert stored_events(tmp_path / "q.duckdb") == expected
    for db in ("j.duckdb", "q.duckdb"):  # the key staged with each event is its values' key
        assert rows(
            tmp_path / db, f"select count(*) from events where dkey is distinct from ({DKEY})"
        ) == [(0,)]
    # Fields the map does not consume stay with the record; ones read by a path do not.
    for db in ("j.duckdb", "q.duckdb"):
        extra = json.loads(rows(tmp_path / db, "select extra from events limit 1")[0][0])
        assert extra["app"] == "ios" and "actor" not in extra and "time" not in extra
        assert "req" in extra  # read only by expressions: the evidence they were derived from


def test_mapped_values_follow_the_canonical_value_rules_per_record(tmp_path: Path) -> None:
    recs: list[Any] = [
        nested_record(1, 9007199254740993, "/devices/d1/events/e1/"),  # id from a number
        nested_record(2, 9007199254740992, "/devices/d1/events/e1/"),  # distinct from it
        nested_record(3, 1.5, "/devices/d1/events/e1/"),  # not an id
        nested_record(4, "  ", "/devices/d1/events/e1/"),  # blank is missing
        nested_record(5, "u5", "/devices/d1/events/e1/", code="201"),  # status from digits
        nested_record(6, "u6", "/devices/d1/events/e1/", code="2xx"),  # unreadable status
        nested_record(7, "u7", "/devices//events/e1/"),  # empty id from the path: missing
        dict(nested_record(8, "u8", "/devices/d1/events/e1/"), time="2024-02-16T09:00:08Z"),
        dict(nested_record(9, "u9", "/devices/d1/events/e1/"), time="2024-02-30T00:00:00Z"),
        dict(nested_record(10, "u10", "/devices/d1/events/e1/"), time=1708074010),  # seconds
        "[1, 2]",
    ]
    f = write_ndjson(tmp_path / "e.ndjson", recs)
    report = ingest_mapped(tmp_path, NESTED_MAP, f)
    assert report.files[0].status == "loaded", report.files[0].error
    db = tmp_path / "s.duckdb"
    got = {r[5]: r for r in stored_events(db)}
    assert got["r1"][2] == "9007199254740993" and got["r2"][2] == "9007199254740992"
    assert got["r5"][6] == 201
    assert got["r8"][0] == T0 + timedelta(seconds=8)
    assert got["r10"][0] == T0 + timedelta(seconds=10)
    assert reasons(db) == [
        (3, "invalid user_id"),
        (4, "missing user_id"),
        (6, "invalid status"),
        (7, "missing device_id for an analysed action"),
        (9, "invalid ts"),
        (11, "not a JSON object"),
    ]


def test_expression_values_keep_per_record_types_and_exact_ids(tmp_path: Path) -> None:
    """Fields read by an expression: a number that is not an integer everywhere, or a type
    that varies between records, stays a per-record JSON value (never a float, never NULL)."""
    text = """
[events]
ts = { sql = "t" }
user_id = { sql = "coalesce(who.uid, who.legacy)" }
status = { sql = "code" }
action = { sql = "'thumbnail_delivered'" }
device_id = "d"
event_id = "e"
request_id = "r"
"""
    base = {"d": "d1", "e": "e1"}
    recs = [
        dict(base, r="r1", t=T0_MS, who={"uid": 9007199254740993}, code=200),
        dict(base, r="r2", t=T0_MS + 1.5, who={"legacy": 18446744073709551616}, code="200"),
        dict(base, r="r3", t="2024-02-16T09:00:03Z", who={"uid": 1e0}, code=None),
        dict(base, r="r4", t=T0_MS, who={"uid": "x"}, code={"v": 1}),
        dict(base, r="r5", t=T0_MS, who={"uid": "u5"}, code="abc"),
    ]
    f = write_ndjson(tmp_path / "e.ndjson", recs)
    report = ingest_mapped(tmp_path, text, f)
    assert report.files[0].status == "loaded", report.files[0].error
    db = tmp_path / "s.duckdb"
    got = {r[5]: r for r in stored_events(db)}
    assert got["r1"][2] == "9007199254740993" and got["r1"][6] == 200
    assert got["r2"][2] == "18446744073709551616" and got["r2"][6] == 200
    assert got["r2"][0] == T0 + timedelta(microseconds=1500)
    assert reasons(db) == [(3, "invalid user_id"), (4, "invalid status"), (5, "invalid status")]


def test_parquet_expressions_over_struct_columns(tmp_path: Path) -> None:
    t = pa.table(
        {
            "time": pa.array([T0_MS, T0_MS + 1000], pa.int64()),
            "who": pa.array(
                [{"uid": 12345}, {"uid": 9007199254740993}], pa.struct([("uid", pa.int64())])
            ),
            "url": pa.array(["/devices/d1/events/e1/x", "/devices/d2/events/e2/x"]),
        }
    )
    f = write_parquet(tmp_path / "e.parquet", t)
    text = """
[events]
ts = "time"
user_id = "who.uid"
action = { sql = "'thumbnail_delivered'" }
device_id = { sql = "regexp_extract(url, '/devices/([^/]+)/', 1)" }
event_id = { sql = "upper(regexp_extract(url, '/events/([^/]+)/', 1))" }
"""
    report = ingest_mapped(tmp_path, text, f)
    assert report.files[0].status == "loaded", report.files[0].error
    assert [r[2:5] for r in stored_events(tmp_path / "s.duckdb")] == [
        ("12345", "d1", "E1"),
        ("9007199254740993", "d2", "E2"),
    ]


def test_field_absent_from_early_batches_still_maps(tmp_path: Path) -> None:
    """JSON is typed batch by batch: a field first seen in a later batch (null or absent in
    the earlier ones), or whose type differs between batches, still binds and maps."""
    recs = [
        {
            "time": T0_MS + i,
            "uid": f"u{i}",
            "rid": f"r{i}",
            "path": "/devices/d1/events/e1/",
            "alt": None,
        }
        for i in range(6)
    ] + [
        {
            "time": T0_MS + 10,
            "uid": 77,
            "rid": "r10",
            "path": "/devices/d9/events/e9/",
            "alt": {"dev": "d7"},
        },
    ]
    f = write_ndjson(tmp_path / "e.ndjson", recs)
    text = """
[events]
ts = "time"
user_id = { sql = "uid" }
request_id = "rid"
action = { sql = "'thumbnail_delivered'" }
device_id = { sql = "coalesce(alt.dev, regexp_extract(path, '/devices/([^/]+)/', 1))" }
event_id = { sql = "regexp_extract(path, '/events/([^/]+)/', 1)" }
"""
    report = ingest_mapped(tmp_path, text, f, tuning=IngestTuning(chunk_bytes=256))
    assert report.files[0].status == "loaded", report.files[0].error
    got = stored_events(tmp_path / "s.duckdb")
    assert len(got) == 7
    assert got[0][2:4] == ("u0", "d1") and got[-1][2:4] == ("77", "d7")


def test_record_field_named_like_a_session_value_is_the_field(tmp_path: Path) -> None:
    text = """
[events]
ts = "time"
user_id = { sql = "user" }
action = { sql = "current_user" }
"""
    f = write_ndjson(
        tmp_path / "e.ndjson", [{"time": T0_MS, "user": "u1", "current_user": "login"}]
    )
    ingest_mapped(tmp_path, text, f)
    assert [r[1:3] for r in stored_events(tmp_path / "s.duckdb")] == [("login", "u1")]


# --------------------------------------------------------------------------- failing a file


def _failed(report: Any, name: str) -> str:
    f = next(f for f in report.files if Path(f.path).name == name)
    assert f.status == "failed"
    assert f.error is not None and "\n" not in f.error
    return str(f.error)


@pytest.mark.parametrize(
    "map_line, names",
    [
        ('user_id = "who"', "who"),  # top-level field no record has
        ('user_id = "actor.usr.uid"', "actor.usr.uid"),  # nested path no record has
        ('user_id = { sql = "lower(who)" }', "who"),
        ('user_id = { sql = "lower(actor.user.id)" }', "actor.user.id"),
        ('user_id = { sql = "current_user" }', "current_user"),  # never the session's user
    ],
)
def test_mapped_field_no_record_has_fails_the_json_file_before_anything_is_stored(
    tmp_path: Path, map_line: str, names: str
) -> None:
    good = write_ndjson(
        tmp_path / "a.ndjson",
        [
            {
                "time": T0_MS,
                "who": "u1",
                "action": "x",
                "actor": {"user": {"uid": "u9", "id": "u9"}, "usr": {"uid": "u9"}},
                "current_user": "u9",
            },
        ],
    )
    bad = write_ndjson(
        tmp_path / "b.ndjson",
        [
            {"time": T0_MS, "action": "x", "actor": {"user": {"uid": "u1"}}},
            {"time": T0_MS, "action": "x", "actor": {"user": {"uid": "u2"}}},
        ],
    )
    text = f'[events]\nts = "time"\n{map_line}\n'
    m = load_mapping(write_map(tmp_path, text))
    db = tmp_path / "s.duckdb"
    report = run(db, good, bad, mapping=m)
    err = _failed(report, "b.ndjson")
    assert "events.user_id" in err and names in err
    assert "u1" not in err and "u2" not in err
    # Only the good file is stored; the bad one left nothing behind.
    assert rows(db, "select count(*) from sources") == [(1,)]
    assert rows(db, "select count(*) from events where source_id <> 1") == [(0,)]
    assert rows(db, "select count(*) from rejects") == [(0,)]


def test_field_missing_from_some_records_only_rejects_those_records(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            {"time": T0_MS, "action": "x", "actor": {"user": {"uid": "u1"}}},
            {"time": T0_MS, "action": "y", "actor": {}},
        ],
    )
    ingest_mapped(tmp_path, '[events]\nts = "time"\nuser_id = "actor.user.uid"\n', f)
    assert reasons(tmp_path / "s.duckdb") == [(2, "missing user_id")]


@pytest.mark.parametrize(
    "map_line, names",
    [
        ('user_id = "who"', "who"),
        ('user_id = "actor.usr"', "actor.usr"),
        ('user_id = { sql = "lower(who)" }', "who"),
        ('user_id = { sql = "lower(actor.usr)" }', "usr"),
    ],
)
def test_mapped_field_the_parquet_file_lacks_fails_it(
    tmp_path: Path, map_line: str, names: str
) -> None:
    t = pa.table(
        {
            "time": pa.array([T0_MS], pa.int64()),
            "action": ["x"],
            "actor": pa.array([{"uid": "u1"}], pa.struct([("uid", pa.string())])),
        }
    )
    f = write_parquet(tmp_path / "e.parquet", t)
    m = load_mapping(write_map(tmp_path, f'[events]\nts = "time"\n{map_line}\n'))
    db = tmp_path / "s.duckdb"
    report = run(db, f, mapping=m)
    err = _failed(report, "e.parquet")
    assert "events.user_id" in err and names in err
    assert rows(db, "select count(*) from sources") == [(0,)]


@pytest.mark.parametrize("suffix", ["ndjson", "parquet"])
@pytest.mark.parametrize(
    "expr",
    [
        "actor + 1",  # a struct cannot be added to
        "no_such_function(time)",
        "regexp_extract(time)",
        "sum(time)",  # an aggregate: refused when the map is loaded, naming the key
    ],
)
def test_expression_duckdb_cannot_bind_fails_the_file_naming_the_key(
    tmp_path: Path, suffix: str, expr: str
) -> None:
    recs = [{"time": T0_MS, "action": "x", "actor": {"uid": "u1"}}]
    if suffix == "ndjson":
        f = write_ndjson(tmp_path / "e.ndjson", recs)
    else:
        f = write_parquet(tmp_path / "e.parquet", pa.Table.from_pylist(recs))
    p = write_map(tmp_path, f'[events]\nts = "time"\nuser_id = {{ sql = {json.dumps(expr)} }}\n')
    try:
        m = load_mapping(p)
    except UsageError as e:  # refused before any file is read: also names the key
        assert "events.user_id" in e.one_line()
        return
    db = tmp_path / "s.duckdb"
    err = _failed(run(db, f, mapping=m), f.name)
    assert "events.user_id" in err
    assert rows(db, "select count(*) from sources") == [(0,)]


@pytest.mark.parametrize("suffix", ["ndjson", "parquet"])
def test_expression_failing_on_a_record_fails_the_file_without_quoting_it(
    tmp_path: Path, suffix: str
) -> None:
    recs = [
        {"time": T0_MS, "action": "x", "uid": "u1", "code": "200"},
        {"time": T0_MS, "action": "x", "uid": "u2", "code": "alice@example.com"},
    ]
    if suffix == "ndjson":
        f = write_ndjson(tmp_path / "e.ndjson", recs)
    else:
        f = write_parquet(tmp_path / "e.parquet", pa.Table.from_pylist(recs))
    m = load_mapping(
        write_map(
            tmp_path, '[events]\nts = "time"\nuser_id = "uid"\nstatus = { sql = "code::integer" }\n'
        )
    )
    db = tmp_path / "s.duckdb"
    err = _failed(run(db, f, mapping=m), f.name)
    assert "events.status" in err and "alice" not in err and "example" not in err
    assert rows(db, "select count(*) from events") == [(0,)]
    # try_cast reads such a value as missing instead; the record then follows §2.4.
    m2 = load_mapping(
        write_map(
            tmp_path,
            '[events]\nts = "time"\nuser_id = "uid"\nstatus = { sql = "try_cast(code '
            'as integer)" }\n',
            "m2.toml",
        )
    )
    assert run(db, f, mapping=m2).files[0].status == "loaded"


def test_empty_file_is_not_failed_for_fields_it_cannot_have(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_bytes(b"")
    report = ingest_mapped(tmp_path, '[events]\nts = "time"\n', f, kind="events")
    assert report.files[0].status == "loaded", report.files[0].error


# --------------------------------------------------------------------------- kind, sources


def test_kind_is_inferred_from_mapped_names(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    write_ndjson(d / "a.ndjson", [{"time": T0_MS, "verb": "x", "who": "u1"}])
    write_ndjson(d / "b.ndjson", [{"cam": "d1", "member": {"uid": "u1"}}])
    write_ndjson(d / "c.ndjson", [{"account": "u1", "mail": "a@example.org"}])
    text = """
[events]
ts = "time"
action = { sql = "upper(verb)" }
user_id = "who"
[grants]
device_id = "cam"
user_id = "member.uid"
[accounts]
user_id = "account"
email = "mail"
"""
    report = ingest_mapped(tmp_path, text, d)
    assert [(Path(f.path).name, f.kind, f.status) for f in report.files] == [
        ("a.ndjson", "events", "loaded"),
        ("b.ndjson", "grants", "loaded"),
        ("c.ndjson", "accounts", "loaded"),
    ]
    # Without the map, none of them can be told apart.
    report2 = run(tmp_path / "t.duckdb", d)
    assert {f.status for f in report2.files} == {"failed"}


def test_constant_expression_gives_the_field_but_is_no_evidence_against_a_kind(
    tmp_path: Path,
) -> None:
    e = write_ndjson(tmp_path / "e.ndjson", [{"time": T0_MS, "user_id": "u1"}])
    g = write_ndjson(tmp_path / "g.ndjson", [{"device_id": "d1", "user_id": "u1"}])
    text = '[events]\nts = "time"\naction = { sql = "\'thumbnail_delivered\'" }\n'
    report = ingest_mapped(tmp_path, text, e, g)
    assert [f.kind for f in report.files] == ["events", "grants"]


def test_map_sha256_is_recorded_and_shown_by_sources(tmp_path: Path) -> None:
    f = write_ndjson(tmp_path / "e.ndjson", [{"time": T0_MS, "action": "x", "uid": "u1"}])
    g = write_ndjson(tmp_path / "g.ndjson", [{"device_id": "d1", "user_id": "u1"}])
    p = write_map(tmp_path, '[events]\nts = "time"\nuser_id = "uid"\n')
    db = tmp_path / "s.duckdb"
    runner = CliRunner()
    r = runner.invoke(app, ["--db", str(db), "ingest", "--map", str(p), str(f)])
    assert r.exit_code == 0, r.stderr
    run(db, g)  # a source read without a map
    sha = hashlib.sha256(p.read_bytes()).hexdigest()
    r = runner.invoke(app, ["--db", str(db), "sources", "--json"])
    assert [s["map_sha256"] for s in json.loads(r.stdout)] == [sha, None]
    r = runner.invoke(app, ["--db", str(db), "sources"], env={"COLUMNS": "400"})
    assert r.exit_code == 0 and "map_sha256" in r.stdout and sha[:12] in r.stdout


# --------------------------------------------------------------------------- real shapes


def _incident() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """A small incident in canonical form: every §5 figure non-zero, and traps."""

    def ev(
        minute: float,
        action: str,
        user: Any,
        dev: str | None,
        evt: str | None,
        rid: str | None,
        status: int | None = None,
    ) -> dict[str, Any]:
        ts = T0 + timedelta(minutes=minute, milliseconds=250)
        r: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "action": action,
            "user_id": user,
            "device_id": dev,
            "event_id": evt,
            "app": "ios",
        }
        if rid is not None:
            r["request_id"] = rid
        if status is not None:
            r["status"] = status
        return {k: v for k, v in r.items() if v is not None}

    big = 9007199254740993  # an id given as a JSON number
    events = [
        ev(5, "thumbnail_delivered", "u-2", "cam-1", "ev-1", "r1"),  # cross-account
        ev(6, "thumbnail_tapped", "u-2", "cam-1", "ev-1", "r2"),  # cross tap
        ev(7, "video_played", "u-2", "cam-1", "ev-1", "r3"),  # cross play
        ev(8, "thumbnail_delivered", "u-3", "cam-2", "ev-2", "r4"),  # before the share
        ev(15, "thumbnail_delivered", "u-3", "cam-2", "ev-3", "r5"),  # shared: authorized
        ev(20, "thumbnail_delivered", "u-1", "cam-1", "ev-4", "r6"),  # own camera
        ev(21, "thumbnail_delivered", "u-4", "cam-1", "ev-4", "r7", 404),  # not a success
        ev(22, "thumbnail_delivered", "u-4", "cam-1", "ev-4", "r8", 200),  # cross-account
        ev(22, "thumbnail_delivered", "u-4", "cam-1", "ev-4", "r8", 200),  # duplicate
        ev(30, "thumbnail_delivered", big, "cam-3", "ev-5", "r10"),  # cross, numeric id
        ev(31, "thumbnail_tapped", "u-2", "cam-3", "ev-5", "r11"),  # unlinked unauthorized
        ev(-10, "thumbnail_delivered", "u-2", "cam-3", "ev-6", "r12"),  # before the window
        ev(65, "thumbnail_tapped", "u-2", "cam-1", "ev-1", "r13"),  # tap after the window
        ev(40, "GET /v2/me", "u-1", None, None, "r14"),  # another action, stored
        ev(45, "thumbnail_delivered", "u-3", "cam-2", "ev-7", None),  # share ended; no rid
        ev(45, "thumbnail_delivered", "u-3", "cam-2", "ev-7", None),  # duplicate without rid
        ev(50, "thumbnail_delivered", "u-5", "cam-1", None, "r16"),  # missing event id
    ]
    grants = [
        {"device_id": "cam-1", "user_id": "u-1", "role": "owner"},
        {"device_id": "cam-2", "user_id": "u-2"},
        {
            "device_id": "cam-2",
            "user_id": "u-3",
            "role": "shared",
            "valid_from": "2024-02-16T09:10:00Z",
            "valid_to": "2024-02-16T09:40:00.500Z",
        },
        {
            "device_id": "cam-3",
            "user_id": "u-4",
            "role": "owner",
            "valid_from": "2024-01-01T00:00:00Z",
        },
    ]
    accounts = [
        {
            "user_id": "u-2",
            "email": "bob@example.org",
            "name": "Bob",
            "locale": "en-GB",
            "country": "GB",
        },
        {"user_id": big, "email": "big@example.org", "name": "Big", "locale": "de-DE"},
        {"user_id": "u-1", "email": "alice@example.org"},
    ]
    return events, grants, accounts


def _ms(iso: str | None) -> int | None:
    if iso is None:
        return None
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _as_gateway(e: dict[str, Any]) -> dict[str, Any]:
    dev, evt, action = e.get("device_id"), e.get("event_id"), e["action"]
    method, tail = {
        "thumbnail_delivered": ("GET", "thumbnail.jpg"),
        "thumbnail_tapped": ("POST", "open"),
        "video_played": ("GET", "video.m3u8"),
    }.get(action, (action.split(" ")[0], ""))
    if dev is None:
        path = action.split(" ", 1)[1] if " " in action else "/v2/me"
    else:
        path = f"/v2/devices/{dev}/events/{evt or ''}/{tail}"
    req: dict[str, Any] = {"method": method, "path": path}
    if "request_id" in e:
        req["id"] = e["request_id"]
    g: dict[str, Any] = {
        "time": _ms(e["ts"]),
        "request": req,
        "auth": {"sub": e["user_id"]},
        "edge": "FRA2",
        "app": e["app"],
    }
    if "status" in e:
        g["response"] = {"status": e["status"]}
    return g


def _as_grant_export(g: dict[str, Any]) -> dict[str, Any]:
    level = {"owner": "OWNER", "shared": "GUEST"}.get(g.get("role", ""))
    out: dict[str, Any] = {
        "camera_id": g["device_id"],
        "member": {"uid": g["user_id"]},
        "granted_at": _ms(g.get("valid_from")),
        "revoked_at": _ms(g.get("valid_to")),
    }
    if level is not None:
        out["access_level"] = level
    return out


def _as_account_export(a: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"account_id": a["user_id"]}
    if "email" in a:
        out["contact"] = {"email": a["email"]}
    for src, dst in (("name", "display_name"), ("locale", "lang"), ("country", "country_code")):
        if src in a:
            out[dst] = a[src]
    return out


def _canonical_rows(db: Path) -> dict[str, Any]:
    return {
        "events": stored_events(db),
        "grants": rows(
            db,
            "select device_id, user_id, role, valid_from, valid_to, "
            "source_record from grants order by source_record",
        ),
        "accounts": rows(db, "select * from accounts_latest order by user_id"),
        "rejects": rows(
            db,
            "select s.kind, r.source_record, r.reason from rejects r "
            "join sources s using (source_id) order by 1, 2",
        ),
        "counts": rows(
            db,
            "select kind, rows_read, rows_loaded, rows_rejected, rows_duplicate "
            "from sources order by kind",
        ),
    }


def _figures(db: Path) -> dict[str, Any]:
    con = open_store(StoreOptions(db), read_only=True)
    try:
        return compute_figures(con, parse_window("2024-02-16T09:00:00Z/PT1H"))
    finally:
        con.close()


def test_gateway_logs_through_the_example_map_equal_the_canonical_incident(
    tmp_path: Path,
) -> None:
    """Done when (issue 6): the same incident as nested gateway logs — epoch-ms time, ids in
    URL paths, renamed grant and account fields, values that need a CASE — ingests through
    examples/maps/gateway.toml into the same canonical rows and the same §5 figures."""
    events, grants, accounts = _incident()
    canon = tmp_path / "canonical"
    gw = tmp_path / "gateway"
    for d in (canon, gw):
        d.mkdir()
    write_ndjson(canon / "events.ndjson", events)
    write_ndjson(canon / "grants.ndjson", grants)
    write_ndjson(canon / "accounts.ndjson", accounts)
    write_ndjson(gw / "access.ndjson", [_as_gateway(e) for e in events])
    write_ndjson(gw / "device_access.ndjson", [_as_grant_export(g) for g in grants])
    write_ndjson(gw / "accounts.ndjson", [_as_account_export(a) for a in accounts])

    r1 = run(tmp_path / "c.duckdb", canon)
    r2 = run(tmp_path / "g.duckdb", gw, mapping=load_mapping(GATEWAY_MAP))
    assert {f.status for f in r1.files + r2.files} == {"loaded"}
    assert sorted(f.kind or "" for f in r2.files) == ["accounts", "events", "grants"]
    c, g = _canonical_rows(tmp_path / "c.duckdb"), _canonical_rows(tmp_path / "g.duckdb")
    assert g == c
    assert ("events", 17, 14, 1, 2) in c["counts"]
    figures = _figures(tmp_path / "c.duckdb")
    assert _figures(tmp_path / "g.duckdb") == figures
    for key in (
        "cross_account_deliveries",
        "recipients",
        "cross_account_taps",
        "cross_account_plays",
        "exposed_devices",
        "exposed_owners",
        "unlinked_unauthorized_accesses",
        "cross_account_deliveries_outside_window",
    ):
        assert figures[key] > 0, key


def _ocsf(i: int, uid: Any, method: str, path: str, code: int | None) -> dict[str, Any]:
    return {
        "class_uid": 4002,
        "activity_id": 3 if method == "GET" else 6,
        "time": T0_MS + i * 1000,
        "metadata": {"uid": f"m-{i}", "product": {"name": "camera-api"}, "version": "1.1.0"},
        "actor": {"user": {"uid": uid}},
        "http_request": {"http_method": method, "url": {"path": path}},
        "http_response": {"code": code},
        "src_endpoint": {"ip": "198.51.100.7"},
    }


OCSF_RECORDS = [
    _ocsf(1, "u-2", "GET", "/v2/devices/cam-1/events/ev-1/thumbnail.jpg", 200),
    _ocsf(2, "u-2", "POST", "/v2/devices/cam-1/events/ev-1/open", 201),
    _ocsf(3, "u-2", "GET", "/v2/devices/cam-1/events/ev-1/video.m3u8", 206),
    _ocsf(4, "u-3", "GET", "/v2/devices/cam-2/events/ev-2/thumbnail.jpg", 503),
    _ocsf(5, "u-1", "GET", "/v2/me", 200),
]
OCSF_EXPECTED = [
    (T0 + timedelta(seconds=1), "thumbnail_delivered", "u-2", "cam-1", "ev-1", "m-1", 200),
    (T0 + timedelta(seconds=2), "thumbnail_tapped", "u-2", "cam-1", "ev-1", "m-2", 201),
    (T0 + timedelta(seconds=3), "video_played", "u-2", "cam-1", "ev-1", "m-3", 206),
    (T0 + timedelta(seconds=4), "thumbnail_delivered", "u-3", "cam-2", "ev-2", "m-4", 503),
    (T0 + timedelta(seconds=5), "GET", "u-1", None, None, "m-5", 200),
]


@pytest.mark.parametrize("suffix", ["json", "parquet"])
def test_ocsf_http_activity_through_the_example_map(tmp_path: Path, suffix: str) -> None:
    if suffix == "json":
        f = tmp_path / "ocsf.json"
        f.write_text(json.dumps(OCSF_RECORDS), encoding="utf-8")  # a JSON array file
    else:
        f = write_parquet(tmp_path / "ocsf.parquet", pa.Table.from_pylist(OCSF_RECORDS))
    db = tmp_path / "s.duckdb"
    report = run(db, f, mapping=load_mapping(OCSF_MAP))
    assert report.files[0].status == "loaded" and report.files[0].kind == "events"
    assert stored_events(db) == OCSF_EXPECTED
    extra = json.loads(rows(db, "select extra from events limit 1")[0][0])
    assert extra["src_endpoint"] == {"ip": "198.51.100.7"} and extra["class_uid"] == 4002


def test_readme_documents_the_example_maps_verbatim() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Mapping real-world logs" in readme
    for p in (GATEWAY_MAP, OCSF_MAP):
        assert p.read_text(encoding="utf-8").strip() in readme, p.name


# Each recipe of the README's "Times written other ways": the column it reads, a value as
# that tool writes it, and the instant it stands for.
TIME_RECIPES = {
    "BigQuery": ("created", "2024-02-16 09:41:07.250 UTC", datetime(2024, 2, 16, 9, 41, 7, 250000)),
    "Snowflake": ("TS", "2024-02-16 09:41:07.250 -0130", datetime(2024, 2, 16, 11, 11, 7, 250000)),
    "IIS": (None, None, datetime(2024, 2, 16, 9, 41, 7)),
    "Apache": ("time_local", "16/Feb/2024:09:41:07 +0100", datetime(2024, 2, 16, 8, 41, 7)),
}


def _time_recipes() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("### Times written other ways", 1)[1].split("```toml\n", 1)[1]
    lines = block.split("```", 1)[0].splitlines()
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.lstrip("# ").startswith("ts = "):
            tool = lines[i - 1].lstrip("# ").split(":")[0].split(",")[0].split(" ")[0]
            found[tool] = line.lstrip("# ")
    return found


@pytest.mark.parametrize("tool", sorted(TIME_RECIPES))
def test_each_time_recipe_of_the_readme_reads_that_tools_time(tmp_path: Path, tool: str) -> None:
    recipe = _time_recipes()[tool]
    column, value, instant = TIME_RECIPES[tool]
    f = tmp_path / "e.csv"
    if column is None:
        f.write_text("date,time,action,user_id\n2024-02-16,09:41:07,a,u1\n")
    else:
        f.write_text(f"{column},action,user_id\n{value},a,u1\n")
    ingest_mapped(tmp_path, f"[events]\n{recipe}\n", f)
    assert rows(tmp_path / "s.duckdb", "select ts from events") == [(instant.replace(tzinfo=UTC),)]


def test_the_readme_has_no_time_recipe_without_a_test() -> None:
    assert sorted(_time_recipes()) == sorted(TIME_RECIPES)


def test_dotted_path_steps_into_a_json_array_like_a_pointer(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [
            {"time": T0_MS, "action": "x", "principals": [{"uid": "u1"}, {"uid": "u2"}]},
        ],
    )
    ingest_mapped(tmp_path, '[events]\nts = "time"\nuser_id = "principals.0.uid"\n', f)
    assert [r[2] for r in stored_events(tmp_path / "s.duckdb")] == ["u1"]


_ACTORS = [
    {"user": {"uid": "u1"}},  # the one record that has actor.user.uid
    "system",
    {"user": "flat"},
    [1, 2],
    None,
]


@pytest.mark.parametrize("spec", ['"actor.user.uid"', '{ sql = "actor.user.uid" }'])
@pytest.mark.parametrize("wrapped", [False, True])
def test_a_path_whose_parent_changes_type_between_records_is_read_record_by_record(
    tmp_path: Path, spec: str, wrapped: bool
) -> None:
    # Before, the file failed: "no record has the field actor.user.uid".
    records = [
        {"ts": f"2024-02-16T09:00:0{i}Z", "action": "x", "request_id": f"r{i}", "actor": a}
        for i, a in enumerate(_ACTORS)
    ]
    if wrapped:
        f = tmp_path / "e.json"
        f.write_text(json.dumps({"Records": records}))
    else:
        f = write_ndjson(tmp_path / "e.ndjson", records)
    report = ingest_mapped(tmp_path, f"[events]\nuser_id = {spec}\n", f)
    assert report.files[0].status == "loaded", report.files[0].error
    db = tmp_path / "s.duckdb"
    assert rows(db, "select user_id, request_id from events") == [("u1", "r0")]
    assert reasons(db) == [(1 + i, "missing user_id") for i in range(1, len(_ACTORS))]


def test_a_canonically_named_field_the_map_reads_elsewhere_is_kept_in_extra(
    tmp_path: Path,
) -> None:
    # README: fields the map does not read stay in `extra`. The source's own `ts` and
    # `user_id` (the map reads them from `time` and `uid`) were dropped from the store.
    j = write_ndjson(
        tmp_path / "e.ndjson",
        [
            {
                "ts": "1999",
                "time": "2024-02-16T09:00:01Z",
                "action": "x",
                "user_id": "no",
                "uid": "u",
            }
        ],
    )
    c = tmp_path / "e.csv"
    c.write_text("ts,time,action,user_id,uid,request_id\n1999,2024-02-16T09:00:02Z,x,no,u,c1\n")
    ingest_mapped(tmp_path, '[events]\nts = "time"\nuser_id = "uid"\n', j, c)
    db = tmp_path / "s.duckdb"
    got = [json.loads(e) for (e,) in rows(db, "select extra from events order by ts")]
    assert got == [{"ts": "1999", "user_id": "no"}, {"ts": "1999", "user_id": "no"}]


def test_an_optional_expression_reads_fields_a_file_may_lack(tmp_path: Path) -> None:
    # CloudTrail writes errorCode only for a failed call: a file of successes has none.
    # Without `optional = true` such a file fails (a map key naming no field of it).
    f = write_ndjson(
        tmp_path / "e.ndjson",
        [{"ts": "2024-02-16T09:00:01Z", "action": "x", "user_id": "u", "request_id": "r"}],
    )
    status = 'status = { sql = "CASE WHEN errorCode IS NULL THEN 200 ELSE 403 END"'
    report = ingest_mapped(tmp_path, f"[events]\n{status}, optional = true }}\n", f)
    assert report.files[0].status == "loaded"
    assert rows(tmp_path / "s.duckdb", "select status from events") == [(200,)]
    strict = run(
        tmp_path / "t.duckdb",
        f,
        mapping=load_mapping(write_map(tmp_path, f"[events]\n{status} }}\n", "m2.toml")),
    )
    # (a file of one record also gets the hint for one object wrapping its records)
    assert (strict.files[0].error or "").startswith(
        "map key events.status: no record has the field errorCode. If the file is one object"
    )


@pytest.mark.parametrize(
    "value",
    ['{ sql = "1", optional = "yes" }', '{ sql = "1", other = true }', "{ optional = true }"],
)
def test_an_expression_table_takes_sql_and_optional_only(tmp_path: Path, value: str) -> None:
    with pytest.raises(UsageError, match="optional = true"):
        load_mapping(write_map(tmp_path, f"[events]\nstatus = {value}\n"))
