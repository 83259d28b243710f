"""Issue 19's "done when", small: an incident delivered as 60 gzip CloudFront log files and
CSV exports of grants and accounts (hostile names), ingested through the example map, gives
exactly the figures — and the stored rows — of the same incident in canonical form; and
with its taps in a wrapped-JSON audit trail beside the CDN logs, read through a second map,
exactly the `exposure --json` of the canonical form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from forensics.cli import app
from forensics.exposure import compute_figures
from forensics.mapping import load_mapping
from forensics.sample import write_sample
from forensics.store import StoreOptions, open_store
from forensics.window import parse_window
from tests.helpers.cdn_incident import (
    read_incident,
    split_audited,
    write_audit_trail,
    write_canonical,
    write_delivered,
)
from tests.helpers.ingest import accounted, rows, run

MAPS = Path(__file__).resolve().parents[1] / "examples" / "maps"
CLOUDFRONT_MAP = MAPS / "cloudfront.toml"


def _figures(db: Path, window: str) -> dict[str, Any]:
    con = open_store(StoreOptions(db), read_only=True)
    try:
        return compute_figures(con, parse_window(window))
    finally:
        con.close()


def _tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "events": rows(
            db,
            "select ts, action, user_id, device_id, event_id, request_id, "
            "status from events order by all",
        ),
        "grants": rows(
            db, "select device_id, user_id, role, valid_from, valid_to from grants order by all"
        ),
        # Which record of a user is the latest decides the contact details: keep the order.
        "accounts": rows(
            db, "select user_id, email, name, locale, country from accounts order by source_record"
        ),
    }


@pytest.mark.slow
def test_cdn_logs_and_csv_exports_give_the_figures_of_the_canonical_incident(
    tmp_path: Path,
) -> None:
    summary = write_sample(tmp_path / "sample", scale=0.1)
    window = f"{summary.window_start}/{summary.window_end}"
    original = tmp_path / "a.duckdb"
    s = tmp_path / "sample"
    assert run(original, s / "events", s / "grants", s / "accounts").totals()["failed"] == 0
    incident = read_incident(original, every=8)
    write_canonical(incident, tmp_path / "canonical")
    write_delivered(incident, tmp_path / "delivered", files=60)
    assert len(list((tmp_path / "delivered" / "cdn").glob("*.log.gz"))) == 60
    assert sum("\n" in (a[2] or "") for a in incident["accounts"]) > 100

    canonical, delivered = tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    rb = run(canonical, tmp_path / "canonical")
    rc = run(delivered, tmp_path / "delivered", mapping=load_mapping(CLOUDFRONT_MAP))
    for report in (rb, rc):
        assert accounted(report)
        t = report.totals()
        assert (t["failed"], t["rows_rejected"], t["rows_duplicate"]) == (0, 0, 0)
    assert rc.totals()["files"] == 62
    assert (
        rb.totals()["rows_loaded"]
        == rc.totals()["rows_loaded"]
        == sum(len(v) for v in incident.values())
    )

    assert _tables(delivered) == _tables(canonical)
    figures = _figures(canonical, window)
    assert _figures(delivered, window) == figures
    assert figures["cross_account_deliveries"] > 0 and figures["tappers"] > 0


def _exposure_json(db: Path, window: str) -> dict[str, Any]:
    r = CliRunner().invoke(app, ["--db", str(db), "exposure", "--window", window, "--json"])
    assert r.exit_code == 0, r.stderr
    out: dict[str, Any] = json.loads(r.stdout)
    return out


@pytest.mark.slow
def test_cdn_logs_an_audit_trail_and_csv_exports_give_the_canonical_exposure(
    tmp_path: Path,
) -> None:
    # A held-out incident: not the sample's seed, a smaller scale, one user in 12.
    summary = write_sample(tmp_path / "sample", seed=11, scale=0.05)
    window = f"{summary.window_start}/{summary.window_end}"
    s = tmp_path / "sample"
    original = tmp_path / "a.duckdb"
    assert run(original, s / "events", s / "grants", s / "accounts").totals()["failed"] == 0
    incident = read_incident(original, every=12)
    write_canonical(incident, tmp_path / "canonical")
    # The same incident as delivered: taps in the API's audit trail, everything else in the
    # CDN's logs, grants and accounts as CSV exports.
    cdn, audited = split_audited(incident)
    delivered = tmp_path / "delivered"
    write_delivered(cdn, delivered, files=20)
    write_audit_trail(audited, delivered / "audit" / "camera-audit-trail.json.gz")
    assert audited and cdn["events"]

    canonical, store = tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    rb = run(canonical, tmp_path / "canonical")
    rc = run(store, delivered / "cdn", delivered / "exports", mapping=load_mapping(CLOUDFRONT_MAP))
    ra = run(store, delivered / "audit", mapping=load_mapping(MAPS / "cloudtrail.toml"))
    assert [f.format for f in ra.files] == ["json+gzip"]
    for report in (rb, rc, ra):
        assert accounted(report)
        t = report.totals()
        assert (t["failed"], t["rows_rejected"], t["rows_duplicate"]) == (0, 0, 0)
    assert ra.totals()["rows_loaded"] == len(audited)
    assert (
        rc.totals()["rows_loaded"] + ra.totals()["rows_loaded"]
        == rb.totals()["rows_loaded"]
        == sum(len(v) for v in incident.values())
    )

    figures = _exposure_json(canonical, window)
    assert _exposure_json(store, window) == figures
    assert figures["cross_account_taps"] > 0 and figures["cross_account_deliveries"] > 0
