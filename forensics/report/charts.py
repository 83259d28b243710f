"""The report's charts: Vega-Lite specs built with altair, rendered to SVG by vl-convert.

No browser and no network: vl-convert bundles Vega and renders in-process. Every chart is
greyscale-readable (black, greys, dashes and shapes, never colour alone), its time axis is
UTC and labelled so. The SVG is returned as text for inlining in report.html.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import altair as alt
import vl_convert as vlc

from forensics.exposure import printable
from forensics.report.figures import (
    MAX_COVERAGE_SERIES,
    Coverage,
    ReportData,
    ShownBreakdown,
    pick_files,
)
from forensics.window import Window, format_instant

WIDTH = 620
_FONT = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"
_INK, _GREY, _LIGHT = "#000000", "#7a7a7a", "#d9d9d9"
_CONFIG: dict[str, Any] = {
    "font": _FONT,
    "view": {"stroke": None},
    "axis": {"labelColor": _INK, "titleColor": _INK, "gridColor": "#ececec"},
    "legend": {"orient": "bottom", "labelColor": _INK, "titleColor": _INK},
    "background": "white",
}


def _inline(values: list[dict[str, Any]]) -> Any:
    """Data written into the spec itself: nothing is loaded from a URL or a file."""
    return alt.Data(values=values)  # type: ignore[no-untyped-call]


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render a chart to standalone SVG text (in-process; nothing is fetched)."""
    spec = chart.to_dict()
    spec.setdefault("config", {}).update(_CONFIG)
    svg = vlc.vegalite_to_svg(spec)
    # Inline SVG in HTML needs no namespace declarations; dropping them leaves no URL at all.
    return re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg, count=2)


def _utc_axis(title: str, span: timedelta) -> alt.Axis:
    fmt = "%H:%M" if span <= timedelta(days=1) else "%m-%d %H:%M"
    return alt.Axis(title=title, format=fmt, labelAngle=0, labelOverlap=True)


def _window_band(window: Window) -> alt.Chart:
    band = _inline(
        [
            {
                "start": format_instant(window.start),
                "end": format_instant(window.end),
                "label": "incident window",
            }
        ]
    )
    chart: alt.Chart = (
        alt.Chart(band)
        .mark_rect(color=_LIGHT, opacity=0.6)
        .encode(
            x=alt.X("start:T", scale=alt.Scale(type="utc")),
            x2="end:T",
        )
    )
    return chart


