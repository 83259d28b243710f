"""Notification waves (SPEC §6, `notify --previous DIR`) and `verify-notices`: a case grows by
late event files; each wave lists only what is new or escalated since its whole chain."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from forensics.cli import app
from forensics.errors import InputError, UsageError
from forensics.export import neutralize_formula
from forensics.store import StoreOptions, open_store
from forensics.waves import (
    SEVERITY_RANK,
    WaveResult,
    delivery_keys,
    neutralize_column,
    read_chain,
    verify_notices,
    write_wave,
)
from forensics.window import Window
from tests.helpers.case_files import ingest_events, ingest_reference, part
from tests.helpers.incident import Event, Incident, at
from tests.test_notify import W_TEXT, W, golden_incident, incidents_st, model_lists

CSVS = ("recipients.csv", "owners.csv", "exposures.csv")
# Delivered late: mallory's tap (r6), zed's play (r11), quinn's delivery and tap (r19, r20),
# the delivery of d6 to "=1+1" (r18) and mallory's play after the window (r12).
LATE = {"r6", "r11", "r12", "r18", "r19", "r20"}


def wave(db: Path, out: Path, w: Window = W, **kw: Any) -> WaveResult:
    con = open_store(StoreOptions(db), read_only=True)
    try:
        return write_wave(con, w, out, environ={}, **kw)
    finally:
        con.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_delta(
    before: Incident, after: Incident, w: Window
) -> dict[str, dict[str, tuple[Any, ...]]]:
    """SPEC §6 waves in plain Python: per list, user → (change, full row now), for the people
    absent from `before`'s lists or whose severity rose; exposures: delivery → row."""
    b, a = model_lists(before, w), model_lists(after, w)
    out: dict[str, dict[str, tuple[Any, ...]]] = {}
    for name in ("recipients", "owners"):
        earlier = {row[0]: SEVERITY_RANK[row[-1]] for row in b[name]}
        out[name] = {}
        for row in a[name]:
            if row[0] not in earlier:
                out[name][row[0]] = ("new", row)
            elif SEVERITY_RANK[row[-1]] > earlier[row[0]]:
                out[name][row[0]] = ("escalated", row)
    listed = {(r[0], r[1], r[3], r[7]) for r in b["exposures"]}
    out["exposures"] = {
        f"{r[0].isoformat()} {r[1]} {r[3]} {r[7]}": r
        for r in a["exposures"]
        if (r[0], r[1], r[3], r[7]) not in listed
    }
    return out


def assert_wave_equals_model(
    folder: Path, expected: dict[str, dict[str, tuple[Any, ...]]], sanitized: bool
) -> None:
    def cell(value: str) -> str:
        return neutralize_formula(value) if sanitized else value

    for name, columns in (
        ("recipients", ("thumbnails", "devices", "taps", "plays")),
        ("owners", ("devices", "thumbnails", "viewers")),
    ):
        rows = read_csv(folder / f"{name}.csv")
        assert list(rows[0])[-1] == "change" if rows else True
        got = {
            r["user_id"]: (r["change"], r["severity"], *(int(r[c]) for c in columns)) for r in rows
        }
        want = {
            cell(u): (change, row[-1], *row[2 : 2 + len(columns)])
            for u, (change, row) in expected[name].items()
        }
        assert got == want, name
    exposures = read_csv(folder / "exposures.csv")
    got_e = sorted((r["recipient_id"], r["event_id"], r["request_id"]) for r in exposures)
    want_e = sorted(
        (cell(r[1]), cell(r[3]), "" if r[7] is None else cell(r[7]))
        for r in expected["exposures"].values()
    )
    assert got_e == want_e


@pytest.fixture
def grown(tmp_path: Path) -> Iterator[tuple[Path, Incident, list[Event], list[Event]]]:
    """A store holding the golden incident's early events; the late ones are not ingested."""
    inc = golden_incident()
    early = [e for e in inc.events if e.request_id not in LATE]
    late = [e for e in inc.events if e.request_id in LATE]
    db = tmp_path / "case.duckdb"
    ingest_reference(db, tmp_path / "logs", inc)
    ingest_events(db, tmp_path / "logs", "early", early)
    yield db, inc, early, late


