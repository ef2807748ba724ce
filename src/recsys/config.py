"""Typed, validated parameters: one frozen config object per stage, built once from ``params.yaml``.

Each stage's config reads exactly the keys its ``dvc.yaml`` entry declares under ``params`` (so a change
to any other key does not rerun it; ``tests/test_config.py`` checks the two agree), and every field names
its key and what it allows. A missing, mistyped or out-of-range value raises ``ConfigError`` before any
data is read, naming the key, the value and what is allowed; checks that need the data (a split date
outside the listening period, ...) raise the same error from the stage once the data is read. The stage
wrapper (``stage.py``) turns it into one message and exit status 1.

>>> AlsFitConfig.from_params({"als": {"factors": 0, "iterations": 30, "regularization": 0.05, "alpha": 1.0,
...                                   "random_state": 42}})
Traceback (most recent call last):
...
src.recsys.config.ConfigError: params.yaml: als.factors = 0: expected an integer >= 1
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable, Mapping, Sequence

Check = Callable[[str, Any], Any]  # (key, value) -> the value, normalised; raises ConfigError


class ConfigError(ValueError):
    """A parameter is missing, mistyped or out of range; the message names the key, the value and what is allowed."""


def invalid(key: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"params.yaml: {key} = {value!r}: expected {expected}")


def read(params: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted ``key`` (``"rank.candidates.als"``); ``ConfigError`` naming it when absent."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"params.yaml: {key}: missing")
        node = node[part]
    return node


# ---------------------------------------------------------------- checks


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    what = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (f" <= {maximum}" if maximum is not None else "")

    def check(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum) \
                or (maximum is not None and value > maximum):
            raise invalid(key, value, what)
        return value
    return check


def number(low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> Check:
    """A real number in the interval; an integer is accepted and becomes a float."""
    bounds = [f"{low} {'<' if low_open else '<='} value" if low is not None else "",
              f"value {'<' if high_open else '<='} {high}" if high is not None else ""]
    what = "a number" + (f" with {' and '.join(b for b in bounds if b)}" if any(bounds) else "")

    def check(key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise invalid(key, value, what)
        if low is not None and (value <= low if low_open else value < low):
            raise invalid(key, value, what)
        if high is not None and (value >= high if high_open else value > high):
            raise invalid(key, value, what)
        return float(value)
    return check


def boolean() -> Check:
    def check(key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise invalid(key, value, "true or false")
        return value
    return check


def text(options: Sequence[str] | None = None) -> Check:
    what = f"one of {', '.join(options)}" if options else "a non-empty string"

    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or (options and value not in options):
            raise invalid(key, value, what)
        return value
    return check


def day() -> Check:
    """A calendar day, ``"YYYY-MM-DD"`` (quoted or not in YAML); kept as the ISO string."""
    def check(key: str, value: Any) -> str:
        if isinstance(value, datetime.date):
            value = value.isoformat()
        try:
            if not isinstance(value, str):
                raise ValueError
            datetime.date.fromisoformat(value)
        except ValueError:
            raise invalid(key, value, 'a day as "YYYY-MM-DD"') from None
        return value
    return check


def increasing_integers(minimum: int = 1) -> Check:
    """A non-empty list of integers >= ``minimum``, strictly increasing (kept as a tuple)."""
    what = f"a non-empty list of integers >= {minimum} in increasing order"

    def check(key: str, value: Any) -> tuple[int, ...]:
        if not isinstance(value, (list, tuple)) or not value or any(
                isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in value) \
                or any(a >= b for a, b in zip(value, value[1:])):
            raise invalid(key, value, what)
        return tuple(value)
    return check


# ---------------------------------------------------------------- the base class


def param(key: str, check: Check, **kwargs: Any) -> Any:
    """A config field read from the dotted ``key`` of params.yaml and validated by ``check``."""
    return dataclasses.field(metadata={"key": key, "check": check}, **kwargs)


def section(config: type, **renamed: str) -> Any:
    """A nested config field; ``renamed`` reads some of its fields from other keys (``iterations=...``)."""
    return dataclasses.field(metadata={"config": config, "renamed": renamed})


class Config:
    """Base of the frozen config dataclasses: validation on construction, ``from_params`` and ``keys``."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if "check" in field.metadata:
                value = field.metadata["check"](field.metadata["key"], getattr(self, field.name))
                object.__setattr__(self, field.name, value)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], **renamed: str):
        """Read and validate every field from the whole params.yaml mapping (field ``x`` from ``renamed[x]``)."""
        values = {}
        for field in dataclasses.fields(cls):
            if "check" in field.metadata:
                key = renamed.get(field.name, field.metadata["key"])
                values[field.name] = field.metadata["check"](key, read(params, key))
            else:
                values[field.name] = field.metadata["config"].from_params(params, **field.metadata["renamed"])
        return cls(**values)

    @classmethod
    def keys(cls, **renamed: str) -> list[str]:
        """The dotted params keys ``from_params`` reads: what the stage must declare in dvc.yaml."""
        found = []
        for field in dataclasses.fields(cls):
            if "check" in field.metadata:
                found.append(renamed.get(field.name, field.metadata["key"]))
            else:
                found.extend(field.metadata["config"].keys(**field.metadata["renamed"]))
        return found


