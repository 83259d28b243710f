"""Apache Spark: the same queries/*.sql, transpiled from DuckDB's dialect by sqlglot, over a lake.

Every difference between the engines that the queries meet is handled here, and only here:
- JSON Pointer lookups (`json_extract_string(extra, '/' || key)`): Spark's GET_JSON_OBJECT,
  which sqlglot writes for them, takes only `$` paths and returns NULL for anything else,
  silently; they become `element_at(from_json(extra, 'map<string,string>'), key)`, the key
  decoded back from the pointer (`~1` → `/`, `~0` → `~`);
- temp tables → temp views over eagerly checkpointed results; `accounts_latest` is a TEMP
  VIEW (Spark refuses a plain view over temp views); QUALIFY → a ROW_NUMBER subquery (sqlglot);
- `$name` parameters → `:name`, bound by `spark.sql(sql, args=...)`;
- the session time zone is UTC (times are UTC instants, as in DuckDB).
Nothing else is rewritten: every other query runs as sqlglot writes it, and the tests compare
every query's output on both engines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from forensics import queries
from forensics.engines.base import Engine
from forensics.errors import ForensicsError, StoreError, UsageError

# DuckDB types of the lake's columns (forensics.lake.COLUMNS) → Spark SQL types.
_SPARK_TYPES = {
    "timestamptz": "TIMESTAMP",
    "varchar": "STRING",
    "integer": "INT",
    "bigint": "BIGINT",
}


class SparkUnavailable(ForensicsError):
    """pyspark or Java is missing: the message names the fix."""


# Hadoop expands globs in the paths Spark reads: a backslash escapes what it would expand.
_HADOOP_GLOB = str.maketrans({c: "\\" + c for c in "\\{}[]*?"})


def hadoop_literal(path: str) -> str:
    """`path` as Spark's readers take it literally: a lake folder may be named `case [1]`
    or `{a,b}` (HOSTILE_INPUTS #8; Hadoop's globs also read `{}` and `\\`)."""
    return path.translate(_HADOOP_GLOB)


def check_spark() -> None:
    """Raise SparkUnavailable (one line, naming the fix) if pyspark or Java is missing."""
    for module in ("pyspark", "sqlglot"):
        if importlib.util.find_spec(module) is None:
            raise SparkUnavailable(
                "--engine spark",
                f"{module} is not installed",
                "Install it with: pip install 'forensics[spark]' (Java 17 or later is needed too)",
            )
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (
        java_home and shutil.which("java", path=os.path.join(java_home, "bin"))
    ):
        raise SparkUnavailable(
            "--engine spark",
            "Java was not found (no java on PATH, no $JAVA_HOME)",
            "Install Java 17 or later (e.g. apt-get install openjdk-17-jre-headless)",
        )


# --- SQL: DuckDB → Spark ------------------------------------------------------------------


def _pointer_key(path: Any) -> Any:
    """The object key a one-level JSON Pointer names, as a Spark expression."""
    from sqlglot import exp

    if isinstance(path, exp.Literal) and path.is_string:
        text = path.this
        if not text.startswith("/") or "/" in text[1:]:
            raise StoreError("query", f"JSON path {text!r} has no Spark form here")
        return exp.Literal.string(text[1:].replace("~1", "/").replace("~0", "~"))
    substring = exp.Substring(this=path.copy(), start=exp.Literal.number(2))
    unescaped = exp.Replace(
        this=substring, expression=exp.Literal.string("~1"), replacement=exp.Literal.string("/")
    )
    return exp.Replace(
        this=unescaped, expression=exp.Literal.string("~0"), replacement=exp.Literal.string("~")
    )


def _rewrite_json_pointer(node: Any) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.JSONExtract) and not isinstance(node.expression, exp.JSONPath):
        raise StoreError("query", "a JSON Pointer extract of JSON (not text) has no Spark form")
    if isinstance(node, exp.JSONExtractScalar) and not isinstance(node.expression, exp.JSONPath):
        return _json_text_of(node.this, _pointer_key(node.expression))
    return node


