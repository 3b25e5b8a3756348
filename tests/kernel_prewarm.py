"""Compile, into the shared disk cache, kernels the suite's later files need, while its first files run.

On a cold cache most of a full run is Numba compiling, one kernel after another in the test
process, while the second core idles. conftest.py starts this script beside a full run: it
compiles the kernels the test process would otherwise reach only after its first few minutes
(the MLP and LSTM float32 training steps first, the test process reaches them after
test_cell_vector), through the same public calls the tests make, so that the signatures are
the tests' own; the test process then loads them from the cache (about a second each). Kernels
the test process compiles early (the RNN step of test_cell_vector, the CNN) are left to it: two
processes compiling one kernel at once would only waste the core. Exits at once on a warm cache.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    os.nice(5)  # the tests' own processes come first
    import gradtui
    from gradtui.engine.blas import one_blas_thread
    from gradtui.engine.tiers import KERNELS, _run_kernels, kernels_cached

    def preset(name, dtype, **extra):
        return gradtui.load_config(name).with_overrides({"train.dtype": dtype, **extra})

    def gradients(cfg):
        exp = gradtui.Experiment(cfg, tier=KERNELS)
        exp.gradients(*exp.batch())

    mlp32, mlp64 = preset("vanishing-sigmoid", "float32"), preset("vanishing-sigmoid", "float64")
    training = [preset("lstm-adding", "float32"), mlp32, preset("transformer-deep-preln", "float64"),
                preset("rnn-vanishing-adding", "float64"), preset("transformer-deep-preln", "float32"), mlp64]
    if all(kernels_cached(cfg) for cfg in training):
        return 0
    work = [(_run_kernels, cfg) for cfg in training[:-1]] + [(gradients, mlp32), (gradients, mlp64),
                                                              (_run_kernels, mlp64)]
    with one_blas_thread():
        for compile_kernels, cfg in work:
            try:
                compile_kernels(cfg)
            except Exception as err:  # noqa: BLE001 - the test that needs the kernel compiles it and reports
                print(f"kernel_prewarm: {cfg.name} {cfg.train.dtype}: {err!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
