"""Stacked recurrent nets (vanilla RNN, LSTM, GRU) with a linear readout, behind the Experiment API.

Layers are named "rnn.{l}" (input to output) and "output". Parameters, with G the number
of gate blocks (rnn 1, lstm 4 [i, f, g, o], gru 3 [r, u, n]) and H = model.width:
    rnn.{l}.W_ih (fan_in, G H)  input weights, model.init x model.init_gain per gate block
    rnn.{l}.W_hh (H, G H)       recurrent weights, model.recurrent_init x recurrent_gain per block:
                                orthogonal (Saxe et al. 2013), identity (Le et al. 2015),
                                xavier U[-sqrt(3/H), sqrt(3/H)], normal N(0, 1/H) (spectral
                                radius ~ 1 before the gain, by the circular law)
    rnn.{l}.b (G H)             biases N(0, bias_std^2); LSTM forget block + model.forget_bias
    rnn.{l}.b_hn (H)            GRU only: the bias inside r * (h W_hn + b_hn)
    output.W (H, n_out), output.b (n_out)
The maths, the statistics' definitions and the loss are documented in rnn_kernel,
lstm_kernel, gated_kernel and seq_kernel.
"""

from __future__ import annotations

import numpy as np

from gradtui.engine import seq_kernel as K
from gradtui.engine.activations import CODES
from gradtui.engine.init import init_weight, orthogonal
from gradtui.engine.layout import ParamLayout
from gradtui.engine.record import Layer
from gradtui.engine.rnn_kernel import COL_B, COL_B_HN, COL_FAN_IN, COL_W_HH, COL_W_IH, saturation_limit
from gradtui.engine.seq_train import seq_train_steps
from gradtui.engine.train_loop import plain, update_fields

CELLS = {"rnn": K.RNN, "lstm": K.LSTM, "gru": K.GRU}
EVAL_ROWS = 16384  # (examples x steps) per evaluation chunk, so evaluation memory stays bounded


def recurrent_weight(scheme: str, rng: np.random.Generator, H: int, gain: float) -> np.ndarray:
    """One gate block's (H, H) recurrent matrix."""
    if scheme == "orthogonal":
        w = orthogonal(rng, H, H)
    elif scheme == "identity":
        w = np.eye(H)
    elif scheme == "xavier":
        w = init_weight("xavier", rng, H, H)
    elif scheme == "normal":
        w = rng.normal(0.0, np.sqrt(1.0 / H), (H, H))
    else:
        raise ValueError(f"unknown recurrent init {scheme!r}")
    return w * gain


