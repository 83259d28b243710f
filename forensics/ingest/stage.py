"""SPEC §2.4 into the stage: one file's records checked and converted, batch by batch, into
the temp table `stage` of its connection (rec, err, raw, the canonical columns).

The JSON stage parses records given as text (JsonBatch): shape, duplicate keys, strict JSON,
then the canonical fields. The table stage converts typed columns (TableBatch). Both decide
the file's kind from its fields, apply a `--map`, and leave the conversions themselves to
forensics.normalize; nothing here is stored (forensics.ingest.store does that).
"""

from __future__ import annotations

import contextlib
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forensics.errors import WRAPPED_HINT, InputError
from forensics.ingest.json_sql import (
    ELEMENT_ERR,
    JSON_ERR,
    JSON_ERR_DUP,
    JSON_ERR_STANDARD,
    dup_by_count,
    json_err_shape,
    json_extra,
    parsed,
)
from forensics.ingest.options import IngestOptions, IngestTuning
from forensics.ingest.readers import JsonBatch, TableBatch
from forensics.ingest.readers.json_split import json_depth
from forensics.ingest.record_sql import column_names, is_alike, minus_zero_in, shown, struct_json
from forensics.mapping import FileMapper
from forensics.normalize import CANONICAL, REQUIRED, Normalized, Source, normalize
from forensics.sqltext import (
    LINE_END,
    ident,
    json_pointer,
    literal,
    pointer_key,
    struct_path,
    used_params,
)
from forensics.store import DKEY, memory_limit_bytes

RAW_LIMIT = 1 << 20  # a rejected record's raw text is kept up to this many characters
# DuckDB parses a JSON record in memory several times its size, in power-of-two blocks: a
# record beyond 1/RECORD_SHARE of the memory limit is rejected unparsed, not left to fail
# its whole file for memory (a 60 MB record did under a 1 GB limit).
RECORD_SHARE = 32


# An event's de-duplication key (store.DKEY) is computed as it is staged, where the work is
# spread over the cores, from its canonical values: (", dkey", ", <expression>") for the
# stage's column list and select list.
KEYED: dict[str, tuple[str, str]] = {
    "events": (", dkey", f", case when err is null then {DKEY} end"),
    "grants": ("", ""),
    "accounts": ("", ""),
}
STAGE_COLUMNS: dict[str, str] = {
    "events": "ts timestamptz, action varchar, user_id varchar, device_id varchar, "
    "event_id varchar, request_id varchar, status integer, extra json, dkey ubigint",
    "grants": "device_id varchar, user_id varchar, role varchar, valid_from timestamptz, "
    "valid_to timestamptz",
    "accounts": "user_id varchar, email varchar, name varchar, locale varchar, country varchar",
}


def add_depth_function(con: duckdb.DuckDBPyConnection) -> None:
    """Register fx_json_depth (json_split.json_depth) where the connection sees it."""
    if con.execute(
        "select 1 from duckdb_functions() where function_name = 'fx_json_depth'"
    ).fetchall():
        return
    con.create_function(
        "fx_json_depth",
        json_depth,
        [duckdb.sqltypes.VARCHAR],
        duckdb.sqltypes.INTEGER,
        side_effects=False,
    )


# A rejected line's raw text: without its line end, cut at RAW_LIMIT ($limit bound).
RAW_TEXT = f"left(rtrim(raw, {literal(LINE_END)}), {RAW_LIMIT})"


