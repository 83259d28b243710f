"""What earlier waves listed, and this wave's rows against it (SPEC §6): people who are new
or whose severity rose (with a `change` column), and deliveries no earlier wave listed.

Earlier lists are read as written (ids pseudonymised or not, cells formula-prefixed or not),
so a current row is rendered the same way before it is compared.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from forensics.csv_text import large_text, neutralize_column, render_column
from forensics.errors import InputError, engine_message, hide_quoted
from forensics.export import EXPOSURES, OWNERS, RECIPIENTS, ListSpec
from forensics.pseudonym import Pseudonymizer

if TYPE_CHECKING:
    from forensics.wave_chain import Wave

# Severity only rises: a thumbnail seen < a thumbnail tapped < a video played.
SEVERITY_RANK: Mapping[str, int] = {"thumbnail": 1, "tapped": 2, "video": 3}
CHANGE_COLUMN = "change"
NEW, ESCALATED = "new", "escalated"
PEOPLE = (RECIPIENTS, OWNERS)
# Joins the parts of a delivery's identity; "\\" and this separator are escaped inside ids.
_SEP = "\x1f"


def delivery_keys(
    request_id: pa.Array,
    delivered_at: pa.Array,
    recipient: pa.Array,
    device: pa.Array,
    event: pa.Array,
) -> pa.Array:
    """Each delivery's identity across waves, as written in a list (large_string columns; a
    missing request_id null or empty): its request_id (SPEC §2.4's de-duplication key), else
    its time, recipient, device and event. Distinct identities give distinct keys."""

    def escaped(ids: pa.Array) -> pa.Array:
        ids = pc.replace_substring(ids, pattern="\\", replacement="\\\\")
        return pc.replace_substring(ids, pattern=_SEP, replacement="\\x1f")

    request_id = pc.fill_null(request_id, large_text(""))
    by_record = pc.binary_join_element_wise(
        large_text("t"),
        delivered_at,
        escaped(recipient),
        escaped(device),
        escaped(event),
        large_text(_SEP),
    )
    by_request = pc.binary_join_element_wise(large_text("r"), request_id, large_text(_SEP))
    return pc.if_else(pc.equal(request_id, large_text("")), by_record, by_request)


@dataclass
class ListedView:
    """Everything earlier waves listed, as written in their files: ids pseudonymised or not,
    text cells formula-prefixed or not. A current row is rendered the same way to compare."""

    pseudonymizer: Pseudonymizer | None
    sanitized: bool
    # per people list: user_id (as written) → the highest severity rank any wave listed
    people: dict[str, list[pa.Table]] = field(
        default_factory=lambda: {s.file_name: [] for s in PEOPLE}
    )
    severity: dict[str, pa.Table] = field(default_factory=dict)
    deliveries: set[str] = field(default_factory=set)

    def text(self, column: pa.Array) -> pa.Array:
        column = column.cast(pa.large_string())
        return neutralize_column(column) if self.sanitized else column

    def ids(self, column: pa.Array) -> pa.Array:
        if self.pseudonymizer is not None:
            column = self.pseudonymizer.ids(column)
        return self.text(column)

    def settle(self) -> None:
        """Fold every wave's people into one table per list: user_id, highest rank."""
        for name, tables in self.people.items():
            table = (
                pa.concat_tables(tables)
                if tables
                else pa.table(
                    {"user_id": pa.array([], pa.large_string()), "rank": pa.array([], pa.int64())}
                )
            )
            self.severity[name] = table.group_by("user_id").aggregate([("rank", "max")])


_RANKS = pa.array(list(SEVERITY_RANK), pa.large_string())
_NO_CHANGE = pa.scalar(None, pa.large_string())


def severity_ranks(severity: pa.Array) -> pa.Array:
    """thumbnail → 1, tapped → 2, video → 3; anything else null."""
    index = pc.index_in(severity.cast(pa.large_string()), value_set=_RANKS)
    return pc.add(index.cast(pa.int64()), 1)


def _read_list(path: Path, spec: ListSpec, columns: Sequence[str]) -> pa.Table:
    """`columns` of a list written by notify, as text (an empty cell is ""), BOM or not."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}", f"cannot be read as a notification list ({e})") from None
    if header[: len(spec.columns)] != list(spec.columns):
        raise InputError(f"{path}", "does not have the columns of a notification list")
    try:
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.large_string() for c in columns},
                include_columns=list(columns),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}", f"cannot be read as a notification list ({_why(e)})") from None


def _why(e: BaseException) -> str:
    """Arrow's reason without the row it quotes (`Expected 11 columns, got 10: <row>`) or
    the values (`invalid value '...'`): a list's rows hold personal data."""
    line = engine_message(e)
    line = re.sub(r"(got \d+):.*", r"\1", line)
    return hide_quoted(line)


def check_lists(folder: Path) -> None:
    """Read a wave's lists as the next wave's notify reads them (InputError if one cannot
    be): a list re-sealed in its manifest after a change is still caught."""
    _load(folder, ListedView(None, sanitized=False))


def _load(folder: Path, view: ListedView) -> None:
    for spec in PEOPLE:
        path = folder / spec.file_name
        table = _read_list(path, spec, ("user_id", "severity"))
        ranks = severity_ranks(table.column("severity"))
        if ranks.null_count:
            raise InputError(f"{path}", "holds a severity that is not thumbnail/tapped/video")
        view.people[spec.file_name].append(
            pa.table({"user_id": table.column("user_id"), "rank": ranks})
        )
    key_columns = ("request_id", "delivered_at", "recipient_id", "device_id", "event_id")
    table = _read_list(folder / EXPOSURES.file_name, EXPOSURES, key_columns)
    keys = delivery_keys(*(table.column(c).combine_chunks() for c in key_columns))
    view.deliveries.update(keys.to_pylist())


class Delta:
    """Turns each list's computed rows into the rows this wave writes."""

    def __init__(self, views: Sequence[ListedView], pseudonymizer: Pseudonymizer | None) -> None:
        self.views = views
        self.pseudonymizer = pseudonymizer
        self.compare = bool(views)
        self.changes: dict[str, dict[str, int]] = {}

    def __call__(
        self, spec: ListSpec, reader: pa.RecordBatchReader
    ) -> tuple[Sequence[str], pa.RecordBatchReader]:
        if spec is EXPOSURES:
            return spec.columns, self._exposures(reader)
        if not self.compare and self.pseudonymizer is None:
            return spec.columns, reader
        table = reader.read_all()
        columns: list[str] = list(spec.columns)
        if self.compare:
            table = self._people(spec, table)
            columns.append(CHANGE_COLUMN)
        if self.pseudonymizer is not None:
            # Sorted by the pseudonym: the order of the raw ids must not show through.
            table = self.pseudonymizer.table(spec.file_name, table).sort_by("user_id")
        return columns, pa.RecordBatchReader.from_batches(table.schema, table.to_batches())

    def _people(self, spec: ListSpec, table: pa.Table) -> pa.Table:
        counts = self.changes.setdefault(spec.file_name, {NEW: 0, ESCALATED: 0})
        users = table.column("user_id").combine_chunks()
        now = severity_ranks(table.column("severity").combine_chunks())
        before = pa.array([0] * len(table), pa.int64())
        for v in self.views:
            known = v.severity[spec.file_name]
            index = pc.index_in(v.ids(users), value_set=known.column("user_id"))
            rank = pc.fill_null(pc.take(known.column("rank_max"), index), 0)
            before = pc.max_element_wise(before, rank)
        is_new = pc.equal(before, 0)
        change = pc.if_else(
            is_new,
            large_text(NEW),
            pc.if_else(pc.greater(now, before), large_text(ESCALATED), _NO_CHANGE),
        )
        keep = pc.is_valid(change)
        counts[NEW] += pc.sum(pc.and_(keep, is_new)).as_py() or 0
        counts[ESCALATED] += pc.sum(pc.and_(keep, pc.invert(is_new))).as_py() or 0
        return table.filter(keep).append_column(
            CHANGE_COLUMN, pc.filter(change, keep).cast(pa.string())
        )

    def _exposures(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        if not self.compare and self.pseudonymizer is None:
            return reader
        counts = self.changes.setdefault(EXPOSURES.file_name, {NEW: 0})

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                table = pa.Table.from_batches([batch])
                if self.compare:
                    table = table.filter(self._unlisted(table))
                    counts[NEW] += table.num_rows
                if self.pseudonymizer is not None:
                    table = self.pseudonymizer.table(EXPOSURES.file_name, table)
                yield from table.cast(reader.schema).to_batches()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _unlisted(self, table: pa.Table) -> pa.Array:
        """True for each delivery that no earlier wave listed."""
        request_id = table.column("request_id").combine_chunks()
        at = table.column("delivered_at").combine_chunks()
        # Only a delivery without a request_id is identified by its time: render just those
        # (rendering every time costs more than the rest of the comparison).
        when = render_column(
            pc.if_else(pc.is_null(request_id), at, pa.scalar(None, at.type)), sanitize=False
        )
        listed = [False] * table.num_rows
        for v in self.views:
            keys = delivery_keys(
                v.text(request_id),
                when,
                *(
                    v.ids(table.column(c).combine_chunks())
                    for c in ("recipient_id", "device_id", "event_id")
                ),
            )
            known = v.deliveries
            listed = [was or k in known for was, k in zip(listed, keys.to_pylist(), strict=True)]
        return pa.array([not was for was in listed], pa.bool_())


def read_delta(
    chain: list[Wave], pz: Pseudonymizer | None, written_with: Pseudonymizer | None
) -> Delta:
    """The earlier lists, one view per (pseudonymised, sanitised) kind, as this wave's delta.

    `pz` reads pseudonymised earlier waves; `written_with` pseudonymises this wave's rows.
    """
    views: dict[tuple[bool, bool], ListedView] = {}
    for w in chain:
        view = views.setdefault(
            (w.pseudonymized, w.sanitized), ListedView(pz if w.pseudonymized else None, w.sanitized)
        )
        _load(w.folder, view)
    for view in views.values():
        view.settle()
    # Reading the earlier lists leaves buffers the allocator keeps; hand them back.
    pa.default_memory_pool().release_unused()
    return Delta(list(views.values()), written_with)