# A member's value as text, as DuckDB's json_extract_string gives it. Spark's map<string,
# string> turns a number with a fraction into a double's text (0.0001 → 1.0E-4, 1e22 →
# 1.0E22): a number is taken as written in the JSON text (the first occurrence of the key
# followed by a number) when that is the same number. Both sides are checked to be numbers
# before the casts, which fail on anything else under ANSI mode.
# (A whole-text match by equality with the match: a `$` would read as a parameter.)
_NUMBER = "'^-?[0-9]+([.][0-9]+)?([eE][-+]?[0-9]+)?'"
_JSON_TEXT = f"""
case when __v__ <> '' and regexp_extract(__v__, {_NUMBER}, 0) = __v__
      and regexp_extract(__raw__, {_NUMBER}, 0) = __raw__ and __raw__ <> ''
      and cast(__raw__ as double) = cast(__v__ as double) then __raw__ else __v__ end
"""
_RAW = """
regexp_extract(substring(__json__, locate(concat('"', __key__, '":'), __json__)
    + length(__key__) + 3), '^(-?[0-9][-+.0-9eE]*)', 1)
"""


def _json_text_of(doc: Any, key: Any) -> Any:
    import sqlglot
    from sqlglot import exp

    value = exp.Anonymous(
        this="ELEMENT_AT",
        expressions=[
            exp.Anonymous(
                this="FROM_JSON",
                expressions=[doc.copy(), exp.Literal.string("map<string,string>")],
            ),
            key.copy(),
        ],
    )
    parts = {"__v__": value, "__json__": doc, "__key__": key}

    def fill(n: Any) -> Any:
        return parts[n.name].copy() if isinstance(n, exp.Column) and n.name in parts else n

    # transform() does not walk into what it puts in: raw is filled in before it is used
    parts["__raw__"] = sqlglot.parse_one(_RAW, read="spark").transform(fill)
    return sqlglot.parse_one(_JSON_TEXT, read="spark").transform(fill)


@cache
def to_spark(sql: str) -> str:
    """DuckDB SQL (one statement, `$name` params) as Spark SQL (`:name` params)."""
    import sqlglot

    tree = sqlglot.parse_one(sql, read="duckdb")
    return str(tree.transform(_rewrite_json_pointer).sql(dialect="spark", comments=False))


# The tables a user's query (`forensics sql`) may read on Spark: the case's views only.
CASE_VIEWS = frozenset({"events", "grants", "accounts", "sources", "rejects", "accounts_latest"})


def check_user_query(query: str) -> str:
    """A user's read-only query, in DuckDB's dialect, as Spark SQL; raises UsageError unless
    it is one SELECT that reads the case's views (and its own CTEs) and calls only functions
    sqlglot knows. Spark has no sandbox of its own: this refuses writes, DDL, file paths
    (parquet.`/x`), other catalogs, and Java calls (reflect, java_method)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    if not query.strip():
        raise UsageError("sql", "the query is empty")
    try:
        trees = [t for t in sqlglot.parse(query, read="duckdb") if t is not None]
    except SqlglotError as e:
        raise UsageError("sql", f"cannot parse the query ({type(e).__name__})") from None
    if len(trees) != 1 or not isinstance(trees[0], exp.Query):
        raise UsageError(
            "sql",
            "not allowed: on Spark `forensics sql` runs one SELECT query",
            "Write one SELECT (WITH …) over events, grants, accounts, sources, rejects",
        )
    tree = trees[0]
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        plain = isinstance(table.this, exp.Identifier) and not table.db and not table.catalog
        if not plain or table.name not in CASE_VIEWS | ctes:
            raise UsageError("sql", "not allowed: reads only the case's tables (events, grants, …)")
    for call in tree.find_all(exp.Anonymous):
        raise UsageError("sql", f"not allowed on Spark: function {str(call.name)[:40]}")
    return str(tree.transform(_rewrite_json_pointer).sql(dialect="spark", comments=False))


# --- session ------------------------------------------------------------------------------


def spark_session(master: str) -> Any:
    """The process's Spark session (created once, UTC, quiet); raises SparkUnavailable."""
    check_spark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if "PYSPARK_SUBMIT_ARGS" not in os.environ:
        # Spark's INFO/WARN lines (and its "default log4j profile" and "Setting default log
        # level" notices) would crowd stderr; the driver JVM starts with a configuration that
        # keeps errors only.
        os.environ["PYSPARK_SUBMIT_ARGS"] = submit_args()
    builder = (
        SparkSession.builder.master(master)
        .appName("forensics")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # Parquet timestamps are UTC instants: read and write them as such.
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    )
    if master.startswith("local"):
        # a few hundred shuffle partitions are for clusters; locally they cost seconds each
        builder = builder.config("spark.sql.shuffle.partitions", "8")
        if "PYSPARK_PYTHON" not in os.environ:
            # Local workers run this interpreter, which has forensics (else PySpark starts
            # the first `python3` on PATH, which may not). A cluster's workers need their own.
            os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        _launch_gateway()
        session = builder.getOrCreate()
    except Exception as e:  # noqa: BLE001 - py4j/pyspark raise several kinds; one line out
        raise SparkUnavailable(
            "--engine spark",
            f"Spark did not start ({type(e).__name__})",
            "Check Java 17+ (java -version), $JAVA_HOME and --master",
        ) from None
    session.sparkContext.setLogLevel("ERROR")
    return session


