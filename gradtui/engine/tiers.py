"""Two tiers compute the same training step: plain NumPy (reference) and Numba kernels.

On a fresh install the kernels take tens of seconds of CPU to compile; the reference tier
starts at once. An Experiment created with ``tier="auto"`` trains on the reference tier
while a ``KernelWarmup`` thread compiles (or, on later starts, loads from the disk cache)
exactly the kernels its config needs, by running one step and one evaluation of a private
Experiment with the same config on the kernel tier. Between two steps the Experiment then
swaps to the kernels; parameters, optimiser state and buffers are shared arrays, so the
run carries on from where it was.
"""

from __future__ import annotations

import threading
import time

REFERENCE, KERNELS = "reference", "kernels"
TIERS = ("auto", REFERENCE, KERNELS)


class KernelWarmup:
    """Compile the kernels ``cfg`` needs in a daemon thread; ``ready`` once they can be called."""

    def __init__(self, cfg, data):
        self.cfg = cfg
        self.error: BaseException | None = None
        self.started = time.perf_counter()
        self.seconds: float | None = None  # how long the warm-up took
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._warm, args=(data,), name="gradtui-kernels", daemon=True)
        self._thread.start()

    def _warm(self, data) -> None:
        from threadpoolctl import threadpool_limits

        from gradtui.engine.experiment import Experiment

        try:
            with threadpool_limits(1):
                exp = Experiment(self.cfg, data, tier=KERNELS)
                exp.run(1)
                exp.evaluate()
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
