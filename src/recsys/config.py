"""Typed, validated parameters: the machinery behind each stage's frozen config object.

A stage's config class lives beside the code that reads it (the stage module, or the logic module whose
functions take it: ``als.AlsFitConfig``, ``ranking.pipeline.RankingConfig``, ``serving.blend.BlendConfig``),
never here: this module is a dependency of every stage, so a config class here would rerun the whole
pipeline whenever one stage gains a setting. ``tests/test_rerun_scope.py`` checks that.

Each config reads exactly the keys its stage's ``dvc.yaml`` entry declares under ``params`` (so a change
to any other key does not rerun it; ``tests/test_config.py`` checks the two agree), and every field names
its key and what it allows. A missing, mistyped or out-of-range value raises ``ConfigError`` before any
data is read, naming the key, the value and what is allowed; checks that need the data (a split date
outside the listening period, ...) raise the same error from the stage once the data is read. The stage
wrapper (``stage_runner.py``) turns it into one message and exit status 1.

>>> @dataclasses.dataclass(frozen=True)
... class FitConfig(Config):
...     factors: int = param("als.factors", integer(1))
>>> FitConfig.from_params({"als": {"factors": 0}})
Traceback (most recent call last):
...
src.recsys.config.ConfigError: params.yaml: als.factors = 0: expected an integer >= 1
>>> FitConfig.keys()
['als.factors']
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


def numbers(low: float | None = None, high: float | None = None, low_open: bool = False) -> Check:
    """A non-empty list of distinct numbers, each as ``number`` allows (kept as a tuple of floats): a search space."""
    each = number(low, high, low_open=low_open)

    def check(key: str, value: Any) -> tuple[float, ...]:
        if not isinstance(value, (list, tuple)) or not value:
            raise invalid(key, value, "a non-empty list of numbers")
        values = tuple(each(f"{key}[{i}]", v) for i, v in enumerate(value))
        if len(set(values)) != len(values):
            raise invalid(key, value, "distinct values")
        return values
    return check


def choices(options: Sequence[str]) -> Check:
    """A non-empty list of distinct values out of ``options`` (kept as a tuple): a search space."""
    def check(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)) or not value or any(v not in options for v in value) \
                or len(set(value)) != len(value):
            raise invalid(key, value, f"a non-empty list of distinct values out of {', '.join(options)}")
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
