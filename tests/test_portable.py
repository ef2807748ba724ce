"""Portable elementwise math: exactly the C library's value for every element, whatever numpy dispatches to."""
from __future__ import annotations

import math

import numpy as np

from src.recsys import portable


def test_small_integer_range_uses_the_exact_library_value():
    counts = np.array([[0, 3, 1], [3, 70000, 0]], dtype=np.float32)  # span > table: the unique path
    small = np.array([0, 3, 1, 3, 12, 0], dtype=np.float32)  # table path
    for values in (counts, small):
        out = portable.log1p(values)
        assert out.shape == values.shape and out.dtype == np.float32
        assert out.ravel().tolist() == [np.float32(math.log1p(float(v))) for v in values.ravel()]


def test_non_integer_values_and_other_functions():
    ages = np.array([0.5, 1.0, 30.0, 0.5, 45.25], dtype=np.float32)
    weights = portable.half_life_weight(ages, 30)
    assert weights.dtype == np.float32
    assert weights.tolist() == [np.float32(0.5 ** (float(a) / 30)) for a in ages]
    assert weights[2] == np.float32(0.5)
    ranks = np.arange(2, 12)
    assert portable.log2(ranks).tolist() == [math.log2(r) for r in range(2, 12)]
    assert np.allclose(portable.log2(ranks), np.log2(ranks), rtol=1e-15)


def test_empty_and_integer_input():
    assert portable.log1p(np.array([], dtype=np.float32)).shape == (0,)
    assert portable.log2(np.array([1, 2, 8], dtype=np.int32)).tolist() == [0.0, 1.0, 3.0]
