"""A lake batch's events resolved and written on Spark (`ingest --lake --engine spark`).

The events of a batch and the keys already in the lake are the large part of an ingest: on
Spark they never pass through the driver. The new events (the shares' Parquet) are joined to
their files' run-order source ids, anti-joined on dedup_key with the lake's events, and the
first copy of each key in the batch (lowest source id, then record) is kept, exactly as
`forensics.lake.BatchEvents` does on DuckDB; Spark writes them partitioned by UTC day and
hour. The driver keeps only what is per file: which files count, and how many events each lost.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb

from forensics.engines.spark import _SPARK_TYPES, _spark_error, hadoop_literal
from forensics.lake import COLUMNS, BatchEvents

# The shares' events files (forensics.lake_ingest.ingest_share): a task column, then events.
_STAGED = (("task", "integer"), *COLUMNS["events"])


def _schema(columns: Any) -> str:
    return ", ".join(f"{c} {_SPARK_TYPES[t]}" for c, t in columns)


class SparkBatchEvents(BatchEvents):
    def __init__(self, spark: Any, staging: Path, lake: Path) -> None:
        self.spark = spark
        self.staging = staging
        self.lake = lake
        self._batch: Any = None

    def resolve(self, con: duckdb.DuckDBPyConnection, base: int) -> dict[int, int]:
        from pyspark.sql import Window
        from pyspark.sql import functions as F  # noqa: N812

        # Per file of the run (small): its share and share-local id, its batch-local id, and
        # whether its events count (content not already in the lake or earlier in the batch).
        files = con.execute(
            "select l.task, l.local_id, m.source_id, s.same_as is null "
            "from share_sources l join run_ids m on m.task = l.task and m.sha256 = l.sha256 "
            "join batch_sources s on s.source_id = m.source_id"
        ).fetchall()
        try:
            ids = self.spark.createDataFrame(
                files, "task INT, local_id INT, source_id INT, kept BOOLEAN"
            )
            staged = [str(p) for p in sorted(self.staging.glob("task*/events.parquet"))]
            new = (
                self.spark.read.schema(_schema(_STAGED))
                .parquet(*map(hadoop_literal, staged))
                .withColumnRenamed("source_id", "local_id")
                .join(F.broadcast(ids), ["task", "local_id"])
                .drop("task", "local_id")
            )
            kept = new.where("kept").drop("kept")
            lake_keys = self._lake_keys(base)
            if lake_keys is not None:
                kept = kept.join(lake_keys, "dedup_key", "left_anti")
            first = Window.partitionBy("dedup_key").orderBy("source_id", "source_record")
            batch = kept.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")
            self._batch = batch.localCheckpoint(eager=True)
            counts = (
                new.groupBy("source_id")
                .count()
                .join(
                    self._batch.groupBy("source_id").count().withColumnRenamed("count", "k"),
                    "source_id",
                    "left",
                )
                .selectExpr("source_id", "count - coalesce(k, 0) as lost")
                .collect()
            )
        except Exception as e:  # noqa: BLE001 - pyspark and py4j errors: one line, no data
            raise _spark_error("ingest on Spark", e) from None
        return {int(r["source_id"]): int(r["lost"]) for r in counts}

    def _lake_keys(self, base: int) -> Any:
        """The dedup_key of every committed event of the lake, or None when it has none."""
        from pyspark.errors import AnalysisException

        root = self.lake / "events"
        if not any(root.rglob("*.parquet")):
            return None
        try:
            df = (
                self.spark.read.schema(_schema(COLUMNS["events"]))
                .option("basePath", str(root))
                .parquet(hadoop_literal(str(root)))
            )
        except AnalysisException:
            return None
        return df.where(f"source_id <= {int(base)}").select("dedup_key")

    def write(self, con: duckdb.DuckDBPyConnection, dest: Path, stem: str, base: int) -> int:
        from pyspark.sql import functions as F  # noqa: N812

        if self._batch is None:
            raise RuntimeError("resolve() before write()")
        cols = [
            (F.col(c) + F.lit(int(base))).cast("int").alias(c) if c == "source_id" else F.col(c)
            for c, _ in COLUMNS["events"]
        ]
        out = self._batch.select(
            *cols,
            F.date_format("ts", "yyyy-MM-dd").alias("day"),
            F.date_format("ts", "HH").alias("hour"),
        )
        try:
            self.spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
            (
                out.repartition("day", "hour")
                .sortWithinPartitions("ts", "source_id", "source_record")
                .write.option("compression", "zstd")
                .partitionBy("day", "hour")
                .parquet(str(dest))
            )
            written = int(self._batch.count())
        except Exception as e:  # noqa: BLE001
            raise _spark_error("ingest on Spark", e) from None
        _name_files(dest, stem)
        return written


def _name_files(dest: Path, stem: str) -> None:
    """Spark's part-* files renamed `<stem>_<i>.parquet` (the lake's batch-file names, by
    which an uncommitted batch is found and removed); its _SUCCESS and .crc files dropped."""
    for dirpath, _, filenames in os.walk(dest):
        i = 0
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if name.startswith("part-") and name.endswith(".parquet"):
                os.replace(path, os.path.join(dirpath, f"{stem}_{i}.parquet"))
                i += 1
            elif name.startswith((".", "_")):
                os.unlink(path)
