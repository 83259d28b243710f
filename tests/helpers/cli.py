"""Run the CLI in-process: exit code, stdout and stderr apart (Typer's CliRunner)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from typer.testing import CliRunner

from forensics.cli import app


def run_cli(
    *args: str | list[str], stdin: str | None = None, env: Mapping[str, str] | None = None
) -> Any:
    """`forensics ARGS...` (strings, or one list of them); exceptions are not swallowed."""
    argv: list[str] = []
    for a in args:
        argv.extend(a if isinstance(a, list) else [a])
    return CliRunner().invoke(app, argv, input=stdin, env=env, catch_exceptions=False)
