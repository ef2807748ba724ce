"""An ensemble of oblivious decision trees as three arrays: the learned re-ranker as the bundle stores it.

CatBoost fits it (``reranker.fit_reranker``); the service only evaluates it, with numpy: for tens of rows
that costs ~0.1 ms, less than CatBoost's own ``predict`` call, and the service needs no CatBoost. Only the
order of the scores is used, so CatBoost's scale and bias are left out.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TreeEnsemble:
    """Oblivious trees: tree ``t`` sends a row to leaf ``sum_d 2**d * (x[features[t, d]] > borders[t, d])``."""

    features: np.ndarray  # int32 (trees, depth)
    borders: np.ndarray  # float32 (trees, depth)
    leaves: np.ndarray  # float64 (trees, 2 ** depth)

    @classmethod
    def empty(cls) -> "TreeEnsemble":
        return cls(np.zeros((0, 1), np.int32), np.zeros((0, 1), np.float32), np.zeros((0, 2), np.float64))

    def __len__(self) -> int:
        return len(self.features)

    def score(self, rows: np.ndarray) -> np.ndarray:
        """The model's raw score of each row of ``rows`` (float32, columns in ``RERANKER_FEATURES`` order)."""
        bits = rows[:, self.features] > self.borders  # (rows, trees, depth)
        leaf = bits.astype(np.int64) @ (1 << np.arange(self.features.shape[1]))
        return self.leaves[np.arange(len(self.features)), leaf].sum(axis=1)

    @classmethod
    def from_catboost(cls, model) -> "TreeEnsemble":
        """The trees of a fitted CatBoost model with float features only (read from its JSON export)."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.json"
            model.save_model(str(path), format="json")
            trees = json.loads(path.read_text())["oblivious_trees"]
        depth = max((len(tree["splits"]) for tree in trees), default=1)
        features = np.zeros((len(trees), depth), np.int32)
        borders = np.full((len(trees), depth), np.inf, np.float32)  # a padded split always says "no": bit 0
        leaves = np.zeros((len(trees), 2 ** depth), np.float64)
        for t, tree in enumerate(trees):  # a few hundred trees, once per fit
            splits = tree["splits"]
            features[t, :len(splits)] = [split["float_feature_index"] for split in splits]
            borders[t, :len(splits)] = [split["border"] for split in splits]
            leaves[t, :len(tree["leaf_values"])] = tree["leaf_values"]
        return cls(features, borders, leaves)
