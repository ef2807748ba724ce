"""Recommender pipeline logic: plain functions called by the thin DVC stages in ``src.stages``."""
