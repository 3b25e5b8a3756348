"""The CNN theory line against measurement at initialisation (gradtui.theory_cnn).

The prediction propagates the per-pixel variance and error profiles of a zero-padded CNN
(the diagonal maps of Xiao et al. 2018); in the bulk they are the MLP's maps with
sigma_w^2 = 9 C Var(W). Measured: the first/last convolution's delta_norm ratio of a
128-channel net on 16x16 noise images (shapes with noise 10: nearly i.i.d. unit pixels, as
the prediction assumes), geometric mean over 3 nets.

Tolerance: one net's ratio spread by about 7% over seeds (tanh, xavier: 0.70, 0.81, 0.77),
so the mean of 3 by about 4%; we allow 15%. Measured when written: tanh/standard 1.00,
tanh/xavier 0.99, sigmoid/xavier 0.99, tanh/xavier with a stride-2 stage 1.00 (measured over
predicted). ReLU with He init measured 1.17 times the prediction (0.976 against 0.838) and
is not claimed here: the prediction is stated for the smooth activations it was checked on.
"""

import numpy as np
import pytest

import gradtui
from gradtui.theory import predict


def config(activation, init, **extra):
    return gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": "cnn", "data.task": "shapes", "data.image_size": 16, "data.noise": 10.0, "data.samples": 32,
        "model.activation": activation, "model.init": init, "model.depth": 8, "model.width": 128,
        "model.bias_std": 0.0, "train.batch_size": 8, "train.lr": 1e-12, **extra})


@pytest.mark.parametrize("activation,init,extra", [
    ("tanh", "standard", {}), ("tanh", "xavier", {}), ("sigmoid", "xavier", {}), ("tanh", "xavier", {"model.stages": 2}),
])
def test_predicted_first_last_ratio_matches_measurement(activation, init, extra):
    ratios = []
    for seed in range(3):
        cfg = config(activation, init, **{"train.seed": seed, **extra})
        rec = gradtui.Experiment(cfg).step()
        ratios.append(rec.delta_norm[0] / rec.delta_norm[cfg.model.depth - 1])
    measured = float(np.exp(np.mean(np.log(ratios))))
    predicted = predict(cfg).attenuation
    assert predict(cfg).applies
    assert 0.85 <= measured / predicted <= 1.15, (measured, predicted)


def test_the_bulk_factor_is_the_fully_connected_chi1_with_fan_in_9c():
    from gradtui.theory import chi1, fixed_point

    p = predict(config("tanh", "standard", **{"data.image_size": 64, "model.depth": 4}))
    # Var W = 1/(3 * 9C), so sigma_w^2 = 1/3; the uniform mode's chi_1 at the fixed point q* = 0 is 1/3.
    assert p.sigma_w2 == pytest.approx(1.0 / 3.0)
    assert p.chi1_star == pytest.approx(chi1("tanh", 1.0 / 3.0, fixed_point("tanh", 1.0 / 3.0, 0.0)))
    assert "depth scale" in p.summary()


@pytest.mark.parametrize("switch,word", [("model.batchnorm", "batch norm"), ("model.residual", "residual")])
def test_the_theory_line_says_where_it_does_not_apply(switch, word):
    p = predict(config("tanh", "xavier", **{switch: True}))
    assert not p.applies and word in p.summary()
