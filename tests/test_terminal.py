"""Screens at 60, 80 and 120 columns (Rich consoles of fixed width): numbers and file names
whole, paths shortened in the middle, columns hidden with a note; not a terminal: plain lines,
never wrapped, no padding at line ends, no colour."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from forensics import screens, terminal
from forensics.evidence import RejectsPage
from forensics.ingest import FileResult, IngestReport
from forensics.status import EventRange
from forensics.terminal import Col, layout, shorten_end, shorten_middle

WIDTHS = [60, 80, 120]
DEEP = "/cases/2024-02-16/cdn/eu-west-1/distribution-E2QWRUHAPOMQZL/2024/02/16/09"


def tty(width: int) -> Console:
    return Console(
        file=io.StringIO(),
        width=width,
        force_terminal=True,
        color_system=None,
        markup=False,
        emoji=False,
        highlight=False,
    )


def pipe() -> Console:
    return Console(
        file=io.StringIO(), force_terminal=False, markup=False, emoji=False, highlight=False
    )


def text(console: Console) -> str:
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def report(n_files: int = 2) -> IngestReport:
    files = [
        FileResult(
            f"{DEEP}/E2QWRUHAPOMQZL.2024-02-16-09.{i:04d}.gz",
            kind="events",
            status="loaded",
            rows_read=10_662_457 + i,
            rows_loaded=10_662_000 + i,
            rows_rejected=457 if i == 1 else 0,
            rows_duplicate=0,
            reasons={"invalid ts": 457} if i == 1 else {},
        )
        for i in range(n_files - 1)
    ]
    files.append(
        FileResult(
            f"{DEEP}/broken-grants.ndjson.gz", kind=None, status="failed", error="not a gzip file"
        )
    )
    return IngestReport(files)


# ---------------------------------------------------------------------------- shortening


def test_a_shortened_path_keeps_its_file_name() -> None:
    path = f"{DEEP}/E2QWRUHAPOMQZL.2024-02-16-09.0001.gz"
    for width in (38, 40, 60):
        short = shorten_middle(path, width)
        assert len(short) == width
        assert short.endswith("/E2QWRUHAPOMQZL.2024-02-16-09.0001.gz")
        assert "…" in short
    assert shorten_middle(path, len(path)) == path  # fits: unchanged


def test_a_name_longer_than_the_room_keeps_its_start_and_extension() -> None:
    short = shorten_middle("/a/" + "x" * 50 + ".ndjson.gz", 20)
    assert len(short) == 20 and short.endswith(".gz") and "…" in short


def test_text_is_cut_at_its_end_only_when_too_long() -> None:
    assert shorten_end("malformed JSON", 14) == "malformed JSON"
    assert shorten_end("malformed JSON", 13) == "malformed JS…"


def test_wide_characters_count_as_two_cells() -> None:
    short = shorten_end("王芳王芳王芳", 7)
    assert short == "王芳王…"


# ---------------------------------------------------------------------------- layout


def test_layout_keeps_numbers_whole_and_hides_columns_from_the_right() -> None:
    cols = [
        Col("file", "path", keep=True),
        Col("a", "number"),
        Col("b", "number"),
        Col("total", "number", keep=True),
    ]
    rows = [["/x/y/name.gz", "1,000,000", "2,000,000", "3,000,000"]]
    widths, visible = layout(cols, rows, None)
    assert visible == [0, 1, 2, 3] and widths == [12, 9, 9, 9]  # unlimited: natural widths
    widths, visible = layout(cols, rows, 50)
    assert visible == [0, 1, 2, 3]
    widths, visible = layout(cols, rows, 40)
    assert visible == [0, 1, 3]  # b went first (the rightmost that may go)
    assert [widths[i] for i in visible] == [12, 9, 9]
    assert sum(widths[i] for i in visible) + 2 * (len(visible) - 1) <= 40


def test_layout_shrinks_a_path_down_to_its_file_name_before_hiding() -> None:
    cols = [Col("file", "path", keep=True), Col("n", "number", keep=True), Col("kind", "fixed")]
    rows = [["/very/long/folder/structure/here/file-name.ndjson.gz", "12,345", "events"]]
    widths, visible = layout(cols, rows, 40)
    assert visible == [0, 1, 2]
    assert widths[0] == 40 - 6 - 6 - 4
    assert widths[0] >= len("…/file-name.ndjson.gz")
    widths, visible = layout(cols, rows, 30)
    assert visible == [0, 1]  # kind went rather than the file name
    assert widths[0] == 30 - 6 - 2 == len("…/file-name.ndjson.gz") + 1


def test_layout_hides_the_columns_marked_first_before_others() -> None:
    cols = [
        Col("file", "path", keep=True),
        Col("a", "number", hide=1),
        Col("b", "number", hide=2),
        Col("c", "number", hide=1),
    ]
    rows = [["f", "1,000", "2,000", "3,000"]]
    assert layout(cols, rows, 20)[1] == [0, 1, 3]  # b first, though c is further right
    assert layout(cols, rows, 12)[1] == [0, 1]


def test_when_nothing_more_can_go_a_path_loses_its_middle_never_a_number() -> None:
    cols = [Col("file", "path", keep=True), Col("n", "number", keep=True)]
    rows = [["/a/" + "x" * 40 + ".gz", "123,456,789"]]
    widths, visible = layout(cols, rows, 40)
    assert visible == [0, 1] and widths == [40 - 11 - 2, 11]


# ---------------------------------------------------------------------------- ingest


@pytest.mark.parametrize("width", WIDTHS)
def test_ingest_summary_fits_with_numbers_and_file_names_whole(width: int) -> None:
    c = tty(width)
    screens.render_ingest(
        report(3),
        EventRange(
            3,
            datetime(2024, 2, 16, tzinfo=timezone.utc),
            datetime(2024, 2, 17, tzinfo=timezone.utc),
        ),
        console=c,
    )
    out = text(c)
    table = [ln for ln in out.splitlines() if not ln.startswith("forensics: ")]
    assert all(len(ln) <= width for ln in table), out
    assert "E2QWRUHAPOMQZL.2024-02-16-09.0000.gz" in out
    assert "E2QWRUHAPOMQZL.2024-02-16-09.0001.gz" in out
    assert "broken-grants.ndjson.gz" in out
    assert "10,662,000" in out and "21,324,001" in out  # loaded: a row and the total
    assert "457" in out
    if width >= 120:
        assert "10,662,457" in out and "21,324,915" in out  # read
    # failures first: the failed file's row comes before the loaded ones
    rows = [ln for ln in out.splitlines() if ".gz" in ln and not ln.startswith("forensics")]
    assert "broken-grants" in rows[0]
    assert "forensics: error: " in out and "not a gzip file" in out
    assert " ".join(out.split()).endswith(
        "events in the store: 3, 2024-02-16T00:00:00Z to 2024-02-17T00:00:00Z"
    )


def test_ingest_summary_notes_what_it_hid_at_60_columns() -> None:
    c = tty(60)
    screens.render_ingest(report(3), None, console=c)
    assert "forensics: note: columns hidden to fit 60 columns:" in text(c)
    c = tty(200)
    screens.render_ingest(report(3), None, console=c)
    assert "forensics: note" not in text(c)


def test_ingest_summary_not_on_a_terminal_is_unwrapped_and_unpadded() -> None:
    c = pipe()
    screens.render_ingest(report(3), None, console=c)
    out = text(c)
    assert f"{DEEP}/E2QWRUHAPOMQZL.2024-02-16-09.0000.gz" in out  # whole, on one line
    assert "…" not in out and "\x1b" not in out
    assert all(ln == ln.rstrip() for ln in out.splitlines())
    assert "forensics: note" not in out


def test_many_files_are_summed_per_folder_and_kind_with_only_notable_files_listed() -> None:
    c = tty(120)
    screens.render_ingest(report(200), None, console=c)
    out = text(c)
    assert "per folder and kind" in out
    assert "E2QWRUHAPOMQZL.2024-02-16-09.0005.gz" not in out  # an ordinary file: not listed
    assert "E2QWRUHAPOMQZL.2024-02-16-09.0001.gz" in out  # it had rejects
    assert "broken-grants.ndjson.gz" in out  # it failed
    assert "199" in out  # the files of the folder's events
    assert f"{sum(10_662_457 + i for i in range(199)):,}" in out  # read, in the total


def test_skipped_files_are_counted_not_listed_when_already_ingested() -> None:
    files = [
        FileResult(
            f"/logs/f{i}.ndjson",
            kind="events",
            status="skipped",
            error=f"same content as /logs/f{i}.ndjson",
        )
        for i in range(3)
    ]
    files.append(
        FileResult(
            "/logs/copy.ndjson",
            kind="events",
            status="skipped",
            error="same content as /logs/f0.ndjson",
        )
    )
    c = pipe()
    screens.render_ingest(IngestReport(files), None, console=c)
    out = text(c)
    assert "skipped 3 files already ingested (same SHA-256)" in out
    assert "skipped /logs/copy.ndjson: same content as /logs/f0.ndjson" in out
    assert "skipped /logs/f1.ndjson" not in out


# ------------------------------------------------------------------ sources, rejects, verify


def _source(i: int, path: str) -> dict[str, Any]:
    return {
        "source_id": i,
        "path": path,
        "kind": "events",
        "format": "ndjson",
        "size_bytes": 123_456_789,
        "sha256": f"{i:02d}" + "ab" * 31,
        "rows_read": 10_662_457,
        "rows_loaded": 10_662_000,
        "rows_rejected": 457,
        "rows_duplicate": 0,
        "ingested_at": "2024-02-16T09:00:00.000000Z",
        "tool_version": "0.1.0",
        "assume_tz": None,
        "map_sha256": None,
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_sources_are_compact_and_keep_file_names_and_numbers_whole(width: int) -> None:
    rows = [
        _source(1, f"{DEEP}/E2QWRUHAPOMQZL.2024-02-16-09.0000.gz"),
        _source(12, "/short/a.ndjson"),
    ]
    c = tty(width)
    screens.render_sources(rows, console=c, err=c)
    out = text(c)
    assert "E2QWRUHAPOMQZL.2024-02-16-09.0000.gz" in out and "a.ndjson" in out
    assert "10,662,000" in out
    assert DEEP not in out  # compact: the file name only
    assert all(len(ln) <= width for ln in out.splitlines() if not ln.startswith("forensics"))
    if width >= 80:
        assert "01abababab" in out  # the short hash, whole
        assert "01" + "ab" * 31 not in out


def test_sources_wide_not_on_a_terminal_shows_everything_whole() -> None:
    rows = [_source(1, f"{DEEP}/E2QWRUHAPOMQZL.2024-02-16-09.0000.gz")]
    c = pipe()
    screens.render_sources(rows, console=c, wide=True, err=c)
    out = text(c)
    assert f"{DEEP}/E2QWRUHAPOMQZL.2024-02-16-09.0000.gz" in out
    assert "01" + "ab" * 31 in out and "123,456,789" in out
    assert all(ln == ln.rstrip() for ln in out.splitlines())


def test_rejects_say_how_many_of_how_many_are_shown() -> None:
    rows = [
        {
            "source_file": f"{DEEP}/f.ndjson",
            "source_record": 1_234_567,
            "reason": "malformed JSON",
            "raw": "{",
        }
    ]
    out_c, err_c = tty(60), pipe()
    screens.render_rejects(RejectsPage(rows, 14), raw=False, console=out_c, err=err_c)
    assert "1,234,567" in text(out_c) and "f.ndjson" in text(out_c)
    assert "1 of 14 rejected records shown (--limit N shows more)" in text(err_c)


def test_verify_lists_changed_and_missing_files_first() -> None:
    rows = [
        {"path": "/a", "status": "ok"},
        {"path": "/b", "status": "changed"},
        {"path": "/c", "status": "ok"},
        {"path": "/d", "status": "missing"},
    ]
    c = pipe()
    screens.render_verify(rows, console=c, err=c)
    assert [ln.split()[0] for ln in text(c).splitlines()[1:]] == ["changed", "missing", "ok", "ok"]


def test_failures_are_coloured_on_a_terminal_only() -> None:
    rows = [{"path": "/a", "status": "ok"}, {"path": "/b", "status": "changed"}]
    colour = Console(
        file=io.StringIO(),
        width=80,
        force_terminal=True,
        color_system="standard",
        markup=False,
        highlight=False,
    )
    screens.render_verify(rows, console=colour, err=pipe())
    assert "\x1b[1;31mchanged" in text(colour)
    plain = pipe()
    screens.render_verify(rows, console=plain, err=pipe())
    assert "\x1b" not in text(plain)


def test_evidence_text_is_printed_literally() -> None:
    rows = [_source(1, "/x/[link=https://evil]x[/link]\x1b[31m.ndjson")]
    c = pipe()
    screens.render_sources(rows, console=c, wide=True, err=c)
    assert "[link=https://evil]x[/link]\\u001b[31m.ndjson" in text(c)


def test_screen_captures_in_docs_exist_and_are_linked() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs" / "screens"
    captures = sorted(docs.glob("*.txt"))
    assert captures
    readme = (docs.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/screens/" in readme


def test_ingest_progress_counts_stored_files_and_draws_nothing_off_a_terminal() -> None:
    c = pipe()
    tracker = terminal.IngestProgress(c)
    with tracker as update:
        update("files", 3)
        update("total_bytes", 1000)
        update("bytes", 500)
        update("file", 1)
        update("file", 1)
    assert (tracker.files_done, tracker.files_total) == (2, 3)
    assert text(c) == ""


def test_ingest_progress_names_the_file_being_read_and_counts_records_and_rejects() -> None:
    c = Console(file=io.StringIO(), force_terminal=True, width=120)
    tracker = terminal.IngestProgress(c)
    with tracker as update:
        update("files", 2)
        update("name", "edge-" + "x" * 60 + "-7.log.gz")
        assert tracker.description().startswith("file 1/2 edg")
        assert tracker.description().endswith("-7.log.gz")  # the end of the name survives
        update("name", "b.ndjson")  # staged while the first file is stored
        update("records", 10)
        update("rejects", 2)
        update("file", 1)
        assert tracker.description() == "file 2/2 b.ndjson"
        update("records", 5)
        update("rejects", 0)
        update("file", 1)
        assert tracker.description() == "finishing"
        fields = tracker._progress.tasks[0].fields
    assert (tracker.records, tracker.rejects) == (15, 2)
    assert fields["counts"] == "15 records, 2 rejected"


@pytest.mark.parametrize("width", [40, 50, 60, 120])
def test_the_exposure_window_is_shown_whole_at_any_width(width: int) -> None:
    from types import SimpleNamespace

    from forensics.exposure import FIGURE_KEYS
    from forensics.screens.exposure import render_exposure
    from forensics.window import parse_window

    window = parse_window("2024-02-16T00:00:00Z/2024-02-18T00:00:00Z")
    figures = dict.fromkeys(FIGURE_KEYS, 0) | {"timeline": []}
    console = tty(width)
    render_exposure(SimpleNamespace(figures=figures, window=window, breakdown=None), console)
    out = "".join(text(console).split())  # the window may wrap: compare without breaks
    assert str(window) in out
