"""The report's content model: sections of sentences, tables, charts, code and marked blanks,
and the number and value wording every section uses. Both formats render these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from forensics.exposure import printable


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # right-aligned columns
    mono: set[int] = field(default_factory=set)  # hashes: monospace, small
    caption: str = ""


@dataclass
class Block:
    kind: str  # p, blank, table, chart, code
    text: str = ""
    table: Table | None = None
    svg: str = ""
    heading: str = ""  # a sub-heading shown before the block


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    def p(self, text: str) -> None:
        self.blocks.append(Block("p", text))

    def blank(self, text: str) -> None:
        self.blocks.append(Block("blank", text))

    def add_table(self, table: Table, heading: str = "") -> None:
        self.blocks.append(Block("table", table=table, heading=heading))

    def chart(self, svg: str, text: str) -> None:
        self.blocks.append(Block("chart", text=text, svg=svg))

    def code(self, text: str, heading: str = "") -> None:
        self.blocks.append(Block("code", text=text, heading=heading))


def n(value: int) -> str:
    return f"{value:,}"


def people(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def value(v: str | None) -> str:
    return "(missing)" if v is None else printable(v)
