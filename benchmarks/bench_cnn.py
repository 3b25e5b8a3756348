"""CNN engine speed, side by side with PyTorch eager on the CPU and the machine's SGEMM, in one run.

    python -m benchmarks.bench_cnn [--seconds S] [--rounds R]

For (depth, channels, task, batch) in (20, 16, 8x8 digits, 64) and (10, 32, 16x16 shapes, 32),
tanh, Xavier init, float32, plain SGD, one thread for both sides (one_blas_thread() for
BLAS, torch.set_num_threads(1) for PyTorch), it measures:
  - gradtui: steps/s of ``Experiment.run(16)`` (16 fused steps per kernel call, every
    statistic on, as the interface's worker runs them);
  - PyTorch: steps/s of the same step written with nn.Conv2d, nn.Linear and
    F.cross_entropy: forward, backward, the per-layer gradient norms (one norm per
    convolution's weight plus the head, as gradtui reports them) and an SGD update;
  - each side's GFLOP/s: the step's convolution and head FLOPs (forward 2·B·H·W·9·C_in·C_out
    per convolution, three times that for forward, weight gradient and input gradient, the
    first layer's input gradient excluded) times its steps/s;
  - each side's share of single-thread SGEMM at 512^3 (benchmarks.sgemm).
Every measurement runs once per round and the rounds interleave them; the ratio gradtui /
PyTorch is taken within each round and its median reported; rates are the best round's.
"""

from __future__ import annotations

import argparse
import sys


import gradtui
from gradtui.engine.blas import one_blas_thread
from benchmarks.rounds import add_round_options, median_ratio, rate
from benchmarks.sgemm import PEAK_SIZE, sgemm_gflops

SHAPES = ((20, 16, "digits", 64), (10, 32, "shapes", 32))
TARGETS = {SHAPES[0]: 1.5, SHAPES[1]: 1.0}
FUSED_STEPS = 16


def experiment(depth: int, channels: int, task: str, batch: int) -> gradtui.Experiment:
    cfg = gradtui.load_config("vanishing-sigmoid").with_overrides({
        "model.kind": "cnn", "data.task": task, "model.depth": depth, "model.width": channels,
        "model.activation": "tanh", "model.init": "xavier", "train.batch_size": batch,
    })
    return gradtui.Experiment(cfg)


def torch_step(exp: gradtui.Experiment):
    """The same network and step in PyTorch eager, on the same images; returns a no-argument step."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    net = exp.network
    convs = [nn.Conv2d(s.c_in, s.c_out, 3, stride=s.stride, padding=1) for s in net.specs]
    head = nn.Linear(exp.cfg.model.width, net.n_out)
    model = nn.ModuleList(convs + [head])
    opt = torch.optim.SGD(model.parameters(), lr=exp.cfg.train.lr)
    x, y = exp.batch()
    images = torch.tensor(x, dtype=torch.float32).reshape(len(x), net.side, net.side, net.channels).permute(0, 3, 1, 2).contiguous()
    labels = torch.tensor(y)
    weights = [c.weight for c in convs] + [head.weight]

    def step():
        h = images
        for conv in convs:
            h = torch.tanh(conv(h))
        loss = F.cross_entropy(head(h.mean(dim=(2, 3))), labels)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        norms = torch.stack([w.grad.norm() for w in weights])
        opt.step()
        return loss.item(), norms
    return step


def conv_flops(exp: gradtui.Experiment, batch: int) -> float:
    """FLOPs of one step's convolutions and head (forward, weight gradient, input gradient)."""
    per_layer = [2.0 * batch * s.side_out ** 2 * 9 * s.c_in * s.c_out for s in exp.network.specs]
    head = 2.0 * batch * exp.cfg.model.width * exp.network.n_out
    return 3.0 * (sum(per_layer) + head) - per_layer[0]


def measure(shape, seconds: float, rounds: int) -> dict:
    exp = experiment(*shape)
    twin = torch_step(exp)
    runs = {"gradtui": [], "torch": [], "peak": []}
    for _ in range(rounds):
        runs["gradtui"].append(rate(lambda: exp.run(FUSED_STEPS), seconds, FUSED_STEPS))
        runs["torch"].append(rate(twin, seconds))
        runs["peak"].append(sgemm_gflops(PEAK_SIZE, PEAK_SIZE, PEAK_SIZE, seconds=seconds / 2)["best"])
    flops = conv_flops(exp, shape[3]) / 1e9

    ours, theirs, peak = runs["gradtui"], runs["torch"], runs["peak"]
    return {"gradtui": max(ours), "torch": max(theirs), "ratio": median_ratio(ours, theirs),
            "gflops": flops * max(ours), "torch_gflops": flops * max(theirs), "peak": max(peak),
            "of_peak": median_ratio(ours, peak, flops), "torch_of_peak": median_ratio(theirs, peak, flops)}


def main(argv=None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_round_options(parser, seconds=1.0, rounds=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with one_blas_thread():
        results = {shape: measure(shape, args.seconds, args.rounds) for shape in SHAPES}
    print(f"CNN step, tanh, float32, SGD, 1 thread each; {args.rounds} interleaved rounds: "
          "rates from the best round, ratios the median of per-round ratios")
    print(f"{'depth x channels, images, batch':>34} {'gradtui/s':>9} {'torch/s':>8} {'ratio':>6} "
          f"{'GF/s':>6} {'torch GF/s':>10} {'SGEMM':>6} {'share':>6} {'torch share':>11}")
    failures = []
    for shape, r in results.items():
        d, c, task, b = shape
        side = 8 if task == "digits" else 16
        label = f"{d} x {c}, {side}x{side} {task}, {b}"
        print(f"{label:>34} {r['gradtui']:>9.1f} {r['torch']:>8.1f} {r['ratio']:>5.2f}x "
              f"{r['gflops']:>6.1f} {r['torch_gflops']:>10.1f} {r['peak']:>6.1f} {r['of_peak']:>6.0%} {r['torch_of_peak']:>11.0%}")
        if r["ratio"] < TARGETS[shape]:
            failures.append(f"{label}: {r['ratio']:.2f}x PyTorch < {TARGETS[shape]}x")
    for line in failures:
        print("below target:", line)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
