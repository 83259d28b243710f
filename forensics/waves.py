"""Notification waves (SPEC §6): each `notify` run is a wave; `--previous DIR` lists only the
people who are new or whose severity rose since every earlier wave of DIR's chain, and only
the deliveries no earlier wave listed. A wave's manifest records its number and the SHA-256
of the previous wave's manifest, so `verify_notices` can re-check a chain end to end.

Works on the lists' rows after they are computed (Arrow), whatever engine computed them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from forensics.errors import InputError, UsageError
from forensics.export import (
    EXPOSURES,
    FORMULA_PREFIX,
    FORMULA_TRIGGERS,
    LISTS,
    MANIFEST,
    OWNERS,
    RECIPIENTS,
    TOOL_NAME,
    ListSpec,
    NotifyResult,
    render_column,
    write_notifications,
)
from forensics.pseudonym import (
    CONTACT_COLUMNS,
    DIGITS,
    ID_COLUMNS,
    KEY_ENV,
    METHOD,
    Pseudonymizer,
    load_key,
)
from forensics.window import Window

# Severity only rises: a thumbnail seen < a thumbnail tapped < a video played.
SEVERITY_RANK: Mapping[str, int] = {"thumbnail": 1, "tapped": 2, "video": 3}
CHANGE_COLUMN = "change"
NEW, ESCALATED = "new", "escalated"
PEOPLE = (RECIPIENTS, OWNERS)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HASH_CHUNK = 1 << 20


# --- a wave on disk ------------------------------------------------------------------------


@dataclass(frozen=True)
class Wave:
    """An earlier notify run whose files matched its manifest when read."""

    folder: Path
    number: int
    manifest_sha256: str
    manifest: Mapping[str, Any]
    previous_sha256: str | None
    previous_folder: str | None  # as recorded: relative to `folder`

    @property
    def pseudonymized(self) -> bool:
        return bool(self.manifest.get("pseudonymization", {}).get("pseudonymized", False))

    @property
    def key_check(self) -> str | None:
        value = self.manifest.get("pseudonymization", {}).get("key_check")
        return value if isinstance(value, str) else None

    @property
    def sanitized(self) -> bool:
        return bool(self.manifest.get("sanitization", {}).get("formula_prefix", True))

    @property
    def window(self) -> Any:
        return self.manifest.get("window")


def _sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _bad(folder: Path, why: str) -> InputError:
    return InputError(f"notification folder {folder}", why)


def read_wave(folder: Path) -> Wave:
    """Read a notify folder and check every list against its manifest.

    Raises InputError naming the file when the manifest is missing or not one `notify`
    writes, or a list it names is missing or differs from its recorded SHA-256 or size.
    """
    path = folder / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _bad(folder, f"{MANIFEST} is missing (not a notify folder, or incomplete)") from None
    except OSError as e:
        raise InputError(f"{path}", f"cannot be read ({e.strerror or type(e).__name__})") from None
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{path}", "is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("tool", {}).get("name") != TOOL_NAME:
        raise InputError(f"{path}", f"is not a manifest written by {TOOL_NAME} notify")
    outputs = manifest.get("outputs")
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise InputError(f"{path}", "has no list of outputs")
    listed = {o.get("name"): o for o in outputs}
    for spec in LISTS:
        entry = listed.get(spec.file_name)
        if entry is None or not _SHA256.match(str(entry.get("sha256", ""))):
            raise InputError(f"{path}", f"does not record {spec.file_name} and its SHA-256")
        target = folder / spec.file_name
        try:
            if not target.is_file() or target.is_symlink():
                raise InputError(f"{target}", "is missing (the manifest lists it)")
            digest, size = _sha256_file(target)
        except OSError as e:
            raise InputError(
                f"{target}", f"cannot be read ({e.strerror or type(e).__name__})"
            ) from None
        if digest != entry["sha256"] or size != entry.get("size_bytes", size):
            raise InputError(
                f"{target}",
                "changed since the manifest was written (SHA-256 differs from manifest.json)",
            )
    for key in ("sanitization", "pseudonymization"):
        if not isinstance(manifest.get(key, {}), dict):
            raise InputError(f"{path}", f"has a {key} that is not an object")
    pseudonyms = manifest.get("pseudonymization", {})
    if pseudonyms.get("pseudonymized") and not re.match(
        r"^[0-9a-f]{32}$", str(pseudonyms.get("key_check", ""))
    ):
        raise InputError(f"{path}", "says its lists are pseudonymised but has no key check")
    number, prev_sha, prev_folder = _wave_fields(path, manifest.get("wave"))
    return Wave(
        folder=folder,
        number=number,
        manifest_sha256=hashlib.sha256(data).hexdigest(),
        manifest=manifest,
        previous_sha256=prev_sha,
        previous_folder=prev_folder,
    )


def _wave_fields(path: Path, wave: Any) -> tuple[int, str | None, str | None]:
    """(number, previous manifest SHA-256, previous folder) of a manifest's `wave`.

    A manifest without `wave` (written before waves existed) is a first wave.
    """
    if wave is None:
        return 1, None, None
    number = wave.get("number") if isinstance(wave, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise InputError(f"{path}", "has a wave without a valid number")
    previous = wave.get("previous")
    if previous is None:
        if number != 1:
            raise InputError(f"{path}", f"is wave {number} but names no previous wave")
        return 1, None, None
    sha = previous.get("manifest_sha256") if isinstance(previous, dict) else None
    folder = previous.get("folder") if isinstance(previous, dict) else None
    if not isinstance(sha, str) or not _SHA256.match(sha) or not isinstance(folder, str):
        raise InputError(f"{path}", "names its previous wave without a SHA-256 and folder")
    if number == 1:
        raise InputError(f"{path}", "is wave 1 but names a previous wave")
    return number, sha, folder


def walk_chain(folder: Path) -> Iterator[Wave]:
    """The waves of `folder`'s chain, newest first, each checked against its manifest and
    against the SHA-256 its successor recorded. Raises InputError at the first mismatch."""
    wave = read_wave(folder)
    yield wave
    while wave.previous_sha256 is not None and wave.previous_folder is not None:
        where = Path(os.path.normpath(wave.folder / wave.previous_folder))
        if not (where / MANIFEST).exists():
            raise InputError(
                f"wave {wave.number} in {wave.folder}",
                f"its previous wave is not at {where}, where it was when wave {wave.number} "
                "was written",
                "Keep the waves' folders side by side as notify wrote them",
            )
        previous = read_wave(where)
        if previous.manifest_sha256 != wave.previous_sha256:
            raise InputError(
                f"{where / MANIFEST}",
                f"is not the manifest wave {wave.number} in {wave.folder} was built on "
                "(SHA-256 differs): the chain is broken",
            )
        if previous.number != wave.number - 1:
            raise InputError(
                f"{where / MANIFEST}",
                f"is wave {previous.number}, but wave {wave.number} names it as its previous",
            )
        yield previous
        wave = previous


def read_chain(folder: Path) -> list[Wave]:
    """Every wave of `folder`'s chain, oldest first, all verified (see walk_chain)."""
    return list(walk_chain(folder))[::-1]


