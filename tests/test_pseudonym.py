"""Pseudonymised lists (SPEC §6, `notify --pseudonymize`): ids replaced by the first 32 hex
digits of HMAC-SHA256(key, id), contact columns empty, the key never written or echoed."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.errors import UsageError
from forensics.pseudonym import KEY_ENV, load_key
from forensics.store import StoreOptions, open_store
from forensics.waves import WaveResult, write_wave
from tests.helpers.case_files import ingest_events, ingest_reference
from tests.helpers.incident import Incident, at
from tests.test_notify import W_TEXT, W, golden_incident

KEY = "k3y-4-processors-only"
CSVS = ("recipients.csv", "owners.csv", "exposures.csv")


def h(value: str, key: str = KEY) -> str:
    """The SPEC's pseudonym, computed independently of forensics.pseudonym."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def wave(db: Path, out: Path, key: str | None = KEY, **kw: Any) -> WaveResult:
    con = open_store(StoreOptions(db), read_only=True)
    try:
        env = {} if key is None else {KEY_ENV: key}
        return write_wave(con, W, out, environ=env, **kw)
    finally:
        con.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def every_cell(folder: Path) -> set[str]:
    cells = set()
    for name in CSVS:
        for row in read_csv(folder / name):
            for value in row.values():
                cells.add(value)
                cells.update(value.split(";"))
    return cells


def json_strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(json_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(json_strings(v) for v in value)) if value else set()
    return set()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return golden_incident().write(tmp_path / "case.duckdb")


@pytest.fixture
def plain_and_pseudo(store: Path, tmp_path: Path) -> tuple[Path, Path]:
    wave(store, tmp_path / "plain", sanitize=False)
    wave(store, tmp_path / "pseudo", pseudonymize=True, sanitize=False)
    return tmp_path / "plain", tmp_path / "pseudo"


# --- the pseudonyms --------------------------------------------------------------------------


def test_people_lists_hold_hmac_pseudonyms_sorted_with_contacts_empty(
    plain_and_pseudo: tuple[Path, Path],
) -> None:
    plain, pseudo = plain_and_pseudo
    for name in ("recipients.csv", "owners.csv"):
        raw = read_csv(plain / name)
        got = read_csv(pseudo / name)
        expected = sorted(
            ({**r, "user_id": h(r["user_id"]), "email": "", "name": "", "locale": ""} for r in raw),
            key=lambda r: r["user_id"],
        )
        assert got == expected, name
        assert [r["user_id"] for r in got] == sorted(r["user_id"] for r in got)
        assert all(len(r["user_id"]) == 32 and r["user_id"] == r["user_id"].lower() for r in got)


def test_exposures_hold_hmac_pseudonyms_for_every_id(plain_and_pseudo: tuple[Path, Path]) -> None:
    plain, pseudo = plain_and_pseudo
    raw = read_csv(plain / "exposures.csv")
    got = read_csv(pseudo / "exposures.csv")
    expected = [
        {
            **r,
            "recipient_id": h(r["recipient_id"]),
            "device_id": h(r["device_id"]),
            "event_id": h(r["event_id"]),
            "owner_ids": ";".join(sorted(h(o) for o in r["owner_ids"].split(";") if o)),
        }
        for r in raw
    ]
    assert got == expected
    assert any(";" in r["owner_ids"] for r in got)  # a delivery with two owners
    assert any(r["owner_ids"] == "" for r in got)  # and one with none


def test_an_owner_id_holding_the_separator_has_one_pseudonym_in_every_list(
    tmp_path: Path,
) -> None:
    # owner_ids were split on ";" to be pseudonymised: "s;t" became h("s");h("t"), two
    # people who do not exist, and matched no row of owners.csv.
    inc = Incident()
    inc.grant("d1", "s;t", "owner")
    inc.grant("d1", "a", "owner")
    inc.deliver(at(10), "u1", "d1", "e1")
    db = inc.write(tmp_path / "case.duckdb")
    wave(db, tmp_path / "p", pseudonymize=True)
    owners = {r["user_id"] for r in read_csv(tmp_path / "p" / "owners.csv")}
    assert owners == {h("s;t"), h("a")}
    [row] = read_csv(tmp_path / "p" / "exposures.csv")
    assert row["owner_ids"] == ";".join(sorted([h("s;t"), h("a")]))
    wave(db, tmp_path / "q")  # the plain list is as before: the ids joined by ";"
    assert read_csv(tmp_path / "q" / "exposures.csv")[0]["owner_ids"] == "a;s;t"


