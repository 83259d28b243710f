"""`ingest --map FILE.toml`: source fields → canonical fields (SPEC §2.5).

`load_mapping` reads and checks the TOML (one table per kind; each value a field name, a
dotted path, or `{ sql = "EXPR" }`) and raises UsageError naming the bad key. Expressions are
parsed by DuckDB and accepted only when they can do nothing but read the record
(`mapping_check`). `FileMapper` (`mapping_file`) applies a mapping to one file: it types JSON
records for expressions, evaluates expressions into a temp table, and fails the file
(InputError naming the map key) when a mapped field is in no record or an expression cannot
be bound or evaluated.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from forensics.errors import UsageError
from forensics.mapping_check import RESERVED, ExpressionChecker
from forensics.mapping_file import FileMapper
from forensics.normalize import CANONICAL

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["RESERVED", "FieldMap", "FileMapper", "Mapping", "load_mapping"]


@dataclass(frozen=True)
class FieldMap:
    """Where one canonical field comes from: a key path, or a checked DuckDB expression."""

    key: str  # "events.device_id": the map key, for messages
    path: tuple[str, ...] | None = None
    sql: str | None = None  # re-printed by DuckDB from the checked parse tree
    refs: tuple[tuple[str, ...], ...] = ()  # source field paths the expression reads
    # `optional = true`: the fields the expression reads may be absent from a file (they
    # are then NULL), e.g. CloudTrail's errorCode, present only in a file with a failure.
    optional: bool = False

    @property
    def reads(self) -> tuple[tuple[str, ...], ...]:
        """Every source field path this map key names."""
        return (self.path,) if self.path is not None else self.refs


@dataclass(frozen=True)
class Mapping:
    """A loaded, checked map file."""

    path: Path
    sha256: str
    tables: dict[str, dict[str, FieldMap]] = field(default_factory=dict)
    actions: dict[str, str] = field(default_factory=dict)
    # kind -> the member of a wrapped JSON document that holds its records (SPEC §2.5)
    records: dict[str, str] = field(default_factory=dict)

    def field(self, kind: str, name: str) -> FieldMap | None:
        """The map of canonical field `name` of `kind`; None when unmapped."""
        return self.tables.get(kind, {}).get(name)

    def source_path(self, kind: str, name: str) -> list[str] | None:
        """Key path of the source field for `name`: [name] when unmapped, None for `sql`."""
        fm = self.field(kind, name)
        if fm is None:
            return [name]
        return list(fm.path) if fm.path is not None else None

    def expressions(self, kind: str) -> dict[str, FieldMap]:
        return {n: fm for n, fm in self.tables.get(kind, {}).items() if fm.sql is not None}

    def file_mapper(self, kind: str) -> FileMapper | None:
        """A FileMapper for one file of `kind`; None when the map has no [kind] table."""
        return FileMapper(self, kind) if self.tables.get(kind) else None

    def canonical_names(
        self, source_fields: Iterable[str], kind: str, *, constants: bool = True
    ) -> set[str]:
        """Canonical fields of `kind` that records with these top-level fields would have.

        An expression counts when every field it reads is there; one that reads no field
        (a constant) counts only with `constants`.
        """
        fields = set(source_fields)
        names: set[str] = set()
        for name in CANONICAL[kind]:
            fm = self.field(kind, name)
            if fm is None:
                have = name in fields
            elif not fm.reads:
                have = constants
            else:
                have = all(r[0] in fields for r in fm.reads)
            if have:
                names.add(name)
        return names


# --------------------------------------------------------------------------- loading


def load_mapping(path: Path) -> Mapping:
    """Read and check a map file. Raises UsageError naming the file and the bad key."""
    what = f"--map {path}"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(what, f"cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(what, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(what, f"not valid TOML ({e})") from None
    tables: dict[str, dict[str, FieldMap]] = {}
    actions: dict[str, str] = {}
    records: dict[str, str] = {}
    checker: ExpressionChecker | None = None
    for kind, table in doc.items():
        if kind not in CANONICAL:
            raise UsageError(
                what, f"unknown table [{kind}]; the tables are [events], [grants] and [accounts]"
            )
        if not isinstance(table, dict):
            raise UsageError(what, f"{kind} must be a table ([{kind}])")
        fields: dict[str, FieldMap] = {}
        for name, value in table.items():
            key = f"{kind}.{name}"
            if name == "actions" and kind == "events":
                actions = _actions(what, value)
                continue
            if name == "records":
                if not isinstance(value, str) or not value:
                    raise UsageError(
                        what,
                        f"{key}: must be the name of the member that "
                        'holds the records (e.g. records = "Records")',
                    )
                records[kind] = value
                continue
            if name not in CANONICAL[kind]:
                raise UsageError(
                    what,
                    f"{key}: not a canonical field of {kind} (they are "
                    f"{', '.join(CANONICAL[kind])})",
                )
            if isinstance(value, str):
                fields[name] = FieldMap(key, path=_split_path(what, key, value))
            elif (
                isinstance(value, dict)
                and "sql" in value
                and set(value) <= {"sql", "optional"}
                and isinstance(value["sql"], str)
                and isinstance(value.get("optional", False), bool)
            ):
                if checker is None:
                    checker = ExpressionChecker()
                sql, refs = checker.check(what, key, value["sql"])
                fields[name] = FieldMap(
                    key, sql=sql, refs=refs, optional=value.get("optional", False)
                )
            else:
                raise UsageError(
                    what,
                    f"{key}: must be a field name, a dotted path, or "
                    '{ sql = "EXPRESSION" } (with `optional = true` when its fields may be absent)',
                )
        tables[kind] = fields
    if checker is not None:
        checker.close()
    return Mapping(Path(path), hashlib.sha256(data).hexdigest(), tables, actions, records)


def _split_path(what: str, key: str, value: str) -> tuple[str, ...]:
    parts = tuple(value.split("."))
    if not value or any(p == "" for p in parts):
        raise UsageError(what, f"{key}: {value!r} is not a field name or dotted path")
    if parts[0].startswith(RESERVED):
        raise UsageError(what, f"{key}: field names starting with {RESERVED} are reserved")
    return parts


def _actions(what: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UsageError(what, "events.actions must be a table ([events.actions])")
    out: dict[str, str] = {}
    for source, canonical in value.items():
        if not isinstance(canonical, str) or not canonical.strip():
            raise UsageError(what, f"events.actions.{source}: must be a non-empty action name")
        out[source] = canonical
    return out
