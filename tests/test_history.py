"""The bounded history: capped memory, even decimation, cached views."""

import numpy as np
import pytest

from gradtui.monitor.history import STORED, Decimator, History


class FakeRecord:
    """Just the fields History reads, without the engine."""

    def __init__(self, step, n_layers=4):
        self.step = step
        self.loss = 1.0 / step
        self.grad_norm_total = float(step)
        self.clipped = False
        base = np.full(n_layers, float(step))
        for name in STORED:
            setattr(self, name, base)


def test_history_is_capped_over_100k_steps():
    h = History(capacity=500)
    recs = [FakeRecord(s) for s in range(1, 2001)]  # reuse objects: the history copies values
    for s in range(1, 100_001):
        rec = recs[(s - 1) % 2000]
        rec.step = s
        h.add_step(rec)
        assert len(h.steps) < 500
    assert h.seen == 100_000
    assert all(len(series) == len(h.steps) for series in h.layers.values())
    assert len(h.loss) == len(h.grad_norm_total) == len(h.steps)
    # the whole run stays visible: from the first step to near the end, evenly spaced
    assert h.steps[0] == 1
    assert h.steps[-1] > 100_000 - 2 * h.stride
    gaps = np.diff(h.steps)
    assert (gaps == h.stride).all(), set(gaps.tolist())
    assert len(h.steps) >= 250


def test_decimator_keeps_even_spacing_for_odd_capacity():
    h = History(capacity=7)
    rec = FakeRecord(1, n_layers=1)
    for s in range(1, 1000):
        rec.step = s
        h.add_step(rec)
        assert len(h.steps) < 7
        assert (np.diff(h.steps) == h.stride).all()


def test_decimator_rejects_tiny_capacity():
    with pytest.raises(ValueError):
        Decimator(1)


def test_view_is_cached_plain_and_rebuilt_on_change():
    h = History(capacity=100)
    h.add_step(FakeRecord(1, n_layers=3))
    v1 = h.view()
    assert v1 is h.view()  # cached
    assert v1.steps == (1,) and isinstance(v1.loss[0], float)
    assert v1.layers["grad_norm"] == ((1.0, 1.0, 1.0),)
    assert not any(isinstance(x, np.ndarray) for x in v1.layers["grad_norm"])
    h.add_marker(1, "model.activation=relu")
    v2 = h.view()
    assert v2 is not v1 and v2.markers == ((1, "model.activation=relu"),)
    h.add_eval(1, {"loss": 0.5})
    v3 = h.view()
    assert v3.eval_steps == (1,) and v3.eval_loss == (0.5,) and np.isnan(v3.eval_accuracy[0])
    # old views are immutable snapshots
    assert v1.markers == ()


def test_eval_series_is_capped_too():
    h = History(capacity=10)
    for s in range(100_000):
        h.add_eval(s, {"loss": 1.0, "accuracy": 0.5})
    assert len(h.eval_steps) < 10


def test_markers_are_bounded_and_clear_forgets():
    h = History(capacity=10)
    for s in range(50):
        h.add_marker(s, "x")
    assert len(h.markers) == 10 and h.markers[-1][0] == 49
    h.clear()
    assert h.view().steps == () and h.view().markers == ()
