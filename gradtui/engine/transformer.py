"""The Transformer encoder: parameter layout, initialisation and calls into the fused kernel.

Statistic layers, input to output: "embed", then "block.{l}.attn" and "block.{l}.mlp" for each
block, then "head". Parameters (weights stored (fan_in, fan_out); d = model.width,
m = model.mlp_ratio x d, V the vocabulary, T_max = model.max_len):
    embed.E (V, d), embed.P (T_max, d)        token and learned positional embeddings, N(0, 1)
                                              (nn.Embedding's default)
    block.{l}.attn.W_qkv (d, 3d), .b_qkv      query, key and value projections, one matrix as in
                                              nn.MultiheadAttention (model.init over the whole)
    block.{l}.attn.W_o (d, d), .b_o           output projection
    block.{l}.attn.ln_g, .ln_b (d)            its LayerNorm (norm1), gain 1 and bias 0
    block.{l}.mlp.W_1 (d, m), .b_1, .W_2 (m, d), .b_2, .ln_g, .ln_b (norm2)
    head.ln_g, head.ln_b (d)                  the final LayerNorm (used by Pre-LN only)
    head.W (d, V_out), head.b
Every LayerNorm exists whatever model.norm says (an unused one gets zero gradient), so
switching the placement carries every weight over. Weight matrices take model.init x
model.init_gain; biases N(0, bias_std^2). The maths is in transformer_kernel and transformer_ops.
"""

from __future__ import annotations

import numpy as np

from gradtui.engine import transformer_kernel as K
from gradtui.engine.init import init_weight
from gradtui.engine.layout import ParamLayout
from gradtui.engine.record import Layer
from gradtui.engine.transformer_ops import GELU, RELU

EVAL_CHUNK = 128  # held-out sequences per forward pass, so evaluation memory stays bounded
ACTS = {"relu": RELU, "gelu": GELU}
SPREAD, ENTROPY = "token_spread", "attention_entropy"