# ---------------------------------------------------------------- one config per stage (and shared parts)


@dataclasses.dataclass(frozen=True)
class GenerateConfig(Config):
    scale: float = param("generate.scale", number(0.0, low_open=True))
    seed: int = param("generate.seed", integer(0))
    chunk_users: int = param("generate.chunk_users", integer(1))


@dataclasses.dataclass(frozen=True)
class CleanConfig(Config):
    raw_dir: str = param("data.raw_dir", text())
    min_user_events: int = param("clean.min_user_events", integer(1))


@dataclasses.dataclass(frozen=True)
class EdaConfig(Config):
    top_n: int = param("eda.top_n", integer(1))
    histogram_bins: int = param("eda.histogram_bins", integer(1))


@dataclasses.dataclass(frozen=True)
class SplitConfig(Config):
    date: str = param("split.date", day())
    train_sample_frac: float = param("split.train_sample_frac", number(0.0, 1.0, low_open=True))
    seed: int = param("split.seed", integer(0))


@dataclasses.dataclass(frozen=True)
class PopularConfig(Config):
    n: int = param("popular.n", integer(1))


@dataclasses.dataclass(frozen=True)
class AlsFitConfig(Config):
    """What ``fit_als`` needs; `rank_train` reads ``iterations`` from ``rank.als_iterations``."""

    factors: int = param("als.factors", integer(1))
    iterations: int = param("als.iterations", integer(1))
    regularization: float = param("als.regularization", number(0.0))
    alpha: float = param("als.alpha", number(0.0, low_open=True))
    random_state: int = param("als.random_state", integer(0))


@dataclasses.dataclass(frozen=True)
class AlsConfig(Config):
    fit: AlsFitConfig = section(AlsFitConfig)
    n: int = param("als.n", integer(1))
    filter_seen: bool = param("als.filter_seen", boolean())


@dataclasses.dataclass(frozen=True)
class SimilarConfig(Config):
    n: int = param("similar.n", integer(1))


@dataclasses.dataclass(frozen=True)
class CandidateConfig(Config):
    """How many candidates each source gives a user."""

    als: int = param("rank.candidates.als", integer(1))
    recent_listens: int = param("rank.candidates.recent_listens", integer(0))
    popular: int = param("rank.candidates.popular", integer(0))
    trending: int = param("rank.candidates.trending", integer(0))


@dataclasses.dataclass(frozen=True)
class RankingConfig(Config):
    """What candidates and features read, the same for `rank_train` (as of T - W) and `rank` (as of T)."""

    candidates: CandidateConfig = section(CandidateConfig)
    recent_days: float = param("rank.recent_days", number(0.0, low_open=True))
    affinity_half_life_days: float = param("rank.affinity_half_life_days", number(0.0, low_open=True))
    batch_users: int = param("rank.batch_users", integer(1))


@dataclasses.dataclass(frozen=True)
class RankerModelConfig(Config):
    loss: str = param("rank.model.loss", text())
    iterations: int = param("rank.model.iterations", integer(1))
    learning_rate: float = param("rank.model.learning_rate", number(0.0, low_open=True))
    depth: int = param("rank.model.depth", integer(1, 16))
    early_stopping_rounds: int = param("rank.model.early_stopping_rounds", integer(1))
    validation_share: float = param("rank.model.validation_share", number(0.0, 1.0, low_open=True, high_open=True))
    seed: int = param("rank.model.seed", integer(0))


@dataclasses.dataclass(frozen=True)
class RankTrainConfig(Config):
    split_date: str = param("split.date", day())
    als: AlsFitConfig = section(AlsFitConfig, iterations="rank.als_iterations")
    similar_n: int = param("similar.n", integer(1))
    label_days: int = param("rank.label_days", integer(1))
    ranking: RankingConfig = section(RankingConfig)
    negatives_per_user: int = param("rank.negatives_per_user", integer(0))
    max_train_users: int = param("rank.max_train_users", integer(1))
    model: RankerModelConfig = section(RankerModelConfig)


@dataclasses.dataclass(frozen=True)
class RankConfig(Config):
    split_date: str = param("split.date", day())
    similar_n: int = param("similar.n", integer(1))
    n: int = param("rank.n", integer(1))
    ranking: RankingConfig = section(RankingConfig)


@dataclasses.dataclass(frozen=True)
class EvaluateConfig(Config):
    raw_dir: str = param("data.raw_dir", text())
    popular_filter_seen: bool = param("popular.filter_seen", boolean())
    ks: tuple[int, ...] = param("evaluate.k", increasing_integers(1))
    oracle_max_users: int = param("evaluate.oracle_max_users", integer(1))
    seed: int = param("evaluate.seed", integer(0))
