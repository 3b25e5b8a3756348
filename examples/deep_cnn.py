"""A plain deep CNN against the same CNN with residual connections.

    python examples/deep_cnn.py               # plain: writes cnn_plain.jsonl (vanishing)
    python examples/deep_cnn.py --residual    # residual: writes cnn_residual.jsonl (healthy)
    gradtui watch cnn_plain.jsonl             # in another terminal

Sixteen 3x3 convolutions with in-place ReLU (PyTorch's default init), on 12x12 images of one
bright square (generated here): is it in the left or the right half? Without skip
connections each conv+ReLU shrinks the gradient (default init has variance 1/(3 fan_in),
ReLU needs 2/fan_in), so the first convolutions hardly learn; with ``x = x + block(x)``
the gradient reaches them undiminished.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import gradtui.torch as gt


class Block(nn.Module):
    """conv-ReLU-conv, plus the input when ``residual`` (a torchvision BasicBlock without batch norm)."""

    def __init__(self, channels: int, residual: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual

    def forward(self, x):
        out = self.conv2(self.relu(self.conv1(x)))
        return self.relu(out + x if self.residual else out)


def model(residual: bool, blocks: int = 8, channels: int = 8) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(inplace=True),
                         *[Block(channels, residual) for _ in range(blocks)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 2))


def squares(n: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    """12x12 images, noise plus one bright 3x3 square; label 1 when it is in the right half."""
    x = 0.1 * torch.randn(n, 1, 12, 12, generator=generator)
    row = torch.randint(0, 10, (n,), generator=generator)
    col = torch.randint(0, 10, (n,), generator=generator)
    for i in range(n):
        x[i, 0, row[i]:row[i] + 3, col[i]:col[i] + 3] += 1.0
    return x, (col + 1 >= 6).long()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--residual", action="store_true", help="add the skip connections")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--every", type=int, default=2)
    p.add_argument("--record", default=None, help="default: cnn_plain.jsonl or cnn_residual.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    record = args.record or ("cnn_residual.jsonl" if args.residual else "cnn_plain.jsonl")
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = model(args.residual)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x, y = squares(2048, g)
    with gt.watch(net, optimizer, record=record, every=args.every) as watcher:
        for step in range(args.steps):
            idx = torch.randint(0, len(x), (32,), generator=g)
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watcher.log(loss=loss)
    print(f"wrote {record}; replay it with `gradtui replay {record}`")


if __name__ == "__main__":
    main()