def submit_args() -> str:
    """spark-submit arguments for the driver JVM: forensics' log4j2 configuration, and the
    JVM's own warnings (unified logging, e.g. a thread or memory warning under load) sent
    to stderr: by default the JVM prints them on stdout, inside `--json` output."""
    import shlex

    config = Path(__file__).with_name("log4j2.properties")
    java = f"-Dlog4j2.configurationFile=file:{config} -Xlog:disable -Xlog:all=warning:stderr"
    return f"--driver-java-options {shlex.quote(java)} pyspark-shell"


# Printed by the JVM itself (not by log4j) because Spark's launcher always adds
# --add-modules=jdk.incubator.vector; no JVM option turns it off, so it is dropped here.
JVM_NOTICES = ("WARNING: Using incubator modules:",)


def _launch_gateway() -> None:
    """Start the driver JVM (once per process) with its stderr read by forensics: the JVM's
    start-up notices are dropped, any other line (Spark's own errors) is passed on."""
    import subprocess
    import threading

    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:  # a session exists or existed: its JVM is up
        return
    gateway = launch_gateway(popen_kwargs={"stderr": subprocess.PIPE})  # type: ignore[no-untyped-call]
    SparkContext._ensure_initialized(gateway=gateway)
    proc = getattr(gateway, "proc", None)
    if proc is not None and proc.stderr is not None:
        threading.Thread(
            target=_pass_stderr, args=(proc.stderr,), name="spark-stderr", daemon=True
        ).start()


def _pass_stderr(stream: Any) -> None:
    """Copy the JVM's stderr to ours line by line, without its start-up notices."""
    import sys

    for line in iter(stream.readline, b""):
        if line.decode("utf-8", "replace").startswith(JVM_NOTICES):
            continue
        with contextlib.suppress(OSError, ValueError):  # stderr closed at exit
            sys.stderr.write(line.decode("utf-8", "replace"))
            sys.stderr.flush()