# --- verify-notices ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainCheck:
    """What `verify_notices` found for one folder: the waves verified, newest first, and the
    problem that stopped the walk (None when the chain is whole, back to wave 1)."""

    folder: Path
    waves: tuple[Wave, ...]
    problem: str | None


def verify_notices(folders: Sequence[Path]) -> list[ChainCheck]:
    """Walk each folder's chain back to wave 1, checking every file hash and every link."""
    checks = []
    for folder in folders:
        waves: list[Wave] = []
        problem = None
        try:
            for wave in walk_chain(folder):
                waves.append(wave)
        except InputError as e:
            problem = e.one_line()
        checks.append(ChainCheck(folder, tuple(waves), problem))
    return checks


# --- what earlier waves listed -------------------------------------------------------------


# Formula prefixing as export.neutralize_formula does it, over a whole column (RE2 pattern;
# a test holds the two equal).
_FORMULA_RE = "^([" + "".join("\\" + c if c in "-" else c for c in FORMULA_TRIGGERS) + "])"
# Joins the parts of a delivery's identity; "\\" and this separator are escaped inside ids.
_SEP = "\x1f"


def _large(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def neutralize_column(column: pa.Array) -> pa.Array:
    """export.neutralize_formula applied to every cell of a text column."""
    return pc.replace_substring_regex(
        column, pattern=_FORMULA_RE, replacement=FORMULA_PREFIX + r"\1"
    )


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

    request_id = pc.fill_null(request_id, _large(""))
    by_record = pc.binary_join_element_wise(
        _large("t"),
        delivered_at,
        escaped(recipient),
        escaped(device),
        escaped(event),
        _large(_SEP),
    )
    by_request = pc.binary_join_element_wise(_large("r"), request_id, _large(_SEP))
    return pc.if_else(pc.equal(request_id, _large("")), by_record, by_request)


@dataclass
class _View:
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
        raise InputError(f"{path}", f"cannot be read as a notification list ({e})") from None


def _load(wave: Wave, view: _View) -> None:
    for spec in PEOPLE:
        path = wave.folder / spec.file_name
        table = _read_list(path, spec, ("user_id", "severity"))
        ranks = severity_ranks(table.column("severity"))
        if ranks.null_count:
            raise InputError(f"{path}", "holds a severity that is not thumbnail/tapped/video")
        view.people[spec.file_name].append(
            pa.table({"user_id": table.column("user_id"), "rank": ranks})
        )
    key_columns = ("request_id", "delivered_at", "recipient_id", "device_id", "event_id")
    table = _read_list(wave.folder / EXPOSURES.file_name, EXPOSURES, key_columns)
    keys = delivery_keys(*(table.column(c).combine_chunks() for c in key_columns))
    view.deliveries.update(keys.to_pylist())


# --- a new wave ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WaveResult:
    """What `write_wave` wrote: the files, the wave's number and link, and counts only."""

    notify: NotifyResult
    number: int
    previous: Wave | None
    pseudonymized: bool
    changes: Mapping[str, Mapping[str, int]]
    warnings: tuple[str, ...] = ()

    @property
    def nothing_new(self) -> bool:
        return self.previous is not None and not any(self.notify.rows.values())


class _Delta:
    """Turns each list's computed rows into the rows this wave writes."""

    def __init__(self, views: Sequence[_View], pseudonymizer: Pseudonymizer | None) -> None:
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
            _large(NEW),
            pc.if_else(pc.greater(now, before), _large(ESCALATED), _NO_CHANGE),
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


def _pseudonym_manifest(pz: Pseudonymizer | None) -> dict[str, Any]:
    if pz is None:
        return {"pseudonymized": False}
    return {
        "pseudonymized": True,
        "method": METHOD,
        "digits": DIGITS,
        "columns": {name: list(cols) for name, cols in ID_COLUMNS.items()},
        "contact_columns_emptied": list(CONTACT_COLUMNS),
        "key_check": pz.key_check,
    }


def write_wave(
    con: duckdb.DuckDBPyConnection,
    window: Window,
    out_dir: Path,
    *,
    previous: Path | None = None,
    pseudonymize: bool = False,
    key_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    force: bool = False,
    sanitize: bool = True,
    excel: bool = False,
) -> WaveResult:
    """Write one wave of notification lists: the whole lists (wave 1), or with `previous`
    only what its chain did not list, with a `change` column; pseudonymised on request.

    Everything is checked before the output folder is touched: the key (UsageError when
    missing or not the key of a pseudonymised earlier wave) and every file and link of the
    previous chain (InputError naming the file). Raises as write_notifications does.
    """
    env = os.environ if environ is None else environ
    key = load_key(key_file, env) if pseudonymize else None
    chain = read_chain(previous) if previous is not None else []
    pz = _chain_pseudonymizer(key, key_file, env, chain)
    resolved_out = _check_out_dir(out_dir, chain)
    delta = _read_delta(chain, pz, pz if pseudonymize else None)
    last = chain[-1] if chain else None
    number = last.number + 1 if last else 1

    def manifest_extra() -> Mapping[str, Any]:
        wave: dict[str, Any] = {"number": number, "previous": None}
        if last is not None:
            wave["previous"] = {
                "number": last.number,
                "manifest_sha256": last.manifest_sha256,
                "folder": os.path.relpath(last.folder.resolve(), resolved_out),
                "window": last.window,
            }
            wave["changes"] = delta.changes
        return {"wave": wave, "pseudonymization": _pseudonym_manifest(delta.pseudonymizer)}

    result = write_notifications(
        con,
        window,
        out_dir,
        force=force,
        sanitize=sanitize,
        excel=excel,
        list_rows=delta,
        manifest_extra=manifest_extra,
    )
    return WaveResult(
        notify=result,
        number=number,
        previous=last,
        pseudonymized=pz is not None and pseudonymize,
        changes=delta.changes,
        warnings=tuple(_wave_warnings(window, last, pseudonymize, key_file, env)),
    )


def _chain_pseudonymizer(
    key: bytes | None, key_file: Path | None, env: Mapping[str, str], chain: list[Wave]
) -> Pseudonymizer | None:
    """The pseudonymizer for this wave and the chain: its key must be every earlier wave's.

    A pseudonymised earlier wave needs the key even when this wave is not pseudonymised
    (its lists can only be compared through it). Raises UsageError.
    """
    pseudonymized_waves = [w for w in chain if w.pseudonymized]
    if key is None and pseudonymized_waves:
        if key_file is None and not env.get(KEY_ENV):
            first = pseudonymized_waves[0]
            raise UsageError(
                "pseudonym key",
                f"missing: wave {first.number} ({first.folder}) is pseudonymised, and "
                "comparing with it needs its key",
                f"Set ${KEY_ENV} or pass --key-file FILE",
            )
        key = load_key(key_file, env)
    if key is None and key_file is not None:
        raise UsageError(
            "--key-file", "is used only with --pseudonymize or a pseudonymised previous wave"
        )
    pz = Pseudonymizer(key) if key is not None else None
    for w in pseudonymized_waves:
        if pz is None or w.key_check != pz.key_check:
            raise UsageError(
                "pseudonym key",
                f"is not the key wave {w.number} ({w.folder}) was pseudonymised with",
                "Use the same key for every wave of a chain",
            )
    return pz


def _check_out_dir(out_dir: Path, chain: list[Wave]) -> Path:
    """The resolved output folder; UsageError when it is a wave of the previous chain."""
    resolved_out = out_dir.resolve()
    for w in chain:
        if w.folder.resolve() == resolved_out:
            raise UsageError(
                "--out", f"is wave {w.number} of the previous chain; choose a new folder"
            )
    return resolved_out


def _read_delta(
    chain: list[Wave], pz: Pseudonymizer | None, written_with: Pseudonymizer | None
) -> _Delta:
    """The earlier lists, one view per (pseudonymised, sanitised) kind, as this wave's delta.

    `pz` reads pseudonymised earlier waves; `written_with` pseudonymises this wave's rows.
    """
    views: dict[tuple[bool, bool], _View] = {}
    for w in chain:
        view = views.setdefault(
            (w.pseudonymized, w.sanitized), _View(pz if w.pseudonymized else None, w.sanitized)
        )
        _load(w, view)
    for view in views.values():
        view.settle()
    # Reading the earlier lists leaves buffers the allocator keeps; hand them back.
    pa.default_memory_pool().release_unused()
    return _Delta(list(views.values()), written_with)


def _wave_warnings(
    window: Window,
    last: Wave | None,
    pseudonymize: bool,
    key_file: Path | None,
    env: Mapping[str, str],
) -> list[str]:
    """A key set but unused; an earlier wave over another window."""
    warnings = []
    if not pseudonymize and (key_file is not None or env.get(KEY_ENV)):
        warnings.append(
            "a pseudonym key is set but --pseudonymize was not given: "
            "the lists hold raw ids and contact fields"
        )
    if last is not None and last.window != window.to_json():
        warnings.append(
            f"wave {last.number} used another window ({_window_text(last.window)}); "
            f"people and deliveries were compared across both"
        )
    return warnings


def _window_text(w: Any) -> str:
    if isinstance(w, dict):
        return f"{w.get('start')}/{w.get('end')}"
    return "unknown"
