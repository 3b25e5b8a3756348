"""The cost of gradtui.torch.watch: a bare PyTorch training loop against the same loop watched.

    python benchmarks/bench_torch_watch.py [--steps 60] [--rounds 5] [--threads 1]

Three real models on the CPU: a 20-layer MLP (width 256, ReLU), a small CNN of torchvision-style
ResNet basic blocks with in-place ReLU and batch norm (32x32 images, no download), and a
4-layer nn.TransformerEncoder (d_model 128). For each model, rounds are interleaved (bare,
every=10, every=1, bare, ...); within a round each side trains ``steps`` steps of the same
model from the same weights, and the ratio watched/bare is taken within the round (its sides
ran seconds apart, on the machine in the same state). The median ratio over rounds is
reported with the median per-step times. Target: every=10 at most 5% slower (ratio <= 1.05).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import gradtui.torch as gt


def mlp() -> nn.Module:
    layers, width = [nn.Linear(64, 256), nn.ReLU()], 256
    for _ in range(18):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock: conv-bn-relu-conv-bn, plus the input, relu (in place)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


def cnn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
                         *[BasicBlock(16) for _ in range(4)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 128)
        layer = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x)).mean(dim=1))


MODELS = {
    "mlp20": (mlp, lambda g: torch.randn(128, 64, generator=g)),
    "resnet-cnn": (cnn, lambda g: torch.randn(32, 3, 32, 32, generator=g)),
    "transformer": (Transformer, lambda g: torch.randint(0, 100, (32, 32), generator=g)),
}


def train(model, x, y, steps: int, every: int | None, record: Path) -> float:
    """Seconds per step of ``steps`` steps (after 3 warm-up steps), watched when ``every``."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    watcher = gt.watch(model, opt, record=record, every=every, quiet=True) if every else None
    try:
        for i in range(steps + 3):
            if i == 3:
                t0 = time.perf_counter()
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if watcher is not None:
                watcher.log(loss=loss)
        return (time.perf_counter() - t0) / steps
    finally:
        if watcher is not None:
            watcher.close()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="gradtui-bench-"))
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps x {args.rounds} interleaved rounds")
    print(f"{'model':<12} {'bare ms/step':>12} {'every=10':>10} {'ratio':>7} {'every=1':>10} {'ratio':>7}")
    for name in args.models.split(","):
        build, inputs = MODELS[name]
        torch.manual_seed(0)
        base = build()
        x, y = inputs(g), torch.randint(0, 10, (32 if name != "mlp20" else 128,), generator=g)
        times = {None: [], 10: [], 1: []}
        ratios = {10: [], 1: []}
        for _ in range(args.rounds):
            round_ = {}
            for every in (None, 10, 1):
                round_[every] = train(copy.deepcopy(base), x, y, args.steps, every, tmp / f"{name}.jsonl")
                times[every].append(round_[every])
            for every in (10, 1):
                ratios[every].append(round_[every] / round_[None])
        med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        r10, r1 = statistics.median(ratios[10]), statistics.median(ratios[1])
        print(f"{name:<12} {med[None]:>12.2f} {med[10]:>10.2f} {r10:>7.3f} {med[1]:>10.2f} {r1:>7.3f}"
              f"   (every=10 ratios: {' '.join(f'{r:.3f}' for r in ratios[10])})")


if __name__ == "__main__":
    main()
