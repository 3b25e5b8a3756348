"""gradtui against PyTorch eager on the CPU: the same training step, one thread each, side by side.

    python -m benchmarks.bench_torch [--seconds S] [--rounds R] [--only mlp20,lstm,...]

Each row trains one network both ways on the same batches from the same starting weights:
forward, loss, backward, a plain SGD update and the gradient norm of every layer, float32.
gradtui's side is ``Experiment.step()`` with all its statistics (one StepRecord per step);
PyTorch's side computes only the per-layer gradient norms (fetched to NumPy each step, as a
monitor would). PyTorch runs on one thread (torch.set_num_threads(1)), gradtui's BLAS too
(threadpoolctl). The two sides alternate in interleaved rounds; the ratio is taken within a
round and its median over rounds reported, with each side's median steps/s. The same rounds
are also timed by the benchmark thread's CPU time (time.thread_time): on a machine shared
with other work, wall time counts the moments another process holds the core, CPU time
does not; both ratios are printed, the wall-clock one is checked against the targets.
As information,
each side's share of the machine's single-thread SGEMM speed (a 512^3 product): the step's
matrix-product FLOPs x steps/s over that peak.

Rows and targets (issue 14):
    MLP depth 20, width 64, batch 64, tanh (spirals)        >= 5x
    MLP depth 100, width 32, batch 32, tanh (spirals)       >= 15x
    RNN / LSTM / GRU, hidden 64, T = 100, batch 32 (adding) >= 6x / >= 2x / >= 3x
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import dataclass

import numpy as np
import scipy.linalg.cython_blas  # noqa: F401  (load the BLAS Numba calls, so threadpoolctl limits it too)
from gradtui.engine.blas import one_blas_thread

import gradtui
from benchmarks.rounds import add_round_options, median_ratio, rates
from benchmarks.sgemm import peak_sgemm_gflops

try:
    import torch
except ImportError:  # pragma: no cover - the bench extra installs it
    sys.exit("bench_torch needs PyTorch: pip install -e '.[bench]' (CPU build)")


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    depth: int
    width: int
    batch: int
    target: float


ROWS = (
    Row("mlp20", "mlp", 20, 64, 64, 5.0),
    Row("mlp100", "mlp", 100, 32, 32, 15.0),
    Row("rnn", "rnn", 1, 64, 32, 6.0),
    Row("lstm", "lstm", 1, 64, 32, 2.0),
    Row("gru", "gru", 1, 64, 32, 3.0),
)
SEQ_LEN = 100
LR = 0.01


def label(row: Row) -> str:
    if row.kind == "mlp":
        return f"MLP {row.depth} x {row.width}, batch {row.batch}, tanh"
    return f"{row.kind.upper()} hidden {row.width}, T {SEQ_LEN}, batch {row.batch}"


def experiment(row: Row) -> gradtui.Experiment:
    over = {"model.kind": row.kind, "model.depth": row.depth, "model.width": row.width,
            "model.activation": "tanh", "model.init": "xavier", "train.batch_size": row.batch,
            "train.optimizer": "sgd", "train.lr": LR, "train.dtype": "float32"}
    if row.kind == "mlp":
        over["data.samples"] = max(2048, 4 * row.batch)
    else:
        over.update({"data.task": "adding", "data.seq_len": SEQ_LEN, "data.samples": 4096})
    return gradtui.Experiment(gradtui.load_config("vanishing-sigmoid").with_overrides(over))


def _tensor(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class TorchMLP(torch.nn.Module):
    """The Experiment's MLP in PyTorch, starting from its weights."""

    def __init__(self, exp: gradtui.Experiment):
        super().__init__()
        p, m = exp.params(), exp.cfg.model
        layers = []
        for i in range(m.depth):
            lin = torch.nn.Linear(*p[f"hidden.{i}.W"].shape)
            layers += [lin, torch.nn.Tanh()]
        layers.append(torch.nn.Linear(*p["output.W"].shape))
        self.net = torch.nn.Sequential(*layers)
        linears = [mod for mod in self.net if isinstance(mod, torch.nn.Linear)]
        names = [f"hidden.{i}" for i in range(m.depth)] + ["output"]
        with torch.no_grad():
            for lin, name in zip(linears, names):
                lin.weight.copy_(_tensor(p[f"{name}.W"].T))
                lin.bias.copy_(_tensor(p[f"{name}.b"]))
        self.layer_weights = [[lin.weight] for lin in linears]

    def loss(self, x, y):
        return torch.nn.functional.cross_entropy(self.net(x), y)


class TorchRecurrent(torch.nn.Module):
    """The Experiment's one-layer RNN/LSTM/GRU with a linear readout of the last step, MSE loss."""

    def __init__(self, exp: gradtui.Experiment):
        super().__init__()
        p, kind = exp.params(), exp.cfg.model.kind
        n_in, H = p["rnn.0.W_ih"].shape[0], exp.cfg.model.width
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
        self.cell = cls(n_in, H, batch_first=True)
        self.out = torch.nn.Linear(H, p["output.W"].shape[1])
        b_hh = np.zeros_like(p["rnn.0.b"])
        if kind == "gru":
            b_hh[2 * H:] = p["rnn.0.b_hn"]
        with torch.no_grad():
            self.cell.weight_ih_l0.copy_(_tensor(p["rnn.0.W_ih"].T))
            self.cell.weight_hh_l0.copy_(_tensor(p["rnn.0.W_hh"].T))
            self.cell.bias_ih_l0.copy_(_tensor(p["rnn.0.b"]))
            self.cell.bias_hh_l0.copy_(_tensor(b_hh))
            self.out.weight.copy_(_tensor(p["output.W"].T))
            self.out.bias.copy_(_tensor(p["output.b"]))
        self.layer_weights = [[self.cell.weight_ih_l0, self.cell.weight_hh_l0], [self.out.weight]]

    def loss(self, x, y):
        seq, _ = self.cell(x)
        return torch.nn.functional.mse_loss(self.out(seq[:, -1]), y)


