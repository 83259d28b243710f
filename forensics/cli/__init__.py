"""The command-line interface: parse options, call one core function, render, exit code.

The only package that imports typer; forensics.screens and forensics.terminal draw. stdout
carries data only (JSON, CSV, tables asked for); progress, summaries and errors go to stderr.
Errors are one line, `forensics: error: <what>: <why>`, with a traceback (no local
variables) only under --debug, which is carried in the command context.

`app` is the command group (cli/app.py), the options shared by several commands are in
cli/options.py, and the commands themselves in cli/data.py and cli/findings.py. They are
registered here, in the order `forensics --help` lists them.
"""

from __future__ import annotations

from forensics.cli import data, findings
from forensics.cli.app import app, main

for _name, _command in (
    ("ingest", data.ingest),
    ("sources", data.sources),
    ("rejects", data.rejects),
    ("verify", data.verify),
    ("status", data.status),
    ("exposure", findings.exposure),
    ("sql", data.sql),
    ("notify", findings.notify),
    ("verify-notices", findings.verify_notices),
    ("report", findings.report),
    ("export", data.export_lake),
    ("sample", data.sample),
):
    app.command(_name)(_command)

__all__ = ["app", "main"]
