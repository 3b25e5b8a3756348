"""A deep sigmoid MLP whose early layers stop learning: the textbook vanishing gradient.

    python examples/vanishing_sigmoid_mlp.py            # writes sigmoid_mlp.jsonl
    gradtui watch sigmoid_mlp.jsonl                     # in another terminal

Twelve Linear+Sigmoid layers (PyTorch's default init) on two interleaved spirals (generated
here, no download), plain SGD. Each sigmoid passes at most a quarter of the gradient, so the
first layer gets about 1e-8 of what the last hidden layer gets; gradtui raises "vanishing"
and names the code to change (ReLU in place of Sigmoid, He init, normalisation).
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import gradtui.torch as gt


def spirals(n: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals in the plane, labels 0 and 1."""
    t = torch.rand(n, generator=generator) * 3 * math.pi
    label = torch.randint(0, 2, (n,), generator=generator)
    r = t / (3 * math.pi)
    angle = t + label * math.pi
    x = torch.stack((r * torch.cos(angle), r * torch.sin(angle)), dim=1) + 0.02 * torch.randn(n, 2, generator=generator)
    return x, label


def model(depth: int = 12, width: int = 32) -> nn.Sequential:
    layers, fan_in = [], 2
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.Sigmoid()]
        fan_in = width
    return nn.Sequential(*layers, nn.Linear(width, 2))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--every", type=int, default=2)
    p.add_argument("--record", default="sigmoid_mlp.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.5)
    x, y = spirals(4096, g)
    with gt.watch(net, optimizer, record=args.record, every=args.every) as watcher:
        for step in range(args.steps):
            idx = torch.randint(0, len(x), (64,), generator=g)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watcher.log(loss=loss)
    print(f"wrote {args.record}; replay it with `gradtui replay {args.record}`")


if __name__ == "__main__":
    main()
