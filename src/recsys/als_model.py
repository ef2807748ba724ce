"""Implicit ALS: fitting one iteration at a time, and a portable saved model with the real ids of its rows
(top-k search is in ``topk``; the iteration count is chosen by ``als_tuning``)."""
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
    """What an ALS fit needs besides its iteration count, which `als_tune` chooses on held-out listens."""

    factors: int = param("als.factors", integer(1))
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


class AlsFit:
    """implicit's CPU ALS run one iteration at a time, so a validation metric can stop it.

    implicit's own ``fit`` runs a fixed count; this repeats its steps (the same float32 matrices, the same
    seeded initialisation, users then items, the same conjugate-gradient solver calls), so ``k`` steps
    give exactly the factors of ``fit`` with ``iterations=k`` (``tests/test_als_tuning.py`` checks it).
    """

    def __init__(self, data: InteractionMatrix, cfg: AlsFitConfig):
        self.data = data
        self.regularization = cfg.regularization
        with threadpool_limits(1, "blas"):  # implicit warns about a multi-threaded BLAS when built
            self._solver = AlternatingLeastSquares(factors=cfg.factors).solver  # its conjugate-gradient solver
        user_items = data.matrix.astype(np.float32, copy=False)
        self._user_items = user_items * np.float32(cfg.alpha) if cfg.alpha != 1.0 else user_items
        self._item_users = self._user_items.T.tocsr()
        rng = np.random.default_rng(cfg.random_state)
        self.user_factors = rng.random((user_items.shape[0], cfg.factors), dtype=np.float32) * 0.01
        self.item_factors = rng.random((user_items.shape[1], cfg.factors), dtype=np.float32) * 0.01
        self.iterations = 0

    def step(self) -> None:
        """One ALS iteration: users from tracks, then tracks from users (BLAS on one thread, as implicit
        recommends, while its solver uses every core)."""
        with threadpool_limits(1, "blas"):
            self._solver(self._user_items, self.user_factors, self.item_factors, self.regularization, num_threads=0)
            self._solver(self._item_users, self.item_factors, self.user_factors, self.regularization, num_threads=0)
        self.iterations += 1

    def model(self) -> AlsModel:
        """The factors as they are now (copies: further steps do not change them)."""
        return AlsModel(user_ids=self.data.user_ids, item_ids=self.data.item_ids,
                        user_factors=self.user_factors.copy(), item_factors=self.item_factors.copy())


def fit_als(data: InteractionMatrix, cfg: AlsFitConfig, iterations: int) -> AlsModel:
    """A fixed number of ALS iterations (the count `als_tune` chose)."""
    fit = AlsFit(data, cfg)
    for _ in range(iterations):
        fit.step()
    return fit.model()
