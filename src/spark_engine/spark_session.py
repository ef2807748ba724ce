"""One Spark session from the ``engine.spark`` settings, and the readers every Spark job shares.

A session that cannot start (an unreachable master, memory the JVM refuses, ...) raises ``ConfigError``
naming the settings and Spark's own first line, so the stage stops with one message, not a Java stack trace.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from src.recsys.config import ConfigError

from .spark_settings import SparkSettings

ROW = "_row"  # a row's position in its file: the local engine's order (first wins, outputs in input order)
NS_PER_DAY = 86_400 * 10**9


def session_conf(settings: SparkSettings, app: str) -> dict[str, str]:
    return {
        "spark.master": settings.master,
        "spark.app.name": app,
        "spark.driver.memory": settings.driver_memory,
        "spark.executor.memory": settings.executor_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.default.parallelism": str(settings.shuffle_partitions),
        "spark.local.dir": settings.local_dir,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        # the real files store started_at as INT64 TIMESTAMP(NANOS), which Spark refuses by default:
        # read it as the long it is and keep nanoseconds end to end (nanos_of below)
        "spark.sql.legacy.parquet.nanosAsLong": "true",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.adaptive.enabled": "true",
    }


def first_line(error: BaseException, java_output: str = "") -> str:
    """Spark's reason in one line: the JVM's exception message when it printed one, else the Python error's."""
    for line in java_output.splitlines():
        if line.startswith("Exception in thread") or line.startswith("Error: "):
            return line.split(": ", 1)[-1].strip() if ": " in line else line.strip()
    text = str(error).strip().splitlines()
    return next((line.strip() for line in text if line.strip()), type(error).__name__)


@contextlib.contextmanager
def captured_stderr() -> Iterator[list[str]]:
    """Collect what the process and its children (spark-submit's JVM) write to stderr; yields a list that holds
    the text afterwards. The caller decides whether to show it: a failed start shows one line, not the trace."""
    sys.stderr.flush()
    saved = os.dup(2)
    holder: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield holder
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            holder.append(sink.read().decode(errors="replace"))


def start_session(settings: SparkSettings, app: str) -> SparkSession:
    """A Spark session for ``settings``; ``ConfigError`` naming them when Spark cannot start one."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers run this interpreter (its numpy)
    Path(settings.local_dir).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in session_conf(settings, app).items():
        builder = builder.config(key, value)
    failure = None
    with captured_stderr() as output:
        try:
            spark = builder.getOrCreate()
            spark.sparkContext.setLogLevel("ERROR")
            spark.sparkContext.setCheckpointDir(settings.checkpoint_dir)
            spark.range(1).count()  # executors answer: a master that accepts no work fails here, not mid-stage
        except Exception as error:  # py4j / PySpark errors: the Java failure becomes one line naming the settings
            failure = error
    if failure is not None:
        raise ConfigError(
            f"params.yaml: engine.spark (master {settings.master!r}, driver_memory {settings.driver_memory!r}, "
            f"executor_memory {settings.executor_memory!r}): Spark could not start a session: "
            f"{first_line(failure, output[0])}"
        ) from None
    sys.stderr.write(output[0])  # a good start's warnings stay visible
    return spark


def ship_code(spark: SparkSession, folder: Path) -> None:
    """Send this project's ``src`` package (its .py files) to the executors' Python workers: played_next
    pairs listens with ``src.recsys`` functions there, which a cluster's nodes do not have installed."""
    package = Path(__file__).resolve().parents[1]
    archive = folder / "src.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for module in sorted(package.rglob("*.py")):
            bundle.write(module, module.relative_to(package.parent).as_posix())
    spark.sparkContext.addPyFile(str(archive))


@contextlib.contextmanager
def spark_session(settings: SparkSettings, app: str) -> Iterator[SparkSession]:
    """A session for one stage, stopped at the end (the JVM goes with the stage's process)."""
    spark = start_session(settings, app)
    try:
        # the archive is served to the executors from here until the session ends
        with tempfile.TemporaryDirectory(dir=settings.local_dir, prefix="code-") as folder:
            ship_code(spark, Path(folder))
            yield spark
    finally:
        spark.stop()


def nanos_of(frame: DataFrame, column: str) -> Column:
    """``column`` as int64 nanoseconds since 1970, whatever the file's unit (NANOS arrive as long)."""
    kind = frame.schema[column].dataType
    if isinstance(kind, T.LongType):
        return F.col(column)
    if isinstance(kind, (T.TimestampType, T.TimestampNTZType)):
        return F.unix_micros(F.col(column).cast(T.TimestampType())) * F.lit(1000)
    raise TypeError(f"{column}: not a timestamp ({kind})")


def read_ordered(spark: SparkSession, path: Path | str, columns: list[str]) -> DataFrame:
    """``columns`` of a parquet file plus ``_row``, the row's position in the file (its deterministic order)."""
    frame = spark.read.parquet(str(path))
    return frame.select(*columns, F.col("_metadata.row_index").alias(ROW))


def day_of(nanos: str) -> Column:
    """Days since 1970 of the int64 nanoseconds in column ``nanos`` (floor, as numpy's datetime64[D]), in
    integer arithmetic: a double division misplaces listens a few hundred nanoseconds from midnight."""
    return F.expr(f"div({nanos} - pmod({nanos}, {NS_PER_DAY}), {NS_PER_DAY})")
