"""Second stage: candidates from several sources, features, and a CatBoost ranker over them."""
