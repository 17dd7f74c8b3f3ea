"""Delivered messages per second on broadcast rounds: netemu vs SimPy per delivery vs numpy.

The network is ``broadcast_pushsum.toml`` (4000 static nodes, 50 m range, loss 0.1, push-sum).
All three runs happen in this one process invocation, so their ratios are comparable:

- netemu: the whole ``netemu run`` process (start-up, imports, outputs included);
- SimPy per delivery: push-sum written the way a user would, one SimPy event per delivery
  (timed on the first few rounds; the rate per delivery does not depend on the round count);
- numpy floor: bare vectorized push-sum over precomputed edges (loss draw + two bincounts).

Run:  python benchmarks/bench_delivery.py [--simpy-rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import simpy
from scipy.spatial import cKDTree

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "broadcast_pushsum.toml"
N, SIDE, RANGE, LOSS, ROUNDS = 4000, 1000.0, 50.0, 0.1, 100


def network(seed: int = 1):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, SIDE, (N, 2))
    pairs = cKDTree(pos).query_pairs(RANGE, output_type="ndarray")
    recv = np.concatenate([pairs[:, 0], pairs[:, 1]])
    send = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return recv, send


def bench_netemu() -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "netemu", "run", str(SCENARIO), "--out", out, "--no-progress"],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t
        s = json.loads((Path(out) / "summary.json").read_text())["protocols"]["push-sum"]
    return s["deliveries"] / wall, s["deliveries"]


def bench_simpy(rounds: int) -> tuple[float, int]:
    """Push-sum with one SimPy event per delivery, as a user would write it."""
    recv, send = network()
    neighbours = [[] for _ in range(N)]
    for i, j in zip(recv.tolist(), send.tolist()):
        neighbours[j].append(i)
    rng = np.random.default_rng(2)
    env = simpy.Environment()
    s = list(np.random.default_rng(3).normal(size=N))
    w = [1.0] * N
    inbox_s, inbox_w = [0.0] * N, [0.0] * N
    delivered = 0

    def deliver(i, ds, dw):
        nonlocal delivered
        inbox_s[i] += ds
        inbox_w[i] += dw
        delivered += 1

    def node_round(j):
        share_s, share_w = s[j] / (len(neighbours[j]) + 1), w[j] / (len(neighbours[j]) + 1)
        s[j], w[j] = share_s, share_w
        for i in neighbours[j]:
            if rng.random() >= LOSS:
                ev = env.timeout(0.01)
                ev.callbacks.append(lambda _e, i=i, a=share_s, b=share_w: deliver(i, a, b))

    def rounds_proc():
        for _ in range(rounds):
            for j in range(N):
                node_round(j)
            yield env.timeout(1.0)
            for i in range(N):
                s[i] += inbox_s[i]
                w[i] += inbox_w[i]
                inbox_s[i] = inbox_w[i] = 0.0

    t = time.perf_counter()
    env.process(rounds_proc())
    env.run()
    return delivered / (time.perf_counter() - t), delivered


def bench_numpy() -> tuple[float, int]:
    recv, send = network()
    rng = np.random.default_rng(2)
    s = np.random.default_rng(3).normal(size=N)
    w = np.ones(N)
    deg = np.bincount(send, minlength=N)
    delivered = 0
    t = time.perf_counter()
    for _ in range(ROUNDS):
        ok = rng.random(len(recv)) >= LOSS
        r, j = recv[ok], send[ok]
        s, w = s / (deg + 1), w / (deg + 1)
        s = s + np.bincount(r, weights=s[j], minlength=N)
        w = w + np.bincount(r, weights=w[j], minlength=N)
        delivered += len(r)
    return delivered / (time.perf_counter() - t), delivered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--simpy-rounds", type=int, default=3)
    args = ap.parse_args()
    ne, nd = bench_netemu()
    sp, sd = bench_simpy(args.simpy_rounds)
    npf, npd = bench_numpy()
    print(f"{'run':<34}{'deliveries':>12}{'deliveries/s':>15}")
    print(f"{'netemu run (whole process)':<34}{nd:>12}{ne:>15,.0f}")
    print(f"{f'SimPy, one event per delivery ({args.simpy_rounds} r)':<34}{sd:>12}{sp:>15,.0f}")
    print(f"{'numpy floor (bare vectorized)':<34}{npd:>12}{npf:>15,.0f}")
    print(f"netemu / SimPy = {ne / sp:.1f}x   (target >= 20x)")
    print(f"netemu / numpy = {ne / npf:.2f}   (the floor is 1.0)")


if __name__ == "__main__":
    main()
