"""Artifact paths of the pipeline, relative to the repository root: one place for what one stage writes and
the next reads (``dvc.yaml`` declares the same paths as outs and deps; the raw folder is ``data.raw_dir``).

Not a declared code dependency of any stage: a new stage adding its path here reruns nothing, and a changed
path comes with a ``dvc.yaml`` change that DVC reruns by itself. ``tests/test_dvc_deps.py`` checks that every
path a stage module uses here is one its ``dvc.yaml`` entry declares."""
from pathlib import Path

PROCESSED = Path("data/processed")
EVENTS = PROCESSED / "events.parquet"
ITEMS = PROCESSED / "items.parquet"
DATA_QUALITY = Path("metrics/data_quality.json")

SYNTHETIC = Path("data/synthetic")

EDA_PLOTS = Path("metrics/eda")
EDA_FIGURES = Path("reports/figures")
EDA_SUMMARY = Path("metrics/eda.json")

SPLIT = Path("data/split")
TRAIN = SPLIT / "train.parquet"
TEST = SPLIT / "test.parquet"
SPLIT_REPORT = Path("metrics/split.json")

RECOMMENDATIONS = Path("data/recommendations")
TOP_POPULAR = RECOMMENDATIONS / "top_popular.parquet"
PERSONAL_ALS = RECOMMENDATIONS / "personal_als.parquet"
SIMILAR = RECOMMENDATIONS / "similar.parquet"
PLAYED_NEXT = RECOMMENDATIONS / "played_next.parquet"
FINAL = RECOMMENDATIONS / "recommendations.parquet"

ALS_MODEL = Path("models/als.npz")
ALS_FEATURE_MODEL = Path("models/als_feature_period.npz")  # fit on train before T - W (`als_tune`)
ALS_TUNE = Path("metrics/als_tune.json")
RANKER_MODEL = Path("models/ranker.cbm")
RANKER_REPORT = Path("metrics/ranker.json")
RANKER_IMPORTANCE = Path("metrics/ranker/feature_importance.csv")
RANKER_FIGURE = Path("reports/ranker/feature_importance.png")

EVALUATION_PLOTS = Path("metrics/evaluation")
EVALUATION_FULL = Path("metrics/evaluation_full.json")
EVALUATION_HEADLINE = Path("metrics/evaluation.json")

SERVING_BUNDLE = Path("models/serving")
BLEND_SEARCH = Path("metrics/blend_search.json")
REPLAY_FULL = Path("metrics/replay_full.json")
REPLAY_HEADLINE = Path("metrics/replay.json")
