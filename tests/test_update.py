"""Optimisers, clipping and weight decay on hand-computed examples."""

import numpy as np
import pytest

from gradtui.engine.update import ADAM, CLIP_NONE, CLIP_NORM, CLIP_VALUE, MOMENTUM, RMSPROP, SGD, apply_update, gradient_norms

# One weight matrix of two entries (layer 0) and one bias of one entry (layer 0).
SEGMENTS = np.array([[0, 2, 0, 1], [2, 3, 0, 0]], dtype=np.int64)


def run(theta, grad, optimizer=SGD, lr=0.1, momentum=0.9, decay=0.0, clip=CLIP_NONE, threshold=1.0,
        state=None, t=1):
    theta = np.array(theta, dtype=np.float64)
    grad = np.array(grad, dtype=np.float64)
    s1, s2 = (np.zeros(3), np.zeros(3)) if state is None else state
    out, o1, o2 = np.zeros(3), np.zeros(3), np.zeros(3)
    norms = np.zeros(1)
    total = gradient_norms(grad, SEGMENTS, 1, norms)
    weight_norm, ratio, finite = np.zeros(1), np.zeros(1), np.zeros(1)
    clipped = apply_update(theta, grad, s1, s2, out, o1, o2, SEGMENTS, optimizer, lr, momentum, decay,
                           clip, threshold, total, t, weight_norm, ratio, finite)
    return dict(theta=out, s1=o1, s2=o2, total=total, grad_norm=norms[0], clipped=clipped,
                weight_norm=weight_norm[0], update_ratio=ratio[0])


def test_sgd_and_statistics():
    r = run([3.0, 4.0, 1.0], [1.0, 2.0, 2.0], lr=0.5)
    np.testing.assert_allclose(r["theta"], [2.5, 3.0, 0.0])
    assert r["total"] == pytest.approx(3.0)  # sqrt(1 + 4 + 4)
    assert r["grad_norm"] == pytest.approx(np.sqrt(5.0))  # the weight matrix only
    assert r["weight_norm"] == pytest.approx(np.hypot(2.5, 3.0))
    assert r["update_ratio"] == pytest.approx(np.hypot(0.5, 1.0) / 5.0)
    assert not r["clipped"]


def test_norm_clipping_rescales_the_whole_gradient():
    # ||g|| = 5 > 1: g becomes (0.6, 0.8, 0); sgd with lr 1.
    r = run([0.0, 0.0, 0.0], [3.0, 4.0, 0.0], lr=1.0, clip=CLIP_NORM, threshold=1.0)
    np.testing.assert_allclose(r["theta"], [-0.6, -0.8, 0.0])
    assert r["clipped"]
    assert r["total"] == pytest.approx(5.0)  # reported before clipping
    below = run([0.0, 0.0, 0.0], [0.3, 0.4, 0.0], lr=1.0, clip=CLIP_NORM, threshold=1.0)
    np.testing.assert_allclose(below["theta"], [-0.3, -0.4, 0.0])
    assert not below["clipped"]


def test_value_clipping_is_elementwise():
    r = run([0.0, 0.0, 0.0], [3.0, -0.5, -4.0], lr=1.0, clip=CLIP_VALUE, threshold=1.0)
    np.testing.assert_allclose(r["theta"], [-1.0, 0.5, 1.0])
    assert r["clipped"]


def test_weight_decay_applies_to_weights_only():
    # g + 0.1 W on the weight entries; the bias gets the plain gradient.
    r = run([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], lr=1.0, decay=0.1)
    np.testing.assert_allclose(r["theta"], [0.9, 1.8, 3.0])


def test_momentum_accumulates_velocity():
    first = run([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], optimizer=MOMENTUM, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(first["theta"], [-0.1] * 3)
    second = run(first["theta"], [1.0, 1.0, 1.0], optimizer=MOMENTUM, lr=0.1, momentum=0.9,
                 state=(first["s1"], first["s2"]))
    # v = 0.9 * 1 + 1 = 1.9, theta = -0.1 - 0.19
    np.testing.assert_allclose(second["theta"], [-0.29] * 3)


def test_adam_first_step_moves_by_lr_times_sign():
    # m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps) ~ lr * sign(g).
    r = run([0.0, 0.0, 0.0], [2.0, -3.0, 0.5], optimizer=ADAM, lr=0.01)
    np.testing.assert_allclose(r["theta"], [-0.01, 0.01, -0.01], rtol=1e-6)
    np.testing.assert_allclose(r["s1"], [0.2, -0.3, 0.05])
    np.testing.assert_allclose(r["s2"], [0.004, 0.009, 0.00025])


def test_rmsprop_first_step():
    # s = 0.01 g^2, step = lr g / (0.1 |g| + eps) = 10 lr sign(g).
    r = run([0.0, 0.0, 0.0], [2.0, -3.0, 0.5], optimizer=RMSPROP, lr=0.01)
    np.testing.assert_allclose(r["theta"], [-0.1, 0.1, -0.1], rtol=1e-6)


def test_nonfinite_new_weights_are_flagged():
    r = run([1e308, 0.0, 0.0], [-1e308, 0.0, 0.0], lr=10.0)
    assert not np.isfinite(r["theta"][0])  # written to the spare buffer only; Experiment refuses it