def in_pieces(batch: pa.Table, threads: int, tuning: IngestTuning) -> pa.Table:
    """The batch as record batches that DuckDB's threads can share.

    DuckDB scans an Arrow record batch of up to about 130,000 rows on one thread: a chunk
    of text handed over as one record batch leaves the other cores idle while it is parsed.
    The pieces are views of the batch (nothing is copied); their count is a multiple of the
    threads, so that none waits alone for the last piece.
    """
    n = batch.num_rows
    if n < tuning.min_split_rows or threads < 2:
        return batch
    pieces = max(threads, -(-n // tuning.piece_rows))
    pieces = -(-pieces // threads) * threads
    return pa.Table.from_batches(batch.to_batches(max_chunksize=-(-n // pieces)))


def insert_unordered(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> None:
    """Run a staging insert with preserve_insertion_order off.

    Every staged row carries its record number (rec), and nothing reads the stage in
    storage order, so DuckDB may stage on all its threads and keep their rows in the order
    they finish. Keeping scan order costs: an Arrow scan then runs on one thread (a quarter
    slower on 2 threads, measured on DuckDB 2.0.1).
    """
    con.execute("set preserve_insertion_order = false")
    try:
        con.execute(sql, params)
    finally:
        # After a failed statement its transaction refuses all but ROLLBACK: the error to
        # report is the statement's, and store.rollback() resets the setting then.
        with contextlib.suppress(duckdb.Error):
            con.execute("reset preserve_insertion_order")


class Stage:
    """One file's records, checked and converted, in its connection's temp table `stage`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, options: IngestOptions) -> None:
        self.con = con
        self.options = options
        self.tuning = options.tuning
        self.kind: str | None = options.kind
        self.params: dict[str, Any] = {"tz": options.assume_tz}
        amap = options.mapping.actions if options.mapping is not None else None
        if amap:
            self.params["action_from"] = list(amap.keys())
            self.params["action_to"] = list(amap.values())
        self.staged = False
        self.mapper: FileMapper | None = None  # the map's [kind] table applied to this file
        self._n_threads = 0
        self._maybe_deep = True
        self._record_limit: int | None = None  # bytes; 0: none (see _too_large)
        self.notes: tuple[str, ...] = ()  # for the sources row (ReadEnd.notes)

    def add(self, batch: JsonBatch | TableBatch) -> None:
        """Stage one batch a reader gave."""
        if isinstance(batch, TableBatch):
            if batch.rejects:
                self.add_rejects(batch.rows.schema.names, batch.rejects)
            if batch.rows.num_rows or not batch.rejects:
                self.add_table(batch.rows, batch.first_rec if batch.rec is None else batch.rec)
        else:
            self.add_json(batch)

    def _mapper(self, kind: str) -> FileMapper | None:
        mapping = self.options.mapping
        if self.mapper is None and mapping is not None:
            self.mapper = mapping.file_mapper(kind)
        return self.mapper

    # -- kind ------------------------------------------------------------------------
    def decide_kind(self, fields: set[str] | frozenset[str], from_json: bool = False) -> str:
        """The file's kind, from its fields (`from_json`: its first JSON objects' keys)."""
        if self.kind:
            return self.kind
        # With --map, each kind's rule reads the canonical names that kind's table gives; a
        # constant expression counts as having the field, but not as evidence against a kind.
        m = self.options.mapping

        def names(kind: str, constants: bool = True) -> set[str]:
            return (
                set(fields) if m is None else m.canonical_names(fields, kind, constants=constants)
            )

        if {"action", "ts"} <= names("events"):
            return "events"
        if {"device_id", "user_id"} <= names("grants") and "action" not in names("events", False):
            return "grants"
        if "user_id" in names("accounts") and "device_id" not in (
            names("accounts", False) | names("grants", False)
        ):
            return "accounts"
        raise InputError(
            "kind",
            "cannot tell events, grants or accounts from its fields; pass --kind",
            WRAPPED_HINT if from_json else "",
        )

    def _kind_known_from(self, keys: set[str]) -> bool:
        """Whether these keys decide the file's kind (always, once it is decided)."""
        try:
            self.decide_kind(keys)
        except InputError:
            return False
        return True

    def _create(self, kind: str) -> None:
        if not self.staged:
            self.con.execute("drop table if exists temp.stage")
            self.con.execute(
                "create temp table stage (rec bigint, err varchar, raw varchar, "  # noqa: S608
                f"{STAGE_COLUMNS[kind]})"
            )
            self.staged = True

    def _threads(self) -> int:
        if not self._n_threads:
            rows = self.con.execute("select current_setting('threads')").fetchall()
            self._n_threads = max(1, int(rows[0][0]))
        return self._n_threads

    def _normalize(
        self, kind: str, sources: dict[str, Source], hints: dict[str, str] | None = None
    ) -> tuple[Normalized, str, str]:
        """SPEC §2.4 for this file's fields, with the select lists of its two lower levels:
        `pre` (", expr as alias" each, to follow a `*`) and `inner` (comma-separated).
        `hints`: see normalize()."""
        norm = normalize(
            kind, sources, tz_param="$tz", action_map="action_from" in self.params, hints=hints
        )
        pre = "".join(f", {e} as {a}" for a, e in norm.pre.items())
        inner = ", ".join(f"{e} as {a}" for a, e in norm.inner.items())
        return norm, pre, inner

    # -- JSON records ------------------------------------------------------------------
    def add_json(self, lines: JsonBatch) -> None:
        """Parse, check and normalise a batch of JSON records into the stage."""
        con = self.con
        batch = pa.table({"rec": lines.rec, "raw": lines.raw, "pre_err": self._too_large(lines)})
        con.register("batch_in", in_pieces(batch, self._threads(), self.tuning))
        self._maybe_deep = lines.maybe_deep
        try:
            if lines.strict:
                self._check_elements()
            self._add_json_batch(int(lines.rec[0]) if len(lines.rec) else 0)
        finally:
            # After a failed statement the transaction refuses even this; the file's error
            # is already on its way, and the rollback drops the view.
            with contextlib.suppress(duckdb.Error):
                con.unregister("batch_in")

    def _too_large(self, lines: JsonBatch) -> pa.Array | pa.ChunkedArray:
        """pre_err, with `record too large` for each record beyond 1/RECORD_SHARE of the
        memory limit."""
        if self._record_limit is None:
            self._record_limit = (memory_limit_bytes(self.con) or 0) // RECORD_SHARE
        limit = self._record_limit
        if not limit or not len(lines.rec):
            return lines.pre_err
        lengths = pc.binary_length(lines.raw)
        if pc.max(lengths).as_py() <= limit:
            return lines.pre_err
        mib = limit / (1 << 20)
        why = f"record too large ({mib:,.0f} MiB at most under this memory limit)"
        too = pc.and_(pc.greater(lengths, limit), pc.is_null(lines.pre_err))
        return pc.if_else(too, why, lines.pre_err)

    def _check_elements(self) -> None:
        """Every element of a JSON array must be standard JSON, or the file fails: one
        that is not UTF-8 too (its text, bad bytes replaced, is checked; that it is not
        UTF-8 alone rejects it)."""
        row = self.con.execute(
            f"select rec, err from (select rec, {ELEMENT_ERR} as err from batch_in "  # noqa: S608
            "where pre_err is null or pre_err = 'invalid UTF-8') where err is not null "
            "order by rec limit 1"
        ).fetchone()
        if row:
            raise InputError("JSON", f"element {row[0]} of the array is {row[1]}")

    def _json_hints(self, kind: str, paths: list[str]) -> dict[str, str]:
        """For each required field, the extracted keys that differ from it only in case."""
        keys = [pointer_key(p) if p.count("/") == 1 else "" for p in paths]
        hints: dict[str, str] = {}
        for name in REQUIRED[kind]:
            alike = [
                f"case when v[{i}] is not null then {literal(shown(k))} end"
                for i, k in enumerate(keys, start=1)
                if is_alike(k, name)
            ]
            if alike:
                hints[name] = f"coalesce({', '.join(alike)})"
        return hints

    def _add_json_batch(self, first_rec: int) -> None:
        con = self.con
        if self.options.mapping is not None:
            # A map's checks and expressions read the parsed batch several times.
            con.execute(f"create or replace temp table parsed as {parsed('batch_in')}")
            keys = {r[0] for r in con.execute("select distinct unnest(k) from parsed").fetchall()}
            self._stage_json(keys, "parsed")
            return
        # The parse is read inline by the stage insert (no copy of the batch). The batch's
        # keys (which fields it has, the kind, the extras) come from a sample of it; a
        # record with a key outside the sample's has more keys than the count of fields
        # found and is flagged 'duplicate key', so the flagged records' own keys complete
        # the set, and only then is the batch staged again. The result is exactly that of
        # taking every record's keys, for the cost of a sample when nothing was missed.
        source = f"({parsed('batch_in')})"
        keys = self._batch_keys(
            "where pre_err is null and (rec < $lo + $head or rec % $every = 0)",
            {
                "lo": first_rec,
                "head": self.tuning.key_sample_head,
                "every": self.tuning.key_sample_every,
            },
        )
        if keys and len(keys) <= self.tuning.max_counted_keys and self._kind_known_from(keys):
            kind_before = self.kind
            self._stage_json(keys, source)
            missed = (
                self._batch_keys(
                    "semi join (select rec from stage where rec >= $lo and err = 'duplicate key') "
                    "s using (rec) where pre_err is null",
                    {"lo": first_rec},
                )
                - keys
            )
            if not missed:
                return
            con.execute("delete from stage where rec >= $lo", {"lo": first_rec})
            if kind_before is None:
                # The kind came from the sample: it is decided again, from every key.
                self.kind = None
                con.execute("drop table temp.stage")
                self.staged = False
            keys |= missed
        else:
            keys = self._batch_keys("where pre_err is null", {})
        self._stage_json(keys, source)

    def _batch_keys(self, where: str, params: dict[str, Any]) -> set[str]:
        """The distinct top-level keys of the batch's records selected by `where`."""
        sql = f"select distinct unnest(try(json_keys(raw))) from batch_in {where}"  # noqa: S608
        return {r[0] for r in self.con.execute(sql, params).fetchall()}

    def _field_sources_json(self, kind: str, keys: set[str]) -> tuple[dict[str, Source], list[str]]:
        """JSON paths for the canonical fields; the other top-level keys are kept as extras."""
        mapping = self.options.mapping
        paths: list[str] = []
        sources: dict[str, Source] = {}
        used: set[str] = set()
        for name in CANONICAL[kind]:
            spec = mapping.source_path(kind, name) if mapping is not None else [name]
            if spec is None:
                continue
            if spec == [name] and name not in keys:
                continue
            paths.append(json_pointer(spec))
            used.add(spec[0])
            sources[name] = Source(f"v[{len(paths)}]", "json", minus_zero_in(spec))
        # Without a map every top-level key is extracted (for events they are the extras
        # kept; for all kinds they let duplicates be found by counting, see dup_by_count).
        # A canonical name is an extra too when a map reads the field from elsewhere.
        extras = sorted(keys - used) if kind == "events" or mapping is None else []
        return sources, paths + [json_pointer([k]) for k in extras]

    def _stage_json(self, keys: set[str], source: str) -> None:
        """Check and normalise the batch (`source`: its parse) into the stage, for `keys`."""
        con = self.con
        if self.kind is None and keys:
            self.kind = self.decide_kind(keys, from_json=True)
        kind = self.kind
        if kind is None:
            self._hold_parsed(source)  # no JSON object yet: the kind is decided by a later batch
            return
        self._create(kind)
        sources, paths = self._field_sources_json(kind, keys)
        n_canon = len(sources)
        mapper = self._mapper(kind)
        m_join = m_cols = ""
        if mapper is not None:
            # Fields named by the map are checked; { sql = ... } values are computed here.
            sources.update(
                mapper.json_batch(con, keys, "parsed", f"t = 'OBJECT' and ({JSON_ERR}) is null")
            )
            if mapper.exprs:
                m_join, m_cols = mapper.join("rec"), mapper.columns()
        norm, pre, inner = self._normalize(kind, sources, self._json_hints(kind, paths))
        params = dict(self.params, paths=paths)
        exprs = [f"{v} as {n}" for n, v in norm.columns.items()]
        names = list(norm.columns)
        if kind == "events":
            names.append("extra")
            exprs.append(
                self._json_extra([pointer_key(p) for p in paths[n_canon:]], n_canon, params)
            )
        cols = ", ".join(names)
        counted = self.options.mapping is None and len(paths) <= self.tuning.max_counted_keys
        dup = dup_by_count(len(paths)) if counted else JSON_ERR_DUP
        sql = f"""
            insert into stage (rec, err, raw, {cols}{KEYED[kind][0]})
            select rec, err, case when err is not null then {RAW_TEXT} end,
                   {cols}{KEYED[kind][1]}
            from (
                select rec, raw, coalesce(jerr, {dup}, jstd, {norm.reason}) as err,
                       {", ".join(exprs)}
                from (
                    select *, {inner}
                    from (select *{pre} from (
                        select rec, raw, k, {json_err_shape(self._maybe_deep)} as jerr,
                               {JSON_ERR_STANDARD} as jstd,
                               case when t = 'OBJECT' then json_extract(raw, $paths)::varchar[]
                               end as v{m_cols}
                        from {source}{m_join}
                    ))
                )
            )
        """  # noqa: S608 - expressions are built from canonical names; values are bound
        insert_unordered(con, sql, used_params(sql, params))

    @staticmethod
    def _json_extra(extra_names: list[str], n_canon: int, params: dict[str, Any]) -> str:
        """The `extra` column of JSON events: each extra member as its JSON text."""
        return (
            json_extra(
                [f"v[{n_canon + 1 + i}]" for i in range(len(extra_names))], extra_names, params
            )
            + " as extra"
        )

    def _hold_parsed(self, source: str) -> None:
        """Keep a batch with no JSON object at all (all malformed) until the kind is known."""
        self.con.execute(
            f"create temp table if not exists held as select * from {source} limit 0"  # noqa: S608
        )
        self.con.execute(f"insert into held select * from {source}")  # noqa: S608

    # -- typed columns -----------------------------------------------------------------
    def add_rejects(self, names: list[str], rejects: list[tuple[int, str, str]]) -> None:
        """Stage the records a reader rejected (record number, reason, raw text)."""
        if self.kind is None:
            self.kind = self.decide_kind(set(names))
        self._create(self.kind)
        recs, errs, raws = zip(*rejects, strict=True)
        self.con.register(
            "rejects_in",
            pa.table(
                {
                    "rec": pa.array(recs, pa.int64()),
                    "err": pa.array(errs, pa.string()),
                    "raw": pa.array(raws, pa.string()),
                }
            ),
        )
        try:
            self.con.execute(
                "insert into stage (rec, err, raw) select rec, err, left(raw, $limit) "
                "from rejects_in",
                {"limit": RAW_LIMIT},
            )
        finally:
            with contextlib.suppress(duckdb.Error):
                self.con.unregister("rejects_in")

    def add_table(self, rb: pa.RecordBatch, first_rec: int | np.ndarray) -> None:
        """Normalise a batch of typed rows into the stage: Parquet's, numbered from
        `first_rec`, or a text file's VARCHAR columns with their line numbers."""
        con = self.con
        names = list(rb.schema.names)
        if "__rec" in names:
            raise InputError("columns", "a column is named __rec, a name ingest reserves")
        if self.kind is None:
            self.kind = self.decide_kind(set(names))
        kind = self.kind
        self._create(kind)
        pairs = column_names(names, self._read_names(kind))
        if any(k != c for k, c in pairs):
            rb = rb.rename_columns([c for _, c in pairs])
        n = rb.num_rows
        recs = (
            first_rec
            if isinstance(first_rec, np.ndarray)
            else np.arange(first_rec, first_rec + n, dtype=np.int64)
        )
        tbl = pa.Table.from_batches([rb]).append_column("__rec", pa.array(recs, pa.int64()))
        # Several record batches (zero-copy slices), so that DuckDB scans on all threads.
        tbl = pa.Table.from_batches(
            tbl.to_batches(max_chunksize=self.tuning.parquet_piece_rows), schema=tbl.schema
        )
        con.register("batch_in", tbl)
        try:
            self._stage_table(kind, pairs)
        finally:
            # After a failed statement (e.g. a map expression that cannot bind) the
            # transaction is aborted and rolled back by the caller; keep the first error.
            with contextlib.suppress(duckdb.Error):
                con.unregister("batch_in")

    def _read_names(self, kind: str) -> set[str]:
        """The source names a batch's canonical fields are read from."""
        mapping = self.options.mapping
        if mapping is None:
            return set(CANONICAL[kind])
        specs = (mapping.source_path(kind, name) for name in CANONICAL[kind])
        return {spec[0] for spec in specs if spec}

    def _table_sources(
        self, kind: str, columns: list[str], types: dict[str, str]
    ) -> tuple[dict[str, Source], set[str]]:
        """The canonical fields' columns (or paths into struct columns) and their types
        (`types`: the batch's column types)."""
        con = self.con
        mapping = self.options.mapping
        sources: dict[str, Source] = {}
        used: set[str] = set()
        mapper = self._mapper(kind)
        if mapper is not None:
            # Fields named by the map must be columns; { sql = ... } values computed here.
            sources.update(mapper.parquet_batch(con, "batch_in", columns, "__rec"))
        for name in CANONICAL[kind]:
            spec = mapping.source_path(kind, name) if mapping is not None else [name]
            if spec is None or spec[0] not in types:
                continue
            expr = struct_path(spec[0], spec[1:])
            typ = (
                types[spec[0]]
                if len(spec) == 1
                else self._nested_type(expr, f"{kind}.{name}", ".".join(spec))
            )
            sources[name] = Source(expr, typ)
            used.add(spec[0])
        return sources, used

    def _stage_table(self, kind: str, all_cols: list[tuple[str, str]]) -> None:
        """Stage the batch; `all_cols`: each column's (name, name in batch_in)."""
        types = dict(
            self.con.execute("select column_name, column_type from (describe batch_in)").fetchall()
        )
        sources, used = self._table_sources(kind, [c for _, c in all_cols], types)
        m_join = self.mapper.join("__rec") if self.mapper is not None and self.mapper.exprs else ""
        hints = {
            name: f"coalesce({', '.join(alike)})"
            for name in REQUIRED[kind]
            if (
                alike := [
                    f"case when {ident(c)} is not null then {literal(shown(k))} end"
                    for k, c in all_cols
                    if is_alike(k, name)
                ]
            )
        }
        norm, pre, inner = self._normalize(kind, sources, hints)
        floats = frozenset(str(c) for c, t in types.items() if t in ("FLOAT", "DOUBLE"))
        decimals = frozenset(str(c) for c, t in types.items() if t.startswith("DECIMAL"))
        raw_expr = struct_json(all_cols, floats, decimals) if all_cols else "'{}'"
        cols = ", ".join(f"{v} as {n}" for n, v in norm.columns.items())
        select_cols = ", ".join(norm.columns.keys())
        extra = ""
        if kind == "events":
            extras = [(k, c) for k, c in all_cols if c not in used]  # as in _field_sources_json
            extra = (
                f", {struct_json(extras, floats, decimals)} as extra"
                if extras
                else ", null::json as extra"
            )
        # The file's own columns are in scope below the outer select: the key is
        # computed one level up, from the canonical values only.
        sql = f"""
            insert into stage (rec, err, raw, {select_cols}{", extra" if extra else ""}
                               {KEYED[kind][0]})
            select *{KEYED[kind][1]} from (
                select __rec as rec, err, case when err is not null then
                       left({raw_expr}::varchar, {RAW_LIMIT}) end as raw, {cols}{extra}
                from (
                    select *, {norm.reason} as err
                    from (select *, {inner} from (select *{pre} from batch_in{m_join}))
                )
            )
        """  # noqa: S608 - identifiers are quoted, values are bound
        insert_unordered(self.con, sql, used_params(sql, self.params))

    def _nested_type(self, expr: str, key: str, path: str) -> str:
        """The type of a dotted path into a struct column; a path it lacks fails the file."""
        try:
            got = self.con.execute(
                f"select column_type from (describe select {expr} from batch_in)"  # noqa: S608
            ).fetchall()
        except duckdb.Error:
            raise InputError(
                f"map key {key}", f"the file has no field {path} (not a path into a struct)"
            ) from None
        return str(got[0][0]) if got else "NULL"