class TransformerNetwork:
    """``model.depth`` encoder blocks of width ``model.width`` on token sequences, a per-position head."""

    def __init__(self, cfg, data, dtype):
        m = cfg.model
        self.cfg = cfg
        self.dtype = np.dtype(dtype)
        self.depth, self.width, self.heads = m.depth, m.width, m.heads
        self.hidden = m.mlp_ratio * m.width
        self.seq_len = int(data.x_train.shape[1])
        self.n_in, self.n_out, self.classification = data.n_in, data.n_out, True
        self.norm = K.NORM_CODES[m.norm]
        self.act = ACTS[m.activation]
        d, V = self.width, self.n_out
        self.layout = ParamLayout()
        self.glob = np.zeros(6, np.int64)
        self.blocks = np.zeros((m.depth, 12), np.int64)
        embed = self.layout.add_layer("embed")
        self.glob[K.EMBED] = self.layout.add(embed, "E", (self.n_in, d), weight=True)
        self.glob[K.POS] = self.layout.add(embed, "P", (m.max_len, d), weight=True)
        for l in range(m.depth):
            row = self.blocks[l]
            attn = self.layout.add_layer(f"block.{l}.attn")
            row[K.W_QKV] = self.layout.add(attn, "W_qkv", (d, 3 * d), weight=True)
            row[K.B_QKV] = self.layout.add(attn, "b_qkv", (3 * d,))
            row[K.W_O] = self.layout.add(attn, "W_o", (d, d), weight=True)
            row[K.B_O] = self.layout.add(attn, "b_o", (d,))
            row[K.G_1] = self.layout.add(attn, "ln_g", (d,))
            row[K.BETA_1] = self.layout.add(attn, "ln_b", (d,))
            mlp = self.layout.add_layer(f"block.{l}.mlp")
            row[K.W_1] = self.layout.add(mlp, "W_1", (d, self.hidden), weight=True)
            row[K.B_1] = self.layout.add(mlp, "b_1", (self.hidden,))
            row[K.W_2] = self.layout.add(mlp, "W_2", (self.hidden, d), weight=True)
            row[K.B_2] = self.layout.add(mlp, "b_2", (d,))
            row[K.G_2] = self.layout.add(mlp, "ln_g", (d,))
            row[K.BETA_2] = self.layout.add(mlp, "ln_b", (d,))
        head = self.layout.add_layer("head")
        self.glob[K.G_F] = self.layout.add(head, "ln_g", (d,))
        self.glob[K.BETA_F] = self.layout.add(head, "ln_b", (d,))
        self.glob[K.W_HEAD] = self.layout.add(head, "W", (d, V), weight=True)
        self.glob[K.B_HEAD] = self.layout.add(head, "b", (V,))
        self._workspaces: dict[int, K.Workspace] = {}

    @property
    def layer_names(self) -> list[str]:
        return list(self.layout.layers)

    @property
    def layers(self) -> list[Layer]:
        """The layer table: the embedding, then each block's attention sub-layer (its output
        projection d -> d) and MLP sub-layer (d -> mlp_ratio x d -> d, with the activation),
        then the head (d -> vocabulary)."""
        d, act = self.width, self.cfg.model.activation
        out = [Layer("embed", "embedding", None, self.n_in, d)]
        for l in range(self.depth):
            out += [Layer(f"block.{l}.attn", "attention", None, d, d), Layer(f"block.{l}.mlp", "linear", act, d, d)]
        return out + [Layer("head", "output", None, d, self.n_out)]

    def init_params(self, theta: np.ndarray, rng: np.random.Generator) -> None:
        """Embeddings N(0, 1); matrices per model.init; biases N(0, bias_std^2); LayerNorm g 1, beta 0."""
        m = self.cfg.model
        for name, shape in zip(self.layout.names, self.layout.shapes):
            view = self.layout.view(theta, name)
            leaf = name.rsplit(".", 1)[1]
            if name.startswith("embed."):
                view[:] = rng.standard_normal(shape)
            elif leaf == "ln_g":
                view[:] = 1.0
            elif leaf == "ln_b":
                view[:] = 0.0
            elif len(shape) == 2:
                view[:] = init_weight(m.init, rng, shape[0], shape[1], m.init_gain, m.init_std)
            else:
                view[:] = rng.normal(0.0, m.bias_std, shape) if m.bias_std > 0 else 0.0

    def workspace(self, batch: int) -> K.Workspace:
        """The kernel's buffers for ``batch`` sequences (a few sizes kept)."""
        ws = self._workspaces.get(batch)
        if ws is None:
            L, T, d, m, h, V, dt = self.depth, self.seq_len, self.width, self.hidden, self.heads, self.n_out, self.dtype
            N, S = batch * T, 2 * self.depth
            pre, post = self.norm == K.NORM_PRE, self.norm == K.NORM_POST
            z = lambda *shape: np.zeros(shape, dt)  # noqa: E731
            ws = K.Workspace(
                XS=z(S + 1, N, d), U=z(N, d),
                XHA=z(S if pre else 1, N, d), RA=z(S if pre else 1, N),
                XHB=z(S if post else 1, N, d), RB=z(S if post else 1, N),
                QKV=z(L, N, 3 * d),
                P=z(L, batch, h, T, T), O=z(N, d), Z=z(L, N, m), HD=z(N, m), ZMAX=z(m),
                XHF=z(N, d), RF=z(N), HF=z(N, d), LOGITS=z(N, V), DLOGITS=z(N, V),
                DQKV=z(N, 3 * d),
                FB=z(N, d), DX=z(N, d), DF=z(N, d), DU=z(N, d), DO=z(N, d), DZ=z(N, m),
                TT=z(T, T),
            )
            if len(self._workspaces) > 2:
                self._workspaces.clear()
            self._workspaces[batch] = ws
        return ws

    def _flat(self, x, y):
        tokens = np.ascontiguousarray(np.asarray(x).reshape(-1), dtype=np.int64)
        targets = np.ascontiguousarray(np.asarray(y).reshape(-1), dtype=np.int64)
        return tokens, targets

    def _switches(self):
        m = self.cfg.model
        return self.seq_len, self.heads, self.norm, bool(m.residual), self.act, bool(m.causal)

    def loss_and_grad(self, theta, grad, x, y, train: bool, stats) -> float:
        """Forward and backward on token sequences x (B, T) with targets y (B, T) (-1: not scored).

        ``stats`` is None or a dict of float64 arrays act_mean, act_std, dead_fraction,
        saturation, delta_norm (one entry per layer) and token_spread, attention_entropy
        (one per block, from :meth:`extra_stats`)."""
        tokens, targets = self._flat(x, y)
        ws = self.workspace(len(tokens) // self.seq_len)
        T, heads, norm, residual, act, causal = self._switches()
        on = stats is not None
        s = stats if on else _NO_STATS
        if on:
            s["saturation"][:] = 0.0
        return float(K.transformer_step(
            theta, grad, self.blocks, self.glob, tokens, targets, T, heads, norm, residual, act, causal, ws,
            on, s["act_mean"], s["act_std"], s["dead_fraction"], s["delta_norm"], s[SPREAD], s[ENTROPY]))

    def evaluate_positions(self, theta, x, y) -> tuple[float, np.ndarray]:
        """Mean cross-entropy over scored positions and the accuracy at each position (NaN where
        no position is scored)."""
        T, heads, norm, residual, act, causal = self._switches()
        correct = np.zeros(T)
        scored = np.zeros(T)
        total, count = 0.0, 0
        for start in range(0, len(x), EVAL_CHUNK):
            tokens, targets = self._flat(x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK])
            ws = self.workspace(len(tokens) // T)
            loss, n = K.transformer_evaluate(theta, self.blocks, self.glob, tokens, targets, T, heads, norm,
                                             residual, act, causal, ws, correct)
            total += float(loss)
            count += int(n)
            scored += (targets.reshape(-1, T) >= 0).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_position = np.where(scored > 0, correct / np.maximum(scored, 1), np.nan)
        return total / max(count, 1), per_position

    def evaluate(self, theta, x, y) -> tuple[float, float]:
        """Mean cross-entropy and accuracy over every scored position of the held-out sequences."""
        loss, per_position = self.evaluate_positions(theta, x, y)
        scored = (np.asarray(y) >= 0).sum(axis=0)
        ok = ~np.isnan(per_position)
        return loss, float(np.sum(per_position[ok] * scored[ok]) / max(scored[ok].sum(), 1))

    def extra_stats(self) -> dict[str, np.ndarray]:
        """Fresh per-block arrays: token_spread and attention_entropy."""
        return {SPREAD: np.zeros(self.depth), ENTROPY: np.zeros(self.depth)}

    def buffers(self) -> dict[str, np.ndarray]:
        """No state beyond the parameters."""
        return {}


_NO_STATS = {k: np.zeros(1) for k in ("act_mean", "act_std", "dead_fraction", "saturation", "delta_norm", SPREAD, ENTROPY)}
