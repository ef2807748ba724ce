"""The CatBoost ranker: fit with early stopping on held-out users, score, and pick each user's top-n."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
from catboost import CatBoost, Pool

from ..arrays import positions_in_groups
from ..config import Config, integer, number, param, text
from .features import RANKER_FEATURES


@dataclasses.dataclass(frozen=True)
class RankerModelConfig(Config):
    loss: str = param("rank.model.loss", text())
    iterations: int = param("rank.model.iterations", integer(1))
    learning_rate: float = param("rank.model.learning_rate", number(0.0, low_open=True))
    depth: int = param("rank.model.depth", integer(1, 16))
    early_stopping_rounds: int = param("rank.model.early_stopping_rounds", integer(1))
    validation_share: float = param("rank.model.validation_share", number(0.0, 1.0, low_open=True, high_open=True))
    seed: int = param("rank.model.seed", integer(0))


def split_users(user_ids: np.ndarray, validation_share: float, seed: int) -> np.ndarray:
    """Boolean mask over rows: True for rows of the held-out (validation) users."""
    users = np.unique(user_ids)
    held_out = np.random.default_rng(seed).random(len(users)) < validation_share
    return np.isin(user_ids, users[held_out])


def make_pool(frame: pd.DataFrame) -> Pool:
    """A pool grouped by user (rows of a group must be contiguous for ranking losses)."""
    frame = frame.sort_values("user_id", kind="stable")
    return Pool(frame[RANKER_FEATURES].to_numpy(np.float32), label=frame["label"].to_numpy(),
                group_id=frame["user_id"].to_numpy(), feature_names=RANKER_FEATURES)


def fit_ranker(frame: pd.DataFrame, cfg: RankerModelConfig) -> tuple[CatBoost, dict]:
    """Fit on training users, early-stop on the validation users' NDCG@10."""
    held_out = split_users(frame["user_id"].to_numpy(), cfg.validation_share, cfg.seed)
    model = CatBoost({
        "loss_function": cfg.loss,
        "eval_metric": "NDCG:top=10",
        "iterations": cfg.iterations,
        "learning_rate": cfg.learning_rate,
        "depth": cfg.depth,
        "random_seed": cfg.seed,
        "od_type": "Iter",
        "od_wait": cfg.early_stopping_rounds,
        "use_best_model": True,
        "thread_count": -1,
        "verbose": 50,
        "allow_writing_files": False,
    })
    model.fit(make_pool(frame[~held_out]), eval_set=make_pool(frame[held_out]))
    drop_run_metadata(model)
    report = {
        "train_rows": int((~held_out).sum()),
        "validation_rows": int(held_out.sum()),
        "train_positive_share": float(frame.loc[~held_out, "label"].mean()),
        "best_iteration": int(model.get_best_iteration()),
        "validation_ndcg_at_10": float(
            model.get_evals_result()["validation"]["NDCG:top=10;type=Base"][model.get_best_iteration()]
        ),
    }
    return model, report


RUN_METADATA = ("model_guid", "train_finish_time")  # a random id and a timestamp, new on every fit


def drop_run_metadata(model: CatBoost) -> CatBoost:
    """Remove what makes two fits of the same data differ in bytes, in place, so the saved file is reproducible.

    CatBoost stores a random model GUID, the finish time and the resolved thread count (``thread_count: -1``
    becomes the machine's core count) in the model's metadata; the trees and predictions do not depend on the
    thread count (checked: 1, 2 and 4 threads give the same predictions).
    """
    metadata = model.get_metadata()
    for key in RUN_METADATA:
        if key in metadata.keys():
            del metadata[key]
    if "params" in metadata.keys():
        params = json.loads(metadata["params"])
        params.pop("system_options", None)
        metadata["params"] = json.dumps(params, sort_keys=True)
    return model


def importances(model: CatBoost) -> dict[str, float]:
    values = model.get_feature_importance(type="PredictionValuesChange")
    return dict(sorted(zip(RANKER_FEATURES, map(float, values)), key=lambda pair: -pair[1]))


def top_n(user_pos: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Row indices of each user's ``n`` best-scored candidates, ordered by user then score."""
    order = np.lexsort((-scores, user_pos))
    return order[positions_in_groups(user_pos[order]) < n]
