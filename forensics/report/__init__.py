"""The incident report (SPEC §9): report.html and report.md for a window, counts only.

figures.py reads everything the report shows from the store (through queries/), charts.py
draws it with Vega-Lite (altair) rendered to SVG by vl-convert. The sections are built once
from sections.py's parts: findings.py (what happened, timeline, breakdowns, people,
coverage), evidence.py (inputs and the commands that re-derive the figures) and regulator.py
(GDPR Art. 33(3)); render.py fills the two templates with them, writer.py writes both files
atomically. Nothing here prints or exits.
"""

from forensics.report.writer import ReportResult, ReportRun, run_report, write_report

__all__ = ["ReportResult", "ReportRun", "run_report", "write_report"]
