"""`forensics report` (SPEC §9): the figures, the sections, no personal data, no external
reference, the placement rules for rejects and duplicates, the folder rules, the CLI."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.errors import OutputError, UsageError
from forensics.exposure import BreakdownRow, compute_figures, prepare_window
from forensics.report import write_report
from forensics.report.charts import coverage_chart
from forensics.report.figures import (
    GAP_MIN_RATE,
    MAX_BREAKDOWN_ROWS,
    ReportData,
    Span,
    collect_report,
    coverage_span,
    find_gaps,
    suggest_window,
)
from forensics.report.render import md_escape, render_html, render_markdown
from forensics.store import StoreOptions, open_store
from forensics.window import parse_window
from tests.helpers.incident import Incident, at, window

GOLDEN = Path(__file__).parent / "golden" / "report"
W = window(0, 60)  # 2024-02-16T09:00:00Z/2024-02-16T10:00:00Z
W_TEXT = "2024-02-16T09:00:00Z/2024-02-16T10:00:00Z"
GENERATED = datetime(2024, 2, 20, 12, 0, tzinfo=timezone.utc)

# Every personal value of the incident: none may appear in either file.
RECIPIENTS = ("usr-recv-aa7", "usr-recv-bb8", "usr-recv-cc9")
OWNERS = ("usr-own-dd4", "usr-own-ee5")
DEVICES = ("cam-kx1q", "cam-kx2q", "cam-kx3q")
EMAILS = ("aa.quintero@example.org", "dd.dorothea@example.org", "   ")
NAMES = ("Zoë Quintero-Aa", "Bartholomew Bb", "Dorothea Dd", "Eamon Ee")


def report_incident() -> Incident:
    """4 cross-account deliveries in the window (3 on node-bad), 2 outside, a tap and a play."""
    inc = Incident()
    inc.grant("cam-kx1q", "usr-own-dd4")
    inc.grant("cam-kx2q", "usr-own-dd4")
    inc.grant("cam-kx3q", "usr-own-ee5")
    n = iter(range(1, 100))

    def ev(kind: str, t: datetime, user: str, device: str, event: str, node: str) -> None:
        getattr(inc, kind)(
            t, user, device, event, request_id=f"req-zq{next(n)}x", extra={"cache_node": node}
        )

    ev("deliver", at(5), "usr-recv-aa7", "cam-kx1q", "evt-aa1w", "node-bad")
    ev("deliver", at(6), "usr-recv-aa7", "cam-kx2q", "evt-aa2w", "node-bad")
    ev("deliver", at(7, 30), "usr-recv-bb8", "cam-kx3q", "evt-bb1w", "node-bad")
    ev("deliver", at(20), "usr-recv-cc9", "cam-kx1q", "evt-cc1w", "node-ok")
    ev("deliver", at(10), "usr-own-dd4", "cam-kx1q", "evt-dd1w", "node-ok")  # own camera
    ev("deliver", at(-5), "usr-recv-bb8", "cam-kx3q", "evt-bb0w", "node-bad")  # before
    ev("deliver", at(70), "usr-recv-cc9", "cam-kx3q", "evt-cc9w", "node-bad")  # after
    ev("tap", at(8), "usr-recv-aa7", "cam-kx1q", "evt-aa1w", "node-bad")
    ev("play", at(9), "usr-recv-aa7", "cam-kx1q", "evt-aa1w", "node-bad")
    ev("tap", at(30), "usr-recv-bb8", "cam-kx1q", "evt-zz1w", "node-ok")  # unlinked
    inc.account("usr-recv-aa7", "aa.quintero@example.org", "Zoë Quintero-Aa", "de-DE", "DE")
    inc.account("usr-recv-bb8", "   ", "Bartholomew Bb", "fr-FR", "FR")  # blank email
    # usr-recv-cc9 has no account record
    inc.account("usr-own-dd4", "dd.dorothea@example.org", "Dorothea Dd", "en-GB", "GB")
    inc.account("usr-own-ee5", None, "Eamon Ee", "en-IE", "IE")
    return inc


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return report_incident().write(tmp_path / "case.duckdb")


@pytest.fixture(autouse=True)
def _restore_umask() -> Iterator[None]:
    """The CLI sets the process umask to 077; keep that from leaking into other tests."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def test_a_report_from_a_lake_has_the_stores_figures_and_lake_commands(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from forensics.lake import export_store

    lake = tmp_path / "lake"
    export_store(StoreOptions(store), str(lake))
    runner = CliRunner()
    args = ["report", "--window", W_TEXT, "--by", "cache_node"]
    r = runner.invoke(app, [*args, "--lake", str(lake), "--out", str(tmp_path / "from-lake")])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, ["--db", str(store), *args, "--out", str(tmp_path / "from-store")])
    assert r.exit_code == 0, r.stderr
    html = (tmp_path / "from-lake" / "report.html").read_text("utf-8")
    assert embedded_figures(html) == embedded_figures(
        (tmp_path / "from-store" / "report.html").read_text("utf-8")
    )
    md = (tmp_path / "from-lake" / "report.md").read_text("utf-8")
    assert f"forensics exposure --lake {lake} --window {W_TEXT} --json" in md
    assert "--db" not in md
    _every_rederive_command_runs(md, tmp_path / "again-lake", embedded_figures(html))
    store_md = (tmp_path / "from-store" / "report.md").read_text("utf-8")
    _every_rederive_command_runs(store_md, tmp_path / "again-store", embedded_figures(html))
    # Given relative, the store and lake are printed absolute: the commands work anywhere.
    monkeypatch.chdir(tmp_path)
    rel_store, rel_lake = os.path.relpath(store, tmp_path), os.path.relpath(lake, tmp_path)
    r = runner.invoke(app, ["--db", rel_store, *args, "--out", str(tmp_path / "rel-store")])
    assert r.exit_code == 0, r.stderr
    r = runner.invoke(app, [*args, "--lake", rel_lake, "--out", str(tmp_path / "rel-lake")])
    assert r.exit_code == 0, r.stderr
    monkeypatch.chdir("/")
    for folder in ("rel-store", "rel-lake"):
        md = (tmp_path / folder / "report.md").read_text("utf-8")
        _every_rederive_command_runs(md, tmp_path / f"again-{folder}", embedded_figures(html))


