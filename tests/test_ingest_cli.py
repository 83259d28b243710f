"""`forensics ingest`, `sources`, `rejects`, `verify` from the command line (SPEC §3, §7).

Includes the issue's acceptance scenario: a held-out incident in every format, accounted for
exactly, re-ingested as skips, kinds inferred, a truncated Parquet file failing alone, and
`verify` catching a changed source.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.helpers.cli import run_cli as _cli
from tests.helpers.ingest import event, rows

NAMES = [
    "أحمد",
    "דוד",
    "王芳",
    "😀 Zoë",
    "e\u0301lodie",
    '=HYPERLINK("x")',
    "[link=https://e]x[/link]",
]


def _incident(root: Path) -> dict[str, int]:
    """Write the held-out incident; return the independent count of what SPEC expects."""
    ev = root / "logs" / "events"
    gr = root / "logs" / "grants"
    ac = root / "logs" / "accounts"
    for d in (ev, gr, ac):
        d.mkdir(parents=True)
    styles = [
        "2024-02-16T09:{m:02d}:00Z",
        "2024-02-16T10:{m:02d}:00+01:00",
        "2024-02-16 09:{m:02d}:00",
        "2024-02-16T09:{m:02d}:00.123456789Z",
    ]
    recs = [
        event(
            ts=styles[i % 4].format(m=i % 60), user_id=f"u{i}", request_id=f"r{i}", event_id=f"e{i}"
        )
        for i in range(40)
    ]
    # NDJSON with malformed lines: 20 good + 3 bad.
    lines = [json.dumps(r) for r in recs[:20]] + ['{"ts": ', "[]", '{"a":1,"a":2}']
    (ev / "a.ndjson").write_text("\n".join(lines) + "\n")
    # gzip NDJSON: 10 records as epoch ms/s numbers.
    gz = [
        dict(r, ts=1708074000000 + i) if i % 2 else dict(r, ts=1708074000 + i)
        for i, r in enumerate(recs[20:30])
    ]
    (ev / "b.ndjson.gz").write_bytes(
        gzip.compress("".join(json.dumps(r) + "\n" for r in gz).encode())
    )
    # JSON array: 5 records.
    (ev / "c.json").write_text(json.dumps(recs[30:35]))
    # Parquet: 5 records with Arrow timestamps.
    pq.write_table(
        pa.table(
            {
                "ts": pa.array(
                    [1708074000000000 + i for i in range(5)], pa.timestamp("us", tz="UTC")
                ),
                "action": ["thumbnail_delivered"] * 5,
                "user_id": [f"p{i}" for i in range(5)],
                "device_id": ["d1"] * 5,
                "event_id": [f"pe{i}" for i in range(5)],
                "request_id": [f"pr{i}" for i in range(5)],
            }
        ),
        ev / "d.parquet",
    )
    # Overlapping re-export: 5 already seen (same request_id) + 2 new.
    (ev / "e-reexport.ndjson").write_text(
        "".join(json.dumps(r) + "\n" for r in recs[10:15] + recs[35:37])
    )
    # Grants in Parquet and NDJSON.
    pq.write_table(
        pa.table({"device_id": ["d1", "d2"], "user_id": ["o1", "o2"], "role": ["owner", None]}),
        gr / "g.parquet",
    )
    (gr / "g.ndjson").write_text(
        json.dumps(
            {
                "device_id": "d1",
                "user_id": "s1",
                "role": "shared",
                "valid_from": "2024-02-16T09:30:00Z",
            }
        )
        + "\n"
        + json.dumps(
            {
                "device_id": "d3",
                "user_id": "x",
                "valid_from": "2024-02-16T09:30:00Z",
                "valid_to": "2024-02-16T09:30:00Z",
            }
        )
        + "\n"
    )
    (ac / "acc.jsonl").write_text(
        "".join(
            json.dumps({"user_id": f"u{i}", "email": f"u{i}@example.org", "name": n}) + "\n"
            for i, n in enumerate(NAMES)
        )
    )
    return {
        "read": 23 + 10 + 5 + 5 + 7 + 2 + 2 + len(NAMES),
        "loaded": 20 + 10 + 5 + 5 + 2 + 2 + 1 + len(NAMES),
        "rejected": 3 + 1,
        "duplicate": 5,
    }


def test_held_out_incident_is_accounted_for_exactly(tmp_path: Path) -> None:
    expect = _incident(tmp_path)
    good = tmp_path / "logs" / "events" / "d.parquet"
    bad = tmp_path / "logs" / "events" / "z-truncated.parquet"
    bad.write_bytes(good.read_bytes()[:-30])
    db = str(tmp_path / "case.duckdb")

    r = _cli("--db", db, "ingest", str(tmp_path / "logs"), "--json")
    assert r.exit_code == 1  # the truncated Parquet file failed; the others are stored
    out = json.loads(r.stdout)
    by_name = {Path(f["path"]).name: f for f in out["files"]}
    assert by_name["z-truncated.parquet"]["status"] == "failed"
    assert by_name["z-truncated.parquet"]["error"]
    # SPEC §7: the error is also one line on stderr (stdout holds the JSON only)
    assert r.stderr.splitlines() == [
        f"forensics: error: {bad}: {by_name['z-truncated.parquet']['error']}"
    ]
    loaded = [f for f in out["files"] if f["status"] == "loaded"]
    assert len(loaded) == 8
    for f in loaded:
        assert f["rows_read"] == f["rows_loaded"] + f["rows_rejected"] + f["rows_duplicate"]
        assert set(f) == {
            "path",
            "kind",
            "format",
            "sha256",
            "status",
            "rows_read",
            "rows_loaded",
            "rows_rejected",
            "rows_duplicate",
            "error",
        }
    t = out["totals"]
    assert (t["rows_read"], t["rows_loaded"], t["rows_rejected"], t["rows_duplicate"]) == (
        expect["read"],
        expect["loaded"],
        expect["rejected"],
        expect["duplicate"],
    )
    kinds = {Path(f["path"]).name: f["kind"] for f in loaded}
    assert kinds["g.parquet"] == kinds["g.ndjson"] == "grants"
    assert kinds["acc.jsonl"] == "accounts" and kinds["c.json"] == "events"
    stored = rows(
        Path(db),
        "select (select count(*) from events) + (select count(*) from grants)"
        " + (select count(*) from accounts)",
    )[0][0]
    assert stored == expect["loaded"]
    assert rows(Path(db), "select name from accounts order by source_record") == [
        (n,) for n in NAMES
    ]

    # Re-ingesting skips every stored file; the broken one fails again.
    again = json.loads(_cli("--db", db, "ingest", str(tmp_path / "logs"), "--json").stdout)
    assert sorted({f["status"] for f in again["files"]}) == ["failed", "skipped"]
    assert again["totals"]["skipped"] == 8

    # verify passes, then fails after a source changes.
    bad.unlink()
    v = _cli("--db", db, "verify")
    assert v.exit_code == 0
    with open(tmp_path / "logs" / "events" / "a.ndjson", "a") as fh:
        fh.write("\n")
    v = _cli("--db", db, "verify", "--json")
    assert v.exit_code == 1
    status = {Path(x["path"]).name: x["status"] for x in json.loads(v.stdout)}
    assert status["a.ndjson"] == "changed" and status["c.json"] == "ok"
    (tmp_path / "logs" / "events" / "c.json").unlink()
    status = {
        Path(x["path"]).name: x["status"]
        for x in json.loads(_cli("--db", db, "verify", "--json").stdout)
    }
    assert status["c.json"] == "missing"


def test_terminal_shows_counts_and_reasons_never_record_contents(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text(
        '{"ts": "2024-02-16T09:00:00Z", "action": "x", "user_id": "secret-person", '
        '"email": "secret@example.org", "status": "nope"}\n'
    )
    db = str(tmp_path / "case.duckdb")
    r = _cli("--db", db, "ingest", str(f))
    assert r.exit_code == 0
    assert "secret" not in r.stdout + r.stderr
    assert "invalid status" in r.stderr
    assert r.stdout == ""  # the summary goes to stderr; stdout is data only
    strict = _cli("--db", db, "ingest", str(f), "--strict")
    assert strict.exit_code == 0  # skipped: nothing new was rejected in this run
    g = tmp_path / "g.ndjson"
    g.write_text(f.read_text().replace("secret-person", "other"))
    assert _cli("--db", db, "ingest", str(g), "--strict").exit_code == 1
    listing = _cli("--db", db, "rejects")
    assert "secret" not in listing.stdout and "invalid status" in listing.stdout
    raw = json.loads(_cli("--db", db, "rejects", "--json").stdout)
    assert raw[0]["raw"].startswith("{") and raw[0]["source_record"] == 1


def test_sources_lists_every_file_with_hash_and_counts(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text(json.dumps(event(request_id="a")) + "\n")
    db = str(tmp_path / "case.duckdb")
    _cli("--db", db, "ingest", str(f))
    out = json.loads(_cli("--db", db, "sources", "--json").stdout)
    assert len(out) == 1
    s = out[0]
    assert (s["kind"], s["rows_read"], s["rows_loaded"], s["tool_version"]) == (
        "events",
        1,
        1,
        "0.1.0",
    )
    assert len(s["sha256"]) == 64 and s["ingested_at"].endswith("Z")


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    f = tmp_path / "e.ndjson"
    f.write_text("")
    db = str(tmp_path / "case.duckdb")
    for args in (["--kind", "bogus"], ["--assume-tz", "Mars/Olympus"]):
        r = _cli("--db", db, "ingest", str(f), *args)
        assert r.exit_code == 2
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("forensics: error: ")


def test_analysis_commands_never_create_a_missing_store(tmp_path: Path) -> None:
    db = tmp_path / "none.duckdb"
    for cmd in ("sources", "rejects", "verify"):
        r = _cli("--db", str(db), cmd)
        assert r.exit_code == 1 and "not found" in r.stderr
    assert not db.exists()


def test_another_tools_database_is_never_written_to(tmp_path: Path) -> None:
    import duckdb

    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create table events (x varchar)")
    con.close()
    before = db.read_bytes()
    f = tmp_path / "a.ndjson"
    f.write_text('{"user_id": "u1"}\n')
    r = _cli("--db", str(db), "ingest", str(f), "--kind", "accounts")
    assert r.exit_code == 1
    assert r.stderr.startswith(f"forensics: error: case store {db}: not a forensics case store")
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.ndjson", "other.duckdb"]
    r = _cli("--db", str(db), "status")
    assert r.exit_code == 1 and "not a forensics case store" in r.stderr
    # An empty DuckDB file is a new store.
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert _cli("--db", str(empty), "ingest", str(f), "--kind", "accounts").exit_code == 0


def test_a_store_path_that_is_no_duckdb_file_is_named_as_such(tmp_path: Path) -> None:
    import sqlite3

    f = tmp_path / "a.ndjson"
    f.write_text('{"user_id": "u1"}\n')
    lite = tmp_path / "case.sqlite"
    con = sqlite3.connect(lite)
    con.execute("create table t (a)")
    con.commit()
    con.close()
    parquet = tmp_path / "e.parquet"
    pq.write_table(pa.table({"a": [1]}), parquet)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, why in (
        (lite, "is not a DuckDB database file"),
        (parquet, "is not a DuckDB database file"),
        (fifo, "is not a regular file"),
    ):
        before = sorted(p.name for p in tmp_path.iterdir())
        for args in (["status"], ["ingest", str(f), "--kind", "accounts"]):
            r = _cli("--db", str(path), *args)
            assert r.exit_code == 1
            assert r.stderr.startswith(f"forensics: error: case store {path}: {why}")
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made beside it
    # An empty file (touch, mktemp) is no store to read, and becomes one when written to.
    empty = tmp_path / "case.duckdb"
    empty.touch()
    r = _cli("--db", str(empty), "status")
    assert r.exit_code == 1 and "is an empty file" in r.stderr
    assert _cli("--db", str(empty), "ingest", str(f), "--kind", "accounts").exit_code == 0
    assert _cli("--db", str(empty), "status").exit_code == 0


def test_a_killed_ingest_leaves_whole_files_and_a_rerun_completes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for k in range(6):
        (logs / f"{k}.ndjson").write_text(
            "".join(
                json.dumps(event(request_id=f"{k}-{i}", user_id=f"u{i}")) + "\n"
                for i in range(40_000)
            )
        )
    db = tmp_path / "case.duckdb"
    cmd = [sys.executable, "-m", "forensics", "--db", str(db), "ingest", str(logs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Killed under load, the process may not have created the store's tables yet.
    created = db.exists() and rows(
        db, "select count(*) from duckdb_tables() where table_name = 'sources'"
    ) == [(1,)]
    if created:
        # Every committed file is whole; nothing of a file that was not committed remains.
        per_file = rows(
            db,
            "select s.rows_loaded, (select count(*) from events e "
            "where e.source_id = s.source_id) from sources s",
        )
        assert all(a == b for a, b in per_file)
        assert rows(
            db, "select count(*) from events where source_id not in (select source_id from sources)"
        ) == [(0,)]
    done = subprocess.run(cmd + ["--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert rows(db, "select count(*), count(distinct source_id) from events") == [(240_000, 6)]


def test_the_cli_asks_openblas_for_one_thread_unless_told_otherwise() -> None:
    # NumPy (used only to find newlines) would otherwise start an OpenBLAS thread that
    # spins on the cores DuckDB works on. Set by the entry point, for its own process only.
    probe = (
        "import os, sys\nfrom forensics.cli import main\nsys.argv = ['forensics', '-V']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], 'numpy' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.splitlines()[-1] == "1 False", out.stderr
    env["OPENBLAS_NUM_THREADS"] = "4"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert out.stdout.splitlines()[-1] == "4 False", out.stderr
