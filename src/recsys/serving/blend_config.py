"""The blend settings a served list follows: how online candidates are built and how they meet the offline list.

Not a params.yaml section: the `serving` stage chooses them per data version by replaying held-out users
(``search.py``; params.yaml holds only the search space) and stores them in the bundle's manifest, so a
service serves the settings learned on the data its bundle came from.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

STRATEGIES = ("interleave", "rrf", "learned")  # learned: the bundle's re-ranker orders the union of both lists
_NUMBER_BOUNDS = {  # name: (low, high, low excluded)
    "recency_decay": (0.0, 1.0, True), "similar_weight": (0.0, 10.0, False),
    "online_weight": (0.0, 1.0, False), "cold_online_weight": (0.0, 1.0, False),
}


@dataclass(frozen=True)
class BlendConfig:
    """One point of the search space; a bad value raises ``ValueError`` naming the setting."""

    recent_listens: int = 3  # online candidates come from the last N online listens
    recency_decay: float = 0.5  # the j-th latest listen (j = 0, 1, ...) weighs decay ** j
    similar_weight: float = 0.5  # a similar track against a played-next one (a played-next row's best scores 1)
    strategy: str = "interleave"  # users with offline lists: interleave | rrf | learned
    online_weight: float = 0.5  # share of the online list against the offline one (interleave, rrf)
    cold_strategy: str = "interleave"  # users without: the online list against the popular chart
    cold_online_weight: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.recent_listens, bool) or not isinstance(self.recent_listens, int) or self.recent_listens < 1:
            raise ValueError(f"recent_listens = {self.recent_listens!r}: expected an integer >= 1")
        for name, (low, high, low_open) in _NUMBER_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value <= high \
                    or not (value > low if low_open else value >= low):
                raise ValueError(f"{name} = {value!r}: expected a number with {low} {'<' if low_open else '<='} "
                                 f"value <= {high}")
            object.__setattr__(self, name, float(value))
        for name in ("strategy", "cold_strategy"):
            if getattr(self, name) not in STRATEGIES:
                raise ValueError(f"{name} = {getattr(self, name)!r}: expected one of {', '.join(STRATEGIES)}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "BlendConfig":
        """From a stored mapping; unknown or missing settings are errors (a bundle of another code version)."""
        if not isinstance(values, Mapping):
            raise ValueError(f"expected a mapping of settings, got {values!r}")
        names = {field.name for field in dataclasses.fields(cls)}
        if set(values) != names:
            raise ValueError(f"expected the settings {', '.join(sorted(names))}, got {', '.join(sorted(values))}")
        return cls(**values)
