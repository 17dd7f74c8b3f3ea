"""Delivered messages per second on broadcast rounds: netemu vs SimPy per delivery vs numpy.

The network is ``broadcast_pushsum.toml`` (4000 static nodes, 50 m range, loss 0.1, push-sum).
All three runs happen in this one process invocation, once per repeat and interleaved, so their
ratios are comparable (each ratio is taken within one repeat, then summarized over repeats):

- netemu: the whole ``netemu run`` process (start-up, imports, KD-tree, metrics and outputs
  included; plots too with ``--plot``), ``--rounds`` rounds;
- SimPy per delivery: push-sum written the way a user would, one SimPy event per delivery
  (timed on the first few rounds; the rate per delivery does not depend on the round count);
- numpy floor: bare vectorized push-sum over precomputed edges (loss draw + two bincounts per
  round), ``--rounds`` rounds, timed in this process after the edges are built.

Rates are by wall-clock time; the ratios are also given by CPU time (user + system, of the netemu
process and of this one), which a busy machine disturbs much less: what an idle machine would show.

Run:  python benchmarks/bench_delivery.py [--rounds 1000] [--repeats 3] [--simpy-rounds 3] [--plot]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
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
N, SIDE, RANGE, LOSS = 4000, 1000.0, 50.0, 0.1


def network(seed: int = 1):
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, SIDE, (N, 2))
    pairs = cKDTree(pos).query_pairs(RANGE, output_type="ndarray")
    recv = np.concatenate([pairs[:, 0], pairs[:, 1]])
    send = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return recv, send


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_netemu(rounds: int, plot: bool) -> tuple[int, float, float]:
    """The whole ``netemu run`` process, as a user starts it: (deliveries, wall s, CPU s)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "netemu", "run", str(SCENARIO), "--out", out, "--no-progress",
               "--set", f"run.rounds={rounds}", "--set", f"output.plot={'true' if plot else 'false'}"]
        c, t = _children_cpu(), time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall, cpu = time.perf_counter() - t, _children_cpu() - c
        s = json.loads((Path(out) / "summary.json").read_text())["protocols"]["push-sum"]
    return s["deliveries"], wall, cpu


def bench_simpy(rounds: int) -> tuple[int, float, float]:
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

    c, t = time.process_time(), time.perf_counter()
    env.process(rounds_proc())
    env.run()
    return delivered, time.perf_counter() - t, time.process_time() - c


def bench_numpy(rounds: int) -> tuple[int, float, float]:
    """The floor: loss draw + two bincounts per round over precomputed edges."""
    recv, send = network()
    rng = np.random.default_rng(2)
    s = np.random.default_rng(3).normal(size=N)
    w = np.ones(N)
    deg = np.bincount(send, minlength=N)
    delivered = 0
    c, t = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        ok = rng.random(len(recv)) >= LOSS
        r, j = recv[ok], send[ok]
        s, w = s / (deg + 1), w / (deg + 1)
        s = s + np.bincount(r, weights=s[j], minlength=N)
        w = w + np.bincount(r, weights=w[j], minlength=N)
        delivered += len(r)
    return delivered, time.perf_counter() - t, time.process_time() - c


def spread(xs: list[float], fmt: str) -> str:
    """``min / median / max`` of ``xs``."""
    return " / ".join(format(v, fmt) for v in (min(xs), statistics.median(xs), max(xs)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1000, help="rounds of netemu and of the numpy floor")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repetitions of all three runs")
    ap.add_argument("--simpy-rounds", type=int, default=3, help="rounds of the per-delivery SimPy run")
    ap.add_argument("--plot", action="store_true", help="netemu also draws its plot (output.plot = true)")
    args = ap.parse_args()
    rates: dict[str, list[float]] = {"netemu": [], "simpy": [], "numpy": []}  # per wall second
    cpu_rates: dict[str, list[float]] = {"netemu": [], "simpy": [], "numpy": []}  # per CPU second
    counts: dict[str, int] = {}
    for _ in range(args.repeats):
        for key, fn in (("netemu", lambda: bench_netemu(args.rounds, args.plot)),  # netemu and its floor
                        ("numpy", lambda: bench_numpy(args.rounds)),  # back to back: the same load
                        ("simpy", lambda: bench_simpy(args.simpy_rounds))):
            counts[key], wall, cpu = fn()
            rates[key].append(counts[key] / wall)
            cpu_rates[key].append(counts[key] / cpu)

    def ratios(r: dict, of: str) -> list[float]:
        return [a / b for a, b in zip(r["netemu"], r[of])]

    plot = "plot on" if args.plot else "no plot"
    print(f"{args.rounds} rounds, {args.repeats} repeats (min / median / max)")
    print(f"{'run':<40}{'deliveries':>12}   deliveries/s")
    rows = (("netemu", f"netemu run (whole process, {plot})"),
            ("simpy", f"SimPy, one event per delivery ({args.simpy_rounds} r)"),
            ("numpy", "numpy floor (bare vectorized)"))
    for key, name in rows:
        print(f"{name:<40}{counts[key]:>12}   {spread([r / 1e6 for r in rates[key]], '.2f')} M")
    print(f"netemu / SimPy = {spread(ratios(rates, 'simpy'), '.1f')}x   (target >= 60x)")
    print(f"netemu / numpy = {spread(ratios(rates, 'numpy'), '.2f')}   (the floor is 1.0; target >= 0.9)")
    print(f"by CPU time: netemu / SimPy = {spread(ratios(cpu_rates, 'simpy'), '.1f')}x, "
          f"netemu / numpy = {spread(ratios(cpu_rates, 'numpy'), '.2f')}")


if __name__ == "__main__":
    main()
