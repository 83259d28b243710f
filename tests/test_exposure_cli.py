"""`forensics exposure`: exit codes, stdout (data) and stderr (messages) checked separately."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forensics.exposure import FIGURE_KEYS
from tests.helpers.cli import run_cli
from tests.helpers.incident import Incident, at

W_TEXT = "2024-02-16T09:00:00Z/PT1H"
EVIL = "[link=https://evil.example]x[/link]\x1b[31mred"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    inc = Incident()
    inc.grant("d1", "owner1", "owner")
    inc.grant("d2", "owner2", "owner")
    inc.account("stranger", "stranger@example.org", "Stanley Stranger")
    inc.account("owner1", "owner1@example.org", "Olive Owner")
    inc.deliver(at(-5), "stranger", "d1", "e0")  # outside the window
    inc.deliver(at(1), "stranger", "d1", "e1", extra={"cache_node": "c7", "app": EVIL})
    inc.deliver(at(2), "stranger", "d2", "e2", extra={"cache_node": "c7"})
    inc.deliver(at(2, 30), "nosy", "d2", "e2", extra={"cache_node": "c8"})
    inc.deliver(at(3), "owner1", "d1", "e1")
    inc.tap(at(4), "stranger", "d1", "e1")
    inc.play(at(90), "nosy", "d2", "e2")
    return inc.write(tmp_path / "case.duckdb")


def test_json_prints_specs_object_on_stdout(store: Path) -> None:
    r = run_cli(["--db", str(store), "exposure", "--window", W_TEXT, "--json"])
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert list(data) == ["window", *FIGURE_KEYS, "timeline"]
    assert data["window"] == {"start": "2024-02-16T09:00:00Z", "end": "2024-02-16T10:00:00Z"}
    assert {k: data[k] for k in FIGURE_KEYS} == {
        "deliveries": 4,
        "cross_account_deliveries": 3,
        "recipients": 2,
        "cross_account_taps": 1,
        "tappers": 1,
        "cross_account_plays": 1,
        "video_viewers": 1,
        "exposed_devices": 2,
        "exposed_owners": 2,
        "unlinked_unauthorized_accesses": 0,
        "cross_account_deliveries_outside_window": 1,
    }
    assert data["timeline"] == [
        {"minute": "2024-02-16T09:01:00Z", "cross_account_deliveries": 1, "recipients": 1},
        {"minute": "2024-02-16T09:02:00Z", "cross_account_deliveries": 2, "recipients": 2},
    ]
    assert r.stderr.startswith("forensics: warning: 1 cross-account deliveries fall outside")
    assert r.stderr.count("\n") == 1


def test_db_option_after_the_command_works(store: Path) -> None:
    r = run_cli(["exposure", "--window", W_TEXT, "--json", "--db", str(store)])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["recipients"] == 2


def test_json_with_by_adds_a_by_key(store: Path) -> None:
    r = run_cli(
        ["--db", str(store), "exposure", "--window", W_TEXT, "--json", "--by", "cache_node"]
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["by"] == {
        "field": "cache_node",
        "rows": [
            {"value": "c7", "cross_account_deliveries": 2, "recipients": 1, "exposed_devices": 2},
            {"value": "c8", "cross_account_deliveries": 1, "recipients": 1, "exposed_devices": 1},
        ],
    }


def test_for_a_person_shows_counts_chart_and_no_personal_data(store: Path) -> None:
    r = run_cli(["--db", str(store), "exposure", "--window", W_TEXT])
    assert r.exit_code == 0, r.stderr
    assert "cross-account deliveries" in r.stdout
    assert "cross-account deliveries per 2 minutes (UTC)" in r.stdout  # ≤ 40 bars
    assert "2024-02-16T09:02Z" in r.stdout and "█" in r.stdout
    for secret in ("example.org", "Stanley", "Olive", "stranger", "owner1", "nosy"):
        assert secret not in r.stdout + r.stderr
    assert "warning" not in r.stdout
    assert "window may be too narrow" in r.stderr


def test_by_values_from_data_are_printed_literally(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    r = run_cli(["--db", str(store), "exposure", "--window", W_TEXT, "--by", "app"])
    assert r.exit_code == 0, r.stderr
    assert "\x1b" not in r.stdout
    assert "[link=https://evil.example]x[/link]\\u001b[31mred" in r.stdout
    assert "(missing)" in r.stdout


def test_unknown_by_field_is_exit_2_naming_the_fields(store: Path) -> None:
    r = run_cli(["--db", str(store), "exposure", "--window", W_TEXT, "--by", "cache"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("forensics: error: --by: no stored event has the field cache")
    assert "cache_node" in r.stderr and "app" in r.stderr and "status" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "window",
    [
        "yesterday",
        "2024-02-30T00:00:00Z/PT1H",
        "2024-02-16T10:00:00Z/2024-02-16T09:00:00Z",
        "2024-02-16T09:00:00Z/PT0S",
        "2024-02-16T09:00:00Z/P1M",
        "2024-02-16T09:00:00+25:00/PT1H",
        "2024-02-16T09:00:00Z",
    ],
)
def test_bad_window_is_exit_2_one_line_no_traceback(store: Path, window: str) -> None:
    r = run_cli(["--db", str(store), "exposure", "--window", window])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("forensics: error: --window: ")
    assert r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr


def test_missing_window_is_exit_2(store: Path) -> None:
    r = run_cli(["--db", str(store), "exposure"])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert "--window" in r.stderr


def test_missing_store_is_exit_1_and_not_created(tmp_path: Path) -> None:
    db = tmp_path / "none.duckdb"
    r = run_cli(["--db", str(db), "exposure", "--window", W_TEXT, "--json"])
    assert r.exit_code == 1
    assert r.stdout == ""
    assert r.stderr.startswith("forensics: error: case store")
    assert r.stderr.count("\n") == 1
    assert not db.exists()


def test_store_from_environment_variable(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSICS_DB", str(store))
    r = run_cli(["exposure", "--window", W_TEXT, "--json"])
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["cross_account_deliveries"] == 3


def test_empty_window_is_all_zeros_exit_0(store: Path) -> None:
    for extra in (["--json"], []):
        r = run_cli(
            ["--db", str(store), "exposure", "--window", "2023-01-01T00:00:00Z/P1D", *extra]
        )
        assert r.exit_code == 0, r.stderr
        if extra:
            data = json.loads(r.stdout)
            assert data["deliveries"] == data["cross_account_deliveries"] == 0
            assert data["timeline"] == []
        else:
            assert "0 cross-account deliveries in the window" in r.stdout
    # the deliveries of the real incident lie outside this window: the check says so
    assert "warning" in r.stderr


def test_no_warning_when_nothing_falls_outside(tmp_path: Path) -> None:
    inc = Incident()
    inc.deliver(at(1), "stranger", "d1", "e1")
    store = inc.write(tmp_path / "case.duckdb")
    r = run_cli(["--db", str(store), "exposure", "--window", W_TEXT, "--json"])
    assert r.exit_code == 0
    assert r.stderr == ""


def test_store_is_not_modified(store: Path) -> None:
    before = store.read_bytes()
    r = run_cli(["--db", str(store), "exposure", "--window", W_TEXT, "--by", "status"])
    assert r.exit_code == 0, r.stderr
    assert store.read_bytes() == before


def test_installed_entry_point(store: Path) -> None:
    exe = Path(sys.executable).with_name("forensics")
    proc = subprocess.run(
        [
            str(exe),
            "--db",
            str(store),
            "exposure",
            "--window",
            "2024-02-16T10:00:00+01:00/PT1H",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "TZ": "America/New_York"},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cross_account_deliveries"] == 3
    assert proc.stderr.startswith("forensics: warning:")


def test_json_figures_import_no_arrow(store: Path) -> None:
    """On a store, exposure reads its few rows as DuckDB's Python values: pyarrow and NumPy,
    about a quarter of the command's start, are never imported."""
    code = (
        "import sys\n"
        "from forensics.cli import main\n"
        "try:\n    main()\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('pyarrow', 'numpy') if m in sys.modules), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "--db", str(store), "exposure", "--window", W_TEXT, "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cross_account_deliveries"] == 3
    assert proc.stderr.splitlines()[-1] == "[]"
