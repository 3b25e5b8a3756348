"""Where compiled kernels are cached: a writable directory of gradtui's own, never the package.

Numba tries cache locations in turn and, when the one it is given cannot be written,
falls back to the ``__pycache__`` next to the source (the installed package, outside
the cache key below) or fails at import ("no locator available"). So the directory is
chosen and tested here, before Numba compiles anything:

1. ``NUMBA_CACHE_DIR`` if the user set it, else ``$XDG_CACHE_HOME/gradtui/numba-<key>``
   (``~/.cache`` when unset), where the key hashes every engine source file that defines
   kernels and Numba's version (Numba keys its cache on each function's own file alone, so an edited helper
   would leave stale kernels that inline it);
2. if that cannot be written: ``<temp dir>/gradtui-<uid>/numba-<key>``, a directory only
   this user may write (a cache is loaded code, so one that others can write is refused),
   with a one-line notice on stderr;
3. if nothing can be written: no disk cache (kernels compile at every start), with a notice.

This module does not import Numba; the command line calls :func:`kernel_cache_dir`
before anything starts, the kernels' module (``jit``) when it loads.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import stat
import sys
import tempfile
from pathlib import Path

ENGINE_DIR = Path(__file__).parent


def cache_key() -> str:
    """Hash of the engine's kernel sources (files that mention ``@kernel``, ``njit`` or
    ``@intrinsic``, and jit.py) and Numba's version: any change to a kernel compiles afresh,
    while editing plain Python (experiment.py, say) keeps the cache."""
    digest = hashlib.sha256(importlib.metadata.version("numba").encode())
    for source in sorted(ENGINE_DIR.glob("*.py")):
        text = source.read_bytes()
        if any(mark in text for mark in (b"@kernel", b"njit", b"@intrinsic")) or source.name == "jit.py":
            digest.update(source.name.encode())
            digest.update(text)
    return digest.hexdigest()[:16]


def preferred_dir() -> Path:
    """NUMBA_CACHE_DIR if set, else ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/gradtui/numba-<key>``."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    try:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no HOME and no password entry
        root = Path("/nonexistent")
    return root / "gradtui" / f"numba-{cache_key()}"


def fallback_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"gradtui-{os.getuid()}" / f"numba-{cache_key()}"


def writable_problem(directory: Path, private_parent: bool = False) -> str:
    """'' when ``directory`` can be created and written, else why not. With ``private_parent``
    its parent must also be a real directory owned by this user that no one else can write."""
    try:
        if private_parent:
            directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = directory.parent.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return f"{directory.parent} is not a private directory of this user"
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return ""


@functools.lru_cache(maxsize=None)
def kernel_cache_dir() -> Path | None:
    """The directory to cache kernels in (None: no disk cache); prints a notice once when it
    is not the preferred one. Also sets NUMBA_CACHE_DIR so Numba, loaded later, uses it."""
    preferred = preferred_dir()
    problem = writable_problem(preferred)
    chosen: Path | None = preferred
    if problem:
        fallback = fallback_dir()
        second = writable_problem(fallback, private_parent=True)
        chosen = None if second else fallback
        where = f"using {fallback} for now" if chosen else f"nor at {fallback} ({second}); kernels compile at every start"
        print(f"gradtui: note: cannot write the kernel cache at {preferred} ({problem}); {where}", file=sys.stderr)
    if chosen is not None:
        os.environ["NUMBA_CACHE_DIR"] = str(chosen)
    return chosen
