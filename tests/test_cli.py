"""The CLI's conventions: help, version, one-line errors and exit codes, --debug, --quiet,
`status`, and zero findings that are never silent (empty store, a window away from the data)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forensics import __version__
from forensics.store import StoreOptions, open_store
from tests.helpers.cli import run_cli
from tests.helpers.incident import Incident, at
from tests.helpers.ingest import event, write_ndjson

W = "2024-02-16T09:00:00Z/PT1H"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """Events from 08:55 to 09:02 and from 11:00 to 11:01 (a gap from 09:02 to 11:00)."""
    inc = Incident()
    inc.grant("d1", "owner1", "owner")
    inc.deliver(at(-5), "stranger", "d1", "e0")
    inc.deliver(at(1), "stranger", "d1", "e1", extra={"cache_node": "c7"})
    inc.deliver(at(2), "nosy", "d1", "e2", extra={"cache_node": "c8"})
    inc.deliver(at(120), "owner1", "d1", "e3")
    inc.deliver(at(121), "stranger", "d1", "e4")
    return inc.write(tmp_path / "case.duckdb")


@pytest.fixture
def empty_store(tmp_path: Path) -> Path:
    path = tmp_path / "empty.duckdb"
    open_store(StoreOptions(path), read_only=False).close()
    return path


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln]


# ------------------------------------------------------------------ help, version, errors


def test_no_arguments_prints_the_help_on_stderr_as_a_usage_error() -> None:
    r = run_cli()
    assert r.exit_code == 2
    assert r.stdout == ""
    assert "Usage: forensics" in r.stderr and "Commands:" in r.stderr


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_has_whole_command_summaries_and_examples(flag: str) -> None:
    r = run_cli(flag, env={"COLUMNS": "80"})
    assert r.exit_code == 0
    text = " ".join(r.stdout.split())
    assert (
        "the time range of events and grants, the store's size and the tool versions "
        "that wrote it" in text
    )  # a summary longer than one line is not cut
    assert "Examples:" in r.stdout
    assert "forensics exposure --window 2024-02-16T09:00:00Z/PT4H30M --by cache_node" in r.stdout
    assert "SPEC" not in r.stdout
    assert "--install-completion" in r.stdout  # shell completion is on


def test_command_help_takes_h_and_does_not_mention_the_spec() -> None:
    for command in ("ingest", "exposure", "notify", "status", "sources"):
        r = run_cli(command, "-h")
        assert r.exit_code == 0, command
        assert "SPEC" not in r.stdout, command


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str) -> None:
    r = run_cli(flag)
    assert (r.exit_code, r.stdout) == (0, f"forensics {__version__}\n")


def test_an_unknown_command_is_one_line_with_one_suggestion() -> None:
    r = run_cli("sqll")
    assert r.exit_code == 2 and r.stdout == ""
    assert lines(r.stderr) == [
        "forensics: error: No such command 'sqll'. Did you mean 'sql'? (see `forensics --help`)"
    ]
    # Several close names are offered in one "Did you mean", never the phrase twice.
    r = run_cli("exposur")
    assert r.exit_code == 2 and len(lines(r.stderr)) == 1
    assert r.stderr.count("Did you mean") == 1 and "'exposure'" in r.stderr


def test_an_option_without_its_value_points_to_the_commands_help() -> None:
    r = run_cli("exposure", "--window")
    assert r.exit_code == 2
    assert lines(r.stderr) == [
        "forensics: error: forensics exposure: Option '--window' requires an argument. "
        "(see `forensics exposure --help`)"
    ]


def test_a_missing_option_names_the_command() -> None:
    r = run_cli("exposure")
    assert r.exit_code == 2
    assert r.stderr.startswith("forensics: error: forensics exposure: Missing option '--window'")


@pytest.mark.parametrize("limit", ["-5GB", "-1", "0", "0.0GB", "abc", "4", "+2GB"])
def test_a_memory_limit_that_is_no_size_above_zero_is_a_usage_error(
    store: Path, limit: str
) -> None:
    # DuckDB took -5GB as no limit at all, and refused `0` naming its own parser.
    r = run_cli("--db", str(store), "--memory-limit", limit, "exposure", "--window", W)
    assert r.exit_code == 2, limit
    assert "a size above zero with its unit" in r.stderr and "Parser" not in r.stderr


@pytest.mark.parametrize("limit", ["4GB", "512 MiB", "1.5gb", "80%", "900000KB"])
def test_a_memory_limit_of_a_size_is_taken(store: Path, limit: str) -> None:
    r = run_cli("--db", str(store), "exposure", "--memory-limit", limit, "--window", W)
    assert r.exit_code == 0, (limit, r.stderr)


def test_running_out_of_memory_under_the_limit_says_to_raise_it(store: Path) -> None:
    r = run_cli("--db", str(store), "--memory-limit", "1MB", "exposure", "--window", W)
    assert r.exit_code == 1
    assert lines(r.stderr)[-1].startswith("forensics: error:")
    assert "internal error" not in r.stderr and "memory" in r.stderr.lower()


def test_db_naming_a_folder_says_so(tmp_path: Path) -> None:
    for args in (["status"], ["exposure", "--window", W], ["ingest", str(tmp_path)]):
        r = run_cli("--db", str(tmp_path), *args)
        assert r.exit_code == 1, args
        assert lines(r.stderr)[-1].startswith(
            f"forensics: error: case store {tmp_path}: is a folder, not a store file"
        ), args


def test_debug_is_carried_in_the_context_and_shows_a_traceback(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.duckdb")
    plain = run_cli("--db", missing, "status")
    assert plain.exit_code == 1 and "Traceback" not in plain.stderr
    for args in (["--debug", "--db", missing, "status"], ["--db", missing, "status", "--debug"]):
        r = run_cli(*args)
        assert r.exit_code == 1
        assert "Traceback" in r.stderr, args
        assert lines(r.stderr)[-1].startswith("forensics: error: case store"), args
    again = run_cli("--db", missing, "status")  # nothing left over from the run before
    assert "Traceback" not in again.stderr


def test_the_in_process_cli_changes_neither_the_umask_nor_the_environment(
    store: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    before = dict(os.environ)
    assert run_cli("--db", str(store), "status").exit_code == 0
    now = os.umask(0o022)
    assert now == 0o022
    assert dict(os.environ) == before


def test_a_new_store_is_private_whatever_the_umask(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o022)
    logs = write_ndjson(tmp_path / "e.ndjson", [event()])
    db = tmp_path / "case.duckdb"
    assert run_cli("--db", str(db), "ingest", str(logs)).exit_code == 0
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "case.duckdb.tmp").stat().st_mode) == 0o700


# ---------------------------------------------------------------------------- ingest


def test_reingesting_says_already_ingested_not_same_content_as_itself(tmp_path: Path) -> None:
    logs = write_ndjson(tmp_path / "e.ndjson", [event()])
    db = str(tmp_path / "case.duckdb")
    assert run_cli("--db", db, "ingest", str(logs)).exit_code == 0
    r = run_cli("--db", db, "ingest", str(logs))
    assert r.exit_code == 0
    assert "skipped 1 file already ingested" in r.stderr
    assert "same content as" not in r.stderr


def test_a_copy_under_another_name_is_named_as_the_same_content(tmp_path: Path) -> None:
    logs = write_ndjson(tmp_path / "e.ndjson", [event()])
    copy = tmp_path / "copy.ndjson"
    copy.write_bytes(logs.read_bytes())
    db = str(tmp_path / "case.duckdb")
    r = run_cli("--db", db, "ingest", str(logs), str(copy))
    assert f"skipped {copy}: same content as {logs}" in r.stderr


def test_ingest_summary_ends_with_the_events_time_range(tmp_path: Path) -> None:
    logs = write_ndjson(
        tmp_path / "e.ndjson",
        [
            event(ts="2024-02-16T09:00:00Z", request_id="a"),
            event(ts="2024-02-16T10:30:00Z", request_id="b"),
        ],
    )
    r = run_cli("--db", str(tmp_path / "c.duckdb"), "ingest", str(logs))
    assert lines(r.stderr)[-1] == (
        "events in the store: 2, 2024-02-16T09:00:00Z to 2024-02-16T10:30:00Z"
    )


def test_quiet_ingest_prints_no_summary_but_still_the_failures(tmp_path: Path) -> None:
    good = write_ndjson(tmp_path / "e.ndjson", [event()])
    bad = tmp_path / "bad.ndjson.gz"
    bad.write_bytes(b"not gzip at all")
    r = run_cli("--db", str(tmp_path / "c.duckdb"), "ingest", "-q", str(good), str(bad))
    assert r.exit_code == 1
    assert lines(r.stderr) and all(ln.startswith("forensics: error: ") for ln in lines(r.stderr))
    assert str(bad) in r.stderr
    r = run_cli("--db", str(tmp_path / "c.duckdb"), "--quiet", "ingest", str(good))
    assert (r.exit_code, r.stderr) == (0, "")


def test_interrupted_ingest_says_what_was_stored_and_how_to_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensics.ingest

    def interrupted(store: Any, paths: Any, options: Any, progress: Any = None) -> Any:
        progress("files", 3)
        progress("file", 1)
        raise KeyboardInterrupt

    monkeypatch.setattr(forensics.ingest, "ingest", interrupted)
    db = tmp_path / "c.duckdb"
    r = run_cli("--db", str(db), "ingest", str(tmp_path))
    assert r.exit_code == 130 and r.stdout == ""
    assert lines(r.stderr) == [
        f"forensics: error: interrupted: 1 of 3 files were stored in {db} (each file is "
        "stored whole or not at all). Run the same command again to resume: files already "
        "stored are skipped"
    ]


# ---------------------------------------------------------------------------- status


def test_status_json_describes_the_store(store: Path) -> None:
    r = run_cli("--db", str(store), "status", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["path"] == str(store)
    assert data["size_bytes"] == store.stat().st_size
    assert data["events"] == {
        "events": 5,
        "first": "2024-02-16T08:55:00Z",
        "last": "2024-02-16T11:01:00Z",
    }
    assert data["grants"]["grants"] == 1 and data["grants"]["open_end"] == 1
    assert set(data["kinds"]) == {"events", "grants", "accounts"}
    assert r.stderr == ""


def test_status_text_answers_what_is_in_the_case(store: Path) -> None:
    r = run_cli("--db", str(store), "status")
    assert r.exit_code == 0
    assert "events: 5, 2024-02-16T08:55:00Z to 2024-02-16T11:01:00Z" in r.stdout
    assert all(ln == ln.rstrip() for ln in r.stdout.splitlines())


def test_status_of_a_missing_store_is_an_error(tmp_path: Path) -> None:
    r = run_cli("--db", str(tmp_path / "none.duckdb"), "status")
    assert r.exit_code == 1 and "not found" in r.stderr
    assert not (tmp_path / "none.duckdb").exists()


# ------------------------------------------------------------------------ silent zeros


def test_exposure_on_an_empty_store_says_the_store_holds_no_events(empty_store: Path) -> None:
    r = run_cli("--db", str(empty_store), "exposure", "--window", W, "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["recipients"] == 0
    assert "forensics: warning: the case store holds no events" in r.stderr
    strict = run_cli("--db", str(empty_store), "exposure", "--window", W, "--strict")
    assert strict.exit_code == 1


@pytest.mark.parametrize(
    ("window", "where"),
    [
        ("2023-02-16T09:00:00Z/PT1H", "before the first event"),
        ("2024-02-16T08:00:00Z/PT55M", "before the first event"),  # ends where the data starts
        ("2025-02-16T09:00:00Z/PT1H", "after the last event"),
        ("2024-02-16T11:01:00.000001Z/PT1H", "after the last event"),
        ("2024-02-16T09:30:00Z/PT1H", "in a gap between events"),
    ],
)
@pytest.mark.parametrize("command", ["exposure", "notify"])
def test_a_window_without_events_says_what_the_data_covers(
    store: Path, tmp_path: Path, window: str, where: str, command: str
) -> None:
    extra = ["--out", str(tmp_path / "out")] if command == "notify" else ["--json"]
    r = run_cli("--db", str(store), command, "--window", window, *extra)
    assert r.exit_code == 0, r.stderr
    warning = [ln for ln in lines(r.stderr) if "holds no events" in ln]
    assert len(warning) == 1
    assert where in warning[0]
    assert "the 5 stored events cover 2024-02-16T08:55:00Z to 2024-02-16T11:01:00Z" in warning[0]
    assert "too narrow" not in r.stderr  # the window is wrong, not narrow
    strict = run_cli(
        "--db",
        str(store),
        command,
        "--window",
        window,
        "--strict",
        *extra,
        *(["--force"] if command == "notify" else []),
    )
    assert strict.exit_code == 1
    assert "forensics: error: --strict: the window" in strict.stderr


@pytest.mark.parametrize("command", ["exposure", "notify"])
def test_a_window_holding_events_has_no_coverage_warning(
    store: Path, tmp_path: Path, command: str
) -> None:
    # the last event is at 11:01:00; a window ending just after it holds it
    window = "2024-02-16T11:00:30Z/2024-02-16T11:01:00.000001Z"
    extra = ["--out", str(tmp_path / "out")] if command == "notify" else ["--json"]
    r = run_cli("--db", str(store), command, "--window", window, "--strict", *extra)
    assert r.exit_code == 0, r.stderr
    assert "holds no events" not in r.stderr


def test_notify_repeats_the_outside_window_warning(store: Path, tmp_path: Path) -> None:
    r = run_cli("--db", str(store), "notify", "--window", W, "--out", str(tmp_path / "o"))
    assert r.exit_code == 0, r.stderr
    assert (
        "forensics: warning: 2 cross-account deliveries fall outside the window "
        "2024-02-16T09:00:00Z/2024-02-16T10:00:00Z"
    ) in r.stderr


def test_notify_on_an_empty_store_warns(empty_store: Path, tmp_path: Path) -> None:
    r = run_cli("--db", str(empty_store), "notify", "--window", W, "--out", str(tmp_path / "o"))
    assert r.exit_code == 0
    assert "forensics: warning: the case store holds no events" in r.stderr


@pytest.mark.parametrize(
    ("window", "noted"),
    [
        ("2024-02-16T09:00/PT1H", True),
        ("2024-02-16/2024-02-17", True),
        ("2024-02-16T09:00:00Z/2024-02-16T10:00", True),
        ("2024-02-16T09:00:00Z/PT1H", False),
        ("2024-02-16T09:00:00+01:00/PT1H", False),
        ("2024-02-16 09:00:00+00/PT1H", False),
    ],
)
def test_a_window_without_offset_is_echoed_as_read_in_utc(
    store: Path, window: str, noted: bool
) -> None:
    r = run_cli("--db", str(store), "exposure", "--window", window, "--json")
    assert r.exit_code == 0, r.stderr
    assert ("was read as UTC" in r.stderr) is noted


@pytest.mark.parametrize(
    ("name", "text", "noted"),
    [
        ("inc.toml", 'window = "2024-02-16T09:00:00/2024-02-16T10:00:00"\n', True),
        ("inc.toml", "window = {start = 2024-02-16T09:00:00, end = 2024-02-16T10:00:00Z}\n", True),
        ("inc.json", '{"window": {"start": "2024-02-16T09:00", "end": "PT1H"}}', True),
        ("inc.toml", 'window = "2024-02-16T09:00:00Z/PT1H"\n', False),
        (
            "inc.toml",
            "window = {start = 2024-02-16T09:00:00Z, end = 2024-02-16T10:00:00Z}\n",
            False,
        ),
    ],
)
def test_a_window_file_without_offset_is_echoed_as_read_in_utc(
    store: Path, tmp_path: Path, name: str, text: str, noted: bool
) -> None:
    f = tmp_path / name
    f.write_text(text)
    for cmd in (["exposure", "--json"], ["notify", "--out", str(tmp_path / "lists")]):
        r = run_cli("--db", str(store), cmd[0], "--window", f"@{f}", *cmd[1:])
        assert r.exit_code == 0, r.stderr
        assert (f"(from {f}) has no UTC offset and was read as UTC" in r.stderr) is noted


def test_by_suggests_the_closest_field(store: Path) -> None:
    r = run_cli("--db", str(store), "exposure", "--window", W, "--by", "cache_nod")
    assert r.exit_code == 2
    assert "Did you mean cache_node?" in r.stderr
    assert len(lines(r.stderr)) == 1


def test_an_unknown_by_field_never_lists_keys_that_look_like_data(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("d1", "owner1")
    inc.deliver(at(1), "stranger", "d1", "e1", extra={"cache_node": "c7", "alice@example.org": 1})
    inc.deliver(at(2), "nosy", "d1", "e2", extra={"12345678": 2, "edge.pop": "x"})
    db = inc.write(tmp_path / "case.duckdb")
    r = run_cli("--db", str(db), "exposure", "--window", W, "--by", "nosuch")
    assert r.exit_code == 2
    assert "alice" not in r.stderr and "12345678" not in r.stderr
    assert "cache_node" in r.stderr and "edge.pop" in r.stderr
    assert "and 2 more (`forensics sql` lists them)" in r.stderr


def test_by_shows_the_top_values_and_says_how_many_of_how_many(store: Path) -> None:
    r = run_cli("--db", str(store), "exposure", "--window", W, "--by", "user_id", "--top", "1")
    assert r.exit_code == 0, r.stderr
    assert "1 of 2 values of user_id shown, the largest first" in r.stderr
    body = r.stdout.split("by user_id", 1)[1]
    # one delivery each in the window: ties in value order
    assert "nosy" in body and "stranger" not in body
    every = run_cli("--db", str(store), "exposure", "--window", W, "--by", "user_id", "--top", "0")
    assert "stranger" in every.stdout.split("by user_id", 1)[1]
    assert "values of" not in every.stderr
    data = json.loads(
        run_cli(
            "--db", str(store), "exposure", "--window", W, "--by", "user_id", "--top", "1", "--json"
        ).stdout
    )
    assert len(data["by"]["rows"]) == 2  # JSON keeps every value


def test_an_interrupt_inside_a_duckdb_query_counts_as_an_interrupt() -> None:
    import duckdb

    from forensics.store import is_interrupt

    assert is_interrupt(KeyboardInterrupt())
    assert is_interrupt(RuntimeError("Query interrupted"))  # how DuckDB reports Ctrl-C
    assert is_interrupt(duckdb.InterruptException("INTERRUPT Error"))
    assert not is_interrupt(RuntimeError("Query interrupted by the planner"))
    assert not is_interrupt(ValueError("Query interrupted"))


@pytest.mark.parametrize(
    "window",
    [W, "2024-02-16T08:00:00Z/PT1H", "2024-02-16T09:01:00Z/PT1M", "2024-02-16T08:55:00Z/PT3H"],
)
def test_notify_counts_the_deliveries_outside_the_window_as_exposure_does(
    store: Path, tmp_path: Path, window: str
) -> None:
    figures = json.loads(
        run_cli("--db", str(store), "exposure", "--window", window, "--json").stdout
    )
    outside = figures["cross_account_deliveries_outside_window"]
    r = run_cli("--db", str(store), "notify", "--window", window, "--out", str(tmp_path / "o"))
    assert r.exit_code == 0, r.stderr
    said = [ln for ln in lines(r.stderr) if "fall outside the window" in ln]
    assert said == (
        [
            f"forensics: warning: {outside:,} cross-account deliveries fall outside "
            f"the window {figures['window']['start']}/{figures['window']['end']}: "
            "the window may be too narrow"
        ]
        if outside
        else []
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_one_line_not_an_internal_error(tmp_path: Path) -> None:
    db = tmp_path / "case.duckdb"
    f = tmp_path / "a.ndjson"
    f.write_text('{"user_id": "u1"}\n')
    assert run_cli(["--db", str(db), "ingest", str(f), "--kind", "accounts"]).exit_code == 0
    for args in (["status", "--json"], ["sql", "--format", "csv", "select * from accounts"]):
        with open("/dev/full", "w") as full:
            p = subprocess.run(
                [sys.executable, "-m", "forensics", "--db", str(db), *args],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                check=False,
            )
        assert p.returncode == 1
        assert p.stderr == "forensics: error: standard output: No space left on device\n"


@pytest.mark.parametrize(
    "args, what",
    [
        (["export", ""], "argument 4"),
        (["--db", "", "status"], "--db"),
        (["notify", "--window", "2024-02-16T09:00:00Z/PT1H", "--out="], "--out"),
        (["exposure", "--window", ""], "--window"),
    ],
)
def test_an_empty_argument_is_a_usage_error_not_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], what: str
) -> None:
    monkeypatch.chdir(tmp_path)
    db = ["--db", str(tmp_path / "case.duckdb")] if args[0] != "--db" else []
    r = run_cli([*db, *args])
    assert r.exit_code == 2
    assert (
        r.stderr
        == f"forensics: error: {what}: is empty (an unset shell variable?); no value may be empty\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_limit_beyond_the_engines_integers_is_a_usage_error(tmp_path: Path) -> None:
    db = tmp_path / "case.duckdb"
    f = tmp_path / "a.ndjson"
    f.write_text('{"user_id": "u1"}\n')
    assert run_cli(["--db", str(db), "ingest", str(f), "--kind", "accounts"]).exit_code == 0
    r = run_cli(["--db", str(db), "rejects", "--limit", "99999999999999999999"])
    assert r.exit_code == 2 and "--limit" in r.stderr
    assert run_cli(["--db", str(db), "rejects", "--limit", str(2**63 - 1)]).exit_code == 0


def test_an_os_error_of_no_file_and_no_write_is_not_blamed_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensics.status

    def refused(*args: Any, **kw: Any) -> None:
        raise ConnectionRefusedError(111, "Connection refused")  # as Spark's gateway gone

    monkeypatch.setattr(forensics.status, "describe_store", refused)
    r = run_cli(["--db", str(tmp_path / "case.duckdb"), "status"])
    assert r.exit_code == 1
    assert r.stderr == "forensics: error: Connection refused (ConnectionRefusedError)\n"