def _every_rederive_command_runs(md: str, out: Path, figures: dict[str, Any]) -> None:
    """Each command of the report's "Commands that re-derive the figures", as a reader
    pastes it (NEW_FOLDER a new folder), runs; the figures come out as embedded."""
    runner = CliRunner()
    commands = [shlex.split(ln) for ln in md.splitlines() if ln.startswith("forensics ")]
    assert len(commands) >= 7
    for i, argv in enumerate(commands):
        argv = [str(out / str(i)) if a == "NEW_FOLDER" else a for a in argv[1:]]
        r = runner.invoke(app, argv)
        if argv[0] == "verify" and r.exit_code == 1:
            # this store's source files are gone: verify ran, and says so
            assert "source files changed, missing or unreadable" in r.stderr
            continue
        assert r.exit_code == 0, (argv, r.stderr)
        if argv[0] == "exposure" and "--by" not in argv:
            got = json.loads(r.stdout)
            assert {k: got[k] for k in figures if k in got} == {
                k: v for k, v in figures.items() if k in got
            }


def make_report(
    store: Path, out: Path, w: Any = W, by: list[str] | None = None, **kw: Any
) -> tuple[str, str]:
    con = open_store(StoreOptions(store), read_only=True)
    try:
        write_report(
            con,
            w,
            out,
            by=["cache_node"] if by is None else by,
            store_path="case.duckdb",
            generated_at=GENERATED,
            **kw,
        )
    finally:
        con.close()
    return (out / "report.html").read_text("utf-8"), (out / "report.md").read_text("utf-8")


def collect(store: Path, w: Any = W, by: list[str] | None = None) -> ReportData:
    con = open_store(StoreOptions(store), read_only=True)
    try:
        return collect_report(con, w, by or [], "case.duckdb", GENERATED)
    finally:
        con.close()