# --- the delta -----------------------------------------------------------------------------


def test_second_wave_lists_exactly_the_new_and_escalated(
    grown: tuple[Path, Incident, list[Event], list[Event]], tmp_path: Path
) -> None:
    db, inc, early, late = grown
    first = wave(db, tmp_path / "w1")
    assert first.number == 1 and first.previous is None
    ingest_events(db, tmp_path / "logs", "late", late)
    second = wave(db, tmp_path / "w2", previous=tmp_path / "w1")

    expected = model_delta(part(inc, early), inc, W)
    assert_wave_equals_model(tmp_path / "w2", expected, sanitized=True)
    # the scenario holds both kinds of change, for both lists
    assert {c for c, _ in expected["recipients"].values()} == {"new", "escalated"}
    assert {c for c, _ in expected["owners"].values()} == {"new", "escalated"}
    assert second.number == 2
    assert second.changes["recipients.csv"] == {
        "new": sum(1 for c, _ in expected["recipients"].values() if c == "new"),
        "escalated": sum(1 for c, _ in expected["recipients"].values() if c == "escalated"),
    }
    manifest = json.loads((tmp_path / "w2" / "manifest.json").read_text())
    assert manifest["wave"]["number"] == 2
    assert manifest["wave"]["previous"]["manifest_sha256"] == sha256(
        tmp_path / "w1" / "manifest.json"
    )
    assert manifest["wave"]["previous"]["folder"] == "../w1"
    assert manifest["wave"]["changes"] == second.changes
    # figures stay those of the whole store: a wave lists less, it does not count less
    assert manifest["figures"]["recipients"] == len(model_lists(inc, W)["recipients"])
    first_manifest = json.loads((tmp_path / "w1" / "manifest.json").read_text())
    assert first_manifest["wave"] == {"number": 1, "previous": None}


def test_escalated_rows_carry_the_counts_of_now(
    grown: tuple[Path, Incident, list[Event], list[Event]], tmp_path: Path
) -> None:
    db, inc, early, late = grown
    wave(db, tmp_path / "w1")
    ingest_events(db, tmp_path / "logs", "late", late)
    wave(db, tmp_path / "w2", previous=tmp_path / "w1")
    wave(db, tmp_path / "full")
    full = {r["user_id"]: r for r in read_csv(tmp_path / "full" / "recipients.csv")}
    for row in read_csv(tmp_path / "w2" / "recipients.csv"):
        change = row.pop("change")
        assert change in ("new", "escalated")
        assert row == full[row["user_id"]]
    mallory = next(
        r for r in read_csv(tmp_path / "w2" / "recipients.csv") if r["user_id"] == "mallory"
    )
    assert (mallory["change"], mallory["severity"]) == ("escalated", "video")


def test_unchanged_severity_is_not_listed_again(
    grown: tuple[Path, Incident, list[Event], list[Event]], tmp_path: Path
) -> None:
    db, inc, early, late = grown
    wave(db, tmp_path / "w1")
    # a second delivery to pat (already 'tapped') and a new thumbnail for a new recipient
    more = Incident()
    more.deliver(at(50), "pat", "d3", "e3", request_id="x1")
    more.deliver(at(51), "newbie", "d3", "e3", request_id="x2")
    ingest_events(db, tmp_path / "logs", "more", more.events)
    wave(db, tmp_path / "w2", previous=tmp_path / "w1")
    recipients = {r["user_id"]: r["change"] for r in read_csv(tmp_path / "w2" / "recipients.csv")}
    assert recipients == {"newbie": "new"}
    exposures = read_csv(tmp_path / "w2" / "exposures.csv")
    assert sorted(r["request_id"] for r in exposures) == ["x1", "x2"]


