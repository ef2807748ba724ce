"""DVC stages: one thin module per stage, run as ``python -m src.stages.<name>``.

Importing this package pins the SIMD kernels of numpy and OpenBLAS before either library loads. Both pick
kernels by the CPU at load time, and their last bits differ: on an AMD EPYC with more AVX-512 extensions
than the machine that built the committed ``dvc.lock``, the ALS factors (OpenBLAS's ``Cooperlake`` sgemm)
and the final lists (numpy's AVX-512 loops in the ranking features) came out different, so a fresh
``dvc repro`` did not reproduce the lock. Every x86-64 CPU with AVX2 runs the AVX2 kernels, so on those the
stages ask for them: OpenBLAS's ``Haswell`` core, and numpy without its AVX-512 dispatch targets. A value
already set in the environment is kept (some machines set ``OPENBLAS_CORETYPE`` for correctness); other
CPUs are left to the libraries' own choice.
"""
import os
from pathlib import Path

PORTABLE_KERNELS = {
    "OPENBLAS_CORETYPE": "Haswell",
    # numpy 1.26's AVX-512 dispatch targets (all of them, so no machine warns about an unknown one)
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL",
}


def cpu_has_avx2() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and " avx2" in cpuinfo.read_text()


if cpu_has_avx2():
    for name, value in PORTABLE_KERNELS.items():
        os.environ.setdefault(name, value)
