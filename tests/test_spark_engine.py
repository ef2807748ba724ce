"""The Spark engine (src/spark_engine) writes what the local engine writes: the same files, schema and rows
in the same order, floats within 1e-9 relative; the same data_quality and split reports; the same
validation messages; ALS on Spark within 10% of implicit's NDCG@10; bad Spark settings stop with one message.

Every stage runs on both engines from the same inputs (the generated dataset and the tiny dirty raw tables),
and each Spark stage reads what the Spark stage before it wrote."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from src.recsys import eda_stats, evaluation
from src.recsys.config import ConfigError
from src.recsys.io import DataValidationError, write_json, write_parquet
from src.recsys.popularity import top_popular_of_file
from src.recsys.sequential_rules import SEQUENCE_COLUMNS, played_next
from src.recsys.time_split import split_file
from src.spark_engine.spark_settings import EngineConfig
from src.stages.clean import clean_locally
from tests.helpers import REPO_ROOT, synthetic
from tests.helpers.raw import run_stage, tiny_raw_tables, write_raw

pytestmark = pytest.mark.slow  # a JVM and Spark jobs: about 70 s of the suite

PARAMS = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
PLAYED_NEXT = {key: PARAMS["played_next"][key]
               for key in ("window", "distance_decay", "popularity_exponent", "min_support", "n")}
LOGGER = logging.getLogger("tests.spark")


def write_clean(folder: Path, outputs: dict, report: dict) -> Path:
    """What the clean stage writes besides the events (which both engines write as they clean), into ``folder``."""
    for name, frame in outputs.items():
        write_parquet(frame, folder / f"{name}.parquet")
    write_json(report, folder / "data_quality.json")
    return folder


def run_both(spark, raw_dir: Path, base: Path, sample_frac: float = 1.0, split_date: str = "2022-12-16") -> dict:
    """clean -> split -> popular -> played_next on each engine; the files each wrote, by engine."""
    from src.spark_engine import spark_cleaning, spark_played_next, spark_popular, spark_split

    local, remote = base / "local", base / "spark"
    outputs, report = clean_locally(raw_dir, synthetic.MIN_USER_EVENTS, LOGGER, local / "events.parquet")
    write_clean(local, outputs, report)
    write_clean(remote, *spark_cleaning.clean(spark, raw_dir, synthetic.MIN_USER_EVENTS, remote / "events.parquet"))
    write_json(split_file(local / "events.parquet", local / "train.parquet", local / "test.parquet", split_date,
                          sample_frac, 42), local / "split.json")
    write_json(spark_split.time_split(spark, remote / "events.parquet", split_date, sample_frac, 42,
                                      remote / "train.parquet", remote / "test.parquet"), remote / "split.json")
    n = PARAMS["popular"]["n"]
    train = pd.read_parquet(local / "train.parquet")
    write_parquet(top_popular_of_file(local / "train.parquet", pd.read_parquet(local / "items.parquet"), n),
                  local / "top_popular.parquet")
    write_parquet(spark_popular.top_popular(spark, remote / "train.parquet", remote / "items.parquet", n),
                  remote / "top_popular.parquet")
    write_parquet(played_next(train[SEQUENCE_COLUMNS], **PLAYED_NEXT), local / "played_next.parquet")
    write_parquet(spark_played_next.played_next(spark, remote / "train.parquet", **PLAYED_NEXT),
                  remote / "played_next.parquet")
    return {"local": local, "spark": remote}


def assert_same_files(folders: dict) -> None:
    local, remote = folders["local"], folders["spark"]
    names = sorted(p.name for p in local.iterdir())
    assert names == sorted(p.name for p in remote.iterdir())
    for name in names:
        if name.endswith(".json"):
            assert json.loads((remote / name).read_text()) == json.loads((local / name).read_text()), name
            assert (remote / name).read_text() == (local / name).read_text(), name  # key order too
            continue
        expected, found = pq.read_table(local / name), pq.read_table(remote / name)
        assert found.schema.equals(expected.schema, check_metadata=True), name
        assert found.num_rows == expected.num_rows > 0, name
        for column in expected.column_names:
            want, got = expected[column], found[column]
            if pa.types.is_floating(want.type):
                np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9, atol=0, err_msg=name)
            else:
                assert got.equals(want), f"{name}: column {column} differs"


@pytest.fixture(scope="module")
def default_data(spark, generated, tmp_path_factory) -> dict:
    return run_both(spark, generated.raw_dir, tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="module")
def dirty_data(spark, tmp_path_factory) -> dict:
    """Both engines on the tiny raw tables with every defect (helpers/raw.py)."""
    base = tmp_path_factory.mktemp("dirty")
    return run_both(spark, write_raw(base / "raw", tiny_raw_tables()), base, split_date="2022-02-03")


def test_spark_stages_write_what_the_local_engine_writes_on_the_generated_data(default_data):
    assert_same_files(default_data)
    for name in ("events", "train", "test"):  # streamed from Spark's part files: the local file's very bytes
        local, remote = (default_data[engine] / f"{name}.parquet" for engine in ("local", "spark"))
        assert remote.read_bytes() == local.read_bytes(), name


def eda_numbers_locally(events_path: Path, items: pd.DataFrame) -> tuple[dict, pd.DataFrame, np.ndarray]:
    events = eda_stats.scan_events(events_path, items)
    summary = eda_stats.summary_of(items, events.user_counts, events.events, events.first, events.last)
    summary["sequences"] = events.sequences
    return summary, eda_stats.day_table(events.days, events.day_counts), events.user_counts


@pytest.mark.parametrize("data", ["default", "dirty"])
def test_spark_eda_aggregates_equal_the_local_ones(spark, request, data):
    from src.spark_engine.spark_eda import event_aggregates

    folders = request.getfixturevalue(f"{data}_data")
    items = pd.read_parquet(folders["local"] / "items.parquet")
    summary, per_day, user_counts = eda_numbers_locally(folders["local"] / "events.parquet", items)
    found = event_aggregates(spark, folders["spark"] / "events.parquet", items)
    np.testing.assert_array_equal(found.user_counts, user_counts)
    pd.testing.assert_frame_equal(eda_stats.day_table(found.days, found.day_counts), per_day)
    on_spark = eda_stats.summary_of(items, found.user_counts, found.events, found.first, found.last)
    on_spark["sequences"] = found.sequences
    assert json.dumps(on_spark, sort_keys=False) == json.dumps(summary, sort_keys=False)
    assert summary["sequences"]["consecutive_pairs"] > 0


def test_spark_split_samples_train_as_the_local_engine(spark, default_data, tmp_path):
    from src.spark_engine import spark_split

    local_files = [tmp_path / f"{name}.parquet" for name in ("train", "test")]
    report = split_file(default_data["local"] / "events.parquet", *local_files, "2022-12-16", 0.3, 7)
    remote_files = [tmp_path / f"spark_{name}.parquet" for name in ("train", "test")]
    assert spark_split.time_split(spark, default_data["spark"] / "events.parquet", "2022-12-16", 0.3, 7,
                                  *remote_files) == report
    for want, got in zip(local_files, remote_files):
        assert got.read_bytes() == want.read_bytes()


def test_spark_split_writes_in_file_order_across_many_read_partitions(spark, default_data, tmp_path):
    """Train and test are written without a global sort (their rows stay in the file's order): with the
    events cut into many row groups and read as many partitions, they are still the local files."""
    from src.spark_engine import spark_split

    events = tmp_path / "events.parquet"
    pq.write_table(pq.read_table(default_data["local"] / "events.parquet"), events, row_group_size=20_000)
    local_files = [tmp_path / f"{name}.parquet" for name in ("train", "test")]
    report = split_file(events, *local_files, "2022-12-16", 1.0, 42)
    remote_files = [tmp_path / f"spark_{name}.parquet" for name in ("train", "test")]
    split_bytes = "spark.sql.files.maxPartitionBytes"
    saved = spark.conf.get(split_bytes)
    spark.conf.set(split_bytes, str(256 * 1024))
    try:
        partitions = spark.read.parquet(str(events)).rdd.getNumPartitions()
        assert spark_split.time_split(spark, events, "2022-12-16", 1.0, 42, *remote_files) == report
    finally:
        spark.conf.set(split_bytes, saved)
    assert partitions >= 8
    for want, got in zip(local_files, remote_files):
        assert got.read_bytes() == want.read_bytes()


def test_spark_clean_with_shuffle_joins_writes_the_same_events(spark, dirty_data, tmp_path, monkeypatch):
    """Past ``BROADCAST_ROWS`` duplicate rows or dropped users, the anti-joins shuffle and the events are
    sorted back into file order before the write: the same file and report as the broadcast path."""
    from src.spark_engine import spark_cleaning

    monkeypatch.setattr(spark_cleaning, "BROADCAST_ROWS", 0)
    raw_dir = write_raw(tmp_path / "raw", tiny_raw_tables())
    _, report = spark_cleaning.clean(spark, raw_dir, synthetic.MIN_USER_EVENTS, tmp_path / "events.parquet")
    assert report == json.loads((dirty_data["local"] / "data_quality.json").read_text())
    assert (tmp_path / "events.parquet").read_bytes() == (dirty_data["local"] / "events.parquet").read_bytes()


def test_spark_stages_on_the_dirty_raw_tables(dirty_data):
    assert_same_files(dirty_data)
    report = json.loads((dirty_data["spark"] / "data_quality.json").read_text())
    assert report["events_removed_duplicate"] == 1 and report["tracks_removed_duplicate_id"] == 1


@pytest.mark.parametrize("rows, message", [
    ([(1, 100, 1, "2022-01-01"), (-5, 100, 2, "2022-01-02")],
     "column 'user_id' should be ids in 0..2147483647, found values from -5 to 1"),
])
def test_spark_clean_validates_values_with_the_local_message(spark, raw_tables, tmp_path, rows, message):
    from src.spark_engine import spark_cleaning
    from tests.helpers.raw import interactions_table

    folder = write_raw(tmp_path / "raw", {**raw_tables, "interactions.parquet": interactions_table(rows)})
    with pytest.raises(DataValidationError) as local:
        clean_locally(folder, 1, LOGGER, tmp_path / "events.parquet")
    with pytest.raises(DataValidationError) as remote:
        spark_cleaning.clean(spark, folder, 1, tmp_path / "spark" / "events.parquet")
    assert str(remote.value) == str(local.value) and message in str(remote.value)
    assert not (tmp_path / "spark").exists()  # nothing partial written


def test_spark_clean_reads_nanosecond_and_microsecond_timestamps(spark, raw_tables, tmp_path):
    """The real files store started_at as TIMESTAMP(NANOS): read as a long (nanosAsLong); others converted."""
    from src.spark_engine import spark_cleaning

    events = raw_tables["interactions.parquet"]
    micros = events.set_column(3, "started_at", events["started_at"].cast(pa.timestamp("us")))
    results = []
    for name, table in (("ns", events), ("us", micros)):
        folder = write_raw(tmp_path / name, {**raw_tables, "interactions.parquet": table})
        spark_cleaning.clean(spark, folder, 4, tmp_path / name / "events.parquet")
        results.append(pq.read_table(tmp_path / name / "events.parquet")["started_at"])
    assert results[0].type == pa.timestamp("ns") and results[0].equals(results[1])


def test_spark_als_is_within_ten_percent_of_implicit(spark, generated, train_matrix, als_recommendations, tmp_path):
    from src.spark_engine import spark_als

    train = tmp_path / "train.parquet"
    write_parquet(generated.train, train)
    model = spark_als.fit_als(spark, train, train_matrix, synthetic.ALS, synthetic.ALS_ITERATIONS)
    assert np.array_equal(model.user_ids, train_matrix.user_ids) and model.user_factors.dtype == np.float32
    recs = synthetic.recommend_als(model, train_matrix)
    data = synthetic.evaluation_set_of(generated)
    implicit = evaluation.evaluate_recommendations(als_recommendations, data, [10])["ndcg_at_10"]
    on_spark = evaluation.evaluate_recommendations(recs, data, [10])["ndcg_at_10"]
    assert abs(on_spark - implicit) <= 0.1 * implicit, (on_spark, implicit)


# ---------------------------------------------------------------- the switch and bad settings


def with_engine(**spark) -> dict:
    params = json.loads(json.dumps(PARAMS))
    params["engine"]["name"] = "spark"
    params["engine"]["spark"].update(spark)
    return params


@pytest.mark.parametrize("key, value, message", [
    ("master", "bogus", "params.yaml: engine.spark.master = 'bogus': expected a Spark master URL"),
    ("master", "local[0]", "engine.spark.master = 'local[0]'"),
    ("driver_memory", "100m", "params.yaml: engine.spark.driver_memory = '100m': expected a memory size like 2g "
                              "or 1536m, at least 512m"),
    ("executor_memory", "lots", "engine.spark.executor_memory = 'lots'"),
    ("shuffle_partitions", 0, "engine.spark.shuffle_partitions = 0: expected an integer >= 1"),
])
def test_a_bad_spark_setting_names_the_key(key, value, message):
    with pytest.raises(ConfigError) as error:
        EngineConfig.from_params(with_engine(**{key: value}))
    assert message in str(error.value)


def test_an_unknown_engine_names_the_choices():
    params = json.loads(json.dumps(PARAMS))
    params["engine"]["name"] = "dask"
    with pytest.raises(ConfigError, match="engine.name = 'dask': expected one of local, spark"):
        EngineConfig.from_params(params)


def test_a_spark_session_that_cannot_start_stops_the_stage_with_one_message(raw_dir, tmp_path):
    """A cluster master this machine has no configuration for: exit 1, a message naming the settings, no Java stack trace, no output."""
    params = with_engine(master="yarn", local_dir=str(tmp_path / "scratch"))
    params["data"]["raw_dir"] = str(raw_dir)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run_stage("clean", tmp_path)
    assert result.returncode == 1
    assert "invalid parameter: params.yaml: engine.spark (master 'yarn'" in result.stderr
    assert "Spark could not start a session" in result.stderr
    assert "Traceback" not in result.stderr and "\tat org.apache" not in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "metrics").exists()


def test_spark_without_pyspark_says_what_to_install(monkeypatch):
    import importlib.util

    from src.spark_engine import spark_settings

    real = importlib.util.find_spec
    monkeypatch.setattr(spark_settings.importlib.util, "find_spec",
                        lambda name, *args: None if name == "pyspark" else real(name, *args))
    with pytest.raises(ConfigError, match=r"engine.name = 'spark': expected local, or pyspark installed for spark "
                                          r"\(pip install -r requirements-spark.txt"):
        EngineConfig.from_params(with_engine())
    assert not EngineConfig.from_params(PARAMS).on_spark  # the local engine needs nothing


def test_part_files_out_of_order_stop_the_write_and_leave_nothing(tmp_path):
    """The driver checks the order Spark wrote: a part whose keys go back fails, and no target appears."""
    from src.spark_engine.spark_output import stream_sorted_parts

    parts = []
    for index, keys in enumerate(([5, 6], [7, 9], [3, 4])):
        parts.append(tmp_path / f"part-{index:05d}.parquet")
        pq.write_table(pa.table({"x": pa.array([1, 2], pa.int32()), "_row": pa.array(keys, pa.int64())}), parts[-1])
    schema = pa.schema([("x", pa.int32())])
    assert stream_sorted_parts(parts[:2], "_row", tmp_path / "good" / "t.parquet", schema) == 4
    assert pq.read_table(tmp_path / "good" / "t.parquet")["x"].to_pylist() == [1, 2, 1, 2]
    with pytest.raises(RuntimeError, match="part-00002.parquet: Spark wrote the rows out of _row order"):
        stream_sorted_parts(parts, "_row", tmp_path / "out" / "t.parquet", schema)
    assert not (tmp_path / "out").exists()


def test_a_write_removes_the_part_files_a_killed_run_left(spark, tmp_path):
    from src.spark_engine.spark_output import write_sorted

    target = tmp_path / "events.parquet"
    stale = tmp_path / ".events.parquet.spark-0123abcd"
    (stale / "nested").mkdir(parents=True)
    (stale / "nested" / "part-00000.parquet").write_bytes(b"left by a SIGKILL")
    other = tmp_path / ".train.parquet.spark-0123abcd"  # another target's scratch is not this write's to remove
    other.mkdir()
    frame = spark.createDataFrame([(3, 30), (1, 10), (2, 20)], "position long, value long")
    assert write_sorted(frame, "position", target, pa.schema([("value", pa.int64())])) == 3
    assert pq.read_table(target)["value"].to_pylist() == [10, 20, 30]
    assert sorted(path.name for path in tmp_path.iterdir()) == [other.name, "events.parquet"]


def test_spark_played_next_in_chunks_of_a_few_users_equals_the_local_file(spark, default_data, tmp_path):
    """Python workers pair a chunk of whole users (and rank a chunk of whole tracks) at a time: with chunks
    of a few hundred rows, cut across many Arrow batches, the pairs are still the local engine's."""
    from src.spark_engine.spark_played_next import played_next as played_next_on_spark

    batch_rows = "spark.sql.execution.arrow.maxRecordsPerBatch"
    saved = spark.conf.get(batch_rows)
    spark.conf.set(batch_rows, "100")
    try:
        frame = played_next_on_spark(spark, default_data["spark"] / "train.parquet", **PLAYED_NEXT, worker_rows=300)
    finally:
        spark.conf.set(batch_rows, saved)
    write_parquet(frame, tmp_path / "played_next.parquet")
    assert (tmp_path / "played_next.parquet").read_bytes() == (default_data["local"] / "played_next.parquet").read_bytes()


def test_whole_key_chunks_never_split_a_key_and_keep_every_row():
    from src.spark_engine.spark_played_next import whole_key_chunks

    keys = np.repeat(np.arange(40), np.random.default_rng(3).integers(1, 30, 40))
    batches = pa.table({"k": keys, "row": np.arange(len(keys))}).to_batches(max_chunksize=7)
    chunks = list(whole_key_chunks(iter(batches), "k", 25))
    assert np.array_equal(np.concatenate([chunk["row"].to_numpy() for chunk in chunks]), np.arange(len(keys)))
    firsts = [chunk["k"].to_numpy()[0] for chunk in chunks[1:]]
    lasts = [chunk["k"].to_numpy()[-1] for chunk in chunks[:-1]]
    assert all(first != last for first, last in zip(firsts, lasts)) and len(chunks) > 5


def test_the_executors_get_the_project_code(spark):
    """played_next runs ``src.recsys`` functions in the executors' Python workers: a cluster's nodes get the
    package from the session (``ship_code``), not from an install."""
    import zipfile

    from pyspark import SparkFiles

    names = spark.sparkContext.parallelize([0], 1).map(lambda _: zipfile.ZipFile(SparkFiles.get("src.zip")).namelist()).first()
    assert {"src/recsys/sequential_rules.py", "src/spark_engine/spark_played_next.py"} <= set(names)


def test_what_the_jvm_logs_during_a_stage_reaches_stderr(spark, capfd):
    """The JVM's stderr is held while the session starts (a failed start shows one line): afterwards its log
    must pass through, or a task's error during a stage would leave only "SparkContext was shut down"."""
    import time

    with pytest.raises(Exception):
        spark.sparkContext.parallelize([1], 1).map(lambda _: 1 // 0).collect()
    time.sleep(1.0)  # the pump thread forwards as the JVM writes
    assert "ZeroDivisionError" in capfd.readouterr().err
