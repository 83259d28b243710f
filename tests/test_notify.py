"""`forensics notify` (SPEC §6) end to end: golden CSV bytes for a small hand-made incident,
the manifest, privacy of the files, refusal without --force, reruns, and the CLI contract."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forensics import csv_text, export
from forensics.errors import OutputError
from forensics.export import NotifyResult, write_notifications
from forensics.exposure import compute_figures, prepare_window
from forensics.queries import run_query
from forensics.store import StoreOptions, open_store
from tests.helpers.cli import run_cli
from tests.helpers.engines import open_case
from tests.helpers.incident import (
    BASE,
    Event,
    Incident,
    at,
    clear_store,
    model_cross_account,
    model_owners,
    window,
)

GOLDEN = Path(__file__).parent / "golden" / "notify"
W = window(0, 60)  # 2024-02-16T09:00:00Z/2024-02-16T10:00:00Z
W_TEXT = "2024-02-16T09:00:00Z/2024-02-16T10:00:00Z"
CSVS = ("recipients.csv", "owners.csv", "exposures.csv")


def golden_incident() -> Incident:
    """One scenario per rule of SPEC §6; events inserted out of order on purpose.

    Owners: alice (d1), carol (d1 until :30), dave (d3 until :30), frank (d3 from :30),
    bob (d2), erin (d5), gina (d6); sam shares d1 (never an owner); d4 has no owner.
    """
    inc = Incident()
    inc.grant("d1", "alice")
    inc.grant("d1", "carol", valid_to=at(30))
    inc.grant("d1", "sam", "shared")
    inc.grant("d2", "bob")
    inc.grant("d3", "dave", valid_to=at(30))
    inc.grant("d3", "frank", valid_from=at(30))
    inc.grant("d5", "erin")
    inc.grant("d6", "gina")

    inc.deliver(at(45, 1.5), "zed", "d1", "e11")  # r1: alice only now
    inc.deliver(at(3), "mallory", "d2", "e2", request_id=None)  # ties at :03 sort
    inc.deliver(at(1, 7.25), "mallory", "d1", "e1")  # r3: alice + carol
    inc.deliver(at(3), "zed", "d2", "e2", request_id="req-b")  #   by request_id,
    inc.deliver(at(3), "=1+1", "d4", "e4", request_id="req-a")  #   missing one last
    inc.tap(at(2), "mallory", "d1", "e1")  # r6
    inc.deliver(at(20), "pat", "d3", "e3")  # r7: owner dave
    inc.tap(at(25), "pat", "d3", "e3")  # r8: links r7 only
    inc.deliver(at(30), "pat", "d3", "e3")  # r9: owner frank
    inc.deliver(at(40), "zed", "d2", "e6")  # r10
    inc.play(at(40), "zed", "d2", "e6")  # r11: same instant
    inc.play(at(75), "mallory", "d1", "e1")  # r12: after window
    inc.tap(at(41), "zed", "d2", "e9")  # r13: unlinked
    inc.deliver(at(4), "mallory", "d2", "e7", status=500)  # r14: not an access
    inc.deliver(at(5), "erin", "d5", "e8")  # r15: her own camera
    inc.deliver(at(6), "sam", "d1", "e1")  # r16: shared with him
    inc.deliver(at(65), "zed", "d1", "e1")  # r17: outside window
    inc.deliver(BASE.replace(minute=50, microsecond=1), "=1+1", "d6", "e10")  # r18
    inc.deliver(at(55), "quinn", "d6", "e12")  # r19
    inc.tap(at(55), "quinn", "d6", "e12")  # r20: same instant

    inc.account("alice", "alice@example.org", 'Alice, "Al" Smith', "en-GB")
    inc.account("carol", "carol@example.org", '=HYPERLINK("http://evil.example","click")', "fr-FR")
    inc.account("dave", None, "דוד כהן", "he-IL")
    inc.account("frank", "frank@example.org", "+1 555 0100", "-x")
    inc.account("gina", "@SUM(A1)", "Zoe\u0308 \U0001f469\u200d\U0001f469\u200d\U0001f467", "\tja")
    inc.account("mallory", "old@example.org", "Old Name", "en")  # superseded below
    inc.account("mallory", "mallory@example.org", 'Mal, "lory"\nSecond line', "en-US")
    inc.account("pat", None, "محمد", "ar")
    inc.account("zed", "zed@example.org", "\r张伟 🦊", "zh-CN")
    inc.account("erin", "erin@example.org", "Erin", "en")
    inc.account("quinn", "quinn@example.org", "Quinn", "en")
    return inc


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return golden_incident().write(tmp_path / "case.duckdb")


def notify(store: Path, out: Path, w: Any = W, **kw: Any) -> NotifyResult:
    con = open_case(store)  # on the engine under test when a test asks for `engine`
    try:
        return write_notifications(con, w, out, **kw)
    finally:
        con.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every entry of a folder: bytes, mode and mtime (to prove nothing changed)."""
    return {
        p.name: (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
    }


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- the lists: golden bytes -----------------------------------------------------------


@pytest.mark.parametrize("name", CSVS)
def test_lists_match_golden_bytes(store: Path, tmp_path: Path, name: str, engine: str) -> None:
    notify(store, tmp_path / "out")
    assert (tmp_path / "out" / name).read_bytes() == (GOLDEN / name).read_bytes()


def test_row_counts_agree_with_the_figures(store: Path, tmp_path: Path, engine: str) -> None:
    result = notify(store, tmp_path / "out")
    figures = json.loads((tmp_path / "out" / "manifest.json").read_text())["figures"]
    assert result.rows == {
        "recipients.csv": figures["recipients"],
        "owners.csv": figures["exposed_owners"],
        "exposures.csv": figures["cross_account_deliveries"],
    }
    assert result.rows == {"recipients.csv": 5, "owners.csv": 6, "exposures.csv": 10}


def test_a_list_never_names_the_other_party(store: Path, tmp_path: Path) -> None:
    notify(store, tmp_path / "out", sanitize=False)
    recipients = read_csv(tmp_path / "out" / "recipients.csv")
    owners = read_csv(tmp_path / "out" / "owners.csv")
    recipient_ids = {r["user_id"] for r in recipients}
    owner_ids = {r["user_id"] for r in owners}
    assert recipient_ids == {"=1+1", "mallory", "pat", "quinn", "zed"}
    assert owner_ids == {"alice", "bob", "carol", "dave", "frank", "gina"}
    cells_r = {c for r in recipients for c in r.values()}
    cells_o = {c for r in owners for c in r.values()}
    assert not cells_r & owner_ids
    assert not cells_o & recipient_ids


def test_users_without_account_or_email_are_counted_unreachable(
    store: Path, tmp_path: Path
) -> None:
    result = notify(store, tmp_path / "out")
    # recipients: "=1+1" (no account), pat (no email); owners: bob (no account), dave.
    assert (result.unreachable_recipients, result.unreachable_owners) == (2, 2)
    assert result.unreachable_users == 4
    bob = next(r for r in read_csv(tmp_path / "out" / "owners.csv") if r["user_id"] == "bob")
    assert (bob["email"], bob["name"], bob["locale"]) == ("", "", "")


def test_no_sanitize_keeps_formula_cells_as_they_are(store: Path, tmp_path: Path) -> None:
    notify(store, tmp_path / "out", sanitize=False)
    owners = {r["user_id"]: r for r in read_csv(tmp_path / "out" / "owners.csv")}
    assert owners["carol"]["name"] == '=HYPERLINK("http://evil.example","click")'
    assert owners["frank"]["name"] == "+1 555 0100"
    assert owners["frank"]["locale"] == "-x"
    assert owners["gina"]["email"] == "@SUM(A1)"
    assert owners["gina"]["locale"] == "\tja"
    recipients = {r["user_id"]: r for r in read_csv(tmp_path / "out" / "recipients.csv")}
    assert recipients["zed"]["name"] == "\r张伟 🦊"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["sanitization"]["formula_prefix"] is False


def test_excel_adds_a_bom_and_nothing_else(store: Path, tmp_path: Path) -> None:
    notify(store, tmp_path / "out", excel=True)
    for name in CSVS:
        assert (tmp_path / "out" / name).read_bytes() == export.BOM + (GOLDEN / name).read_bytes()
    assert not (tmp_path / "out" / "manifest.json").read_bytes().startswith(export.BOM)


def test_zero_affected_users_gives_header_only_files(store: Path, tmp_path: Path) -> None:
    result = notify(store, tmp_path / "out", w=window(-120, -60))
    for name in CSVS:
        header = (GOLDEN / name).read_bytes().split(b"\r\n")[0] + b"\r\n"
        assert (tmp_path / "out" / name).read_bytes() == header
    assert result.rows == {name: 0 for name in CSVS}
    assert result.unreachable_users == 0


# --- manifest ----------------------------------------------------------------------------


def test_manifest_figures_equal_compute_figures(store: Path, tmp_path: Path) -> None:
    notify(store, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    con = open_store(StoreOptions(store), read_only=True)
    try:
        figures = compute_figures(con, W)
    finally:
        con.close()
    assert manifest["figures"] == json.loads(json.dumps(figures, default=str))
    assert manifest["window"] == {"start": "2024-02-16T09:00:00Z", "end": "2024-02-16T10:00:00Z"}


def test_manifest_hashes_and_rows_match_the_files(store: Path, tmp_path: Path) -> None:
    result = notify(store, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert [o["name"] for o in manifest["outputs"]] == list(CSVS)
    for entry in manifest["outputs"]:
        path = tmp_path / "out" / entry["name"]
        assert entry["sha256"] == sha256(path)
        assert entry["size_bytes"] == path.stat().st_size
        assert entry["rows"] == len(read_csv(path))
    manifest_file = next(f for f in result.files if f.name == "manifest.json")
    assert manifest_file.sha256 == sha256(tmp_path / "out" / "manifest.json")


def test_manifest_names_tool_inputs_and_sanitisation(store: Path, tmp_path: Path) -> None:
    notify(store, tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["tool"]["name"] == "forensics"
    assert manifest["tool"]["version"]
    assert [(i["path"], i["sha256"]) for i in manifest["inputs"]] == [
        ("events.jsonl", f"{1:064x}"),
        ("grants.jsonl", f"{2:064x}"),
        ("accounts.jsonl", f"{3:064x}"),
    ]
    assert manifest["sanitization"]["formula_prefix"] is True
    assert manifest["sanitization"]["triggers"] == ["=", "+", "-", "@", "\t", "\r"]
    datetime.strptime(manifest["generated_at"], "%Y-%m-%dT%H:%M:%SZ")


def test_manifest_holds_no_contact_fields(store: Path, tmp_path: Path) -> None:
    notify(store, tmp_path / "out")
    text = (tmp_path / "out" / "manifest.json").read_text(encoding="utf-8")
    for secret in ("example.org", "Smith", "محمد", "mallory", "alice"):
        assert secret not in text


# --- reruns, refusal, privacy ------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_the_lists_do_not_depend_on_the_order_rows_are_stored_in(
    store: Path, tmp_path: Path, seed: int
) -> None:
    # Ingest stores rows in the order its threads staged them (README, "Storage"): the
    # same files can be stored in another order. The lists must not change.
    shuffled = tmp_path / "shuffled.duckdb"
    shutil.copy(store, shuffled)
    con = duckdb.connect(str(shuffled))
    try:
        con.execute("select setseed($s)", {"s": seed / 10})
        for table in ("events", "grants", "accounts"):
            con.execute(f"create temp table t as select * from {table} order by random()")  # noqa: S608
            con.execute(f"delete from {table}")  # noqa: S608
            con.execute(f"insert into {table} select * from t")  # noqa: S608
            con.execute("drop table t")
    finally:
        con.close()
    notify(store, tmp_path / "a")
    notify(shuffled, tmp_path / "b")
    for name in CSVS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_two_runs_are_byte_identical(store: Path, tmp_path: Path) -> None:
    a = notify(store, tmp_path / "a")
    b = notify(store, tmp_path / "b")
    for name in CSVS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())
    ma.pop("generated_at")
    mb.pop("generated_at")
    assert ma == mb
    assert [f.sha256 for f in a.files][:3] == [f.sha256 for f in b.files][:3]


def test_second_run_without_force_is_refused_and_changes_nothing(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    notify(store, out)
    before = snapshot(out)
    with pytest.raises(OutputError, match="not empty"):
        notify(store, out, sanitize=False)
    assert snapshot(out) == before


def test_non_empty_folder_of_other_files_is_refused_untouched(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    with pytest.raises(OutputError):
        notify(store, out)
    assert snapshot(out) == before


def test_an_output_path_through_a_file_or_onto_one_is_named_as_such(
    store: Path, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("mine")
    with pytest.raises(OutputError, match="a part of its path is a file, not a folder"):
        notify(store, tmp_path / "afile" / "sub" / "out")  # it said only "File exists"
    with pytest.raises(OutputError, match="exists and is not a folder"):
        notify(store, tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "mine"


def test_force_replaces_the_lists_and_keeps_other_files(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    notify(store, out, sanitize=False)
    (out / "notes.txt").write_text("mine")
    notify(store, out, force=True)
    for name in CSVS:
        assert (out / name).read_bytes() == (GOLDEN / name).read_bytes()
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted([*CSVS, "manifest.json", "notes.txt"])


def test_empty_existing_folder_is_used_without_force(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    notify(store, out)
    assert (out / "recipients.csv").is_file()


def test_files_0600_and_new_folder_0700_under_umask_022(
    store: Path, tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    out = tmp_path / "deep" / "out"
    notify(store, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name in (*CSVS, "manifest.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600


def test_forced_files_are_0600_even_where_old_ones_were_not(
    store: Path, tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    out = tmp_path / "out"
    out.mkdir()
    (out / "recipients.csv").write_text("old")
    (out / "recipients.csv").chmod(0o644)
    result = notify(store, out, force=True)
    assert stat.S_IMODE((out / "recipients.csv").stat().st_mode) == 0o600
    assert result.warnings  # the existing folder is 0755: the caller is told


def test_failure_while_writing_leaves_no_file_and_no_new_folder(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}
    real = export.render_batch

    def interrupted(batch: Any, *, sanitize: bool) -> bytes:
        calls["n"] += 1
        if calls["n"] == 2:  # recipients.csv written, owners.csv begun
            raise KeyboardInterrupt
        return real(batch, sanitize=sanitize)

    monkeypatch.setattr(csv_text, "render_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        notify(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_failure_while_writing_with_force_keeps_the_previous_set(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    notify(store, out, sanitize=False)
    before = snapshot(out)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "build_manifest", broken)
    with pytest.raises(OutputError, match="No space left"):
        notify(store, out, force=True)
    assert snapshot(out) == before  # no temp file left behind either


def test_interrupt_between_renames_leaves_no_manifest(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder without manifest.json is visibly incomplete; no temp file is left."""
    out = tmp_path / "out"
    notify(store, out)
    real = os.replace
    calls = {"n": 0}

    def replace(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)  # the one export.commit_files calls
    with pytest.raises(KeyboardInterrupt):
        notify(store, out, force=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(CSVS)


# --- the command ---------------------------------------------------------------------------


def test_cli_writes_lists_and_summarises_counts_without_personal_data(
    store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    r = run_cli(["--db", str(store), "notify", "--window", W_TEXT, "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    for name in CSVS:
        assert (out / name).read_bytes() == (GOLDEN / name).read_bytes()
        assert str(out / name) in r.stderr
    assert "5 rows" in r.stderr and "6 rows" in r.stderr and "10 rows" in r.stderr
    assert "cannot be reached (no email): 4" in r.stderr
    for secret in ("example.org", "Smith", "mallory", "alice", "pat", "=1+1", "HYPERLINK"):
        assert secret not in r.stderr


def test_cli_zero_findings_exit_0_and_says_0(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(
        [
            "--db",
            str(store),
            "notify",
            "--window",
            "2024-01-01T00:00:00Z/PT1H",
            "--out",
            str(out),
        ]
    )
    assert r.exit_code == 0, r.stderr
    assert r.stderr.count(" 0 rows") == 3
    assert "cannot be reached (no email): 0" in r.stderr


def test_cli_refuses_non_empty_folder_with_exit_1(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("keep")
    before = snapshot(out)
    r = run_cli(["--db", str(store), "notify", "--window", W_TEXT, "--out", str(out)])
    assert r.exit_code == 1
    assert r.stderr.startswith("forensics: error: output folder")
    assert "--force" in r.stderr
    assert snapshot(out) == before


def test_cli_bad_window_is_exit_2_and_writes_nothing(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(["--db", str(store), "notify", "--window", "yesterday", "--out", str(out)])
    assert r.exit_code == 2
    assert r.stderr.startswith("forensics: error: --window")
    assert not out.exists()


def test_cli_missing_store_is_exit_1_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(
        [
            "--db",
            str(tmp_path / "none.duckdb"),
            "notify",
            "--window",
            W_TEXT,
            "--out",
            str(out),
        ]
    )
    assert r.exit_code == 1
    assert not out.exists()
    assert not (tmp_path / "none.duckdb").exists()


def test_cli_flags_reach_the_files(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(
        [
            "--db",
            str(store),
            "notify",
            "--window",
            W_TEXT,
            "--out",
            str(out),
            "--no-sanitize",
            "--excel",
        ]
    )
    assert r.exit_code == 0, r.stderr
    data = (out / "owners.csv").read_bytes()
    assert data.startswith(export.BOM)
    rows = list(csv.DictReader(io.StringIO(data[len(export.BOM) :].decode("utf-8"), newline="")))
    assert rows[2]["name"] == '=HYPERLINK("http://evil.example","click")'


def test_installed_entry_point_under_umask_022(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("forensics")
    proc = subprocess.run(
        [str(exe), "--db", str(store), "notify", "--window", W_TEXT, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert (out / "exposures.csv").read_bytes() == (GOLDEN / "exposures.csv").read_bytes()


# --- property: the lists' SQL == a plain-Python reading of SPEC §6 -------------------------

USERS = ["u0", "u1", "u2", "u3"]
EVENT_DEVICE = {"e0": "d0", "e1": "d1", "e2": "d0", "e3": "d2"}  # an event has one device
STEP = st.integers(min_value=-1, max_value=8).map(lambda m: at(m * 5))
TIMES = st.one_of(STEP, STEP, STEP.map(lambda t: t + timedelta(microseconds=1)))
FOLLOW_UP = st.sampled_from(  # same instant often: "at or after" is the boundary
    [
        timedelta(0),
        timedelta(0),
        timedelta(minutes=5),
        timedelta(minutes=100),
        timedelta(minutes=-5),
    ]
)


@st.composite
def incidents_st(draw: st.DrawFn) -> Incident:
    inc = Incident()
    for _ in range(draw(st.integers(0, 6))):
        start, end = draw(st.none() | TIMES), draw(st.none() | TIMES)
        if start is not None and end is not None and end <= start:
            start, end = end - timedelta(minutes=5), start
        inc.grant(
            draw(st.sampled_from(sorted(set(EVENT_DEVICE.values())))),
            draw(st.sampled_from(USERS)),
            draw(st.sampled_from(["owner", "owner", "shared"])),
            start,
            end,
        )
    for _ in range(draw(st.integers(0, 8))):
        event = draw(st.sampled_from(sorted(EVENT_DEVICE)))
        inc.deliver(
            draw(TIMES),
            draw(st.sampled_from(USERS)),
            EVENT_DEVICE[event],
            event,
            status=draw(st.sampled_from([None, None, 500])),
            request_id=draw(st.sampled_from([None, "auto"])),
        )
    deliveries = list(inc.events)
    for _ in range(draw(st.integers(0, 8))):
        if deliveries and draw(st.booleans()):
            d = draw(st.sampled_from(deliveries))
            user, event, ts = d.user_id, d.event_id, d.ts + draw(FOLLOW_UP)
        else:
            user, event = draw(st.sampled_from(USERS)), draw(st.sampled_from(sorted(EVENT_DEVICE)))
            ts = draw(TIMES)
        assert event is not None
        action = draw(st.sampled_from(["thumbnail_tapped", "video_played"]))
        inc.event(ts, action, user, EVENT_DEVICE[event], event)
    for user in draw(st.lists(st.sampled_from(USERS), max_size=5)):
        inc.account(user, draw(st.sampled_from([None, "", f"{user}@example.org", "x@y"])))
    return inc


def _severity(played: bool, tapped: bool) -> str:
    return "video" if played else "tapped" if tapped else "thumbnail"


def model_lists(inc: Incident, w: Any) -> dict[str, list[tuple[Any, ...]]]:
    """recipients, owners and exposures rows (no contact fields but email) by SPEC §6's words."""
    cad, taps, plays = model_cross_account(inc.events, inc.grants, w)
    email = {a[0]: a[1] for a in inc.accounts}  # the last record of a user wins

    def linked(d: Event, acts: list[Event]) -> list[Event]:
        return [
            a for a in acts if (a.user_id, a.event_id) == (d.user_id, d.event_id) and d.ts <= a.ts
        ]

    recipients = []
    for u in sorted({d.user_id for d in cad}):
        mine = [d for d in cad if d.user_id == u]
        n_taps = sum(1 for t in taps if t.user_id == u)
        n_plays = sum(1 for p in plays if p.user_id == u)
        recipients.append(
            (
                u,
                email.get(u),
                len(mine),
                len({d.device_id for d in mine}),
                n_taps,
                n_plays,
                min(d.ts for d in mine),
                max(d.ts for d in mine),
                _severity(n_plays > 0, n_taps > 0),
            )
        )
    owners = []
    for o in sorted({o for d in cad for o in model_owners(inc.grants, d)}):
        mine = [d for d in cad if o in model_owners(inc.grants, d)]
        owners.append(
            (
                o,
                email.get(o),
                len({d.device_id for d in mine}),
                len(mine),
                len({d.user_id for d in mine}),
                min(d.ts for d in mine),
                max(d.ts for d in mine),
                _severity(any(linked(d, plays) for d in mine), any(linked(d, taps) for d in mine)),
            )
        )
    exposures = [
        (
            d.ts,
            d.user_id,
            d.device_id,
            d.event_id,
            model_owners(inc.grants, d),  # a list; the CSV joins it with ";"
            min((t.ts for t in linked(d, taps)), default=None),
            min((p.ts for p in linked(d, plays)), default=None),
            d.request_id,
            d.source_record,
        )
        for d in sorted(
            cad, key=lambda d: (d.ts, d.request_id is None, d.request_id or "", d.source_record)
        )
    ]
    return {"recipients": recipients, "owners": owners, "exposures": exposures}


# The columns of each list that model_lists gives, in its order.
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "recipients": (
        "user_id",
        "email",
        "thumbnails",
        "devices",
        "taps",
        "plays",
        "first_seen",
        "last_seen",
        "severity",
    ),
    "owners": (
        "user_id",
        "email",
        "devices",
        "thumbnails",
        "viewers",
        "first_exposed",
        "last_exposed",
        "severity",
    ),
    "exposures": (
        "delivered_at",
        "recipient_id",
        "device_id",
        "event_id",
        "owner_ids",
        "first_tap_at",
        "first_play_at",
        "request_id",
        "source_record",
    ),
}


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inc=incidents_st(), bounds=st.tuples(st.integers(-1, 7), st.integers(1, 6)))
def test_list_queries_equal_the_model(
    scratch: duckdb.DuckDBPyConnection, inc: Incident, bounds: tuple[int, int]
) -> None:
    w = window(bounds[0] * 5, (bounds[0] + bounds[1]) * 5)
    clear_store(scratch)
    inc.insert(scratch)
    prepare_window(scratch, w)
    expected = model_lists(inc, w)
    for name, columns in LIST_COLUMNS.items():
        rows = run_query(scratch, name).to_pylist()
        assert [tuple(r[c] for c in columns) for r in rows] == expected[name], name
