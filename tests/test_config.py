"""Typed params: each stage's config reads exactly the keys dvc.yaml declares for it, and a wrong, missing or
out-of-range value fails with one message naming the key, the value and what is allowed."""
from __future__ import annotations

import copy
import importlib
import shutil

import pytest
import yaml

from src.recsys import evaluation, headline
from src.recsys.als_model import AlsFitConfig
from src.recsys.config import ConfigError
from src.recsys.ranking.training import RankTrainConfig
from src.stages.replay import ReplayConfig
from src.recsys.serving.search import BlendSearchConfig
from src.stages.als import AlsConfig
from src.stages.als_tune import AlsTuneConfig
from src.stages.evaluate import EvaluateConfig
from src.stages.generate import GenerateConfig
from src.stages.split import SplitConfig
from tests.helpers import REPO_ROOT
from tests.helpers.raw import run_stage

DVC = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("stage", sorted(DVC["stages"]))
def test_stage_config_reads_exactly_the_declared_params(stage):
    cfg = importlib.import_module(f"src.stages.{stage}").main.config
    read = cfg.keys() if cfg else []
    declared = DVC["stages"][stage].get("params", [])

    def covers(key: str, read_key: str) -> bool:
        return read_key == key or read_key.startswith(key + ".")

    assert sorted(k for k in read if not any(covers(d, k) for d in declared)) == [], "read but not declared"
    assert [d for d in declared if not any(covers(d, k) for k in read)] == [], "declared but not read"
    if cfg:
        cfg.from_params(PARAMS)  # the shipped params.yaml is valid


def with_value(key: str, value):
    params = copy.deepcopy(PARAMS)
    *parents, last = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return params


@pytest.mark.parametrize("cls, key, value, message", [
    (AlsConfig, "als.factors", 0, "params.yaml: als.factors = 0: expected an integer >= 1"),
    (AlsConfig, "als.factors", 2.5, "als.factors = 2.5: expected an integer >= 1"),
    (AlsConfig, "als.factors", True, "als.factors = True: expected an integer >= 1"),
    (AlsConfig, "als.filter_seen", "yes", "als.filter_seen = 'yes': expected true or false"),
    (AlsConfig, "als.alpha", 0, "als.alpha = 0: expected a number with 0.0 < value"),
    (AlsConfig, "als.n", KeyError, "params.yaml: als.n: missing"),
    (SplitConfig, "split.train_sample_frac", 0, "split.train_sample_frac = 0: expected a number with 0.0 < value and value <= 1.0"),
    (SplitConfig, "split.train_sample_frac", 1.5, "split.train_sample_frac = 1.5"),
    (SplitConfig, "split.date", "16/12/2022", "split.date = '16/12/2022': expected a day as \"YYYY-MM-DD\""),
    (EvaluateConfig, "evaluate.k", [10, 5], "evaluate.k = [10, 5]: expected a non-empty list of integers >= 1 in increasing order"),
    (EvaluateConfig, "evaluate.k", [0, 5], "evaluate.k = [0, 5]"),
    (EvaluateConfig, "evaluate.k", [], "evaluate.k = []"),
    (AlsTuneConfig, "als.max_iterations", 0, "als.max_iterations = 0: expected an integer >= 1"),
    (AlsTuneConfig, "als.min_gain", -0.1, "als.min_gain = -0.1: expected a number with 0.0 <= value"),
    (RankTrainConfig, "rank.model.validation_share", 1.0, "rank.model.validation_share = 1.0"),
    (RankTrainConfig, "rank.candidates.als", KeyError, "rank.candidates.als: missing"),
    (ReplayConfig, "replay.reveal", [3, 1], "replay.reveal = [3, 1]"),
    (ReplayConfig, "replay.headline_reveal", 2, "replay.headline_reveal = 2: expected one of replay.reveal [1, 3, 5]"),
    (ReplayConfig, "blend_search.tune_share", 1.0, "blend_search.tune_share = 1.0: expected a number with 0.0 < value and value < 1.0"),
    (BlendSearchConfig, "blend_search.space.strategy", ["mix"],
     "blend_search.space.strategy = ['mix']: expected a non-empty list of distinct values out of interleave, rrf, learned"),
    (BlendSearchConfig, "blend_search.space.online_weight", [0.1, 1.5], "blend_search.space.online_weight[1] = 1.5"),
    (BlendSearchConfig, "blend_search.space.similar_weight", [], "blend_search.space.similar_weight = []"),
    (BlendSearchConfig, "blend_search.space.recency_decay", [0.5, 0.5], "expected distinct values"),
    (BlendSearchConfig, "blend_search.space.recent_listens", [0, 1], "blend_search.space.recent_listens = [0, 1]"),
    (GenerateConfig, "generate.sessions.mean_length", 0.5, "generate.sessions.mean_length = 0.5: expected a number with 1.0 <= value"),
    (GenerateConfig, "generate.sessions.continue_share", 1.0, "generate.sessions.continue_share = 1.0: expected a number with 0.0 <= value and value < 1.0"),
    (GenerateConfig, "generate.sessions.album_share", -0.1, "generate.sessions.album_share = -0.1"),
    (GenerateConfig, "generate.sessions.new_release_share", "high", "generate.sessions.new_release_share = 'high'"),
    (GenerateConfig, "generate.sessions.new_release_days", 0, "generate.sessions.new_release_days = 0: expected an integer >= 1 <= 365"),
    (GenerateConfig, "generate.sessions.mean_length", KeyError, "params.yaml: generate.sessions.mean_length: missing"),
])
def test_a_bad_value_names_the_key_the_value_and_what_is_allowed(cls, key, value, message):
    with pytest.raises(ConfigError) as error:
        cls.from_params(with_value(key, value))
    assert message in str(error.value)


