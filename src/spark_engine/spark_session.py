"""One Spark session from the ``engine.spark`` settings, and the readers every Spark job shares.

A session that cannot start (an unreachable master, memory the JVM refuses, ...) raises ``ConfigError``
naming the settings and Spark's own first line, so the stage stops with one message, not a Java stack trace.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
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


class HeldStderr:
    """This process's stderr (fd 2), and so that of the JVM spark-submit starts, turned into a pipe whose text
    is held while the session starts; ``release`` gives fd 2 back and returns the text. The JVM keeps the pipe
    for its whole life, so from then on a thread passes what it writes through to the real stderr: its errors
    during the stage (a task's OutOfMemoryError, an executor lost) must reach the stage's log."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._held: list[bytes] = []
        self._passing = False
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._pump, args=(read_end,), daemon=True).start()

    def _pump(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while data := pipe.read(1 << 16):
                with self._lock:
                    if not self._passing:
                        self._held.append(data)
                        continue
                while data:
                    data = data[os.write(2, data):]
        self._closed.set()

    def release(self, wait: float = 0.0) -> str:
        """Give stderr back and return the text held, after waiting up to ``wait`` seconds for the pipe to
        close (a JVM that failed to start is exiting, its reason maybe not yet written)."""
        sys.stderr.flush()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._closed.wait(wait)
        with self._lock:
            self._passing = True
            text = b"".join(self._held).decode(errors="replace")
            self._held.clear()
        return text


def start_session(settings: SparkSettings, app: str) -> SparkSession:
    """A Spark session for ``settings``; ``ConfigError`` naming them when Spark cannot start one."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers run this interpreter (its numpy)
    Path(settings.local_dir).mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in session_conf(settings, app).items():
        builder = builder.config(key, value)
    failure = None
    held = HeldStderr()
    try:
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.setCheckpointDir(settings.checkpoint_dir)
        spark.range(1).count()  # executors answer: a master that accepts no work fails here, not mid-stage
    except Exception as error:  # py4j / PySpark errors: the Java failure becomes one line naming the settings
        failure = error
    output = held.release(wait=5.0 if failure is not None else 0.0)
    if failure is not None:
        raise ConfigError(
            f"params.yaml: engine.spark (master {settings.master!r}, driver_memory {settings.driver_memory!r}, "
            f"executor_memory {settings.executor_memory!r}): Spark could not start a session: "
            f"{first_line(failure, output)}"
        ) from None
    sys.stderr.write(output)  # a good start's warnings stay visible
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
