"""The training thread's matrix products run on one BLAS thread (gradtui.engine.blas).

Checked in a fresh process, where SciPy's BLAS (the one Numba's np.dot calls) is not yet
loaded when the limit is set: a plain threadpool_limits(1) there leaves it on every core."""

import subprocess
import sys

SCRIPT = """
from threadpoolctl import threadpool_info
import gradtui
from gradtui.engine.blas import one_blas_thread
cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
    "model.kind": "cnn", "data.task": "digits", "model.depth": 2, "model.width": 4, "data.samples": 64, "train.batch_size": 8})
with one_blas_thread():
    gradtui.Experiment(cfg, tier="kernels").run(1)
    print(sorted({(i["prefix"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"}))
"""


def test_every_blas_the_kernels_call_runs_one_thread_under_one_blas_thread():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    libraries = eval(out.stdout.strip().splitlines()[-1])
    assert any("scipy" in prefix for prefix, _ in libraries), libraries  # SciPy's BLAS was loaded and seen
    assert all(threads == 1 for _, threads in libraries), libraries

