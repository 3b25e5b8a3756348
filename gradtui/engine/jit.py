"""The one set of Numba options every kernel uses, and where compiled kernels are cached.

nogil: the worker thread releases the GIL for the whole step, so the interface stays live.
cache: compiled kernels are kept on disk; later processes load them in a fraction of a second.
fastmath: only reassociation and contraction, so LLVM vectorises the float64 reductions and
fuses multiply-adds; never 'nnan'/'ninf', which would break the non-finite checks.

Numba's own cache is keyed on each function's source file alone, so editing a helper in
another module (activations.py, say) would leave kernels that inline it stale. The cache
directory therefore carries a hash of every engine source file that defines kernels (it
mentions ``@kernel`` or ``njit``) and the Numba version: any change to a kernel compiles
afresh, while editing plain Python (experiment.py, say) keeps the cache. NUMBA_CACHE_DIR,
when set, is respected.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
from numba import njit

FASTMATH = {"reassoc", "contract", "nsz"}
OPTIONS = dict(nogil=True, cache=True, error_model="numpy", fastmath=FASTMATH)


def engine_cache_dir() -> Path:
    """~/.cache/gradtui/numba-<hash of the engine's sources and Numba's version>."""
    digest = hashlib.sha256(numba.__version__.encode())
    for source in sorted(Path(__file__).parent.glob("*.py")):
        text = source.read_bytes()
        if b"@kernel" in text or b"njit" in text or source.name == "jit.py":
            digest.update(source.name.encode())
            digest.update(text)
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradtui"
    return root / f"numba-{digest.hexdigest()[:16]}"


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = str(engine_cache_dir())


def kernel(func=None, **extra):
    """``@kernel``: njit with the project's options (``@kernel(inline="always")`` for helpers)."""
    if func is None:
        return lambda f: njit(**OPTIONS, **extra)(f)
    return njit(**OPTIONS)(func)
