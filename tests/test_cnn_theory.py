"""The CNN theory line against measurement at initialisation (gradtui.theory_cnn).

The prediction propagates the per-pixel variance and error profiles of a zero-padded CNN
(the diagonal maps of Xiao et al. 2018); in the bulk they are the MLP's maps with
sigma_w^2 = 9 C Var(W). Measured: the first/last convolution's delta_norm ratio of a
128-channel net on 16x16 noise images (shapes with noise 10: nearly i.i.d. unit pixels, as
the prediction assumes), geometric mean over 3 nets.

Tolerance: one net's ratio spread by about 7% over seeds (tanh, xavier: 0.70, 0.81, 0.77),
so the mean of 3 by about 4%; we allow 15%. Measured when written: tanh/standard 1.00,
tanh/xavier 0.99, sigmoid/xavier 0.99, tanh/xavier with a stride-2 stage 1.00 (measured over
predicted); tanh/xavier at 8x8 and 24x24 images 1.01 and 1.03.

ReLU (He init) measures 1.15-1.19 times the prediction at 8x8, 16x16 and 24x24 images
(0.976 against 0.838 at 16x16). Two causes, measured with a NumPy twin of these nets
(same images, same shapes, float64):
  - the maps assume the backward pass's weights independent of the forward pass's (the
    gradient independence assumption of mean-field theory). For ReLU, phi'(z) = [z > 0] is
    correlated with the weights that made z: by Stein's lemma E[W_k [z > 0]] = Var(W) h_k p_z(0),
    and h >= 0. A convolution uses each weight at every pixel and global average pooling sends
    the same error to every pixel, so these terms can add up over the image instead of averaging
    out. For tanh and sigmoid phi' is even, E[phi''(z)] = 0, and the correlation vanishes to
    first order. On the test's images (3 nets, 10-class head) the twin with fresh independent
    weights in its backward pass measures 0.850 (prediction 0.838), with the forward pass's
    weights 0.913; on Gaussian 32x32 images 0.866 against 1.045. On Gaussian 16x16 images
    (8 nets) the two agree (0.892, 0.894) and both lie 1.06x above the prediction, so this
    part is not the whole story: how much it adds depends on the images and the image size.
  - the head: these nets' 3 classes send each image's error into 2 directions only; the twin
    with independent backward weights measures 0.897 with 3 classes against 0.850 with 10.
Together the twin with the test's head and images measures 0.954 (the engine 0.976). The
prediction is kept (it is the published theory); a test below pins the measured gap for
ReLU: 1.0-1.35 times the prediction.
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


def measured_and_predicted(activation, init, **extra):
    """The first/last delta_norm ratio at initialisation, geometric mean over 3 nets, and the prediction."""
    ratios = []
    for seed in range(3):
        cfg = config(activation, init, **{"train.seed": seed, **extra})
        rec = gradtui.Experiment(cfg).step()
        ratios.append(rec.delta_norm[0] / rec.delta_norm[cfg.model.depth - 1])
    prediction = predict(cfg)
    assert prediction.applies
    return float(np.exp(np.mean(np.log(ratios)))), prediction.attenuation


@pytest.mark.parametrize("activation,init,extra", [
    ("tanh", "standard", {}), ("tanh", "xavier", {}), ("sigmoid", "xavier", {}), ("tanh", "xavier", {"model.stages": 2}),
])
def test_predicted_first_last_ratio_matches_measurement(activation, init, extra):
    measured, predicted = measured_and_predicted(activation, init, **extra)
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


def test_relu_is_underestimated_by_the_gradient_independence_assumption():
    """See the module docstring: measured 1.15-1.19 times the prediction; allowed 1.0-1.35."""
    measured, predicted = measured_and_predicted("relu", "he")
    assert 1.0 <= measured / predicted <= 1.35, (measured, predicted)
