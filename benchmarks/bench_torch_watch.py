"""The cost of gradtui.torch.watch: a bare PyTorch training loop against the same loop watched.

    python benchmarks/bench_torch_watch.py [--steps 60] [--rounds 5] [--threads 1]

Three real models on the CPU: a 20-layer MLP (width 256, ReLU), a small CNN of torchvision-style
ResNet basic blocks with in-place ReLU and batch norm (32x32 images, no download), and a
4-layer nn.TransformerEncoder (d_model 128). For each model three copies from the same weights
(bare, watched at every=10, watched at every=1) take turns step by step (see :func:`measure`);
the ratio watched/bare is taken per round and its median over rounds reported with the median
per-step times. Target: every=10 at most 5% slower (ratio <= 1.05).

Two clocks: ``wall`` (time.perf_counter, what a user waits) and ``cpu`` (time.thread_time of the
training thread: with one torch thread the same as wall time on an idle machine, but blind to
the time the thread spends descheduled, which dominates wall-time figures on a shared machine).
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


class Side:
    """One copy of the model with its optimizer, trained step by step (watched when ``every``)."""

    def __init__(self, base, x, y, every: int | None, record: Path):
        self.model, self.x, self.y = copy.deepcopy(base), x, y
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.watcher = gt.watch(self.model, self.opt, record=record, every=every, quiet=True) if every else None
    def step(self) -> tuple[float, float]:
        """(wall, cpu) seconds of one training step."""
        t0, c0 = time.perf_counter(), time.thread_time()
        loss = nn.functional.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.watcher is not None:
            self.watcher.log(loss=loss)
        return time.perf_counter() - t0, time.thread_time() - c0

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()


CLOCKS = ("cpu", "wall")


def measure(base, x, y, steps: int, rounds: int, tmp: Path, name: str) -> dict:
    """Per clock, (seconds per step of each side per round, the watched/bare ratio of each round).

    The three sides (bare, every=10, every=1) take turns step by step, in an order that rotates
    every step, so a change in the machine's load between two steps falls on all three alike.
    A round is ``steps`` steps of each side (a multiple of 10: every round holds the same number
    of sampled steps); three warm-up steps each come first (the first, sampled, step builds the
    layer table)."""
    sides = {every: Side(base, x, y, every, tmp / f"{name}-{every}.jsonl") for every in (None, 10, 1)}
    try:
        turns = list(sides.items())
        for _ in range(3):
            for _, side in turns:
                side.step()
        times = {clock: {every: [] for every in sides} for clock in CLOCKS}
        for _ in range(rounds):
            spent = {every: [0.0, 0.0] for every in sides}  # wall, cpu
            for i in range(steps):
                k = i % len(turns)
                for every, side in turns[k:] + turns[:k]:
                    wall, cpu = side.step()
                    spent[every][0] += wall
                    spent[every][1] += cpu
            for every in sides:
                times["wall"][every].append(spent[every][0] / steps)
                times["cpu"][every].append(spent[every][1] / steps)
        return {clock: (t, {every: [w / b for w, b in zip(t[every], t[None])] for every in (10, 1)})
                for clock, t in times.items()}
    finally:
        for side in sides.values():
            side.close()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60, help="steps per round (a multiple of 10)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", default=",".join(MODELS))
    args = p.parse_args(argv)
    if args.steps < 10 or args.steps % 10:
        p.error(f"--steps must be a multiple of 10 (every round then holds the same sampled steps), not {args.steps}")
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="gradtui-bench-"))
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps x {args.rounds} rounds, sides interleaved step by step")
    print(f"{'model':<12} {'clock':<5} {'bare ms/step':>12} {'every=10':>10} {'ratio':>7} {'every=1':>10} {'ratio':>7}")
    for name in args.models.split(","):
        build, inputs = MODELS[name]
        torch.manual_seed(0)
        base = build()
        x, y = inputs(g), torch.randint(0, 10, (32 if name != "mlp20" else 128,), generator=g)
        for clock, (times, ratios) in measure(base, x, y, args.steps, args.rounds, tmp, name).items():
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            r10, r1 = statistics.median(ratios[10]), statistics.median(ratios[1])
            print(f"{name:<12} {clock:<5} {med[None]:>12.2f} {med[10]:>10.2f} {r10:>7.3f} {med[1]:>10.2f} {r1:>7.3f}"
                  f"   (every=10 ratios: {' '.join(f'{r:.3f}' for r in ratios[10])})", flush=True)


if __name__ == "__main__":
    main()
