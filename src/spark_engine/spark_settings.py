"""The engine switch in params.yaml: ``engine.name`` (local | spark) and the Spark settings users tune.

No pyspark here: every stage with a Spark variant reads this config, also on the local engine.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import re
from typing import Any

from src.recsys.config import Check, Config, integer, invalid, param, section, text

ENGINES = ("local", "spark")
MASTER = re.compile(r"^(local(\[(\*|[1-9]\d*)(,\s*[1-9]\d*)?\])?|yarn|(spark|k8s|mesos)://\S+)$")
SIZE = re.compile(r"^([1-9]\d*)([kmgt])$", re.IGNORECASE)
SIZE_MIB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2}
MIN_MEMORY_MIB = 512  # below ~450 MiB Spark's JVM refuses to start ("System memory ... must be at least")


def master_url() -> Check:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or not MASTER.match(value.strip()):
            raise invalid(key, value, "a Spark master URL: local, local[N], local[*], yarn, spark://HOST:PORT, "
                                      "k8s://https://HOST:PORT or mesos://HOST:PORT")
        return value.strip()
    return check


def memory_size(minimum_mib: int = MIN_MEMORY_MIB) -> Check:
    """A JVM memory size as Spark writes it (``512m``, ``4g``), at least ``minimum_mib``."""
    def check(key: str, value: Any) -> str:
        found = SIZE.match(value) if isinstance(value, str) else None
        if not found or int(found[1]) * SIZE_MIB[found[2].lower()] < minimum_mib:
            raise invalid(key, value, f"a memory size like 2g or 1536m, at least {minimum_mib}m")
        return value.lower()
    return check


@dataclasses.dataclass(frozen=True)
class SparkSettings(Config):
    master: str = param("engine.spark.master", master_url())
    driver_memory: str = param("engine.spark.driver_memory", memory_size())
    executor_memory: str = param("engine.spark.executor_memory", memory_size())
    shuffle_partitions: int = param("engine.spark.shuffle_partitions", integer(1))
    local_dir: str = param("engine.spark.local_dir", text())  # scratch space for shuffles and spills
    checkpoint_dir: str = param("engine.spark.checkpoint_dir", text())  # ALS cuts its lineage here: shared on a cluster


def check_installed(key: str, name: str) -> None:
    """Spark chosen without pyspark installed: one message saying what to install, before any data is read."""
    if name == "spark" and importlib.util.find_spec("pyspark") is None:
        raise invalid(key, name, "local, or pyspark installed for spark (pip install -r requirements-spark.txt; "
                                 "Java 17 on the PATH)")


class EngineSwitch(Config):
    """Base of the switches (a ``name`` field, local or spark, and the Spark settings): choosing Spark without
    pyspark fails as a parameter error, and ``on_spark`` tells the stage which engine runs."""

    def __post_init__(self) -> None:
        super().__post_init__()
        key = next(field.metadata["key"] for field in dataclasses.fields(self) if field.name == "name")
        check_installed(key, self.name)

    @property
    def on_spark(self) -> bool:
        return self.name == "spark"


@dataclasses.dataclass(frozen=True)
class EngineConfig(EngineSwitch):
    """What a data stage with a Spark variant reads: the switch and, for ``spark``, the session settings."""

    name: str = param("engine.name", text(ENGINES))
    spark: SparkSettings = section(SparkSettings)
