"""Variance propagation at initialisation against Glorot & Bengio (2010) and He et al. (2015).

In a layer z_l = h_{l-1} W_l with i.i.d. zero-mean weights, Var(z_l) = n Var(W) E[h_{l-1}^2]
forwards and Var(dL/dh_{l-1}) = n Var(W) Var(dL/dz_l) backwards (n = width). So, per layer:
  linear, "standard" U[-1/sqrt(n), 1/sqrt(n)]: n Var W = 1/3: both variances shrink threefold;
  linear, xavier: n Var W = 1 for square layers: both are preserved;
  relu, he: n Var W = 2 and E[relu(z)^2] = Var(z)/2: forward preserved; backward each
      layer keeps half the units, so Var(delta) is preserved too;
  relu, xavier: half of that: both halve per layer.

Tolerance: with width n = 512 and batch 256, one layer's empirical variance ratio has a
relative spread of about sqrt(2/n) ~ 6% (weights) and less from the batch; the geometric
mean of the ratio over 8 transitions has about 6%/sqrt(8) ~ 2%. We allow 8% (4 sigma).
"""

import numpy as np
import pytest

import gradtui

WIDTH, DEPTH, BATCH = 512, 9, 256


def measured_ratios(activation: str, init: str) -> tuple[float, float]:
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.activation": activation, "model.init": init, "model.depth": DEPTH, "model.width": WIDTH,
        "data.task": "teacher", "data.features": WIDTH, "data.samples": 2 * BATCH,
        "train.batch_size": BATCH, "train.dtype": "float64", "train.lr": 1e-12,
    })
    exp = gradtui.Experiment(cfg)
    rec = exp.step()
    hidden = slice(0, DEPTH)
    # Forward: second moment of the layer outputs E[h^2] = std^2 + mean^2, layer over layer.
    second = rec.act_std[hidden] ** 2 + rec.act_mean[hidden] ** 2
    # For relu, E[h^2] = Var(z)/2 at every layer, so the ratio of E[h^2] equals that of Var(z).
    forward = np.exp(np.mean(np.log(second[2:] / second[1:-1])))
    # Backward: squared norms of dL/dz from one hidden layer to the one below it.
    delta2 = rec.delta_norm[hidden] ** 2
    backward = np.exp(np.mean(np.log(delta2[1:-1] / delta2[2:])))
    return forward, backward


@pytest.mark.parametrize("activation,init,factor", [
    ("linear", "standard", 1.0 / 3.0),
    ("linear", "xavier", 1.0),
    ("linear", "xavier_normal", 1.0),
    ("relu", "he", 1.0),
    ("relu", "he_uniform", 1.0),
    ("relu", "xavier", 0.5),
    ("linear", "lecun", 1.0),
])
def test_per_layer_variance_factor(activation, init, factor):
    forward, backward = measured_ratios(activation, init)
    assert forward == pytest.approx(factor, rel=0.08), f"forward {forward:.3f} vs {factor:.3f}"
    assert backward == pytest.approx(factor, rel=0.08), f"backward {backward:.3f} vs {factor:.3f}"
