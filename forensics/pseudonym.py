"""Pseudonymised notification lists (SPEC §6): every user, device and event id replaced by the
first 32 lowercase hex digits of HMAC-SHA256(key, id as UTF-8), contact columns left empty.

The key comes from a key file or $FORENSICS_PSEUDONYM_KEY. It stays in memory: it is never
written, logged or put in an error message. Only a key check (a pseudonym of a fixed label)
is recorded, so that a later wave can tell whether it was given the same key.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from forensics.errors import UsageError

KEY_ENV = "FORENSICS_PSEUDONYM_KEY"
DIGITS = 32
METHOD = "HMAC-SHA256(key, UTF-8 id), first 32 lowercase hex digits"
# The pseudonym of this label is the manifest's key check. Revealing it tells no more about
# the key than any pseudonym in the lists does.
_KEY_CHECK_LABEL = "forensics pseudonym key check"
# Columns holding ids, per list; contact columns are emptied.
ID_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "recipients.csv": ("user_id",),
    "owners.csv": ("user_id",),
    "exposures.csv": ("recipient_id", "device_id", "event_id", "owner_ids"),
}
CONTACT_COLUMNS = ("email", "name", "locale")


def load_key(key_file: Path | None, environ: Mapping[str, str]) -> bytes:
    """The key: `key_file`'s bytes (one final line break dropped), else $FORENSICS_PSEUDONYM_KEY.

    Raises UsageError when the key is missing, empty or blank, or the file cannot be read;
    the message never holds the key.
    """
    if key_file is not None:
        what = f"--key-file {key_file}"
        try:
            key = key_file.read_bytes()
        except OSError as e:
            raise UsageError(what, f"cannot be read ({e.strerror or type(e).__name__})") from None
        # `echo KEY > file` ends the file with a line break that is not part of the key.
        if key.endswith(b"\r\n"):
            key = key[:-2]
        elif key.endswith(b"\n"):
            key = key[:-1]
    else:
        what = f"${KEY_ENV}"
        value = environ.get(KEY_ENV)
        if value is None:
            raise UsageError(
                "pseudonym key",
                "missing",
                f"Set ${KEY_ENV} or pass --key-file FILE",
            )
        key = value.encode("utf-8", "surrogateescape")
    if not key.strip():
        raise UsageError(what, "the pseudonym key is empty")
    return key


def pseudonym(key: bytes, value: str) -> str:
    """HMAC-SHA256(key, value as UTF-8), first 32 lowercase hex digits."""
    return hmac.digest(key, value.encode("utf-8", "surrogateescape"), "sha256").hex()[:DIGITS]


def key_check(key: bytes) -> str:
    """A value that identifies the key without revealing it: the pseudonym of a fixed label."""
    return pseudonym(key, _KEY_CHECK_LABEL)


class Pseudonymizer:
    """Pseudonyms for one key, each id hashed once per run."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[str, str] = {}

    def __repr__(self) -> str:  # never show the key, even under --debug
        return "Pseudonymizer(<key withheld>)"

    @property
    def key_check(self) -> str:
        return key_check(self._key)

    def __call__(self, value: str) -> str:
        p = self._cache.get(value)
        if p is None:
            p = self._cache[value] = pseudonym(self._key, value)
        return p

    def ids(self, column: pa.Array | pa.ChunkedArray) -> pa.Array:
        """A text column with every non-null id replaced by its pseudonym."""
        column = _combined(column)
        uniques = pc.unique(column).drop_null()
        mapped = pa.array([self(v) for v in uniques.to_pylist()], pa.large_string())
        return pc.take(mapped, pc.index_in(column, value_set=uniques))

    def id_lists(self, column: pa.Array | pa.ChunkedArray) -> pa.Array:
        """A column of id lists (owner_ids), each id replaced by its pseudonym and each list
        re-sorted: sorting by pseudonym keeps the order of the raw ids from showing. Whole
        ids are replaced, a `;` inside one included (the CSV joins the list afterwards)."""
        column = _combined(column).cast(pa.large_list(pa.large_string()))
        flat = pc.list_flatten(column)
        parents = pc.list_parent_indices(column)
        uniques = pc.unique(flat)
        mapped = pa.array([self(v) for v in uniques.to_pylist()], pa.large_string())
        values = pc.take(mapped, pc.index_in(flat, value_set=uniques))
        order = pc.sort_indices(
            pa.table({"parent": parents, "value": values}),
            sort_keys=[("parent", "ascending"), ("value", "ascending")],
        )
        return pa.LargeListArray.from_arrays(
            _offsets(column), pc.take(values, order), mask=pc.is_null(column)
        )

    def table(self, list_name: str, table: pa.Table) -> pa.Table:
        """A list's rows with ids pseudonymised and contact columns empty (null)."""
        for i, name in enumerate(table.column_names):
            col = table.column(i)
            if name in CONTACT_COLUMNS:
                new = pa.nulls(len(table), col.type)
            elif name == "owner_ids":
                new = self.id_lists(col).cast(col.type)
            elif name in ID_COLUMNS.get(list_name, ()):
                new = self.ids(col).cast(col.type)
            else:
                continue
            table = table.set_column(i, name, new)
        return table


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return column


def _offsets(parts: pa.Array) -> pa.Array:
    """The offsets of a list array, as int64, starting at 0."""
    lengths = pc.fill_null(pc.list_value_length(parts), 0).cast(pa.int64())
    ends = pc.cumulative_sum(lengths) if len(lengths) else lengths
    return pa.concat_arrays([pa.array([0], pa.int64()), ends])
