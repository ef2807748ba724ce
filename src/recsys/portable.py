"""Elementwise logarithms and powers that give the same bits on every x86-64 CPU.

numpy picks the code of ``log1p``, ``log2``, ``power`` ... at run time from the CPU's SIMD features: on
an AVX-512 CPU it runs Intel's SVML kernels, on an AVX2-only CPU other ones, and their last bits differ
(check: ``NPY_DISABLE_CPU_FEATURES="AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL"``
changes ``np.log1p`` of float32 counts). A ranker feature one bit apart can move a CatBoost split and a
metric one bit apart shows in a diff, so features and metrics go through these helpers instead: the
function is evaluated by Python's ``math`` module (the C library, the same on every machine of one image)
once per distinct value and looked up. The inputs here are counts and day ages, so there are few
distinct values (small integer ranges use a table, anything else ``np.unique``).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

TABLE_SPAN = 1 << 16  # integer-valued inputs spanning at most this many values use a direct table


def apply_scalar(func: Callable[[float], float], values, dtype=np.float64) -> np.ndarray:
    """``func`` applied to every element of ``values`` through ``math``, cast to ``dtype``; same shape."""
    values = np.asarray(values)
    flat = values.ravel()
    if flat.size == 0:
        return np.empty(values.shape, dtype=dtype)
    low, high = flat.min(), flat.max()
    if np.isfinite(low) and np.isfinite(high) and high - low < TABLE_SPAN:
        start = int(math.floor(low))
        index = flat.astype(np.int64) - start if np.issubdtype(flat.dtype, np.integer) else None
        if index is None:
            whole = np.floor(flat)
            if np.array_equal(whole, flat):
                index = whole.astype(np.int64) - start
        if index is not None:
            table = np.array([func(float(start + i)) for i in range(int(index.max()) + 1)], dtype=np.float64)
            return table[index].astype(dtype, copy=False).reshape(values.shape)
    unique, inverse = np.unique(flat, return_inverse=True)
    table = np.array([func(float(v)) for v in unique], dtype=np.float64)
    return table[inverse].astype(dtype, copy=False).reshape(values.shape)


def log1p(values, dtype=np.float32) -> np.ndarray:
    return apply_scalar(math.log1p, values, dtype)


def log2(values, dtype=np.float64) -> np.ndarray:
    return apply_scalar(math.log2, values, dtype)


def half_life_weight(age_days, half_life_days: float, dtype=np.float32) -> np.ndarray:
    """``0.5 ** (age / half_life)``: 1 for a listen of today, 0.5 for one half a life ago."""
    return apply_scalar(lambda age: 0.5 ** (age / half_life_days), age_days, dtype)
