"""report.html and report.md from ReportData: one list of sections, two templates.

The sections (sentences, tables, charts, marked blanks) are built once, so the HTML and
the Markdown say the same things; the HTML adds the charts as inline SVG and the figures as
JSON. Text from the data (field values, countries, file names, reasons) is escaped for each
format and its control and bidi characters are shown as escapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jinja2

from forensics.exposure import printable
from forensics.report.evidence import evidence_section
from forensics.report.figures import ReportData, instant
from forensics.report.findings import (
    breakdown_sections,
    coverage_section,
    people_section,
    summary_section,
    timeline_section,
)
from forensics.report.regulator import regulator_section
from forensics.report.sections import Section

TITLE = "Incident report: camera content shown to the wrong accounts"


def build_sections(data: ReportData, with_charts: bool) -> list[Section]:
    """Every section of the report, in order (charts rendered only when asked)."""
    return [
        summary_section(data, with_charts),
        timeline_section(data, with_charts),
        *breakdown_sections(data, with_charts),
        people_section(data),
        coverage_section(data, with_charts),
        evidence_section(data),
        regulator_section(data),
    ]


# --- formats -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md_escape(text: str) -> str:
    """Text safe inside a Markdown paragraph or table cell: no markup, no HTML, one line."""
    text = " ".join(printable(str(text)).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def figures_json(figures: dict[str, Any]) -> str:
    """The figures as JSON that cannot end the <script> element it sits in."""
    text = json.dumps(figures, ensure_ascii=False, indent=2)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("forensics.report", "templates"),
        # the HTML template is report.html.j2: escape by that name (".html" alone would miss it)
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["md"] = md_escape
    env.filters["printable"] = printable
    return env


def _render(template: str, data: ReportData, with_charts: bool, **extra: str) -> str:
    return (
        _environment()
        .get_template(template)
        .render(
            title=TITLE,
            data=data,
            window=str(data.window),
            generated_at=instant(data.generated_at),
            sections=build_sections(data, with_charts=with_charts),
            **extra,
        )
    )


def render_html(data: ReportData) -> str:
    return _render("report.html.j2", data, True, figures_json=figures_json(data.figures))


def render_markdown(data: ReportData) -> str:
    return _render("report.md.j2", data, False)
