"""The one set of Numba options every kernel uses, and where compiled kernels are cached.

nogil: the worker thread releases the GIL for the whole step, so the interface stays live.
cache: compiled kernels are kept on disk in the directory gradtui.engine.kernel_cache
chooses (writable, keyed on the engine's sources and Numba's version, never the package
directory); later processes load them in a fraction of a second. When no directory can be
written, kernels are not cached.
fastmath: only reassociation and contraction, so LLVM vectorises the float64 reductions and
fuses multiply-adds; never 'nnan'/'ninf', which would break the non-finite checks.
"""

from __future__ import annotations

from gradtui.engine.kernel_cache import kernel_cache_dir

CACHE_DIR = kernel_cache_dir()  # before Numba loads: it reads NUMBA_CACHE_DIR when it starts

import numba  # noqa: E402
from numba import njit  # noqa: E402

if CACHE_DIR is not None:
    numba.config.CACHE_DIR = str(CACHE_DIR)  # in case Numba was loaded before this module

FASTMATH = {"reassoc", "contract", "nsz"}
OPTIONS = dict(nogil=True, cache=CACHE_DIR is not None, error_model="numpy", fastmath=FASTMATH)


def kernel(func=None, **extra):
    """``@kernel``: njit with the project's options (``@kernel(inline="always")`` for helpers)."""
    if func is None:
        return lambda f: njit(**OPTIONS, **extra)(f)
    return njit(**OPTIONS)(func)