def _spark_error(what: str, e: BaseException) -> StoreError:
    """A Spark failure as one line: its error class, never its message (it may quote data)."""
    cls = getattr(e, "getCondition", None) or getattr(e, "getErrorClass", None)
    code = None
    if cls is not None:
        try:
            code = cls()
        except Exception:  # noqa: BLE001 - best effort
            code = None
    return StoreError(what, f"Spark failed ({code or type(e).__name__})")


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, session: Any) -> None:
        self.spark = session
        self._views: list[str] = []

    @classmethod
    def open_lake(cls, lake: str, master: str) -> SparkEngine:
        engine = cls(spark_session(master))
        try:
            engine.attach_lake(lake)
        except BaseException:
            engine.close()
            raise
        return engine

    def attach_lake(self, lake: str) -> None:
        """Temp views events, grants, accounts, sources, rejects and accounts_latest over the
        lake's committed rows (a local folder or any URI Spark reads: s3a://, hdfs://)."""
        from forensics.lake import COLUMNS
        from forensics.store import ACCOUNTS_LATEST

        root = lake.rstrip("/")
        batches = self._read(root, "batches", COLUMNS["batches"])
        if batches is None:
            raise StoreError(
                f"case lake {lake}",
                "not found or not a case lake",
                "Run `forensics export DIR` or `forensics ingest --lake DIR` first",
            )
        row = batches.selectExpr("coalesce(max(last_source_id), 0) as last").collect()
        last = int(row[0]["last"])
        for table, columns in COLUMNS.items():
            if table == "batches":
                continue
            df = self._read(root, table, columns)
            if df is None:
                df = self.spark.createDataFrame(
                    [], ", ".join(f"{c} {_SPARK_TYPES[t]}" for c, t in columns)
                )
            keep = [c for c, _ in columns if c not in ("dedup_key", "batch")]
            df.where(f"source_id <= {last}").select(*keep).createOrReplaceTempView(table)
            self._views.append(table)
        self._sql(f"CREATE OR REPLACE TEMP VIEW accounts_latest AS {to_spark(ACCOUNTS_LATEST)}")
        self._views.append("accounts_latest")

    def _read(self, root: str, table: str, columns: Any) -> Any:
        """A lake table as a DataFrame of its canonical columns, or None if it has no files."""
        from pyspark.errors import AnalysisException

        # The schema is given, not inferred: inferring it reads footers in a job of its own
        # for every table (about 2 s each on this machine, 12 s to open a lake).
        schema = ", ".join(f"{c} {_SPARK_TYPES[t]}" for c, t in columns)
        reader = self.spark.read.schema(schema).option("mergeSchema", "false")
        if table == "events":
            reader = reader.option("basePath", f"{root}/events")
        try:
            df = reader.parquet(hadoop_literal(f"{root}/{table}"))
        except AnalysisException:  # no such folder, or no files in it
            return None
        return df.selectExpr(*(f"CAST({c} AS {_SPARK_TYPES[t]}) AS {c}" for c, t in columns))

    def _sql(self, sql: str, args: Mapping[str, object] | None = None) -> Any:
        try:
            return self.spark.sql(sql, args=dict(args) if args else None)
        except Exception as e:  # noqa: BLE001 - pyspark and py4j errors: one line, no data
            raise _spark_error("query", e) from None

    def _dataframe(self, name: str, params: Mapping[str, object] | None) -> Any:
        q = queries.get_query(name)
        args = queries.bind_params(q, params or {})
        try:
            return self.spark.sql(to_spark(q.sql.strip().rstrip(";")), args=args or None)
        except Exception as e:  # noqa: BLE001
            raise _spark_error(f"query {name}", e) from None

    def run_query(self, name: str, params: Mapping[str, object] | None = None) -> pa.Table:
        df = self._dataframe(name, params)
        try:
            return _like_duckdb(df.toArrow())
        except Exception as e:  # noqa: BLE001
            raise _spark_error(f"query {name}", e) from None

    # Rows per Arrow batch when a result is streamed to the driver (query_reader).
    stream_rows = 65_536

    def query_reader(self, name: str) -> pa.RecordBatchReader:
        """The rows in the query's order, one partition at a time (toLocalIterator): the
        driver holds one partition and one batch, never the whole list. Timestamps travel as
        epoch microseconds (pyspark would turn them into naive local times) and come back
        as UTC instants, exactly."""
        schema, batches = self.stream(self._dataframe(name, None), f"query {name}")
        return pa.RecordBatchReader.from_batches(schema, batches)

    def stream(self, df: Any, what: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """A DataFrame's Arrow schema, and its rows as batches in order (see query_reader)."""
        try:
            schema = _like_duckdb(df.limit(0).toArrow()).schema
        except Exception as e:  # noqa: BLE001
            raise _spark_error(what, e) from None
        # by position: names may repeat (`select 1 a, 2 a`) or hold any character
        exprs = [
            f"unix_micros(c{i}) AS c{i}" if pa.types.is_timestamp(f.type) else f"c{i}"
            for i, f in enumerate(schema)
        ]
        rows = df.toDF(*(f"c{i}" for i in range(len(schema)))).selectExpr(*exprs)
        return schema, _arrow_batches(rows, schema, self.stream_rows, what)

    def user_query(self, query: str) -> Any:
        """A user's query (`forensics sql`, DuckDB's dialect) as a DataFrame, once
        check_user_query has allowed it. Raises UsageError for a query Spark refuses."""
        from pyspark.errors import AnalysisException, ParseException

        try:
            return self.spark.sql(check_user_query(query))
        except (AnalysisException, ParseException) as e:
            raise UsageError("sql", _spark_error("sql", e).why) from None
        except Exception as e:  # noqa: BLE001
            raise _spark_error("sql", e) from None

    def materialize_query(self, name: str, params: Mapping[str, object] | None = None) -> None:
        df = self._dataframe(name, params)
        try:
            # Computed now and kept on the executors, its plan cut short: the later queries
            # read it as a table (as DuckDB's temp tables). A lazily cached view kept the
            # whole chain of plans and took 3-4x as long. Trade-off: an executor lost
            # after this point fails the command (run it again), as for any local checkpoint.
            df.localCheckpoint(eager=True).createOrReplaceTempView(name)
        except Exception as e:  # noqa: BLE001
            raise _spark_error(f"query {name}", e) from None
        if name not in self._views:
            self._views.append(name)

    def read_table(self, name: str) -> pa.Table | None:
        if not self.spark.catalog.tableExists(name):
            return None
        try:
            return _like_duckdb(self.spark.table(name).toArrow())
        except Exception as e:  # noqa: BLE001
            raise _spark_error(f"table {name}", e) from None

    def close(self) -> None:
        for view in reversed(self._views):
            with contextlib.suppress(Exception):  # a session that is already gone
                self.spark.catalog.dropTempView(view)
        self._views.clear()


def _arrow_batches(df: Any, schema: pa.Schema, size: int, what: str) -> Iterator[pa.RecordBatch]:
    """`df`'s rows (timestamps as epoch microseconds) as batches of `schema`, in order."""
    try:
        rows = df.toLocalIterator(prefetchPartitions=False)
        while chunk := list(itertools.islice(rows, size)):
            columns = list(zip(*chunk, strict=True)) if chunk else []
            arrays = [
                pa.array(col, pa.int64()).cast(pa.timestamp("us", tz="UTC")).cast(f.type)
                if pa.types.is_timestamp(f.type)
                else pa.array(col, f.type)
                for f, col in zip(schema, columns, strict=True)
            ]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
    except Exception as e:  # noqa: BLE001
        raise _spark_error(what, e) from None


# DuckDB names a list's item `l` and lets it be null; Spark's Arrow says `element`.
_DUCKDB_LIST_ITEM = "l"


def _like_duckdb(table: pa.Table) -> pa.Table:
    """Spark's types as DuckDB gives the same values: timestamps in the session zone (UTC)
    named UTC, and a list's item named and nullable as DuckDB's (owner_ids)."""
    fields = []
    changed = False
    for f in table.schema:
        if pa.types.is_timestamp(f.type) and f.type.tz is not None and f.type.tz != "UTC":
            fields.append(pa.field(f.name, pa.timestamp(f.type.unit, tz="UTC"), f.nullable))
            changed = True
        elif pa.types.is_list(f.type) and f.type.value_field.name != _DUCKDB_LIST_ITEM:
            item = pa.field(_DUCKDB_LIST_ITEM, f.type.value_type)
            fields.append(pa.field(f.name, pa.list_(item), f.nullable))
            changed = True
        else:
            fields.append(f)
    return table.cast(pa.schema(fields)) if changed else table
