"""The screens of each command: what `forensics` shows for ingest, sources, rejects, verify,
status, exposure, sql and notify, drawn with forensics.terminal's fitted tables and messages.

One module a group of commands: ingest.py, case.py (status, sources, rejects, verify),
exposure.py, sql.py, notices.py (notify, report, verify-notices). Counts, file names and
paths only: never an id of a person, an email or a name (the --by breakdown shows stored
values of the field asked for, escaped). Nothing here computes.
"""

from forensics.screens.case import render_rejects, render_sources, render_status, render_verify
from forensics.screens.exposure import FIGURE_LABELS, coverage_warnings, render_exposure
from forensics.screens.ingest import LIST_EACH_FILE_UP_TO, LIST_FILES_MAX, render_ingest
from forensics.screens.notices import (
    render_chains_checked,
    render_notify,
    render_report,
    render_verify_notices,
    wave_line,
)
from forensics.screens.sql import render_sql_table, write_sql_csv, write_sql_json

__all__ = [
    "FIGURE_LABELS",
    "LIST_EACH_FILE_UP_TO",
    "LIST_FILES_MAX",
    "coverage_warnings",
    "render_chains_checked",
    "render_exposure",
    "render_ingest",
    "render_notify",
    "render_rejects",
    "render_report",
    "render_sources",
    "render_sql_table",
    "render_status",
    "render_verify",
    "render_verify_notices",
    "wave_line",
    "write_sql_csv",
    "write_sql_json",
]
