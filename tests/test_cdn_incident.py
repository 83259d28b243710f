"""Issue 19's "done when", small: an incident delivered as 60 gzip CloudFront log files and
CSV exports of grants and accounts (hostile names), ingested through the example map, gives
exactly the figures — and the stored rows — of the same incident in canonical form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from forensics.exposure import compute_figures
from forensics.mapping import load_mapping
from forensics.sample import write_sample
from forensics.store import StoreOptions, open_store
from forensics.window import parse_window
from tests.helpers.cdn_incident import read_incident, write_canonical, write_delivered
from tests.helpers.ingest import accounted, rows, run

CLOUDFRONT_MAP = Path(__file__).resolve().parents[1] / "examples" / "maps" / "cloudfront.toml"


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