def funnel_chart(figures: dict[str, Any]) -> str:
    """Cross-account deliveries → recipients → tappers → video viewers, as bars."""
    steps = [
        ("cross-account deliveries", figures["cross_account_deliveries"]),
        ("recipients (accounts)", figures["recipients"]),
        ("tappers (opened one)", figures["tappers"]),
        ("video viewers (played one)", figures["video_viewers"]),
    ]
    values = [
        {"step": s, "count": int(c), "order": i, "label": f"{int(c):,}"}
        for i, (s, c) in enumerate(steps)
    ]
    base = alt.Chart(_inline(values)).encode(
        y=alt.Y("step:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelLimit=260)),
    )
    bars = base.mark_bar(color=_INK).encode(
        x=alt.X("count:Q", title="count", scale=alt.Scale(type="linear")),
    )
    text = base.mark_text(align="left", dx=4, color=_INK).encode(x="count:Q", text="label:N")
    return to_svg(
        (bars + text).properties(
            width=WIDTH - 260, height=150, title="From deliveries to people who looked"
        )
    )


def recipient_steps(timeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recipients line's points: each minute with recipients, and a 0 at the minute
    after it when the next minute has none (the line steps from each point to the next,
    and the timeline lists only the minutes that have deliveries)."""
    points = {p["minute"]: int(p["recipients"]) for p in timeline}
    for minute in list(points):
        start = datetime.fromisoformat(minute.replace("Z", "+00:00"))  # 3.10 reads no Z
        after = format_instant(start + timedelta(minutes=1))
        points.setdefault(after, 0)
    return [{"minute": m, "count": n} for m, n in sorted(points.items())]


def timeline_chart(data: ReportData) -> str:
    """Cross-account deliveries and recipients per minute, window shaded, outside marked."""
    w = data.window
    inside = [
        {"minute": p["minute"], "count": int(p["cross_account_deliveries"])}
        for p in data.figures["timeline"]
    ]
    recipients = recipient_steps(data.figures["timeline"])
    outside = [{"minute": format_instant(m.minute), "count": m.deliveries} for m in data.outside]
    lo, hi = w.start, w.end
    if data.span is not None:
        lo, hi = min(lo, data.span.first_overall), max(hi, data.span.last_overall)
    pad = max(timedelta(minutes=5), (hi - lo) / 40)
    domain = [format_instant(lo - pad), format_instant(hi + pad)]
    x = alt.X(
        "minute:T",
        scale=alt.Scale(type="utc", domain=domain),
        axis=_utc_axis("minute (UTC)", hi - lo),
    )
    y = alt.Y("count:Q", title="per minute")
    # Told apart by mark, not colour (the caption names them): grey bars are deliveries, the
    # black line recipients, open triangles deliveries outside the window.
    layers: list[alt.Chart] = [_window_band(w)]
    if inside:
        layers.append(alt.Chart(_inline(inside)).mark_bar(color=_GREY, width=1.5).encode(x=x, y=y))
        layers.append(
            alt.Chart(_inline(recipients))
            .mark_line(color=_INK, strokeWidth=1, interpolate="step-after")
            .encode(x=x, y=y)
        )
    if outside:
        layers.append(
            alt.Chart(_inline(outside))
            .mark_point(
                shape="triangle-down",
                filled=False,
                size=40,
                strokeWidth=1.2,
                color=_INK,
            )
            .encode(x=x, y=y)
        )
    chart = alt.layer(*layers).properties(
        width=WIDTH,
        height=220,
        title="Per minute (UTC): the window shaded",
    )
    return to_svg(chart)


def breakdown_chart(b: ShownBreakdown) -> str:
    """Cross-account deliveries per value of one field (the top values)."""
    values = [
        {
            "value": "(missing)" if r.value is None else printable(r.value),
            "deliveries": r.cross_account_deliveries,
            "order": i,
            "label": f"{r.cross_account_deliveries:,}",
        }
        for i, r in enumerate(b.rows)
    ]
    if b.other_values:
        values.append(
            {
                "value": f"({b.other_values:,} other values)",
                "deliveries": b.other_deliveries,
                "order": len(values),
                "label": f"{b.other_deliveries:,}",
            }
        )
    base = alt.Chart(_inline(values)).encode(
        y=alt.Y(
            "value:N",
            sort=alt.SortField("order"),
            title=printable(b.field),
            axis=alt.Axis(labelLimit=220),
        ),
    )
    bars = base.mark_bar(color=_INK).encode(
        x=alt.X("deliveries:Q", title="cross-account deliveries")
    )
    text = base.mark_text(align="left", dx=4, color=_INK).encode(x="deliveries:Q", text="label:N")
    return to_svg(
        (bars + text).properties(
            width=WIDTH - 240,
            height=max(40, 18 * len(values)),
            title=f"Cross-account deliveries by {printable(b.field)}",
        )
    )


MAX_CHART_POINTS = 4_000


def coverage_chart(coverage: Coverage, window: Window) -> str:
    """Events per minute per events file around the window; silent minutes marked."""
    values: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    series = list(coverage.sources)
    if len(series) > MAX_COVERAGE_SERIES and coverage.combined is not None:
        # many files: all of them together, and the busiest (gaps first) beside them
        shown, _ = pick_files(coverage.sources, MAX_COVERAGE_SERIES - 1)
        series = [coverage.combined, *shown]
    # A point a minute while the span is short; over a long one (a week-long window) the
    # mean per minute of `step` minutes, so a chart never holds more than about
    # MAX_CHART_POINTS points a series.
    step = max(
        1, -(-int((coverage.end - coverage.start) / timedelta(minutes=1)) // MAX_CHART_POINTS)
    )
    for s in series:
        for i in range(0, len(s.counts), step):
            t: datetime = coverage.start + timedelta(minutes=s.first + i)
            part = s.counts[i : i + step]
            events = part[0] if step == 1 else round(sum(part) / len(part), 2)
            values.append({"minute": format_instant(t), "events": events, "file": s.name})
        for a, b in s.gaps:
            gaps.append({"start": format_instant(a), "end": format_instant(b), "file": s.name})
    span = coverage.end - coverage.start
    x = alt.X(
        "minute:T",
        scale=alt.Scale(
            type="utc", domain=[format_instant(coverage.start), format_instant(coverage.end)]
        ),
        axis=_utc_axis("minute (UTC)", span),
    )
    dash_cycle = [[1, 0], [5, 2], [2, 2], [8, 3, 2, 3], [1, 3], [10, 4]]
    names = [s.name for s in series]
    layers: list[alt.Chart] = [_window_band(window)]
    if gaps:
        layers.append(
            alt.Chart(_inline(gaps))
            .mark_rect(
                color=_INK,
                opacity=0.25,
            )
            .encode(x=alt.X("start:T", scale=alt.Scale(type="utc")), x2="end:T")
        )
    layers.append(
        alt.Chart(_inline(values))
        .mark_line(strokeWidth=1)
        .encode(
            x=x,
            y=alt.Y("events:Q", title="events per minute"),
            # colour and dash on one field: one legend, whose symbols show both
            color=alt.Color(
                "file:N",
                title="events file",
                scale=alt.Scale(
                    domain=names,
                    range=[_INK, "#444444", "#666666", "#888888", "#aaaaaa", "#555555"],
                ),
                legend=alt.Legend(symbolType="stroke", labelLimit=300, columns=2),
            ),
            strokeDash=alt.StrokeDash("file:N", scale=alt.Scale(domain=names, range=dash_cycle)),
        )
    )
    return to_svg(
        alt.layer(*layers).properties(
            width=WIDTH,
            height=200,
            title="Events per minute per events file (UTC); shaded: the window; dark: gaps",
        )
    )
