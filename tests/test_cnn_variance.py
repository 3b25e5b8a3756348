"""Variance propagation at initialisation in a wide CNN, against Glorot & Bengio (2010) and
He et al. (2015) with a convolution's fan-in n = 3*3*C_in.

A 3x3 convolution z = sum over the 9*C_in inputs of its window of w h, with i.i.d. zero-mean
weights, has E_W[z^2] = 9 C_in Var(W) E[h^2] at every pixel whose window lies inside the
image, and back-propagates E_W[(dL/dh)^2] = 9 C_out Var(W) E[(dL/dz)^2] likewise, so per layer:
  linear, "standard" U[-1/sqrt(n), 1/sqrt(n)]: n Var W = 1/3: both shrink threefold;
  linear, xavier (Var W = 2/(9 C_in + 9 C_out)): n Var W = 1: both preserved;
  relu, he (Var W = 2/n): forward preserved, and half the units pass the error back: preserved;
  relu, xavier: half of that: both halve per layer.

Zero padding: a border pixel's window reaches outside the image and gets fewer terms. On
s x s images the whole-image second moment loses between 1 - ((3s-2)/(3s))^2 (a uniform
profile; 4.1% at s = 32) and 1 - ((1 + 2 cos(pi/(s+1)))/3)^2 (the profile the padding
settles into; 0.3%) per layer, so the measured factor is expected x (0.959 to 1).

Spread: the statistics are over one random net, whose channels share their weights over
every pixel, so C (not C x pixels) sets the spread. With C = 128, noisy inputs (shapes
with noise 10, nearly i.i.d. pixels) and the geometric mean over 4 transitions, one net's
factor spread by 2-5% (measured over 6 seeds); the geometric mean over 3 nets, about 2%.
We accept expected x [0.90, 1.05]: the padding's 4.1% plus 3 sigma below, 3 sigma above.
"""

import numpy as np
import pytest

import gradtui

SIDE, WIDTH, DEPTH, BATCH, NETS = 32, 128, 6, 4, 3


def measured_factors(activation: str, init: str, seed: int) -> tuple[float, float]:
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": "cnn", "data.task": "shapes", "data.image_size": SIDE, "data.noise": 10.0,
        "data.samples": 4 * BATCH, "model.activation": activation, "model.init": init,
        "model.depth": DEPTH, "model.width": WIDTH, "model.bias_std": 0.0, "train.seed": seed,
        "train.batch_size": BATCH, "train.lr": 1e-12,
    })
    rec = gradtui.Experiment(cfg).step()
    hidden = slice(0, DEPTH)
    second = rec.act_std[hidden] ** 2 + rec.act_mean[hidden] ** 2  # E[h^2] per layer
    forward = np.mean(np.log(second[2:] / second[1:-1]))  # from layer 2: layer 1's fan-in is the image's
    delta2 = rec.delta_norm[hidden] ** 2
    backward = np.mean(np.log(delta2[1:-1] / delta2[2:]))
    return forward, backward


@pytest.mark.parametrize("activation,init,factor", [
    ("linear", "standard", 1.0 / 3.0),
    ("linear", "xavier", 1.0),
    ("relu", "he", 1.0),
    ("relu", "xavier", 0.5),
])
def test_per_layer_variance_factor(activation, init, factor):
    logs = np.array([measured_factors(activation, init, seed) for seed in range(NETS)])
    forward, backward = np.exp(logs.mean(axis=0))
    assert 0.90 * factor <= forward <= 1.05 * factor, f"forward factor {forward:.3f}, expected {factor:.3f}"
    assert 0.90 * factor <= backward <= 1.05 * factor, f"backward factor {backward:.3f}, expected {factor:.3f}"