def test_configs_are_frozen_and_validated_when_built_directly():
    cfg = AlsFitConfig(factors=4, regularization=0.1, alpha=1, random_state=0)
    assert cfg.alpha == 1.0 and isinstance(cfg.alpha, float)
    with pytest.raises(AttributeError):
        cfg.factors = 5
    with pytest.raises(ConfigError, match="als.factors = -1"):
        AlsFitConfig(factors=-1, regularization=0.1, alpha=1.0, random_state=0)


def test_an_unquoted_yaml_date_is_a_day():
    assert SplitConfig.from_params({**PARAMS, **yaml.safe_load("split: {date: 2022-12-16, train_sample_frac: 1, seed: 1}")}).date \
        == "2022-12-16"


def test_the_plots_and_the_headline_use_the_one_recommender_list():
    for plot in DVC["plots"]:
        (path, spec), = plot.items()
        if path.startswith("metrics/evaluation/"):
            assert tuple(spec["y"]) == evaluation.RECOMMENDERS, path
    assert list(headline.OFFLINE_ROWS) == [*evaluation.RECOMMENDERS, evaluation.COLD_USERS]


# ---------------------------------------------------------------- stages stop before writing anything


def stage_dir(tmp_path, key: str, value, inputs: list[str]):
    """A working folder with params.yaml (``key`` set to ``value``) and copies of the stage's inputs."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_value(key, value)))
    for name in inputs:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    return tmp_path


def test_als_with_zero_factors_exits_1_before_reading_data(tmp_path):
    result = run_stage("als", stage_dir(tmp_path, "als.factors", 0, []))
    assert result.returncode == 1
    assert "invalid parameter: params.yaml: als.factors = 0: expected an integer >= 1" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_split_after_the_last_listen_exits_1_and_writes_nothing(tmp_path, generated):
    folder = tmp_path / "data" / "processed"
    folder.mkdir(parents=True)
    generated.events.to_parquet(folder / "events.parquet")
    stage_dir(tmp_path, "split.date", "2023-03-01", [])
    result = run_stage("split", tmp_path)
    assert result.returncode == 1
    assert "invalid parameter: params.yaml: split.date = '2023-03-01': expected a day after the first listen" \
        in result.stderr and "test would hold no events" in result.stderr
    assert not (tmp_path / "data" / "split").exists() and not (tmp_path / "metrics").exists()
