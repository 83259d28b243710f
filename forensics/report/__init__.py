"""The incident report (SPEC §9): report.html and report.md for a window, counts only.

figures.py reads everything the report shows from the store (through queries/), charts.py
draws it with Vega-Lite (altair) rendered to SVG by vl-convert, render.py fills the
templates, writer.py writes both files atomically. Nothing here prints or exits.
"""

from forensics.report.writer import ReportResult, ReportRun, run_report, write_report

__all__ = ["ReportResult", "ReportRun", "run_report", "write_report"]
