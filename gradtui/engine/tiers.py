"""Two tiers compute the same training step: plain NumPy (reference) and Numba kernels.

On a fresh install the kernels take tens of seconds of CPU to compile; the reference tier
starts at once. An Experiment created with ``tier="auto"`` trains on the reference tier
while a ``KernelWarmup`` thread compiles (or, on later starts, loads from the disk cache)
exactly the kernels its config needs, by running one step and one evaluation of a private
Experiment with the same config on the kernel tier. The compiling itself happens in a child
process, which writes the kernels to the disk cache: it runs on the other core and does not
compete for this process's GIL with the NumPy tier and the interface. The thread then loads
them from the cache (about a second), or compiles them itself if the child failed. Between
two steps the Experiment then swaps to the kernels; parameters, optimiser state and buffers
are shared arrays, so the run carries on from where it was.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time

REFERENCE, KERNELS = "reference", "kernels"
TIERS = ("auto", REFERENCE, KERNELS)
REFERENCE_KINDS = ("mlp", "rnn", "lstm", "gru", "transformer")  # the model kinds gradtui.engine.reference computes


def _entry_points(cfg) -> list:
    """The kernels an Experiment calls for cfg (everything else is inlined into them)."""
    from gradtui.engine import subnormals, update

    points = [subnormals.read_mxcsr, subnormals.write_mxcsr]
    if cfg.model.kind == "mlp":
        from gradtui.engine import mlp_kernel, mlp_train

        return points + [mlp_train.mlp_train_steps, mlp_kernel.mlp_evaluate]
    if cfg.model.kind == "transformer":
        from gradtui.engine import transformer_kernel

        return points + [transformer_kernel.transformer_step, transformer_kernel.transformer_evaluate,
                         update.gradient_norms, update.apply_update]
    from gradtui.engine import seq_kernel, seq_train

    return points + [seq_train.seq_train_steps, seq_kernel.seq_evaluate]


def kernels_cached(cfg) -> bool:
    """Whether Numba's disk cache already holds the kernels cfg needs, in its number type:
    then they load in about a second and an "auto" Experiment uses them from the start."""
    try:
        for dispatcher in _entry_points(cfg):
            index = dispatcher._cache._cache_file._load_index()  # {(signature, target): ...}
            arrays = [str(key[0]) for key in index if "array(" in str(key[0])]
            if not index or (arrays and not any(f"array({cfg.train.dtype}" in sig for sig in arrays)):
                return False
        return True
    except Exception:  # noqa: BLE001 - Numba's cache layout is private: when in doubt, warm up
        return False


def initial_tier(cfg, tier: str) -> str:
    """The tier an Experiment asked for ``tier`` starts on: "auto" is the kernels when they are
    cached (or there is no reference for the model kind), else the reference tier plus a warm-up."""
    if tier != "auto":
        return tier
    if cfg.model.kind not in REFERENCE_KINDS or kernels_cached(cfg):
        return KERNELS
    return "auto"


def _run_kernels(cfg, data=None) -> None:
    """One step and one evaluation of a private kernel-tier Experiment: compiles, or loads
    from the cache, every kernel an Experiment with cfg calls."""
    from gradtui.engine.blas import one_blas_thread
    from gradtui.engine.experiment import Experiment

    with one_blas_thread():
        exp = Experiment(cfg, data, tier=KERNELS)
        exp.run(1)
        exp.evaluate()


def _end_with_parent(poll_seconds: float = 0.5) -> None:
    """In the compiling child: exit as soon as the gradtui process that started it has ended
    (the child is then handed to another parent), so that no compile outlives a quit or a crash."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="gradtui-parent-watch", daemon=True).start()


def _compile_in_child(cfg) -> bool:
    """Compile cfg's kernels into the disk cache in a child process; True when it succeeded."""
    code = ("import pickle, sys; from gradtui.engine.tiers import _end_with_parent, _run_kernels; "
            "_end_with_parent(); _run_kernels(pickle.load(sys.stdin.buffer))")
    try:
        done = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(cfg), capture_output=True,
                              check=False)
    except OSError:
        return False
    return done.returncode == 0


class KernelWarmup:
    """Compile the kernels ``cfg`` needs in a daemon thread; ``ready`` once they can be called."""

    def __init__(self, cfg, data):
        self.cfg = cfg
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self.seconds: float | None = None  # how long the warm-up took
        self.child_ok: bool | None = None  # whether the child process compiled the kernels
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._warm, args=(data,), name="gradtui-kernels", daemon=True)
        self._thread.start()

    def _warm(self, data) -> None:
        try:
            self.child_ok = _compile_in_child(self.cfg)
            _run_kernels(self.cfg, data)
        except BaseException as err:  # noqa: BLE001 - reported through .error; training stays on NumPy
            self.error = err
        finally:
            self.seconds = time.perf_counter() - self.started
            self._done.set()

    @property
    def done(self) -> bool:
        """The warm-up has finished, successfully or not."""
        return self._done.is_set()

    @property
    def ready(self) -> bool:
        """The kernels compiled and ran."""
        return self._done.is_set() and self.error is None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the warm-up has finished (or ``timeout`` seconds); returns ``ready``."""
        self._done.wait(timeout)
        return self.ready
