"""report.html in a real browser: headless Chromium (Debian's package) renders it offline.

The page's own Content-Security-Policy lets no script run and nothing load, so what the
screenshot shows is readable with scripts off. The screenshot is not blank and the charts
add ink to it (the same page with its figures removed has much less); a zero-finding
window renders too, says so, and draws no funnel or timeline; the page prints on A4. CI
installs chromium (.ci/run); elsewhere the tests skip when it is missing, and fail when CI
is set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from forensics.report import write_report
from forensics.store import StoreOptions, open_store
from tests.helpers.incident import Incident, at
from tests.test_report import GENERATED, W, report_incident

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("chromium is missing in CI: .ci/run installs it", pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

WIDTH, HEIGHT = 1000, 9000
DARK = 128  # a pixel darker than this (0-255 grey) is ink


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp_path / "profile"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # no network: any fetch would fail, so what renders came from the file itself
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def screenshot(tmp_path: Path, html: Path, name: str) -> Image.Image:
    png = tmp_path / f"{name}.png"
    run = chromium(
        tmp_path, f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}", html.as_uri()
    )
    assert png.is_file(), run.stderr[-2000:]
    return Image.open(png).convert("L")


def ink(img: Image.Image) -> int:
    """How many pixels are dark."""
    hist = img.histogram()
    return sum(hist[:DARK])


def without_figures(html: Path) -> Path:
    text = html.read_text("utf-8")
    bare = re.sub(r"<figure\b.*?</figure>", "", text, flags=re.S)
    assert bare != text
    out = html.with_name("bare.html")
    out.write_text(bare, "utf-8")
    return out


def write(store: Path, out: Path, w: object = W, by: list[str] | None = None) -> Path:
    con = open_store(StoreOptions(store), read_only=True)
    try:
        write_report(
            con,
            w,
            out,
            by=by or [],
            store_path="case.duckdb",  # type: ignore[arg-type]
            generated_at=GENERATED,
        )
    finally:
        con.close()
    return out / "report.html"


def test_the_report_renders_with_its_charts(tmp_path: Path) -> None:
    store = report_incident().write(tmp_path / "case.duckdb")
    html = write(store, tmp_path / "out", by=["cache_node"])
    page = screenshot(tmp_path, html, "page")
    bare = screenshot(tmp_path, without_figures(html), "bare")
    assert ImageStat.Stat(page).stddev[0] > 20  # not blank
    assert ink(page) > 0.01 * WIDTH * HEIGHT / 10
    # the four charts (funnel, timeline, breakdown, coverage) add their bars, lines and axes
    assert ink(page) - ink(bare) > 8000, (ink(page), ink(bare))
    dom = chromium(tmp_path, "--dump-dom", html.as_uri()).stdout
    assert dom.count("<svg") == 4
    assert "3 accounts were shown thumbnails" in " ".join(dom.split())


def test_no_script_runs_in_the_report(tmp_path: Path) -> None:
    store = report_incident().write(tmp_path / "case.duckdb")
    html = write(store, tmp_path / "out")
    text = html.read_text("utf-8")
    probe = (
        '<p id="probe">static</p><script>document.getElementById("probe")'
        '.textContent = "scripted"</script>'
    )
    html.write_text(text.replace("<main>", "<main>" + probe), "utf-8")
    dom = chromium(tmp_path, "--dump-dom", html.as_uri()).stdout
    assert '<p id="probe">static</p>' in dom


def test_a_zero_finding_report_renders_and_says_so(tmp_path: Path) -> None:
    inc = Incident()
    inc.grant("cam-own1", "usr-own1")
    for m in range(0, 60, 3):
        inc.deliver(at(m), "usr-own1", "cam-own1", f"evt-{m}")
    html = write(inc.write(tmp_path / "case.duckdb"), tmp_path / "out")
    page = screenshot(tmp_path, html, "page")
    bare = screenshot(tmp_path, without_figures(html), "bare")
    assert ImageStat.Stat(page).stddev[0] > 20
    assert ink(page) - ink(bare) > 1000  # the log coverage chart: events were logged
    dom = " ".join(chromium(tmp_path, "--dump-dom", html.as_uri()).stdout.split())
    assert "No cross-account delivery was found in the window" in dom
    assert dom.count("<svg") == 1


def test_the_report_prints_on_a4(tmp_path: Path) -> None:
    store = report_incident().write(tmp_path / "case.duckdb")
    html = write(store, tmp_path / "out", by=["cache_node"])
    pdf = tmp_path / "report.pdf"
    run = chromium(tmp_path, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", html.as_uri())
    assert pdf.is_file(), run.stderr[-2000:]
    data = pdf.read_bytes()
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert boxes, "no page in the PDF"
    for w, h in boxes:  # A4 is 595.28 x 841.89 points
        assert abs(float(w) - 595.3) < 1.5 and abs(float(h) - 841.9) < 1.5
