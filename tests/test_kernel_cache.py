"""The compiled-kernel cache: never in the installed package, a private temporary fallback with a
one-line notice when the cache directory cannot be written, no disk cache when nothing can be.

Root ignores file permissions, so "cannot be written" is made with paths under /proc, where
no one can create a directory.
"""

import os
import subprocess
import sys
from pathlib import Path

import gradtui.engine
from gradtui.engine import kernel_cache

PACKAGE_CACHE = Path(gradtui.engine.__file__).parent / "__pycache__"
COMPILE_ONE = ("import numpy as np; from gradtui.engine.update import count_beyond; "
               "print(count_beyond(np.ones(4, np.float32), np.float32(0.5)))")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(extra)
    return env


def _numba_files(directory: Path) -> set:
    return {p.name for p in directory.rglob("*.nb[ic]")} if directory.exists() else set()


def test_read_only_cache_falls_back_to_a_private_temporary_cache(tmp_path):
    before = _numba_files(PACKAGE_CACHE)
    env = _env(HOME="/proc/gradtui-no-home", XDG_CACHE_HOME="/proc/gradtui-read-only", TMPDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", COMPILE_ONE], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "4"
    notes = [line for line in r.stderr.splitlines() if line.startswith("gradtui: note:")]
    assert len(notes) == 1 and "cannot write the kernel cache at /proc/gradtui-read-only/gradtui/numba-" in notes[0]
    private = tmp_path / f"gradtui-{os.getuid()}"
    assert str(private) in notes[0]
    assert oct(private.stat().st_mode & 0o777) == "0o700"
    assert any("count_beyond" in name for name in _numba_files(private))  # the kernel is cached there
    assert _numba_files(PACKAGE_CACHE) == before  # and nothing was written into the package


def test_nothing_writable_means_no_disk_cache_and_the_engine_still_loads(tmp_path):
    code = ("import tempfile; tempfile.tempdir = '/proc/gradtui-no-tmp'; "
            "import gradtui.engine.jit as jit, gradtui.engine.experiment; print(jit.OPTIONS['cache'])")
    env = _env(HOME="/proc/gradtui-no-home", XDG_CACHE_HOME="/proc/gradtui-read-only")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
    assert "kernels compile at every start" in r.stderr and "Traceback" not in r.stderr


def test_presets_and_check_never_load_the_engine():
    code = ("import sys; from gradtui.cli import main; main(['presets']); main(['check', 'rnn-vanishing-adding']); "
            "print(sorted(m for m in sys.modules if m.startswith('numba') or m in "
            "('gradtui.engine.jit', 'gradtui.engine.kernel_cache', 'gradtui.engine.experiment'))[:3], file=sys.stderr)")
    env = _env(HOME="/proc/gradtui-no-home", XDG_CACHE_HOME="/proc/gradtui-read-only")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "[]"


def test_a_shared_temporary_directory_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "gradtui-shared"
    shared.mkdir()
    shared.chmod(0o777)
    problem = kernel_cache.writable_problem(shared / "numba-x", private_parent=True)
    assert "is not a private directory of this user" in problem
    assert kernel_cache.writable_problem(tmp_path / "mine" / "numba-x", private_parent=True) == ""
