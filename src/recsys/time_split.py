"""Time-based train/test split: train is everything before the split date, test from it on."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .columns import STARTED_AT, TRACK, USER
from .config import ConfigError, invalid
from .streaming import Presence, pandas_schema, parquet_stream, row_groups


def empty_side(split_date: str, all_test: bool, first, last) -> ConfigError:
    """The error of a split date that leaves train (``all_test``) or test empty; ``first``/``last`` listens."""
    first, last = (pd.Timestamp(day).date().isoformat() for day in (first, last))
    return invalid("split.date", split_date, f"a day after the first listen ({first}) and on or before the "
                   f"last ({last}): {'train' if all_test else 'test'} would hold no events")


def check_report(report: dict[str, int], split_date: str, train_sample_frac: float) -> None:
    """A split whose train (after sampling) or test (after dropping unknown tracks) is empty is a param error."""
    if report["train_events"] == 0:
        raise invalid("split.train_sample_frac", train_sample_frac, "a share that keeps some train events")
    if report["test_events"] == 0:
        raise invalid("split.date", split_date, "a day that leaves test events on tracks known in train")


def split_batches(batches: Iterable[pa.Table], split_date: str, train_sample_frac: float, seed: int,
                  write_train: Callable[[pa.Table], None]) -> tuple[pa.Table, dict[str, int]]:
    """Split by ``started_at``; optionally sample train reproducibly; drop test tracks unseen in train.

    Events come as tables in file order (an events file's row groups); each batch's train rows go to
    ``write_train`` at once, so only the test side (about a tenth) is held. Returns the test table and counts:
    test events dropped for unknown tracks, cold test users (no train events) and the sizes of both sides. A
    split that leaves either side empty is a parameter error (``ConfigError`` naming ``split.date`` or
    ``split.train_sample_frac``), raised after the last batch: write train where it only appears on success.
    Sampling draws one number per train event in order, chunk after chunk: the same draws as all at once.
    """
    cut = pd.Timestamp(split_date).value
    rng = np.random.default_rng(seed)
    train_users, train_tracks = Presence(), Presence()
    tests: list[pa.Table] = []
    bounds: list[tuple[int, int]] = []  # each batch's first and last listen
    events = test_events = train_events = 0
    for batch in batches:
        started_at = batch[STARTED_AT].to_numpy().view(np.int64)
        if len(started_at):
            bounds.append((started_at.min(), started_at.max()))
        is_test = started_at >= cut
        train = batch.filter(pa.array(~is_test))
        if train_sample_frac < 1.0:
            train = train.filter(pa.array(rng.random(train.num_rows) < train_sample_frac))
        train_users.add(train[USER].to_numpy())
        train_tracks.add(train[TRACK].to_numpy())
        write_train(train)
        tests.append(batch.filter(pa.array(is_test)))
        events += len(is_test)
        test_events += int(np.count_nonzero(is_test))
        train_events += train.num_rows
    if events and test_events in (0, events):
        first, last = (np.datetime64(int(value), "ns") for value in (min(b[0] for b in bounds), max(b[1] for b in bounds)))
        raise empty_side(split_date, test_events == events, first, last)
    test = pa.concat_tables(tests)
    del tests
    known = train_tracks.contains(test[TRACK].to_numpy())
    test_users = Presence()
    test_users.add(test[USER].to_numpy()[known])
    test_user_ids = np.flatnonzero(test_users.seen)
    report = {
        "train_events": train_events,
        "train_users": train_users.count(),
        "train_tracks": train_tracks.count(),
        "test_events_before_filter": int(len(known)),
        "test_events_dropped_unknown_track": int((~known).sum()),
        "test_events": int(known.sum()),
        "test_users": int(len(test_user_ids)),
        "cold_test_users": int((~train_users.contains(test_user_ids)).sum()),
    }
    check_report(report, split_date, train_sample_frac)
    return test.filter(pa.array(known)), report


def split_file(events_path: Path | str, train_path: Path | str, test_path: Path | str, split_date: str,
               train_sample_frac: float, seed: int) -> dict[str, int]:
    """``split_batches`` from an events file into train and test files (the bytes ``write_parquet`` writes of the
    frames of ``time_split``), one row group at a time: at the real data's size about 1 GB, not 11."""
    schema = pandas_schema(pq.read_schema(events_path))
    with parquet_stream(train_path, schema) as write_train:
        test, report = split_batches(row_groups(events_path), split_date, train_sample_frac, seed, write_train)
    with parquet_stream(test_path, schema) as write_test:
        write_test(test)
    return report


def time_split(
    events: pd.DataFrame, split_date: str, train_sample_frac: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """``split_batches`` of an in-memory events frame: train and test as frames with a fresh index."""
    trains: list[pa.Table] = []
    test, report = split_batches([pa.Table.from_pandas(events, preserve_index=False)], split_date,
                                 train_sample_frac, seed, trains.append)
    return pa.concat_tables(trains).to_pandas(), test.to_pandas(), report
