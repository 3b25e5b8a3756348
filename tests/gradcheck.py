"""Finite differences in float64, shared by the MLP and recurrent gradient tests."""

from __future__ import annotations

import numpy as np

# The fourth-order stencil f'(x) ~ [f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)] / 12h with
# h = 1e-4 in float64 has truncation error O(h^4 f^(5)) ~ 1e-16 and rounding error
# O(eps |f| / h) ~ 3e-12 for a loss of order 1, so a correct analytic gradient agrees to
# about 1e-9 even on small entries; a wrong one (a missing factor, a wrong sign, a
# transposed index) misses by far more than the 1e-6 the tests allow.
STEP = 1e-4
STENCIL = ((-2.0, 1.0 / 12), (-1.0, -8.0 / 12), (1.0, 8.0 / 12), (2.0, -1.0 / 12))
ATOL = 1e-9


def stencil_derivative(f, x0: float) -> float:
    """d f / d x at x0 by the fourth-order central stencil."""
    return sum(weight * f(x0 + offset * STEP) for offset, weight in STENCIL) / STEP


def numeric_gradient(exp, x, y, name: str, max_entries: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Analytic and numeric gradients of parameter ``name`` at up to ``max_entries`` random entries."""
    base = exp.params()[name].copy()
    _, grads = exp.gradients(x, y)
    analytic = grads[name].ravel()
    rng = np.random.default_rng(seed)
    entries = rng.choice(base.size, size=min(max_entries, base.size), replace=False)

    def loss_at(idx, value):
        bumped = base.copy().ravel()
        bumped[idx] = value
        exp.set_params({name: bumped.reshape(base.shape)})
        return exp.gradients(x, y)[0]

    numeric = np.array([stencil_derivative(lambda v: loss_at(idx, v), base.ravel()[idx]) for idx in entries])
    exp.set_params({name: base})
    return analytic[entries], numeric


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max |a - n| / max(|a|, |n|, 1e-3): relative, with gradients below 1e-3 judged absolutely to 1e-9."""
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), ATOL / 1e-6)
    return float(np.max(np.abs(analytic - numeric) / scale))