def embedded_figures(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="figures">(.*?)</script>', html, re.S)
    assert m, "no embedded figures"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def flat(text: str) -> str:
    """Text on one line, Markdown's backslash escapes and HTML's entities undone."""
    text = re.sub(r"\\(.)", r"\1", text)
    text = text.replace("&#39;", "'").replace("&amp;", "&").replace("&quot;", '"')
    return " ".join(text.split())


def without_evidence(md: str) -> str:
    """The Markdown without its Evidence section (hashes and versions change with the code)."""
    return re.sub(r"\n## Evidence\n.*?(?=\n## )", "\n", md, flags=re.S)


HEADINGS = (
    "What happened",
    "Timeline",
    "By cache_node",
    "People affected",
    "Log coverage",
    "Evidence",
    "For the supervisory authority (GDPR Art. 33(3))",
)


# --- content -------------------------------------------------------------------------------


def test_embedded_figures_equal_exposure_json(store: Path, tmp_path: Path) -> None:
    html, _ = make_report(store, tmp_path / "out")
    r = CliRunner().invoke(app, ["--db", str(store), "exposure", "--window", W_TEXT, "--json"])
    assert r.exit_code == 0
    assert embedded_figures(html) == json.loads(r.stdout)
    assert embedded_figures(html)["cross_account_deliveries"] == 4


def test_markdown_matches_golden(store: Path, tmp_path: Path) -> None:
    _, md = make_report(store, tmp_path / "out")
    golden = GOLDEN / "report.md"
    if os.environ.get("FORENSICS_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(without_evidence(md), "utf-8")
    assert without_evidence(md) == golden.read_text("utf-8")


def test_figures_in_sentences_and_every_heading_in_both_files(store: Path, tmp_path: Path) -> None:
    html, md = make_report(store, tmp_path / "out")
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in html
        assert f"## {md_escape(heading)}" in md
    for text in (html, md):
        one_line = flat(text)
        assert "3 accounts were shown thumbnails from cameras that were not theirs" in one_line
        assert "4 of 5 successful thumbnail deliveries" in one_line
        assert "1 of them opened one (1 tap) and 1 played the event's video (1 play)" in one_line
        assert "5 distinct people are affected" in one_line
        assert "3 of them cannot be reached by email" in one_line
        assert (
            "2 deliveries without a grant fall outside the window (1 before it, 1 after it)"
            in one_line
        )
        assert "2024-02-16T08:55:00Z/2024-02-16T10:11:00Z" in one_line  # suggested window


def test_breakdown_shows_the_faulty_node_first(store: Path) -> None:
    data = collect(store, by=["cache_node"])
    (b,) = data.breakdowns
    assert [(r.value, r.cross_account_deliveries) for r in b.rows] == [
        ("node-bad", 3),
        ("node-ok", 1),
    ]


def test_no_personal_value_appears_in_either_file(store: Path, tmp_path: Path) -> None:
    html, md = make_report(store, tmp_path / "out")
    inc = report_incident()
    values = {e.user_id for e in inc.events} | {e.device_id or "" for e in inc.events}
    values |= {e.event_id or "" for e in inc.events} | {e.request_id or "" for e in inc.events}
    values |= set(RECIPIENTS + OWNERS + DEVICES + NAMES)
    values |= {a[1] for a in inc.accounts if a[1] and a[1].strip()}
    values.discard("")
    assert len(values) > 25
    for text in (html, md):
        low = text.lower()
        leaked = sorted(v for v in values if v.lower() in low)
        assert not leaked


def test_html_has_no_external_reference(store: Path, tmp_path: Path) -> None:
    html, _ = make_report(store, tmp_path / "out")
    assert "<svg" in html
    assert not re.search(r"<link\b", html, re.I)
    assert not re.search(r"<(img|iframe|object|embed|audio|video|source)\b", html, re.I)
    assert not re.search(r"\bsrc\s*=", html, re.I)
    assert not re.search(r"url\s*\(", html, re.I)
    assert not re.search(r"@import", html, re.I)
    hrefs = re.findall(r"""href\s*=\s*["']?([^"' >]*)""", html, re.I)
    assert hrefs and all(h.startswith("#") for h in hrefs)
    assert "http://" not in html and "https://" not in html
    assert (
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
    ) in html
    # the only script is the JSON data block: the page needs no script to be read
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="application/json" id="figures">']


def test_data_text_is_escaped_in_both_formats(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("cam-a", "own-a")
    inc.deliver(
        at(5), "someone-x", "cam-a", "ev-1", extra={"cache_node": '<b>bold</b>|`x`&"q"\u202e'}
    )
    store = inc.write(tmp_path / "case.duckdb")
    html, md = make_report(store, tmp_path / "out")
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "\u202e" not in html and "\u202e" not in md and "\\u202e" in md
    assert "\\<b\\>bold\\</b\\>\\|\\`x\\`" in md


def test_escaped_figures_json_parses_back() -> None:
    from forensics.report.render import figures_json

    data = {"window": {"start": "</script><script>x</script>", "end": "&"}}
    text = figures_json(data)
    assert "</" not in text and "<" not in text
    assert json.loads(text) == data


def test_a_zero_finding_window_says_so_instead_of_drawing_empty_charts(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("cam-own1", "usr-own1")
    for m in range(0, 60, 3):
        inc.deliver(at(m), "usr-own1", "cam-own1", f"evt-{m}")  # her own camera only
    html, md = make_report(inc.write(tmp_path / "case.duckdb"), tmp_path / "out", by=[])
    for text in (html, md):
        one_line = flat(text)
        assert "No cross-account delivery was found in the window" in one_line
        assert (
            "20 successful thumbnail deliveries were logged in the window; every one "
            "went to an account with a grant" in one_line
        )
        assert "No delivery without a grant is stored" in one_line
        assert "Nobody is affected in this window" in one_line
    assert html.count("<svg") == 1  # log coverage only: no empty funnel or timeline
    assert "From deliveries to people who looked" not in html
    assert embedded_figures(html)["cross_account_deliveries"] == 0


def test_a_window_missing_every_finding_says_they_lie_outside_it(tmp_path: Path) -> None:
    # Every delivery without a grant is after the window. Art. 33(3)(a) and (d) said only
    # "no breach of this kind is evidenced" and "Nobody needs to be notified".
    inc = Incident()
    inc.grant("cam-own1", "usr-own1")
    inc.deliver(at(10), "usr-own1", "cam-own1", "evt-own")
    for m in (70, 75, 80):
        inc.deliver(at(m), "usr-recv1", "cam-own1", f"evt-{m}")
    html, md = make_report(inc.write(tmp_path / "case.duckdb"), tmp_path / "out", by=[])
    for text in (html, md):
        one_line = flat(text)
        assert "no breach of this kind is evidenced for it" in one_line
        assert (
            "But 3 deliveries without a grant fall outside the window (from "
            "2024-02-16T10:10:00Z to 2024-02-16T10:20:00Z): the window may not cover the "
            "breach" in one_line
        )
        assert "a wider window may find people to notify" in one_line


def test_an_empty_store_says_no_event_is_logged_and_draws_nothing(tmp_path: Path) -> None:
    store = Incident().write(tmp_path / "case.duckdb")
    html, md = make_report(store, tmp_path / "out", by=[])
    for text in (html, md):
        one_line = flat(text)
        assert "The window holds no successful thumbnail delivery at all" in one_line
        assert "No event at all is logged around the window" in one_line
    assert "<svg" not in html


def test_a_window_with_deliveries_but_no_finding_draws_only_coverage(
    store: Path, tmp_path: Path
) -> None:
    # 09:10-09:15: the owner's own delivery only; the deliveries without a grant are outside
    html, md = make_report(store, tmp_path / "out", w=window(10, 15))
    assert "No cross-account delivery was found" in md
    assert "1 successful thumbnail delivery was logged in the window" in flat(md)
    assert "From deliveries to people who looked" not in html  # no funnel
    assert html.count("<svg") == 2  # the timeline (outside deliveries) and the coverage


# --- rules ---------------------------------------------------------------------------------


def test_id_fields_are_refused_for_by_before_anything_is_written(
    store: Path, tmp_path: Path
) -> None:
    for field in ("user_id", "device_id", "event_id", "request_id"):
        with pytest.raises(UsageError, match="counts only"):
            make_report(store, tmp_path / "out", by=[field])
        assert not (tmp_path / "out").exists()


def test_an_unknown_by_field_is_a_usage_error_and_leaves_no_folder(
    store: Path, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="no stored event has the field"):
        make_report(store, tmp_path / "out", by=["nope"])
    assert not (tmp_path / "out").exists()


def test_breakdown_keeps_the_top_values_and_sums_the_rest(tmp_path: Path) -> None:
    inc = Incident()
    values = MAX_BREAKDOWN_ROWS + 3
    for i in range(values):
        for j in range(values - i):  # value i gets values - i deliveries
            inc.deliver(at(1, j), f"r{i}-{j}", "cam", f"e{i}-{j}", extra={"node": f"n{i:02d}"})
    data = collect(inc.write(tmp_path / "case.duckdb"), by=["node"])
    (b,) = data.breakdowns
    assert len(b.rows) == MAX_BREAKDOWN_ROWS and b.total_values == values
    assert b.rows[0] == BreakdownRow("n00", values, values, 1)
    assert b.other_values == 3 and b.other_deliveries == 3 + 2 + 1


def test_people_affected_by_country_and_locale_with_unreachable(store: Path) -> None:
    data = collect(store)
    assert data.people_totals == {"recipient": (3, 2), "owner": (2, 1), "any": (5, 3)}
    rows = {(r.role, r.country, r.locale): (r.people, r.unreachable) for r in data.people}
    assert rows == {
        ("recipient", "DE", "de-DE"): (1, 0),
        ("recipient", "FR", "fr-FR"): (1, 1),  # a blank email is no email
        ("recipient", None, None): (1, 1),  # no account record
        ("owner", "GB", "en-GB"): (1, 0),
        ("owner", "IE", "en-IE"): (1, 1),
    }


def test_observed_span_and_suggested_window(store: Path) -> None:
    data = collect(store)
    assert data.span == Span(at(5), at(20), at(-5), at(70))
    assert str(data.suggested_window) == "2024-02-16T08:55:00Z/2024-02-16T10:11:00Z"
    inside = collect(store, w=window(-5, 71))
    assert inside.suggested_window is None


def test_suggested_window_is_whole_minutes_holding_every_delivery() -> None:
    span = Span(None, None, at(-3, 59.5), at(61, 0.25))
    w = suggest_window(W, span)
    assert w.start == at(-3) and w.end == at(62)
    assert w.contains(span.first_overall) and w.contains(span.last_overall)
    # a delivery exactly on a minute needs the next minute for a half-open window
    assert suggest_window(W, Span(None, None, at(0), at(60))).end == at(61)


def test_coverage_span_has_a_margin_of_at_least_30_minutes_or_a_tenth() -> None:
    assert coverage_span(W, None) == (at(-30), at(90))
    day = window(0, 24 * 60)
    lo, hi = coverage_span(day, None)
    assert lo == at(-144) and hi == at(24 * 60 + 144)


def test_gaps_need_a_busy_file_and_lie_inside_its_own_span() -> None:
    t0 = at(0)
    busy = [0, 0, 12, 10, 0, 0, 11, 10, 0]  # median over minutes 2..7 is 10
    rate, gaps = find_gaps(busy, t0)
    assert rate == GAP_MIN_RATE
    assert gaps == ((at(4), at(6)),)  # leading and trailing silence is outside its span
    quiet = [9, 9, 0, 9, 9]  # median 9: a silent minute is no sign of a lost log
    assert find_gaps(quiet, t0) == (9.0, ())
    assert find_gaps([0, 0, 0], t0) == (0.0, ())


def test_events_per_minute_per_file_and_combined(store: Path) -> None:
    data = collect(store)
    cov = data.coverage
    assert cov is not None and cov.combined is not None
    assert (cov.start, cov.end) == (at(-35), at(100))
    (events,) = cov.sources
    assert events.events == len(report_incident().events)
    assert events.events_in_window == 8
    assert events.counts[5 + 35 - events.first] == 1  # the delivery at 09:05


def test_coverage_reaches_far_deliveries_only_so_far_and_says_where_they_are(
    tmp_path: Path,
) -> None:
    # Per minute out to a delivery a year away took memory without bound (killed at 11 GB).
    inc = report_incident()
    inc.deliver(at(0) + timedelta(days=366), "usr-recv-cc9", "cam-kx3q", "evt-far1")
    inc.deliver(at(0) - timedelta(days=9000), "usr-recv-cc9", "cam-kx3q", "evt-far2")
    store = inc.write(tmp_path / "case.duckdb")
    data = collect(store)
    cov = data.coverage
    assert cov is not None and cov.combined is not None
    assert cov.start >= at(0) - timedelta(days=3, minutes=31)
    assert cov.end <= at(60) + timedelta(days=3, minutes=31)
    assert cov.beyond == (at(0) - timedelta(days=9000), at(0) + timedelta(days=366))
    assert sum(len(c.counts) for c in cov.sources) < 100  # the file's own minutes only
    md = render_markdown(data)
    assert "within 3 days of it (such deliveries reach from" in md.replace("\\", "")


def test_a_long_span_charts_at_most_a_few_thousand_points_a_series(store: Path) -> None:
    data = collect(store, parse_window("2024-02-16T09:00:00Z/P20D"))
    assert data.coverage is not None
    svg = coverage_chart(data.coverage, data.window)
    assert svg.startswith("<svg") and len(svg) < 2_000_000


def _add_files(store: Path) -> None:
    """Events files with rejects and duplicates around the window (record numbers matter)."""
    con = open_store(StoreOptions(store), read_only=False)
    try:
        files = {  # source_id: (path, kind, duplicates, [(record, minute or None=reject)])
            4: (
                "late.jsonl",
                "events",
                3,
                [(1, -30), (2, None), (3, -10), (4, None), (5, 10), (6, None), (7, 90), (8, None)],
            ),
            5: ("empty.jsonl", "events", 1, [(1, None)]),
            6: ("start.jsonl", "events", 0, [(1, -1), (2, None), (3, 0)]),
            7: ("end.jsonl", "events", 2, [(1, 60), (2, None), (3, 61)]),
            8: ("last.jsonl", "events", 0, [(1, 59.99), (2, None), (3, 60)]),
            9: ("grants2.jsonl", "grants", 0, [(1, None), (2, None)]),
        }
        for sid, (path, kind, dups, records) in files.items():
            rejected = sum(1 for _, m in records if m is None)
            con.execute(
                "insert into sources (source_id, path, kind, format, size_bytes, sha256, "
                "rows_read, "
                "rows_loaded, rows_rejected, rows_duplicate, ingested_at, tool_version) "
                "values ($id, $p, $k, 'jsonl', 0, $sha, $read, $loaded, "
                "$rej, $dup, now(), 'test')",
                {
                    "id": sid,
                    "p": path,
                    "k": kind,
                    "sha": f"{sid:064x}",
                    "read": len(records) + dups,
                    "loaded": len(records) - rejected,
                    "rej": rejected,
                    "dup": dups,
                },
            )
            for rec, minute in records:
                if minute is None:
                    con.execute(
                        "insert into rejects values ($s, $r, 'invalid ts', '{}')",
                        {"s": sid, "r": rec},
                    )
                else:
                    con.execute(
                        "insert into events (ts, action, user_id, source_id, source_record) "
                        "values ($t, 'page_view', 'bg-user', $s, $r)",
                        {"t": at(minute), "s": sid, "r": rec},
                    )
    finally:
        con.close()


def test_rejects_are_placed_by_their_neighbours_in_their_file(store: Path) -> None:
    _add_files(store)
    data = collect(store)
    got = {(r["kind"], r["placement"]): int(r["records"]) for r in data.rejects}
    # late.jsonl: rec 2 between -30 and -10 outside; rec 4 (-10..10) and rec 6 (10..90) in;
    # rec 8 after 90 only, outside. empty.jsonl: unknown. start.jsonl: [-1, 0] meets the
    # start (inclusive): in. end.jsonl: [60, 61] starts at the end (exclusive): outside.
    # last.jsonl: [59.99, 60] meets the window: in.
    assert got == {
        ("events", "in_window"): 4,
        ("events", "outside"): 3,
        ("events", "unknown"): 1,
        ("grants", "not_timed"): 2,
    }


def test_duplicates_are_placed_by_their_file_span(store: Path) -> None:
    _add_files(store)
    data = collect(store)
    got = {int(d["source_id"]): d["placement"] for d in data.duplicates}
    assert got == {4: "in_window", 5: "unknown", 7: "outside"}


def test_evidence_lists_inputs_queries_versions_and_commands(store: Path, tmp_path: Path) -> None:
    html, md = make_report(store, tmp_path / "out")
    data = collect(store, by=["cache_node"])
    for text in (html, md):
        for q in data.queries:
            assert q.sha256 in text
        for s in data.sources:
            assert s["sha256"] in text
        assert f"--window {W_TEXT} --json" in text
        assert f"--window {W_TEXT} --by cache_node --json" in text
    assert {q.name for q in data.queries} >= {
        "figures",
        "timeline",
        "deliveries_by_field",
        "affected_people",
        "rejects_by_reason",
    }


def test_regulator_section_has_marked_blanks(store: Path, tmp_path: Path) -> None:
    html, md = make_report(store, tmp_path / "out")
    for heading in (
        "(a) Nature of the breach",
        "(b) Name and contact details",
        "(c) Likely consequences",
        "(d) Measures taken or proposed",
    ):
        assert heading in html and md_escape(heading) in md
    assert html.count('<div class="blank">') == 4
    assert md.count("> **\\[BLANK\\]**") == 4


# --- files and folders ---------------------------------------------------------------------


def test_files_are_private_and_a_new_folder_is_0700(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "a" / "out"
    make_report(store, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md"]
    for p in out.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600


def test_a_non_empty_folder_needs_force_and_keeps_other_files(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        make_report(store, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    make_report(store, out, force=True)
    make_report(store, out, force=True)  # replaces its own files
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.html", "report.md"]
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_failure_while_rendering_leaves_no_file(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import forensics.report.writer as writer

    def boom(data: ReportData) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "render_markdown", boom)
    with pytest.raises(KeyboardInterrupt):
        make_report(store, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- the command ---------------------------------------------------------------------------


def run_cli(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_cli_writes_both_files_and_prints_counts_only(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(
        [
            "--db",
            str(store),
            "report",
            "--window",
            W_TEXT,
            "--out",
            str(out),
            "--by",
            "cache_node",
            "--by",
            "cache_node",
        ]
    )
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    assert "4 cross-account deliveries, 3 recipients" in r.stderr
    assert "2 cross-account deliveries fall outside the window" in r.stderr
    for v in RECIPIENTS + OWNERS + DEVICES + NAMES:
        assert v not in r.stderr
    html = (out / "report.html").read_text()
    assert html.count("<h2>By cache_node</h2>") == 1


def test_cli_usage_errors_exit_2(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = run_cli(
        ["--db", str(store), "report", "--window", W_TEXT, "--out", str(out), "--by", "user_id"]
    )
    assert r.exit_code == 2
    assert r.stderr.startswith("forensics: error: --by: user_id holds identifiers")
    assert not out.exists()
    r = run_cli(["--db", str(store), "report", "--window", "nope", "--out", str(out)])
    assert r.exit_code == 2 and not out.exists()


def test_cli_non_empty_folder_exits_1(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x").write_text("x")
    r = run_cli(["--db", str(store), "report", "--window", W_TEXT, "--out", str(out)])
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "--force" in r.stderr


def test_figures_match_compute_figures_for_several_windows(store: Path, tmp_path: Path) -> None:
    con = open_store(StoreOptions(store), read_only=True)
    try:
        for i, w in enumerate((W, window(-10, 5), window(6, 7))):
            prepare_window(con, w)
            expected = compute_figures(con, w)
            write_report(con, w, tmp_path / f"o{i}", store_path="x", generated_at=GENERATED)
            html = (tmp_path / f"o{i}" / "report.html").read_text()
            assert embedded_figures(html) == expected
    finally:
        con.close()


def test_render_functions_agree_on_sections(store: Path) -> None:
    data = collect(store, by=["cache_node"])
    html, md = render_html(data), render_markdown(data)
    h2 = re.findall(r"<h2>(.*?)</h2>", html)
    md2 = re.findall(r"^## (.*)$", md, re.M)
    assert [md_escape(h) for h in h2] == md2


# --- a generated incident ------------------------------------------------------------------


def _personal_values(folder: Path) -> set[str]:
    """Every id, email and name in a folder written by `forensics sample`."""
    import gzip

    import pyarrow.parquet as pq

    values: set[str] = set()

    def add(rec: Any) -> None:
        if not isinstance(rec, dict):
            return
        for key in ("user_id", "device_id", "event_id", "request_id", "email", "name"):
            v = rec.get(key)
            if isinstance(v, (str, int)) and len(str(v).strip()) >= 4:
                values.add(str(v).strip().lower())

    for path in folder.rglob("*"):
        if path.name.endswith(".parquet"):
            for rec in pq.read_table(path).to_pylist():
                add(rec)
        elif path.name.endswith((".jsonl", ".ndjson", ".ndjson.gz", ".jsonl.gz")):
            opener: Any = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        add(json.loads(line))
                    except ValueError:
                        continue
    return values


@pytest.mark.slow
def test_a_generated_incident_by_cache_node(tmp_path: Path) -> None:
    from forensics.ingest import IngestOptions, ingest
    from forensics.sample import write_sample
    from forensics.window import parse_window

    summary = write_sample(tmp_path / "incident", seed=11, scale=0.05)
    folder = tmp_path / "incident"
    store = tmp_path / "case.duckdb"
    ingest(
        StoreOptions(store),
        [str(folder / k) for k in ("events", "grants", "accounts")],
        IngestOptions(),
    )
    w = parse_window(f"{summary.window_start}/{summary.window_end}")
    html, md = make_report(store, tmp_path / "out", w=w, by=["cache_node"])
    con = open_store(StoreOptions(store), read_only=True)
    try:
        assert embedded_figures(html) == compute_figures(con, w)
    finally:
        con.close()
    assert embedded_figures(html)["recipients"] == 13_000
    top = re.findall(r"^\| (cache-\d+) \|", md, re.M)[:3]
    assert sorted(top) == ["cache-07", "cache-12", "cache-19"]  # the faulty nodes lead
    values = _personal_values(folder)
    assert len(values) > 10_000
    for text in (html.lower(), md.replace("\\", "").lower()):
        # 100k+ values: look each up among the text's tokens (a substring search of every
        # value would take a minute); a name of several words is searched for in full
        # when its first word is a token. The hand-made incident above checks substrings.
        tokens = set(re.split(r"[\s<>\"'`|(),;:\[\]{}*#=]+", text))
        leaked = [
            v
            for v in values
            if (v in tokens if " " not in v else v.split()[0] in tokens and v in text)
        ]
        assert not leaked


def test_many_files_show_those_with_gaps_and_the_busiest_and_sum_the_rest(tmp_path: Path) -> None:
    store = Incident().write(tmp_path / "case.duckdb")
    con = open_store(StoreOptions(store), read_only=False)
    try:
        for sid in range(10, 30):  # 20 events files named alike in two folders
            con.execute(
                "insert into sources (source_id, path, kind, format, size_bytes, sha256, "
                "rows_read, "
                "rows_loaded, rows_rejected, rows_duplicate, ingested_at, tool_version) "
                "values ($id, $p, 'events', 'jsonl', 0, $sha, 0, 0, 0, 0, "
                "now(), 'test')",
                {"id": sid, "p": f"edge{sid % 2}/log.jsonl", "sha": f"{sid:064x}"},
            )
            # `rate` events a minute for an hour (the later files busier); file 10 is
            # silent in minute 30
            con.execute(
                "insert into events (ts, action, user_id, source_id, source_record) "
                "select $t0 + to_microseconds(r * 60000000 // $rate), 'page_view', 'bg', "
                "$sid, r + 1 from range(60 * $rate) as t(r) "
                "where not ($sid = 10 and r // $rate = 30)",
                {"t0": at(0), "rate": 12 + sid, "sid": sid},
            )
    finally:
        con.close()
    data = collect(store)
    assert data.coverage is not None
    assert [s.gaps for s in data.coverage.sources if s.gaps] == [((at(30), at(31)),)]
    html, md = make_report(store, tmp_path / "out", by=[])
    table = md.split("| events file |")[1].split("\n\n")[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and not r.startswith("| ---")]
    assert len(rows) == 12 + 2  # 12 files, the other 8 summed, all files together
    assert rows[0].startswith("| log.jsonl \\(source 10\\) |")  # the file with the gap
    assert rows[-2].startswith("| \\(8 other files\\) |")
    assert rows[-1].startswith("| all events files |")
    (chart,) = [f for f in re.findall(r"<figure.*?</figure>", html, re.S) if "events file" in f]
    assert "all events files" in chart and "log.jsonl (source 29)" in chart
    assert "log.jsonl (source 11)" not in chart  # a quiet file without gaps: summed only


def test_the_recipients_line_drops_to_zero_in_minutes_without_deliveries() -> None:
    # The timeline lists only minutes with deliveries; drawn step by step, the line held
    # each value until the next listed minute, over minutes that had none.
    from forensics.report.charts import recipient_steps

    timeline = [
        {"minute": "2024-03-01T10:05:00Z", "cross_account_deliveries": 2, "recipients": 1},
        {"minute": "2024-03-01T10:06:00Z", "cross_account_deliveries": 3, "recipients": 2},
        {"minute": "2024-03-01T10:25:00Z", "cross_account_deliveries": 1, "recipients": 1},
    ]
    assert [(p["minute"][11:16], p["count"]) for p in recipient_steps(timeline)] == [
        ("10:05", 1),
        ("10:06", 2),
        ("10:07", 0),
        ("10:25", 1),
        ("10:26", 0),
    ]
    assert recipient_steps([]) == []
