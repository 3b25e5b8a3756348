"""One BLAS thread for training, reaching the BLAS the kernels actually call.

Numba's ``np.dot`` calls SciPy's BLAS (``scipy.linalg.cython_blas``, OpenBLAS in SciPy's
wheels). threadpoolctl limits only the libraries loaded when the limit is set, and Numba
loads that one lazily, at the first kernel call: a limit set before it leaves OpenBLAS with
a thread per core, whose spinning made `gradtui run transformer-deep-preln` 6-7x slower on a
busy two-core machine (measured: 2 steps/s, against 12-15 with one thread). So the library is
loaded first.
"""

from __future__ import annotations


def one_blas_thread():
    """A context manager (threadpoolctl's) holding every loaded BLAS, SciPy's included, to one thread."""
    import scipy.linalg.cython_blas  # noqa: F401 - load the BLAS Numba calls, so the limit reaches it
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