class RecurrentNetwork:
    """``depth`` stacked recurrent layers of ``width`` units and a linear readout.

    The readout covers the last R steps of the top layer: R is the target's step count
    (adding: y (n, 1) -> R = 1; copy: y (n, 10) labels -> R = 10; sine: y (n, T, 1) -> R = T).
    """

    def __init__(self, cfg, data, dtype):
        m = cfg.model
        self.cfg = cfg
        self.dtype = np.dtype(dtype)
        self.kind = m.kind
        self.cell = CELLS[m.kind]
        self.n_gates = K.N_GATES[self.cell]
        self.depth, self.width = m.depth, m.width
        self.n_in, self.n_out, self.classification = data.n_in, data.n_out, data.classification
        self.seq_len = int(data.x_train.shape[1])
        y = data.y_train
        self.readout_steps = int(y.shape[1]) if (data.classification or y.ndim == 3) else 1
        # classification: cross-entropy summed over the read-out steps / (batch * all steps)
        self.class_steps = float(self.seq_len)
        self.act = CODES[m.activation] if m.kind == "rnn" else CODES["tanh"]
        self.sat_limit = saturation_limit(self.act)
        self.exact = self.dtype == np.float64
        H, GH = self.width, self.n_gates * self.width
        self.layout = ParamLayout()
        self.table = np.full((m.depth + 1, 5), -1, dtype=np.int64)
        fan_in = self.n_in
        for l in range(m.depth):
            layer = self.layout.add_layer(f"rnn.{l}")
            row = self.table[l]
            row[COL_W_IH] = self.layout.add(layer, "W_ih", (fan_in, GH), weight=True)
            row[COL_W_HH] = self.layout.add(layer, "W_hh", (H, GH), weight=True)
            row[COL_B] = self.layout.add(layer, "b", (GH,))
            if m.kind == "gru":
                row[COL_B_HN] = self.layout.add(layer, "b_hn", (H,))
            row[COL_FAN_IN] = fan_in
            fan_in = H
        layer = self.layout.add_layer("output")
        self.table[m.depth, COL_W_IH] = self.layout.add(layer, "W", (H, self.n_out), weight=True)
        self.table[m.depth, COL_B] = self.layout.add(layer, "b", (self.n_out,))
        self.table[m.depth, COL_FAN_IN] = H
        self.settings = K.SeqSettings(self.cell, self.classification, self.class_steps, self.act, self.exact,
                                      self.sat_limit)
        self._workspaces: dict[int, K.SeqWorkspace] = {}
        self._no_shift = np.zeros((1, 1, 1), self.dtype)
        # kept between training calls (one per step in Experiment.step): the fused loop's
        # plain tuples of the workspace (by batch size) and settings, a forget-gate placeholder
        self._plain_workspaces: dict[int, tuple] = {}
        self._plain_settings = plain(self.settings)
        self._no_forget = np.zeros((1, 1))

    @property
    def layer_names(self) -> list[str]:
        return list(self.layout.layers)

    @property
    def layers(self) -> list[Layer]:
        """The layer table: recurrent layers (their cell and state activation), then the read-out."""
        act = self.cfg.model.activation if self.kind == "rnn" else "tanh"
        names = self.layout.layers
        out = [Layer(name, "recurrent", act, int(self.table[l, COL_FAN_IN]), self.width, cell=self.kind)
               for l, name in enumerate(names[:-1])]
        return out + [Layer(names[-1], "output", None, self.width, self.n_out)]

    def init_params(self, theta: np.ndarray, rng: np.random.Generator) -> None:
        """Input weights per model.init, recurrent weights per model.recurrent_init, each gate block on its own."""
        m = self.cfg.model
        H, G = self.width, self.n_gates
        for l in range(self.depth):
            p = f"rnn.{l}"
            fan_in = int(self.table[l, COL_FAN_IN])
            W_ih = np.concatenate([init_weight(m.init, rng, fan_in, H, m.init_gain, m.init_std) for _ in range(G)], axis=1)
            W_hh = np.concatenate([recurrent_weight(m.recurrent_init, rng, H, m.recurrent_gain) for _ in range(G)], axis=1)
            b = rng.normal(0.0, m.bias_std, G * H) if m.bias_std > 0 else np.zeros(G * H)
            if self.kind == "lstm":
                b[H : 2 * H] += m.forget_bias
            self.layout.view(theta, f"{p}.W_ih")[:] = W_ih
            self.layout.view(theta, f"{p}.W_hh")[:] = W_hh
            self.layout.view(theta, f"{p}.b")[:] = b
            if self.kind == "gru":
                self.layout.view(theta, f"{p}.b_hn")[:] = rng.normal(0.0, m.bias_std, H) if m.bias_std > 0 else 0.0
        self.layout.view(theta, "output.W")[:] = init_weight(m.init, rng, H, self.n_out, m.init_gain, m.init_std)
        self.layout.view(theta, "output.b")[:] = 0.0

    def _workspace(self, batch: int) -> K.SeqWorkspace:
        ws = self._workspaces.get(batch)
        if ws is None:
            L, T, B, H, dt = self.depth, self.seq_len, batch, self.width, self.dtype
            GH = self.n_gates * H
            R, Ko = self.readout_steps, self.n_out
            lstm, gru = self.kind == "lstm", self.kind == "gru"
            ws = K.SeqWorkspace(
                XT=np.zeros((T, B, self.n_in), dt),  # the input, time-major
                YC=np.zeros((R, B), np.int64),
                YV=np.zeros((R, B, Ko), dt),
                HS=np.zeros((L, T + 1, B, H), dt),  # h_0 = 0, h_1 .. h_T
                GA=np.zeros((L, T, B, GH), dt),  # phi' (rnn) or the gate values
                C=np.zeros((L, T + 1, B, H) if lstm else (L, 1, 1, 1), dt),  # LSTM cells
                TC=np.zeros((L, T, B, H) if gru else (L, 1, 1, 1), dt),  # GRU h W_hn + b_hn
                XW=np.zeros((T, B, GH), dt),
                tmp=np.zeros((B, GH), dt),
                LOG=np.zeros((R, B, Ko), dt),
                DLOG=np.zeros((R, B, Ko), dt),
                DH_IN=np.zeros((T, B, H), dt),
                DH_BELOW=np.zeros((T, B, H), dt),
                DA=np.zeros((T, B, GH) if gru else (1, 1, 1), dt),  # the GRU's dL/da (the others: step by step)
                DR=np.zeros((T, B, GH) if gru else (1, 1, 1), dt),
                dh_next=np.zeros((B, H), dt),
                dc=np.zeros((B, H), dt),
                direct=np.zeros((B, H), dt),
                dWT=np.zeros((GH, H), dt),
            )
            if len(self._workspaces) > 3:
                self._workspaces.clear()
                self._plain_workspaces.clear()
            self._workspaces[batch] = ws
            self._plain_workspaces[batch] = plain(ws)
        return ws

    def _load(self, ws, x, y) -> None:
        """Copy a batch into the time-major workspace arrays (no allocation)."""
        np.copyto(ws.XT, np.swapaxes(x, 0, 1), casting="unsafe")
        if self.classification:
            np.copyto(ws.YC, np.swapaxes(y, 0, 1), casting="unsafe")
        elif y.ndim == 2:  # one target per example, read out after the last step
            np.copyto(ws.YV[0], y, casting="unsafe")
        else:
            np.copyto(ws.YV, np.swapaxes(y, 0, 1), casting="unsafe")

    def loss_and_grad(self, theta, grad, x, y, train: bool, stats, h_shift=None) -> float:
        """Forward, loss and BPTT on (x, y): fills ``grad`` and, when ``stats`` is a dict, its arrays.

        ``stats`` holds float64 arrays act_mean, act_std, dead_fraction, saturation,
        delta_norm (one entry per layer) and the arrays of :meth:`extra_stats`.
        ``h_shift`` (tests only): a (T, B, H) array added to the top layer's h_t as soon
        as it is computed, so dL/dh_t can be checked by finite differences on it.
        """
        x = np.asarray(x)
        ws = self._workspace(x.shape[0])
        self._load(ws, x, np.asarray(y))
        shift_on = h_shift is not None
        shift = np.ascontiguousarray(h_shift, dtype=self.dtype) if shift_on else self._no_shift
        return float(K.seq_step(theta, grad, self.table, ws, self.settings, shift, shift_on, self._stats(stats)))

    def train_steps(self, theta, spare, states, grad, segments, x_all, y_all, batches, tr, t0,
                    stats, losses, totals, clipped, extras, statistics: bool = True) -> tuple[int, bool, int]:
        """Several fused training steps in one kernel call (see gradtui.engine.seq_train).
        ``extras``: arrays shaped (steps, ...) for the arrays of :meth:`extra_stats`."""
        batch = batches.shape[1]
        ws = self._workspace(batch)
        if self.classification:
            yc_all, yv_all = y_all, ws.YV
        else:
            yc_all, yv_all = ws.YC, (y_all if y_all.ndim == 3 else y_all[:, None, :])
        forget = extras.get("forget_gate_mean")
        if forget is None:  # a placeholder without an LSTM, one row per step
            if len(self._no_forget) < len(batches):
                self._no_forget = np.zeros((len(batches), 1))
            forget = self._no_forget
        taken, flipped, status = seq_train_steps(
            (theta, spare, *states), grad, segments, self.table, x_all, yc_all, yv_all, batches,
            self._plain_workspaces[batch], self._plain_settings, update_fields(tr), t0, statistics,
            (stats, losses, totals, clipped), extras["time_delta_norm"], forget)
        return int(taken), bool(flipped), int(status)

    def _stats(self, stats) -> K.SeqStats:
        """The kernel's view of ``stats`` (off, with placeholder arrays, when it is None)."""
        if stats is None:
            return K.SeqStats(False, *([_EMPTY] * 7))
        return K.SeqStats(True, stats["act_mean"], stats["act_std"], stats["dead_fraction"], stats["saturation"],
                          stats["delta_norm"], stats.get("forget_gate_mean", _EMPTY), stats["time_delta_norm"])

    def evaluate(self, theta, x, y) -> tuple[float, float | None]:
        """Mean loss over the examples and, for classification, the share of read-out steps predicted right."""
        chunk = max(1, EVAL_ROWS // self.seq_len)
        total, correct = 0.0, 0
        for start in range(0, len(x), chunk):
            xc, yc = np.asarray(x[start : start + chunk]), np.asarray(y[start : start + chunk])
            ws = self._workspace(len(xc))
            self._load(ws, xc, yc)
            loss, ok = K.seq_evaluate(theta, self.table, ws, self.settings, self._no_shift)
            total += float(loss) * len(xc)
            correct += int(ok)
        n = len(x)
        return total / n, (correct / (n * self.readout_steps) if self.classification else None)

    def extra_stats(self) -> dict[str, np.ndarray]:
        """Fresh arrays: ``time_delta_norm`` (one entry per input step t = 1..T_total, i.e. seq_len for
        adding and sine, seq_len + 20 for copy) and, for LSTMs, ``forget_gate_mean`` (one per layer)."""
        out = {"time_delta_norm": np.zeros(self.seq_len)}
        if self.kind == "lstm":
            out["forget_gate_mean"] = np.zeros(self.depth)
        return out

    def buffers(self) -> dict[str, np.ndarray]:
        """No state beyond the parameters."""
        return {}


_EMPTY = np.zeros(1)
