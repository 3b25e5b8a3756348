"""One cell of a sweep: an ordinary gradtui run, trained in a Dask worker and summarised in one row.

The summary (OUTCOMES, in table order):
    final_loss, accuracy      held-out loss and accuracy after the last step
    best_loss, best_accuracy  the best held-out values over the evaluations (every train.eval_every
                              steps and after the last step)
    train_loss                training loss of the last step
    trained                   final_loss <= threshold * baseline and finite, where baseline is the
                              loss of the best constant prediction (ln C for C balanced classes,
                              the held-out targets' variance around the training mean for regression)
    steps_to_threshold        the first evaluated step whose held-out loss met that bar (empty if none)
    attenuation               ||dL/dz|| of the first hidden layer over the last hidden layer's, measured
                              on the first batch at initialisation (mean-field theory predicts it:
                              gradtui.theory.predict(cfg).attenuation)
    nonfinite                 a step went non-finite (NaN/Inf); training stopped there
    steps, seconds, error     steps taken, wall time, and the exception's message if the cell failed
    worker                    host:pid of the process that ran it
A failed or non-finite cell is a row like any other, never an exception out of the worker.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback

OUTCOMES = ("trained", "final_loss", "best_loss", "accuracy", "best_accuracy", "train_loss",
            "steps_to_threshold", "attenuation", "nonfinite", "steps", "seconds", "error")
DEFAULT_THRESHOLD = 0.5  # trained: held-out loss at most half the best constant prediction's
CHUNK = 50  # steps per Experiment.run call: bounded memory whatever --steps is


def baseline_loss(data) -> float:
    """The held-out loss of the best constant prediction (the bar `trained` is measured against)."""
    import numpy as np

    if data.baseline_loss is not None:
        return float(data.baseline_loss)
    mean = np.mean(data.y_train, axis=0)
    return float(np.mean((data.y_test - mean) ** 2))


def run_cell(cfg, steps: int, threshold: float = DEFAULT_THRESHOLD, record_path: str | None = None) -> dict:
    """Train cfg for `steps` steps and return the outcomes (see the module docstring).

    Runs with one BLAS thread, as every Dask worker should (two threads per core only slow it).
    """
    from gradtui.engine.blas import one_blas_thread

    t0 = time.perf_counter()
    row = {k: None for k in OUTCOMES}
    row.update(trained=False, nonfinite=False, steps=0, error="")
    try:
        with one_blas_thread():
            _train(cfg, steps, threshold, record_path, row)
    except Exception as err:  # a failed cell is a result: say what failed, keep the sweep going
        last = traceback.extract_tb(err.__traceback__)[-1]
        row["error"] = f"{type(err).__name__}: {err} ({os.path.basename(last.filename)}:{last.lineno})"
        row["trained"] = False
    row["seconds"] = round(time.perf_counter() - t0, 3)
    row["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return row


def _train(cfg, steps, threshold, record_path, row) -> None:
    from gradtui.engine import Experiment

    exp = Experiment(cfg)
    bar = threshold * baseline_loss(exp.data)
    writer = _open_record(record_path, cfg, exp)
    best_loss, best_acc = math.inf, -math.inf
    every = cfg.train.eval_every
    last = None
    try:
        while exp.step_count < steps:
            to_eval = every - exp.step_count % every
            records = exp.run(min(CHUNK, steps - exp.step_count, to_eval))
            if exp.step_count == len(records) and records:
                row["attenuation"] = _attenuation(records[0].delta_norm, cfg.model.depth)
            if writer:
                for rec in records:
                    writer.step(rec.to_dict())
            last = records[-1]
            if last.nonfinite:
                row["nonfinite"] = True
                break
            if exp.step_count % every == 0 or exp.step_count == steps:
                ev = exp.evaluate()
                if writer:
                    writer.event("eval", exp.step_count, **{k: float(v) for k, v in ev.items()})
                loss = ev["loss"]
                row["final_loss"], row["accuracy"] = loss, ev.get("accuracy")
                if math.isfinite(loss) and loss < best_loss:
                    best_loss = loss
                if ev.get("accuracy") is not None:
                    best_acc = max(best_acc, ev["accuracy"])
                if row["steps_to_threshold"] is None and math.isfinite(loss) and loss <= bar:
                    row["steps_to_threshold"] = exp.step_count
    finally:
        if writer:
            writer.event("end", exp.step_count, reason="nonfinite" if row["nonfinite"] else "done")
            writer.close()
    row["steps"] = exp.step_count
    row["train_loss"] = None if last is None else float(last.loss)
    row["best_loss"] = best_loss if math.isfinite(best_loss) else None
    row["best_accuracy"] = best_acc if math.isfinite(best_acc) else None
    final = row["final_loss"]
    row["trained"] = bool(not row["nonfinite"] and final is not None and math.isfinite(final) and final <= bar)


def _attenuation(delta_norm, depth: int):
    """||delta_1|| / ||delta_L|| over the hidden layers (None for one hidden layer or a zero last)."""
    if depth < 2 or len(delta_norm) < depth:
        return None
    first, last = float(delta_norm[0]), float(delta_norm[depth - 1])
    return first / last if last > 0 and math.isfinite(first) and math.isfinite(last) else None


def _open_record(path, cfg, exp):
    if not path:
        return None
    from gradtui.record import RecordWriter

    writer = RecordWriter(path, force=True)
    writer.header(cfg, exp.layers, {"source": "sweep"})  # the layer table: a sweep's record replays like any other
    return writer