def test_third_wave_with_nothing_new_lists_nobody(
    grown: tuple[Path, Incident, list[Event], list[Event]], tmp_path: Path
) -> None:
    db, inc, early, late = grown
    wave(db, tmp_path / "w1")
    ingest_events(db, tmp_path / "logs", "late", late)
    wave(db, tmp_path / "w2", previous=tmp_path / "w1")
    third = wave(db, tmp_path / "w3", previous=tmp_path / "w2")
    assert third.nothing_new and third.number == 3
    headers = {
        "recipients.csv": "user_id,email,name,locale,thumbnails,devices,taps,plays,first_seen,"
        "last_seen,severity,change\r\n",
        "owners.csv": "user_id,email,name,locale,devices,thumbnails,viewers,first_exposed,"
        "last_exposed,severity,change\r\n",
        "exposures.csv": "delivered_at,recipient_id,device_id,event_id,owner_ids,first_tap_at,"
        "first_play_at,request_id,source_file,source_record\r\n",
    }
    for name, header in headers.items():
        assert (tmp_path / "w3" / name).read_bytes() == header.encode("utf-8")


def test_people_of_wave_one_are_not_relisted_by_wave_three(tmp_path: Path) -> None:
    """The baseline is the whole chain, not only the last wave's delta."""
    inc = Incident()
    inc.grant("d1", "owner")
    inc.deliver(at(1), "ann", "d1", "e1")
    db = tmp_path / "case.duckdb"
    ingest_reference(db, tmp_path / "logs", inc)
    ingest_events(db, tmp_path / "logs", "a", inc.events)
    wave(db, tmp_path / "w1")
    later = Incident()
    later.deliver(at(2), "bea", "d1", "e2", request_id="b1")
    ingest_events(db, tmp_path / "logs", "b", later.events)
    wave(db, tmp_path / "w2", previous=tmp_path / "w1")
    last = Incident()
    last.deliver(at(3), "cid", "d1", "e3", request_id="c1")
    last.tap(at(4), "ann", "d1", "e1", request_id="c2")
    ingest_events(db, tmp_path / "logs", "c", last.events)
    third = wave(db, tmp_path / "w3", previous=tmp_path / "w2")
    assert {r["user_id"]: r["change"] for r in read_csv(tmp_path / "w3" / "recipients.csv")} == {
        "ann": "escalated",
        "cid": "new",
    }
    assert [r["request_id"] for r in read_csv(tmp_path / "w3" / "exposures.csv")] == ["c1"]
    assert [r["change"] for r in read_csv(tmp_path / "w3" / "owners.csv")] == ["escalated"]
    assert third.changes["owners.csv"] == {"new": 0, "escalated": 1}


def test_a_delivery_without_request_id_is_matched_by_time_and_ids(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d1", "owner")
    inc.deliver(at(1, 0.25), "ann", "d1", "e1", request_id=None)
    db = tmp_path / "case.duckdb"
    ingest_reference(db, tmp_path / "logs", inc)
    ingest_events(db, tmp_path / "logs", "a", inc.events)
    wave(db, tmp_path / "w1")
    later = Incident()  # the same instant, recipient and device: another event is another row
    later.deliver(at(1, 0.25), "ann", "d1", "e2", request_id=None)
    later.deliver(at(1, 0.25), "ann", "d1", "e1", request_id=None)  # a duplicate record
    ingest_events(db, tmp_path / "logs", "b", later.events)
    wave(db, tmp_path / "w2", previous=tmp_path / "w1")
    assert [r["event_id"] for r in read_csv(tmp_path / "w2" / "exposures.csv")] == ["e2"]
    assert read_csv(tmp_path / "w2" / "recipients.csv") == []


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    inc=incidents_st(),
    split=st.lists(st.booleans(), min_size=16, max_size=16),
    sanitize=st.booleans(),
)
def test_waves_equal_the_models_difference_of_two_full_results(
    tmp_path_factory: pytest.TempPathFactory, inc: Incident, split: list[bool], sanitize: bool
) -> None:
    tmp = tmp_path_factory.mktemp("waves")
    early = [e for i, e in enumerate(inc.events) if split[i % len(split)]]
    late = [e for i, e in enumerate(inc.events) if not split[i % len(split)]]
    db = tmp / "case.duckdb"
    ingest_reference(db, tmp / "logs", inc)
    ingest_events(db, tmp / "logs", "early", early)
    wave(db, tmp / "w1", sanitize=sanitize)
    ingest_events(db, tmp / "logs", "late", late)
    wave(db, tmp / "w2", previous=tmp / "w1", sanitize=sanitize)
    assert_wave_equals_model(tmp / "w2", model_delta(part(inc, early), inc, W), sanitize)


# --- the previous folder is checked ---------------------------------------------------------


