"""The one set of Numba options every kernel uses.

nogil: the worker thread releases the GIL for the whole step, so the interface stays live.
cache: compiled kernels are written next to the source; later processes load them in ~0.3 s.
fastmath: only reassociation and contraction, so LLVM vectorises the float64 reductions and
fuses multiply-adds; never 'nnan'/'ninf', which would break the non-finite checks.
"""

from numba import njit

FASTMATH = {"reassoc", "contract", "nsz"}
OPTIONS = dict(nogil=True, cache=True, error_model="numpy", fastmath=FASTMATH)


def kernel(func=None, **extra):
    """``@kernel``: njit with the project's options (``@kernel(inline="always")`` for helpers)."""
    if func is None:
        return lambda f: njit(**OPTIONS, **extra)(f)
    return njit(**OPTIONS)(func)
