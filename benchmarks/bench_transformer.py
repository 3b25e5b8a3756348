"""Transformer engine speed against PyTorch eager on the CPU, side by side in one run.

    python -m benchmarks.bench_transformer [--seconds S] [--rounds R]

For (depth, width, heads, sequence, batch) in (6, 64, 4, 16, 64) and (24, 32, 4, 16, 32), Pre-LN,
relu, MLP ratio 4, float32, Adam, one BLAS thread and one PyTorch thread, it measures steps/s of
  - gradtui: ``Experiment.step()`` (forward, backward, every statistic, the update, a StepRecord);
  - PyTorch: nn.TransformerEncoder of nn.TransformerEncoderLayer(batch_first=True, dropout=0,
    norm_first=True) with the same embeddings, final LayerNorm and head, the same loss, backward,
    the gradient norm of every layer (embedding, each block's attention and MLP, head; one
    torch.linalg.vector_norm per parameter) and torch.optim.Adam's step.
The two run once per round and the rounds interleave them; the ratio is taken within each round
and the median over rounds is reported (the machine is shared and its speed drifts).
"""

from __future__ import annotations

import argparse
import sys

import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot calls: loaded before the thread limit applies)
from gradtui.engine.blas import one_blas_thread

import gradtui
from benchmarks.rounds import add_round_options, median_ratio, rate

SHAPES = ((6, 64, 4, 16, 64), (24, 32, 4, 16, 32))
TARGET = 2.0


def config(depth: int, width: int, heads: int, seq: int, batch: int):
    return gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": "transformer", "model.depth": depth, "model.width": width, "model.heads": heads,
        "model.mlp_ratio": 4, "model.activation": "relu", "model.norm": "pre", "model.residual": True,
        "model.max_len": seq, "data.task": "sort", "data.seq_len": seq, "data.samples": max(2048, 8 * batch),
        "train.batch_size": batch, "train.optimizer": "adam", "train.lr": 1e-3,
    })


def torch_step(cfg):
    """A PyTorch twin of the config's step: forward, loss, backward, per-layer gradient norms, Adam."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    m, d = cfg.model, cfg.model.width
    layer = nn.TransformerEncoderLayer(d, m.heads, dim_feedforward=m.mlp_ratio * d, dropout=0.0, activation="relu",
                                       batch_first=True, norm_first=True)
    encoder = nn.TransformerEncoder(layer, m.depth, norm=nn.LayerNorm(d), enable_nested_tensor=False)
    embed, pos, head = nn.Embedding(10, d), nn.Parameter(torch.randn(m.max_len, d)), nn.Linear(d, 10)
    groups = [list(embed.parameters()) + [pos]]
    for block in encoder.layers:
        groups.append(list(block.self_attn.parameters()) + list(block.norm1.parameters()))
        groups.append(list(block.linear1.parameters()) + list(block.linear2.parameters()) + list(block.norm2.parameters()))
    groups.append(list(encoder.norm.parameters()) + list(head.parameters()))
    params = [p for g in groups for p in g]
    opt = torch.optim.Adam(params, lr=cfg.train.lr)
    g = torch.Generator().manual_seed(0)
    B, T = cfg.train.batch_size, cfg.data.seq_len
    x = torch.randint(0, 10, (B, T), generator=g)
    y = torch.sort(x, dim=1).values

    def step():
        opt.zero_grad(set_to_none=True)
        h = encoder(embed(x) + pos[:T])
        loss = nn.functional.cross_entropy(head(h).reshape(-1, 10), y.reshape(-1))
        loss.backward()
        norms = [torch.sqrt(sum(torch.linalg.vector_norm(p.grad) ** 2 for p in grp)) for grp in groups]
        torch.stack(norms).tolist()
        opt.step()
        return float(loss.detach())
    return step


def measure(shape, seconds: float, rounds: int) -> dict:
    import torch

    cfg = config(*shape)
    exp = gradtui.Experiment(cfg)
    ours, theirs = exp.step, torch_step(cfg)
    runs = {"gradtui": [], "torch": []}
    for _ in range(rounds):
        runs["gradtui"].append(rate(ours, seconds))
        runs["torch"].append(rate(theirs, seconds))
    assert torch.get_num_threads() == 1
    return {"gradtui": max(runs["gradtui"]), "torch": max(runs["torch"]),
            "ratio": median_ratio(runs["gradtui"], runs["torch"]),
            "ratios": [a / b for a, b in zip(runs["gradtui"], runs["torch"])]}


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_round_options(parser, seconds=1.0, rounds=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with one_blas_thread():
        results = {shape: measure(shape, args.seconds, args.rounds) for shape in SHAPES}
    print(f"Transformer step (Pre-LN, relu, float32, Adam, per-layer gradient norms), 1 thread; {args.rounds} "
          "interleaved rounds: rates from the best round, ratio the median of per-round ratios")
    print(f"{'depth, width, heads, seq, batch':>32} {'gradtui/s':>10} {'torch/s':>8} {'ratio':>6}  per-round ratios")
    failures = []
    for shape, r in results.items():
        rounds = " ".join(f"{x:.2f}" for x in r["ratios"])
        print(f"{', '.join(map(str, shape)):>32} {r['gradtui']:>10.1f} {r['torch']:>8.1f} {r['ratio']:>5.2f}x  {rounds}")
        if r["ratio"] < TARGET:
            failures.append(f"{shape}: {r['ratio']:.2f}x < {TARGET}x")
    print(f"target: >= {TARGET}x PyTorch eager at both shapes")
    print("all targets met" if not failures else "missed: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
