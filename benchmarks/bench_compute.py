"""Local SGD steps per second for 100 nodes on the digits MLP: batched backend vs per-node loop.

One local SGD step = every node draws a minibatch of 32 of its own images, computes its gradient
of the cross-entropy of a 64-128-10 ReLU MLP, and takes an SGD step (float32, default torch
threads: the whole process). Measured in this one process, interleaved, median of the repeats:

- loop: 100 separate ``nn.Module``s, each with its own ``torch.optim.SGD`` (zero_grad, forward,
  backward, step), the way one writes it by hand;
- kernel: netemu's batched ``MLP.loss_grad`` on one flat ``[100, P]`` tensor (``baddbmm``
  forward, hand-written batched backward) and the update on that tensor;
- netemu: the same through the protocol-facing path, ``ctx.compute.grad(...)`` on float64 numpy
  state (lazy request, minibatch sampling, float64 ↔ float32 conversions included).

With ``--mix`` every variant also does one gossip mixing round on a random graph (p = 0.1):
a sparse matmul for the batched ones, a per-node Python loop over neighbours for the loop.

Whole-process mode (``--whole``): the scenario below through ``netemu run`` (a separate process:
start-up, data, every round, metrics, plots and files included) against the hand-written per-node
loop as a separate process too (100 ``nn.Module``s, their own ``torch.optim.SGD``, the same
gossip: each round the graph netemu's ``random`` topology draws, uniform pull weights; loss and
accuracy of the average model every 10 rounds, as netemu's default cadence for this task), both
with the same torch threads. Prints node-steps per second (nodes × rounds / wall seconds) and the
ratio, min/median/max over ``--repeats``.

Run:  python benchmarks/bench_compute.py [--repeats 7] [--steps 20] [--mix] [--threads N]
      python benchmarks/bench_compute.py --whole [--rounds 1000] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from netemu.compute.handle import ComputeHandle
from netemu.compute.models import MLP
from netemu.tasks.digits import load, split
from netemu.tasks.data import DataTask

N, B, H, LR = 100, 32, 128, 0.05


def setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    X, y = load()
    parts = split(y, N, "iid", rng, "bench")
    order = np.concatenate(parts)
    model = MLP([64, H, 10])
    task = DataTask(model, X[order], y[order], [len(p) for p in parts], batch=B,
                    init=model.init(seed).numpy(), dtype=torch.float32, kind="digits")
    adj = rng.random((N, N)) < 0.1
    np.fill_diagonal(adj, True)
    W = sp.csr_matrix(adj / adj.sum(axis=1, keepdims=True))
    return task, W, rng


def run_loop(task: DataTask, W, steps: int, mix: bool, rng) -> float:
    mods = []
    for _ in range(N):
        m = task.model.module()
        nn.utils.vector_to_parameters(torch.as_tensor(task.init, dtype=torch.float32), m.parameters())
        mods.append(m)
    opts = [torch.optim.SGD(m.parameters(), lr=LR) for m in mods]
    Xs = [task.X[a:a + s] for a, s in zip(task.offsets, task.sizes)]
    Ys = [task.y[a:a + s] for a, s in zip(task.offsets, task.sizes)]
    nbrs = [(W.indices[W.indptr[i]:W.indptr[i + 1]], W.data[W.indptr[i]:W.indptr[i + 1]]) for i in range(N)]
    t = time.perf_counter()
    for _ in range(steps):
        for i in range(N):
            idx = torch.as_tensor(rng.integers(0, len(Xs[i]), B))
            opts[i].zero_grad()
            nn.functional.cross_entropy(mods[i](Xs[i][idx]), Ys[i][idx]).backward()
            opts[i].step()
        if mix:
            with torch.no_grad():
                old = [[p.detach().clone() for p in m.parameters()] for m in mods]
                for i, (js, ws) in enumerate(nbrs):
                    for pi, p in enumerate(mods[i].parameters()):
                        p.copy_(sum(float(w) * old[j][pi] for j, w in zip(js, ws)))
    return N * steps / (time.perf_counter() - t)


def run_kernel(task: DataTask, W, steps: int, mix: bool, rng) -> float:
    flat = torch.as_tensor(np.tile(task.init, (N, 1)), dtype=torch.float32)
    with warnings.catch_warnings():  # torch calls sparse CSR "beta"
        warnings.simplefilter("ignore")
        Wt = torch.sparse_csr_tensor(torch.as_tensor(W.indptr), torch.as_tensor(W.indices),
                                     torch.as_tensor(W.data, dtype=torch.float32), size=(N, N),
                                     check_invariants=False)
    t = time.perf_counter()
    for _ in range(steps):
        idx, w = task.sample(np.arange(N), rng)
        it = torch.as_tensor(idx)
        with torch.no_grad():
            _, g = task.model.loss_grad(flat, task.X[it], task.y[it], torch.as_tensor(w, dtype=torch.float32))
            flat.sub_(LR * g)
            if mix:
                flat = Wt @ flat
    return N * steps / (time.perf_counter() - t)


def run_netemu(task: DataTask, W, steps: int, mix: bool, rng) -> float:
    handle = ComputeHandle(task, N, seed=0)
    x = task.x0()
    t = time.perf_counter()
    for _ in range(steps):
        x = x - LR * handle.grad(None, x).result()
        if mix:
            x = W @ x
    return N * steps / (time.perf_counter() - t)


SCENARIO = """seed = 2
[run]
rounds = {rounds}
[network]
nodes = 100
topology = "random"
p = 0.05
loss = 0.0
[task]
kind = "digits"
model = "mlp"
split = "iid"
batch = 32
[compute]
device = "cpu"
threads = {threads}
[[protocols]]
name = "dgd"
lr = 0.05
inner_rounds = 1
"""


def loop_process(rounds: int, threads: int) -> None:
    """The per-node loop of ``--whole``, as its own process (data loading included)."""
    torch.set_num_threads(threads)
    from netemu.world.topology import RandomTopology

    rng = np.random.default_rng(2)
    X, y = load()
    test = rng.permutation(len(y))
    n_test = int(0.2 * len(y))
    Xte, yte = torch.as_tensor(X[test[:n_test]], dtype=torch.float32), torch.as_tensor(y[test[:n_test]])
    tr = test[n_test:]
    parts = split(y[tr], N, "iid", rng, "bench")
    Xs = [torch.as_tensor(X[tr][p], dtype=torch.float32) for p in parts]
    Ys = [torch.as_tensor(y[tr][p]) for p in parts]
    Xall, Yall = torch.cat(Xs), torch.cat(Ys)
    mods = [nn.Sequential(nn.Linear(64, H), nn.ReLU(), nn.Linear(H, 10)) for _ in range(N)]
    for m in mods[1:]:
        m.load_state_dict(mods[0].state_dict())
    opts = [torch.optim.SGD(m.parameters(), lr=LR) for m in mods]
    topo = RandomTopology(N, 0.05, 2)
    for k in range(rounds):
        for i in range(N):
            idx = torch.as_tensor(rng.integers(0, len(Xs[i]), B))
            opts[i].zero_grad()
            nn.functional.cross_entropy(mods[i](Xs[i][idx]), Ys[i][idx]).backward()
            opts[i].step()
        recv, send = topo.edges(k)
        with torch.no_grad():
            old = [[p.detach().clone() for p in m.parameters()] for m in mods]
            nbrs = [[] for _ in range(N)]
            for i, j in zip(recv.tolist(), send.tolist()):
                nbrs[i].append(j)
            for i in range(N):
                for pi, p in enumerate(mods[i].parameters()):
                    p.copy_(sum((old[j][pi] for j in nbrs[i]), old[i][pi]) / (1 + len(nbrs[i])))
            if (k + 1) % 10 == 0 or k + 1 == rounds:  # loss and accuracy of the average model
                avg = nn.Sequential(nn.Linear(64, H), nn.ReLU(), nn.Linear(H, 10))
                for pi, p in enumerate(avg.parameters()):
                    p.copy_(sum(old[i][pi] for i in range(N)) / N)
                nn.functional.cross_entropy(avg(Xall), Yall)
                (avg(Xte).argmax(1) == yte).float().mean()


def whole(rounds: int, repeats: int, threads: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits100.toml"
        path.write_text(SCENARIO.format(rounds=rounds, threads=threads))
        runs = {"netemu run (whole process)": [sys.executable, "-m", "netemu", "run", str(path), "--out",
                                               str(Path(tmp) / "out"), "--no-progress"],
                "per-node loop (whole process)": [sys.executable, __file__, "--loop-process", "--rounds",
                                                  str(rounds), "--threads", str(threads)]}
        walls: dict = {k: [] for k in runs}
        for r in range(repeats):
            for label, cmd in runs.items():
                t = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                walls[label].append(time.perf_counter() - t)
            print(f"  repeat {r + 1}/{repeats} done", file=sys.stderr, flush=True)
    steps = N * rounds
    loop = walls["per-node loop (whole process)"]
    print(f"digits MLP 64-{H}-10, {N} nodes, batch {B}, DGD with one gossip round per step, {rounds} rounds, "
          f"float32, torch threads {threads}; {repeats} repeats")
    for label, ws in walls.items():
        ratios = [lw / w for lw, w in zip(loop, ws)]
        print(f"  {label:<32} {statistics.median(ws):7.1f} s  {steps / statistics.median(ws):8.0f} node-steps/s"
              f"   ratio to the loop {min(ratios):.1f} / {statistics.median(ratios):.1f} / {max(ratios):.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--mix", action="store_true", help="add one gossip mixing round per step")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, all cores)")
    ap.add_argument("--whole", action="store_true", help="netemu run vs the per-node loop, as whole processes")
    ap.add_argument("--rounds", type=int, default=1000, help="--whole: rounds of the scenario")
    ap.add_argument("--loop-process", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.loop_process:
        return loop_process(a.rounds, a.threads or 1)
    if a.whole:
        return whole(a.rounds, a.repeats if a.repeats != 7 else 3, a.threads or 1)
    if a.threads:
        torch.set_num_threads(a.threads)
    task, W, rng = setup()
    runs = {"loop": run_loop, "kernel": run_kernel, "netemu": run_netemu}
    for f in runs.values():  # warm up
        f(task, W, 2, a.mix, rng)
    rates: dict = {k: [] for k in runs}
    for _ in range(a.repeats):
        for k, f in runs.items():
            rates[k].append(f(task, W, a.steps, a.mix, rng))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"digits MLP 64-{H}-10, {N} nodes, batch {B}, float32, torch threads {torch.get_num_threads()}"
          f"{', one gossip round per step' if a.mix else ''}; median of {a.repeats}")
    for k in runs:
        print(f"  {k:<7} {med[k]:9.0f} node-steps/s   ({min(rates[k]):.0f} … {max(rates[k]):.0f})")
    print(f"  ratio kernel/loop {med['kernel'] / med['loop']:.2f}x   netemu/loop {med['netemu'] / med['loop']:.2f}x")


if __name__ == "__main__":
    main()
