"""PyTorch twin of gradtui's Transformer (float64), built from nn.TransformerEncoderLayer.

With residual connections the real layer's forward runs (norm "none" replaces norm1 and norm2
by nn.Identity, which turns the Post-LN layer into X + f(X)); without them the same layer's
submodules (self_attn, linear1, linear2, norm1, norm2) are composed by hand.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def torch_layers(params: dict, depth: int, width: int, heads: int, hidden: int, activation: str, norm: str):
    layers = []
    for l in range(depth):
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=hidden, dropout=0.0, activation=activation,
                                           layer_norm_eps=1e-5, batch_first=True, norm_first=(norm == "pre"),
                                           dtype=torch.float64)
        a, m = f"block.{l}.attn", f"block.{l}.mlp"
        t = lambda name: torch.tensor(params[name], dtype=torch.float64)  # noqa: E731
        with torch.no_grad():
            layer.self_attn.in_proj_weight.copy_(t(f"{a}.W_qkv").T)
            layer.self_attn.in_proj_bias.copy_(t(f"{a}.b_qkv"))
            layer.self_attn.out_proj.weight.copy_(t(f"{a}.W_o").T)
            layer.self_attn.out_proj.bias.copy_(t(f"{a}.b_o"))
            layer.linear1.weight.copy_(t(f"{m}.W_1").T)
            layer.linear1.bias.copy_(t(f"{m}.b_1"))
            layer.linear2.weight.copy_(t(f"{m}.W_2").T)
            layer.linear2.bias.copy_(t(f"{m}.b_2"))
            layer.norm1.weight.copy_(t(f"{a}.ln_g"))
            layer.norm1.bias.copy_(t(f"{a}.ln_b"))
            layer.norm2.weight.copy_(t(f"{m}.ln_g"))
            layer.norm2.bias.copy_(t(f"{m}.ln_b"))
        if norm == "none":
            layer.norm1, layer.norm2 = nn.Identity(), nn.Identity()
        layers.append(layer)
    return layers


def torch_loss_and_grads(params: dict, tokens, targets, *, depth, width, heads, hidden, activation, norm,
                         residual, causal=False):
    """Loss and the gradient of every gradtui parameter (same names and layout), from PyTorch."""
    layers = torch_layers(params, depth, width, heads, hidden, activation, norm)
    E = torch.tensor(params["embed.E"], requires_grad=True)
    P = torch.tensor(params["embed.P"], requires_grad=True)
    g_f = torch.tensor(params["head.ln_g"], requires_grad=True)
    b_f = torch.tensor(params["head.ln_b"], requires_grad=True)
    W = torch.tensor(params["head.W"], requires_grad=True)
    b = torch.tensor(params["head.b"], requires_grad=True)
    tok = torch.tensor(np.asarray(tokens, dtype=np.int64))
    T = tok.shape[1]
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None
    X = E[tok] + P[:T]
    for layer in layers:
        if residual:
            X = layer(X, src_mask=mask)
            continue
        attend = lambda u: layer.self_attn(u, u, u, attn_mask=mask, need_weights=False)[0]  # noqa: E731
        feed = lambda u: layer.linear2(layer.activation(layer.linear1(u)))  # noqa: E731
        for f, ln in ((attend, layer.norm1), (feed, layer.norm2)):
            if norm == "pre":
                X = f(ln(X))
            else:
                X = ln(f(X))  # post: LN(f(X)); none: Identity
    if norm == "pre":
        X = nn.functional.layer_norm(X, (width,), g_f, b_f, 1e-5)
    logits = X @ W + b
    y = torch.tensor(np.asarray(targets, dtype=np.int64))
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1)
    loss.backward()
    grads = {"embed.E": E.grad, "embed.P": P.grad, "head.ln_g": g_f.grad, "head.ln_b": b_f.grad, "head.W": W.grad, "head.b": b.grad}
    for l, layer in enumerate(layers):
        a, m = f"block.{l}.attn", f"block.{l}.mlp"
        grads[f"{a}.W_qkv"] = layer.self_attn.in_proj_weight.grad.T
        grads[f"{a}.b_qkv"] = layer.self_attn.in_proj_bias.grad
        grads[f"{a}.W_o"] = layer.self_attn.out_proj.weight.grad.T
        grads[f"{a}.b_o"] = layer.self_attn.out_proj.bias.grad
        grads[f"{m}.W_1"] = layer.linear1.weight.grad.T
        grads[f"{m}.b_1"] = layer.linear1.bias.grad
        grads[f"{m}.W_2"] = layer.linear2.weight.grad.T
        grads[f"{m}.b_2"] = layer.linear2.bias.grad
        for ln, owner in ((layer.norm1, a), (layer.norm2, m)):
            has = isinstance(ln, nn.LayerNorm)
            grads[f"{owner}.ln_g"] = ln.weight.grad if has and ln.weight.grad is not None else torch.zeros(width, dtype=torch.float64)
            grads[f"{owner}.ln_b"] = ln.bias.grad if has and ln.bias.grad is not None else torch.zeros(width, dtype=torch.float64)
    out = {k: (v.detach().numpy() if v is not None else np.zeros_like(params[k])) for k, v in grads.items()}
    return float(loss.detach()), out
