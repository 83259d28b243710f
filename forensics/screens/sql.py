"""The sql command's output: a fitted table on a terminal, or CSV or JSON lines on stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from forensics.terminal import (
    Col,
    Fitted,
    emit,
    fit_table,
    printable,
)


def render_sql_table(result: Any, console: Console, max_rows: int) -> tuple[int, int, Fitted]:
    """The sql result as a table: values never split; columns hidden or shortened to fit.

    Returns (shown, total, fitted) so the caller can say what was left out.
    """
    from forensics.sandbox import to_text

    numeric = (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
    )
    cols = [
        Col(
            printable(name),
            "number" if type_.upper().startswith(numeric) else "text",
            keep=(i == 0),
        )
        for i, (name, type_) in enumerate(zip(result.columns, result.types, strict=True))
    ]
    rows: list[list[Any]] = []
    total = 0
    for row in result.rows:
        total += 1
        if len(rows) < max_rows:
            rows.append(
                [Text("NULL", style="dim") if v is None else printable(to_text(v)) for v in row]
            )
    fitted = fit_table(console, cols, rows)
    emit(console, fitted.table)
    return len(rows), total, fitted


def write_sql_csv(result: Any) -> None:
    """The rows on stdout as RFC 4180 CSV (CRLF), header first."""
    import csv

    from forensics.sandbox import to_text

    writer = csv.writer(sys.stdout, lineterminator="\r\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([to_text(v) for v in row])
    sys.stdout.flush()


def write_sql_json(result: Any) -> None:
    """The rows on stdout as a JSON array of objects, one object a line."""
    from forensics.sandbox import iter_json_rows

    sys.stdout.write("[")
    for i, obj in enumerate(iter_json_rows(result)):
        sys.stdout.write(("," if i else "") + "\n  " + json.dumps(obj, ensure_ascii=False))
    sys.stdout.write("\n]\n" if result.columns else "]\n")
    sys.stdout.flush()