def test_no_raw_id_email_or_name_anywhere_in_the_folder(
    plain_and_pseudo: tuple[Path, Path],
) -> None:
    plain, pseudo = plain_and_pseudo
    inc = golden_incident()
    ids = {e.user_id for e in inc.events} | {e.device_id or "" for e in inc.events}
    ids |= {e.event_id or "" for e in inc.events} | {g.user_id for g in inc.grants}
    contacts = {v for a in inc.accounts for v in a[1:4] if v}
    assert not every_cell(pseudo) & (ids | contacts)
    manifest = json.loads((pseudo / "manifest.json").read_text(encoding="utf-8"))
    assert not json_strings(manifest) & (ids | contacts)
    # and as text, anywhere in any file: emails, names and the longer ids
    text = "\n".join((pseudo / n).read_text(encoding="utf-8") for n in (*CSVS, "manifest.json"))
    for value in {v for a in inc.accounts for v in a[1:3] if v} | {i for i in ids if len(i) > 4}:
        assert value not in text, value
    assert every_cell(plain) & ids  # the check would catch them


def test_same_store_window_and_key_give_byte_identical_files(store: Path, tmp_path: Path) -> None:
    wave(store, tmp_path / "a", pseudonymize=True)
    wave(store, tmp_path / "b", pseudonymize=True)
    for name in CSVS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_keys_give_different_pseudonyms(store: Path, tmp_path: Path) -> None:
    wave(store, tmp_path / "plain")
    wave(store, tmp_path / "a", pseudonymize=True)
    wave(store, tmp_path / "b", key=KEY + "2", pseudonymize=True)
    raw = [r["user_id"] for r in read_csv(tmp_path / "plain" / "owners.csv")]
    a = {r["user_id"] for r in read_csv(tmp_path / "a" / "owners.csv")}
    b = {r["user_id"] for r in read_csv(tmp_path / "b" / "owners.csv")}
    assert a == {h(u) for u in raw}
    assert b == {h(u, KEY + "2") for u in raw}
    assert not a & b


