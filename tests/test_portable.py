"""Portable numerics: the C library's value for every element whatever numpy dispatches to, and the same
OpenBLAS kernels on every AVX2 CPU."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from src.recsys import portable
from src.stages import PORTABLE_KERNELS, cpu_has_avx2


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


def kernels_of_a_stage_process(**environment: str) -> dict:
    """The kernels numpy and OpenBLAS (numpy's and scipy's) pick in a fresh process that imports the stages."""
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_KERNELS}
    env.update(environment)
    code = ("import json, src.stages, numpy, scipy.linalg, threadpoolctl\n"
            "from numpy.core._multiarray_umath import __cpu_features__ as cpu\n"
            "print(json.dumps({'openblas': sorted({i.get('architecture') for i in threadpoolctl.threadpool_info()"
            " if i['internal_api'] == 'openblas'}), 'numpy_avx512': cpu['AVX512F'], 'numpy_avx2': cpu['AVX2']}))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_stages_run_the_portable_kernels_unless_the_environment_chose():
    """ALS, the top-k and the ranking features go through OpenBLAS and numpy's SIMD loops, whose last bits
    depend on the CPU: every stage pins the AVX2 kernels, so dvc.lock reproduces on AVX2 and AVX-512 CPUs."""
    if not cpu_has_avx2():
        pytest.skip("not an AVX2 x86-64 CPU: the libraries choose")
    assert kernels_of_a_stage_process() == {"openblas": ["Haswell"], "numpy_avx512": False, "numpy_avx2": True}
    assert kernels_of_a_stage_process(OPENBLAS_CORETYPE="Sandybridge")["openblas"] == ["Sandybridge"]