def torch_step(exp: gradtui.Experiment):
    """A closure running one PyTorch step on the next of 16 of the Experiment's batches."""
    model = TorchMLP(exp) if exp.cfg.model.kind == "mlp" else TorchRecurrent(exp)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    batches = []
    for _ in range(16):
        x, y = exp.batch()
        exp._cursor += exp.cfg.train.batch_size  # next batch; the Experiment steps afterwards anyway
        yt = torch.from_numpy(y.astype(np.int64)) if exp.data.classification else _tensor(y)
        batches.append((_tensor(x), yt))
    weights = [w for layer in model.layer_weights for w in layer]
    sizes = [len(layer) for layer in model.layer_weights]
    counter = [0]

    def step() -> np.ndarray:
        x, y = batches[counter[0] % len(batches)]
        counter[0] += 1
        opt.zero_grad(set_to_none=True)
        loss = model.loss(x, y)
        loss.backward()
        opt.step()
        norms = torch.stack(torch._foreach_norm([w.grad for w in weights])).square()
        per_layer = torch.stack([part.sum() for part in norms.split(sizes)]).sqrt()
        return per_layer.numpy(), loss.item()

    return step


def matmul_flops(exp: gradtui.Experiment) -> float:
    """Matrix-product FLOPs of one training step (forward, backward to inputs, weight gradients)."""
    m, b = exp.cfg.model, exp.cfg.train.batch_size
    p = exp.params()
    if m.kind == "mlp":
        shapes = [p[f"hidden.{i}.W"].shape for i in range(m.depth)] + [p["output.W"].shape]
        per_layer = [2.0 * b * fi * fo for fi, fo in shapes]
        return 3.0 * sum(per_layer) - per_layer[0]
    n_in, gh = p["rnn.0.W_ih"].shape
    H = m.width
    T = SEQ_LEN
    return 2.0 * T * b * gh * (2 * n_in + 3 * H)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_round_options(ap, seconds=0.5, rounds=7)
    ap.add_argument("--only", default="", help="comma-separated row names: " + ", ".join(r.name for r in ROWS))
    args = ap.parse_args(argv)
    rows = [r for r in ROWS if not args.only or r.name in args.only.split(",")]
    torch.set_num_threads(1)
    with one_blas_thread():
        exps = {r.name: experiment(r) for r in rows}
        theirs = {r.name: torch_step(exps[r.name]) for r in rows}
        for r in rows:  # compile (or load) the kernels, warm both sides
            exps[r.name].step()
            theirs[r.name]()
        runs = {r.name: ([], []) for r in rows}
        peaks = []
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            for r in rows:
                ours, torchs = runs[r.name]
                ours.append(rates(exps[r.name].step, args.seconds))
                torchs.append(rates(theirs[r.name], args.seconds))
            peaks.append(peak_sgemm_gflops(seconds=0.2)["best"])
        load_after = os.getloadavg()[0]
    peak = statistics.median(peaks)
    print(f"gradtui Experiment.step() (all statistics) vs PyTorch {torch.__version__} eager, CPU, one thread each, "
          f"float32; {args.rounds} interleaved rounds of {args.seconds} s per side; load average "
          f"{load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores")
    print(f"{'model':<36}{'gradtui/s':>10}{'torch/s':>9}{'ratio':>8}{'target':>8}  {'SGEMM share':>17}  ok"
          f"{'CPU ratio':>11}")
    failures = []
    for r in rows:
        ours, torchs = runs[r.name]
        ratio = median_ratio([x[0] for x in ours], [x[0] for x in torchs])
        cpu_ratio = median_ratio([x[1] for x in ours], [x[1] for x in torchs])
        a, b = statistics.median(x[0] for x in ours), statistics.median(x[0] for x in torchs)
        gflop = matmul_flops(exps[r.name]) / 1e9
        ok = ratio >= r.target
        if not ok:
            failures.append(f"{r.name} {ratio:.2f}x < {r.target}x")
        share = f"{gflop * a / peak:.0%} / {gflop * b / peak:.0%}"
        print(f"{label(r):<36}{a:>10.0f}{b:>9.0f}{ratio:>7.2f}x{r.target:>7.1f}x  {share:>17}  {'yes' if ok else 'NO ':<3}"
              f"{cpu_ratio:>10.2f}x")
    print(f"(steps/s: medians over rounds of wall time; ratio: median of per-round ratios; CPU ratio: the same "
          f"per CPU second of each side's thread; SGEMM share gradtui / torch: matrix-product FLOPs x steps/s over "
          f"single-thread SGEMM {peak:.0f} GFLOP/s at 512^3)")
    print("all targets met" if not failures else "missed: " + "; ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
