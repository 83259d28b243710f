"""SPEC §4: `--window @FILE` reads the window from an incident file (TOML or JSON)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from forensics.errors import ExitCode, UsageError
from forensics.window import MAX_INCIDENT_FILE_BYTES, Window, parse_window, read_window_file

UTC = timezone.utc
START, END = datetime(2024, 2, 16, 9, 14, tzinfo=UTC), datetime(2024, 2, 16, 13, 32, tzinfo=UTC)
SPAN = "2024-02-16T09:14:00Z/2024-02-16T13:32:00Z"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(text, str):
        p.write_text(text, encoding="utf-8")
    else:
        p.write_bytes(text)
    return p


@pytest.mark.parametrize(
    ("name", "text"),
    [
        # As `forensics sample` writes it, with other keys beside it.
        ("incident.toml", f'# made up\nwindow = "{SPAN}"\nseed = 1\n'),
        ("incident.toml", 'window = "2024-02-16T10:14:00+01:00/PT4H18M"\n'),
        ("incident.toml", '[window]\nstart = "2024-02-16T09:14:00Z"\nend = "PT4H18M"\n'),
        # TOML's own date-times, with and without an offset (none means UTC).
        ("incident.toml", "window = { start = 2024-02-16T09:14:00Z, end = 2024-02-16T13:32:00 }"),
        ("incident.json", json.dumps({"window": {"start": START.isoformat(), "end": "PT4H18M"}})),
        ("incident.json", json.dumps({"window": SPAN, "other": [1, 2]})),
        # Another extension: the content decides.
        ("incident.txt", f'window = "{SPAN}"\n'),
        ("incident", json.dumps({"window": {"start": "2024-02-16T09:14:00Z", "end": SPAN[21:]}})),
        ("incident.TOML", "\ufeff" + f'window = "{SPAN}"\r\n'),  # a BOM and CRLF
    ],
)
def test_window_files_in_toml_and_json(tmp_path: Path, name: str, text: str) -> None:
    p = write(tmp_path, name, text)
    assert parse_window(f"@{p}") == Window(START, END)
    assert parse_window(f"  @{p} ") == Window(START, END)


def test_a_toml_date_alone_means_its_midnight(tmp_path: Path) -> None:
    p = write(tmp_path, "i.toml", "window = { start = 2024-02-16, end = 2024-02-17 }\n")
    w = read_window_file(str(p))
    assert w == Window(datetime(2024, 2, 16, tzinfo=UTC), datetime(2024, 2, 17, tzinfo=UTC))


def test_a_file_of_exactly_the_size_limit_is_read(tmp_path: Path) -> None:
    line = f'window = "{SPAN}"\n'.encode()
    pad = b"#" * (MAX_INCIDENT_FILE_BYTES - len(line) - 1) + b"\n"
    p = write(tmp_path, "big.toml", line + pad)
    assert p.stat().st_size == MAX_INCIDENT_FILE_BYTES
    assert parse_window(f"@{p}") == Window(START, END)
    p.write_bytes(line + b"#" + pad)
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        parse_window(f"@{p}")


def test_home_folder_in_the_path_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path, "incident.toml", f'window = "{SPAN}"\n')
    assert parse_window("@~/incident.toml") == Window(START, END)


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("missing.toml", None, "no such file"),
        ("folder.toml", "DIR", "is a folder"),
        ("bad.toml", 'window = "a\n', "is not valid TOML"),
        ("bad.json", '{"window": ', "is not valid JSON"),
        ("nan.json", '{"window": {"start": NaN, "end": "PT1H"}}', "NaN is not standard JSON"),
        ("dup.json", f'{{"window": "{SPAN}", "window": "{SPAN}"}}', "duplicate key"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "is not valid JSON"),
        ("neither.txt", "window: 2024-02-16", "is neither TOML nor JSON"),
        ("latin1.toml", b'name = "Jos\xe9"\n', "not UTF-8"),
        ("empty.toml", "", "has no window key"),
        ("other.toml", f'windows = "{SPAN}"\n', "has no window key"),
        ("array.json", f'["{SPAN}"]', "has no window key"),
        ("nested.json", json.dumps({"incident": {"window": SPAN}}), "has no window key"),
        ("number.toml", "window = 4\n", 'window must be "START/END"'),
        ("list.json", json.dumps({"window": [SPAN]}), 'window must be "START/END"'),
        ("noend.json", json.dumps({"window": {"start": SPAN[:20]}}), "window has no end"),
        ("none.toml", "[window]\n", "window has no start and no end"),
        ("numstart.json", json.dumps({"window": {"start": 1, "end": "PT1H"}}), "start must be"),
        ("timeonly.toml", "window = { start = 09:14:00, end = 13:32:00 }", "start must be"),
        ("backwards.toml", 'window = "2024-02-16T13:32:00Z/2024-02-16T09:14:00Z"', "END must be"),
        ("start.toml", 'window = "yesterday/PT1H"', "START is not an ISO 8601 instant"),
        ("slashes.toml", 'window = "a/b/c"', "expected START/END"),
        ("nested.toml", f'window = "@{SPAN}"', "START is not an ISO 8601 instant"),
    ],
)
def test_bad_incident_files_are_usage_errors_naming_the_file(
    tmp_path: Path, name: str, content: str | bytes | None, why: str
) -> None:
    p = tmp_path / name
    if content == "DIR":
        p.mkdir()
    elif content is not None:
        write(tmp_path, name, content)
    with pytest.raises(UsageError) as err:
        parse_window(f"@{p}")
    line = err.value.one_line()
    assert line.startswith(f"--window @{p}: "), line
    assert why in line
    assert "\n" not in line
    assert err.value.exit_code == ExitCode.USAGE


def test_at_sign_alone_asks_for_a_file_name() -> None:
    with pytest.raises(UsageError, match="followed by a file name"):
        parse_window("@")


def test_errors_do_not_echo_the_files_content(tmp_path: Path) -> None:
    email = "alice@example.org"
    p = write(tmp_path, "i.toml", f'window = "{email}/PT1H"\nnote = "{email}"\n')
    with pytest.raises(UsageError) as err:
        parse_window(f"@{p}")
    assert email not in err.value.one_line()


# ---------------------------------------------------------------- every command with --window


@pytest.fixture
def store(tmp_path: Path) -> Path:
    from tests.helpers.incident import Incident, at

    inc = Incident()
    inc.grant("d1", "owner1", "owner")
    inc.deliver(at(1), "stranger", "d1", "e1")
    inc.deliver(at(70), "late", "d1", "e2")  # outside the one-hour window
    inc.tap(at(2), "stranger", "d1", "e1")
    return inc.write(tmp_path / "case.duckdb")


def run_cli(args: list[str]) -> Any:
    from typer.testing import CliRunner

    from forensics.cli import app

    return CliRunner().invoke(app, args, catch_exceptions=False)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("incident.toml", 'window = "2024-02-16T09:00:00Z/PT1H"\n'),
        ("incident.json", '{"window": {"start": "2024-02-16T09:00:00Z", "end": "PT1H"}}'),
    ],
)
def test_exposure_and_notify_take_the_window_from_a_file(
    tmp_path: Path, store: Path, name: str, text: str
) -> None:
    p = write(tmp_path, name, text)
    db = ["--db", str(store)]
    by_text = run_cli([*db, "exposure", "--json", "--window", "2024-02-16T09:00Z/PT1H"])
    by_file = run_cli(["--db", str(store), "exposure", "--json", "--window", f"@{p}"])
    assert by_file.exit_code == 0, by_file.stderr
    assert json.loads(by_file.stdout) == json.loads(by_text.stdout)
    assert json.loads(by_file.stdout)["recipients"] == 1
    out = tmp_path / "notices"
    r = run_cli(["--db", str(store), "notify", "--window", f"@{p}", "--out", str(out)])
    assert r.exit_code == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["window"] == {"start": "2024-02-16T09:00:00Z", "end": "2024-02-16T10:00:00Z"}
    assert manifest["figures"]["recipients"] == 1


@pytest.mark.parametrize("command", ["exposure", "notify"])
def test_a_bad_incident_file_exits_2_with_one_line_naming_it(
    tmp_path: Path, store: Path, command: str
) -> None:
    p = write(tmp_path, "incident.toml", 'window = "2024-02-16T10:00:00Z/2024-02-16T09:00:00Z"\n')
    args = ["--db", str(store), command, "--window", f"@{p}"]
    if command == "notify":
        args += ["--out", str(tmp_path / "never")]
    for bad in (f"@{p}", f"@{tmp_path / 'missing.toml'}"):
        args[args.index("--window") + 1] = bad
        r = run_cli(args)
        assert r.exit_code == ExitCode.USAGE
        assert r.stdout == ""
        assert r.stderr.startswith(f"forensics: error: --window {bad}: ")
        assert r.stderr.count("\n") == 1
    assert not (tmp_path / "never").exists()
