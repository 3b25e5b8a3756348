"""One BLAS thread for the kernels' matrix products, SciPy's BLAS included.

Numba's ``np.dot`` calls SciPy's BLAS (``scipy.linalg.cython_blas``), which is loaded only
when a kernel first needs it, and ``threadpoolctl.threadpool_limits`` limits the libraries
loaded when it is entered. Entered before the first kernel ran, it left SciPy's OpenBLAS
on every core: on 2 busy cores its threads spun against each other and a CNN step took
1.5-2.5x as long. ``one_blas_thread()`` loads that BLAS first, then sets the limit.
"""

from __future__ import annotations


def one_blas_thread():
    """A context manager (threadpoolctl's) under which every BLAS a kernel calls uses one thread."""
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS Numba's np.dot calls)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)
