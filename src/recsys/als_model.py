"""Implicit ALS: fitting, and a portable saved model with the real ids of its rows (top-k search is in ``topk``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from .arrays import encode
from .config import Config, integer, number, param
from .interactions import InteractionMatrix
from .io import atomic_path


@dataclass(frozen=True)
class AlsFitConfig(Config):
    """What ``fit_als`` needs; `rank_train` reads ``iterations`` from ``rank.als_iterations``."""

    factors: int = param("als.factors", integer(1))
    iterations: int = param("als.iterations", integer(1))
    regularization: float = param("als.regularization", number(0.0))
    alpha: float = param("als.alpha", number(0.0, low_open=True))
    random_state: int = param("als.random_state", integer(0))


@dataclass
class AlsModel:
    """Factors with the real ids of their rows: everything needed to score, no pickled encoders."""

    user_ids: np.ndarray  # int32
    item_ids: np.ndarray  # int32
    user_factors: np.ndarray  # float32 (n_users, f)
    item_factors: np.ndarray  # float32 (n_items, f)

    def save(self, path: Path | str) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **vars(self))

    def check_fit_on(self, data: InteractionMatrix) -> None:
        """Fail loudly if the factors' rows and columns are not this matrix's users and tracks."""
        if not (np.array_equal(data.user_ids, self.user_ids) and np.array_equal(data.item_ids, self.item_ids)):
            raise RuntimeError("the ALS model was not fit on these events: rerun `dvc repro als`")

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Factor row of each user; every one must be known to the model (candidates exist only for them)."""
        rows = encode(user_ids, self.user_ids)
        if (rows < 0).any():
            raise ValueError(f"users unknown to the ALS model: {user_ids[rows < 0][:5]}")
        return rows

    @classmethod
    def load(cls, path: Path | str) -> "AlsModel":
        with np.load(path) as data:
            return cls(**{name: data[name] for name in ("user_ids", "item_ids", "user_factors", "item_factors")})


def fit_als(data: InteractionMatrix, cfg: AlsFitConfig, show_progress: bool = True) -> AlsModel:
    """Fit implicit's CPU ALS; BLAS is limited to one thread, as implicit recommends, while it uses both cores."""
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=cfg.factors, iterations=cfg.iterations, regularization=cfg.regularization, alpha=cfg.alpha,
            random_state=cfg.random_state, calculate_training_loss=False,
        )
        model.fit(data.matrix, show_progress=show_progress)
    return AlsModel(
        user_ids=data.user_ids, item_ids=data.item_ids,
        user_factors=np.ascontiguousarray(model.user_factors, dtype=np.float32),
        item_factors=np.ascontiguousarray(model.item_factors, dtype=np.float32),
    )