@pytest.fixture(scope="module")
def built_chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three waves, w1 → w2 → w3, and their store, built once for the tests below."""
    root = tmp_path_factory.mktemp("chain")
    inc = golden_incident()
    db = root / "case.duckdb"
    ingest_reference(db, root / "logs", inc)
    ingest_events(db, root / "logs", "early", [e for e in inc.events if e.request_id not in LATE])
    wave(db, root / "w1")
    ingest_events(db, root / "logs", "late", [e for e in inc.events if e.request_id in LATE])
    wave(db, root / "w2", previous=root / "w1")
    wave(db, root / "w3", previous=root / "w2")
    return root


@pytest.fixture
def chain(built_chain: Path, tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """A private copy of the three waves in tmp_path; returns (db, w1, w2, w3)."""
    for name in ("case.duckdb", "w1", "w2", "w3"):
        source = built_chain / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path / "case.duckdb", tmp_path / "w1", tmp_path / "w2", tmp_path / "w3"


@pytest.mark.parametrize("name", CSVS)
def test_a_changed_previous_file_is_refused_naming_it(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path, name: str
) -> None:
    db, w1, w2, w3 = chain
    path = w2 / name
    path.write_bytes(path.read_bytes() + b"x\r\n")
    with pytest.raises(InputError, match=f"{name}.*changed since the manifest"):
        wave(db, tmp_path / "w4", previous=w3)  # found while walking back from w3
    assert not (tmp_path / "w4").exists()


@pytest.mark.parametrize("name", CSVS)
def test_a_resealed_list_that_cannot_be_read_is_refused_without_quoting_it(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path, name: str
) -> None:
    db, w1, w2, w3 = chain
    path = w1 / name
    lines = path.read_bytes().split(b"\r\n")
    row = lines[1]
    lines[1] = row.rsplit(b",", 1)[0]  # a row one cell short
    path.write_bytes(b"\r\n".join(lines))
    manifest = json.loads((w1 / "manifest.json").read_text())
    for out in manifest["outputs"]:
        if out["name"] == name:
            out.update(sha256=sha256(path), size_bytes=path.stat().st_size)
    (w1 / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=f"{name}: cannot be read as a notification list") as e:
        wave(db, tmp_path / "w2b", previous=w1)
    assert "columns, got" in str(e.value)
    for cell in row.decode().split(","):
        if len(cell) > 3:
            assert cell not in str(e.value)
    # verify-notices reads the lists as notify does: the re-sealed wave is not whole.
    (check,) = verify_notices([w1])
    assert check.problem is not None and f"{name}: cannot be read" in check.problem
    assert check.waves == ()


def test_a_list_replaced_by_a_symbolic_link_is_named_as_one(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    db, w1, w2, w3 = chain
    (w1 / "owners.csv").rename(w1 / "owners.real")
    (w1 / "owners.csv").symlink_to("owners.real")
    with pytest.raises(InputError, match="owners.csv: is a symbolic link"):
        wave(db, tmp_path / "w4", previous=w2)
    (check,) = verify_notices([w3])
    assert check.problem is not None and "owners.csv: is a symbolic link" in check.problem


def test_a_missing_previous_file_is_refused_naming_it(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    db, w1, w2, w3 = chain
    (w1 / "owners.csv").unlink()
    with pytest.raises(InputError, match="owners.csv: is missing"):
        wave(db, tmp_path / "w4", previous=w2)
    assert not (tmp_path / "w4").exists()


def test_a_folder_without_manifest_is_not_a_previous_wave(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    db, *_ = chain
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="manifest.json is missing"):
        wave(db, tmp_path / "w4", previous=tmp_path / "empty")


def test_a_replaced_previous_manifest_breaks_the_chain(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    db, w1, w2, w3 = chain
    wave(db, w1, force=True, sanitize=False)  # valid files, but not those w2 was built on
    with pytest.raises(InputError, match="w1/manifest.json: is not the manifest wave 2"):
        wave(db, tmp_path / "w4", previous=w3)


def test_a_moved_previous_folder_is_reported(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    db, w1, w2, w3 = chain
    w1.rename(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="previous wave is not at .*w1"):
        wave(db, tmp_path / "w4", previous=w2)


def test_the_chain_moves_as_a_whole(chain: tuple[Path, Path, Path, Path], tmp_path: Path) -> None:
    db, w1, w2, w3 = chain
    shutil.move(str(tmp_path), str(tmp_path.with_name(tmp_path.name + "-moved")))
    moved = tmp_path.with_name(tmp_path.name + "-moved")
    assert [w.number for w in read_chain(moved / "w3")] == [1, 2, 3]


def test_out_may_not_be_a_wave_of_the_chain(chain: tuple[Path, Path, Path, Path]) -> None:
    db, w1, w2, w3 = chain
    with pytest.raises(UsageError, match="--out: is wave 1"):
        wave(db, w1, previous=w2, force=True)


def test_another_window_is_compared_with_a_warning(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    db, w1, w2, w3 = chain
    result = wave(db, tmp_path / "w4", w=Window(at(0), at(120)), previous=w3)
    assert any("another window" in m for m in result.warnings)
    assert not wave(db, tmp_path / "w5", previous=w3).warnings


# --- verify-notices ----------------------------------------------------------------------------


def test_a_chain_is_verified_end_to_end(chain: tuple[Path, Path, Path, Path]) -> None:
    db, w1, w2, w3 = chain
    [check] = verify_notices([w3])
    assert check.problem is None
    assert [w.number for w in check.waves] == [3, 2, 1]
    assert check.waves[0].previous_sha256 == sha256(w2 / "manifest.json")
    assert check.waves[1].previous_sha256 == sha256(w1 / "manifest.json")


def test_a_broken_link_is_detected(chain: tuple[Path, Path, Path, Path]) -> None:
    db, w1, w2, w3 = chain
    wave(db, w2, previous=w1, force=True, sanitize=False)  # w3's link no longer holds
    [check] = verify_notices([w3])
    assert [w.number for w in check.waves] == [3]
    assert check.problem is not None and "chain is broken" in check.problem
    assert verify_notices([w2])[0].problem is None


def test_a_changed_file_deep_in_the_chain_is_detected(chain: tuple[Path, Path, Path, Path]) -> None:
    db, w1, w2, w3 = chain
    data = (w1 / "exposures.csv").read_bytes()
    (w1 / "exposures.csv").write_bytes(data.replace(b"zed", b"zee", 1))
    [check] = verify_notices([w3])
    assert [w.number for w in check.waves] == [3, 2]
    assert check.problem is not None and "w1/exposures.csv: changed" in check.problem


def run_cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_cli_waves_and_verify_notices(
    grown: tuple[Path, Incident, list[Event], list[Event]], tmp_path: Path
) -> None:
    db, inc, early, late = grown
    base = ["--db", str(db), "notify", "--window", W_TEXT]
    r = run_cli([*base, "--out", str(tmp_path / "w1")])
    assert r.exit_code == 0, r.stderr
    assert "wave 1 (no previous wave)" in r.stderr
    ingest_events(db, tmp_path / "logs", "late", late)
    r = run_cli([*base, "--out", str(tmp_path / "w2"), "--previous", str(tmp_path / "w1")])
    assert r.exit_code == 0, r.stderr
    assert "wave 2, after wave 1" in r.stderr and "recipients 1 new, 2 escalated" in r.stderr
    r = run_cli([*base, "--out", str(tmp_path / "w3"), "--previous", str(tmp_path / "w2")])
    assert r.exit_code == 0, r.stderr
    assert "nothing new since then; the lists hold headers only" in r.stderr
    assert r.stdout == ""
    for secret in ("mallory", "quinn", "zed", "example.org"):
        assert secret not in r.stderr

    r = run_cli(["verify-notices", str(tmp_path / "w3"), "--json"])
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert [w["wave"] for w in report["chains"][0]["waves"]] == [3, 2, 1]
    assert "1 of 1 chains verified back to wave 1" in r.stderr

    (tmp_path / "w2" / "owners.csv").write_text("tampered")
    r = run_cli(["verify-notices", str(tmp_path / "w3"), str(tmp_path / "w1")])
    assert r.exit_code == 1
    assert "forensics: error: " in r.stderr and "w2/owners.csv: changed" in r.stderr
    assert "1 of 2 chains verified back to wave 1; 1 broken" in r.stderr
    r = run_cli([*base, "--out", str(tmp_path / "w4"), "--previous", str(tmp_path / "w3")])
    assert r.exit_code == 1
    assert r.stderr.startswith("forensics: error: ") and "owners.csv" in r.stderr
    assert not (tmp_path / "w4").exists()


# --- the comparison's building blocks ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.sampled_from(list("=+-@\t\r'ab ;\\\x1f\"")), max_size=5), max_size=20
    )
)
def test_column_neutralising_equals_neutralize_formula(cells: list[str]) -> None:
    got = neutralize_column(pa.array(cells, pa.large_string())).to_pylist()
    assert got == [neutralize_formula(c) for c in cells]


IDS = st.text(alphabet=st.sampled_from(list("ab\\\x1fx1f")), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.none() | IDS, st.sampled_from(["2024-02-16T09:00:00Z", ""]), IDS, IDS, IDS),
        min_size=2,
        max_size=6,
        unique=True,
    )
)
def test_distinct_deliveries_have_distinct_keys(rows: list[tuple[Any, ...]]) -> None:
    """Ids holding the separator or backslashes never make two identities one key; a
    request_id alone identifies a delivery."""
    columns = [pa.array(c, pa.large_string()) for c in zip(*rows, strict=True)]
    keys = delivery_keys(*columns).to_pylist()
    identity = [(r[0],) if r[0] else r[1:] for r in rows]
    for i in range(len(rows)):
        for j in range(len(rows)):
            assert (keys[i] == keys[j]) == (identity[i] == identity[j])


def test_waves_written_with_other_csv_options_compare_as_written(
    grown: tuple[Path, Incident, list[Event], list[Event]], tmp_path: Path
) -> None:
    """A BOM (--excel) and kept formula cells (--no-sanitize) in wave 1 do not make "=1+1"
    or anyone else new again in wave 2."""
    db, inc, early, late = grown
    wave(db, tmp_path / "w1", excel=True, sanitize=False)
    ingest_events(db, tmp_path / "logs", "late", late)
    wave(db, tmp_path / "w2", previous=tmp_path / "w1")
    assert_wave_equals_model(tmp_path / "w2", model_delta(part(inc, early), inc, W), True)
    wave(db, tmp_path / "w3", previous=tmp_path / "w2", excel=True)
    assert read_csv(tmp_path / "w3" / "recipients.csv") == []


def test_a_manifest_that_claims_pseudonyms_without_a_key_check_is_refused(
    chain: tuple[Path, Path, Path, Path], tmp_path: Path
) -> None:
    db, w1, w2, w3 = chain
    path = w3 / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["pseudonymization"] = {"pseudonymized": True}
    path.write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="no key check"):
        wave(db, tmp_path / "w4", previous=w3)


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda m: m.update(tool="forensics"), "is not a manifest written by forensics notify"),
        (lambda m: m.update(tool=None), "is not a manifest written by forensics notify"),
        (
            lambda m: m["outputs"][0].update(name=[m["outputs"][0]["name"]]),
            "does not record",
        ),
        (
            lambda m: m["wave"]["previous"].update(number="one"),
            "is wave 3 but names wave 'one' as its previous",
        ),
        (lambda m: m["wave"]["previous"].update(number=7), "is wave 3 but names wave 7"),
        (lambda m: m["wave"]["previous"].update(number=True), "is wave 3 but names wave True"),
        (
            lambda m: m["wave"]["previous"].update(
                window={"start": "2000-01-01T00:00:00Z", "end": "2000-01-02T00:00:00Z"}
            ),
            "records another window for its previous wave",
        ),
    ],
)
def test_a_malformed_newest_manifest_is_named_not_an_internal_error(
    chain: tuple[Path, Path, Path, Path], edit: Any, why: str
) -> None:
    # Before: "internal error: AttributeError/TypeError", or (the previous wave's number or
    # window) not checked at all.
    db, w1, w2, w3 = chain
    path = w3 / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    r = CliRunner().invoke(app, ["verify-notices", str(w3)])
    assert r.exit_code == 1, r.stderr
    assert f"{path}: {why}" in r.stderr
    assert "internal error" not in r.stderr
