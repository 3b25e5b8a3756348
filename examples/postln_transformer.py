"""A Post-LN Transformer encoder trained without learning-rate warmup.

    python examples/postln_transformer.py      # writes postln_transformer.jsonl
    gradtui watch postln_transformer.jsonl     # in another terminal

Six ``nn.TransformerEncoderLayer``s with the original Post-LN order (``norm_first=False``),
trained with Adam at a full learning rate from the first step on a generated task (is the
token sequence's first token repeated later?). Without warmup the post-LN layers get large,
badly scaled gradients early on (Xiong et al. 2020): watch the gradient norm and the loss,
and read the remedies (clipping, a lower learning rate, a warmup schedule).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import gradtui.torch as gt

VOCAB, LENGTH = 16, 12


class Encoder(nn.Module):
    def __init__(self, d_model: int = 64, layers: int = 6):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(LENGTH, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead=4, dim_feedforward=128, dropout=0.0, batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 2)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens) + self.pos)[:, 0])


def batch(n: int, generator) -> tuple[torch.Tensor, torch.Tensor]:
    tokens = torch.randint(0, VOCAB, (n, LENGTH), generator=generator)
    return tokens, (tokens[:, 1:] == tokens[:, :1]).any(dim=1).long()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--every", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--record", default="postln_transformer.jsonl")
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = Encoder()
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    with gt.watch(net, optimizer, record=args.record, every=args.every) as watcher:
        for step in range(args.steps):
            x, y = batch(64, g)
            loss = nn.functional.cross_entropy(net(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            watcher.log(loss=loss)
    print(f"wrote {args.record}; replay it with `gradtui replay {args.record}`")


if __name__ == "__main__":
    main()