def test_manifest_says_pseudonymised_and_holds_no_key(store: Path, tmp_path: Path) -> None:
    wave(store, tmp_path / "p", pseudonymize=True)
    wave(store, tmp_path / "q")
    text = (tmp_path / "p" / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(text)
    p = manifest["pseudonymization"]
    assert p["pseudonymized"] is True and p["digits"] == 32
    assert p["columns"]["exposures.csv"] == ["recipient_id", "device_id", "event_id", "owner_ids"]
    assert p["key_check"] != h("")
    assert KEY not in text
    plain = json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert plain["pseudonymization"] == {"pseudonymized": False}


# --- the key ---------------------------------------------------------------------------------


def test_key_file_wins_and_loses_one_final_line_break(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_bytes(b"from-file\n")
    assert load_key(f, {KEY_ENV: "from-env"}) == b"from-file"
    f.write_bytes(b"from-file\r\n")
    assert load_key(f, {}) == b"from-file"
    f.write_bytes(b"two-lines\n\n")
    assert load_key(f, {}) == b"two-lines\n"
    assert load_key(None, {KEY_ENV: "from-env"}) == b"from-env"


@pytest.mark.parametrize(
    ("content", "env"),
    [
        (None, {}),
        (None, {KEY_ENV: ""}),
        (None, {KEY_ENV: "  "}),
        (b"", {KEY_ENV: KEY}),
        (b"\n", {}),
    ],
)
def test_missing_or_empty_key_is_a_usage_error(
    tmp_path: Path, content: bytes | None, env: dict[str, str]
) -> None:
    key_file = None
    if content is not None:
        key_file = tmp_path / "key"
        key_file.write_bytes(content)
    with pytest.raises(UsageError):
        load_key(key_file, env)


def run_cli(args: list[str], env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def test_cli_pseudonymises_without_echoing_the_key(store: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text(KEY + "\n")
    base = ["--db", str(store), "notify", "--window", W_TEXT, "--pseudonymize"]
    r = run_cli(
        [*base, "--out", str(tmp_path / "a"), "--key-file", str(key_file)], env={KEY_ENV: ""}
    )
    assert r.exit_code == 0, r.stderr
    r2 = run_cli([*base, "--out", str(tmp_path / "b")], env={KEY_ENV: KEY})
    assert r2.exit_code == 0, r2.stderr
    for result in (r, r2):
        assert KEY not in result.stdout + result.stderr
        assert "pseudonymised" in result.stderr
        assert "mallory" not in result.stderr
    for name in CSVS:  # the key file's final line break is not part of the key
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    for path in (tmp_path / "a").iterdir():
        assert KEY.encode() not in path.read_bytes()
    assert h("mallory") in (tmp_path / "a" / "recipients.csv").read_text()


@pytest.mark.parametrize("case", ["missing", "empty-env", "empty-file", "unreadable-file"])
def test_cli_bad_key_exits_2_and_writes_nothing(store: Path, tmp_path: Path, case: str) -> None:
    args = [
        "--db",
        str(store),
        "notify",
        "--window",
        W_TEXT,
        "--out",
        str(tmp_path / "o"),
        "--pseudonymize",
    ]
    env: dict[str, str | None] = {KEY_ENV: "" if case == "empty-env" else None}
    if case == "empty-file":
        (tmp_path / "k").write_bytes(b"")
        args += ["--key-file", str(tmp_path / "k")]
    if case == "unreadable-file":
        args += ["--key-file", str(tmp_path / "nope")]
    r = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    assert r.exit_code == 2, r.stderr
    assert r.stderr.startswith("forensics: error: ") and r.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_cli_key_file_without_pseudonymize_is_a_usage_error(store: Path, tmp_path: Path) -> None:
    (tmp_path / "k").write_text(KEY)
    r = run_cli(
        [
            "--db",
            str(store),
            "notify",
            "--window",
            W_TEXT,
            "--out",
            str(tmp_path / "o"),
            "--key-file",
            str(tmp_path / "k"),
        ]
    )
    assert r.exit_code == 2
    assert "--key-file" in r.stderr and KEY not in r.stderr
    assert not (tmp_path / "o").exists()


# --- pseudonyms and waves together -------------------------------------------------------------


@pytest.fixture
def grown(tmp_path: Path) -> tuple[Path, list[Any]]:
    inc = golden_incident()
    late = {"r6", "r11", "r19", "r20"}
    db = tmp_path / "case.duckdb"
    ingest_reference(db, tmp_path / "logs", inc)
    ingest_events(
        db, tmp_path / "logs", "early", [e for e in inc.events if e.request_id not in late]
    )
    return db, [e for e in inc.events if e.request_id in late]


def test_pseudonymised_waves_list_the_same_people_as_plain_waves(
    grown: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    db, late = grown
    wave(db, tmp_path / "p1", pseudonymize=True)
    wave(db, tmp_path / "c1")
    ingest_events(db, tmp_path / "logs", "late", late)
    wave(db, tmp_path / "p2", previous=tmp_path / "p1", pseudonymize=True)
    wave(db, tmp_path / "c2", previous=tmp_path / "c1", sanitize=False)
    # a plain wave after a pseudonymised one compares through the key
    wave(db, tmp_path / "x2", previous=tmp_path / "p1", sanitize=False)
    for name in ("recipients.csv", "owners.csv"):
        plain = {(r["user_id"], r["change"]) for r in read_csv(tmp_path / "c2" / name)}
        assert plain
        assert {(r["user_id"], r["change"]) for r in read_csv(tmp_path / "p2" / name)} == {
            (h(u), c) for u, c in plain
        }
        assert read_csv(tmp_path / "x2" / name) == read_csv(tmp_path / "c2" / name)
    assert len(read_csv(tmp_path / "p2" / "exposures.csv")) == len(
        read_csv(tmp_path / "c2" / "exposures.csv")
    )
    third = wave(db, tmp_path / "p3", previous=tmp_path / "p2", pseudonymize=True)
    assert third.nothing_new


def test_a_pseudonymised_previous_wave_needs_its_own_key(
    grown: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    db, late = grown
    wave(db, tmp_path / "p1", pseudonymize=True)
    with pytest.raises(UsageError, match="missing: wave 1 .* is pseudonymised"):
        wave(db, tmp_path / "a", key=None, previous=tmp_path / "p1")
    with pytest.raises(UsageError, match="is not the key wave 1"):
        wave(db, tmp_path / "b", key="another key", previous=tmp_path / "p1", pseudonymize=True)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_empty_incident_gives_header_only_pseudonymised_lists(tmp_path: Path) -> None:
    db = Incident().write(tmp_path / "case.duckdb")
    result = wave(db, tmp_path / "o", pseudonymize=True)
    assert result.notify.rows == {name: 0 for name in CSVS}


def test_a_key_without_pseudonymize_warns_that_the_lists_are_raw(
    store: Path, tmp_path: Path
) -> None:
    result = wave(store, tmp_path / "o")  # the key is in the environment
    assert any("--pseudonymize was not given" in m for m in result.warnings)
    assert "mallory" in (tmp_path / "o" / "recipients.csv").read_text()
    assert not wave(store, tmp_path / "p", key=None).warnings
    assert not wave(store, tmp_path / "q", pseudonymize=True).warnings
