"""Deliveries per second of an asynchronous protocol: netemu vs SimPy with one event per delivery.

Broadcast gossip (Aysal et al. 2009): every node wakes on its own Poisson clock (rate 1/s) and
broadcasts ``x_i``; every receiver sets ``x_j ← γ x_j + (1 − γ) x_i`` (γ = 0.5). The network is a
static radio unit-disk graph, ``--nodes`` nodes uniform in a square whose side is chosen so the
mean degree is about ``--degree`` (50 m range), no loss, no delay. All runs happen in this one
invocation, interleaved per repeat, so their ratios are comparable:

- netemu, continuous time: a scenario built with ``netemu.scenario.load.from_dict`` and run with
  ``netemu.runner.run_scenario`` in this process (graph, metrics every second and output files
  included in the time); ``--seconds`` simulated seconds;
- netemu, slotted wake-ups: the same protocol with ``slot = --slot``: wake-ups postponed to the
  next multiple of the slot (the Poisson times themselves unchanged), so the nodes waking in one
  slot broadcast together and their receptions form one batch;
- SimPy, one event per delivery: the protocol written the naive way, a SimPy process per node for
  its Poisson clock and one ``env.timeout(0)`` per reception whose callback mixes, on the same
  graph, initial values and wake-up times (the keyed uniforms of ``PoissonClock``). It runs a
  shorter horizon (``--baseline-seconds``); the rate per delivery does not depend on it.

Ratios compare deliveries per wall-clock second. On a small case the SimPy baseline and netemu
end with the same values bit for bit (``tests/test_bench_async.py``).

Run:  python benchmarks/bench_async.py [--nodes 10000] [--seconds 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import simpy

from netemu.rng import keyed_uniform
from netemu.runner import prepare, run_scenario
from netemu.scenario import build
from netemu.scenario.load import from_dict

RANGE, GAMMA, RATE, SEED = 50.0, 0.5, 1.0, 1


def side_for_degree(n: int, degree: float, r: float = RANGE) -> float:
    """Side of the square in which ``n`` uniform nodes have mean unit-disk degree ``degree``
    (the border-corrected probability that two points are within ``r``)."""
    lo, hi = 2.0 * r, 1e9
    for _ in range(200):
        side = math.sqrt(lo * hi)
        a = r / side
        p = math.pi * a * a - 8.0 / 3.0 * a ** 3 + 0.5 * a ** 4
        lo, hi = (side, hi) if (n - 1) * p > degree else (lo, side)
    return side


def scenario_dict(n: int, seconds: int, degree: float = 20.0, protocol: dict | None = None,
                  delay: dict | None = None) -> dict:
    side = side_for_degree(n, degree)
    net = {"nodes": n, "topology": "radio", "range": RANGE, "loss": 0.0}
    if delay:
        net["delay"] = delay
    return {"seed": SEED, "name": "async benchmark", "network": net,
            "mobility": {"model": "static", "area": [side, side]},
            "run": {"rounds": seconds, "period": 1.0}, "task": {"kind": "consensus", "dim": 1},
            "output": {"plot": False},
            "protocols": [protocol or {"name": "broadcast-gossip", "gamma": GAMMA, "rate": RATE}]}


# -- netemu ---------------------------------------------------------------------------------------

def run_netemu(d: dict) -> tuple[int, float, dict]:
    """``run_scenario`` on ``d``: (deliveries, wall seconds of the whole call, summary)."""
    sc = from_dict(d)
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        run_scenario(sc, Path(out), progress=False)
        wall = time.perf_counter() - t
        summary = json.loads((Path(out) / "summary.json").read_text())
    s = next(iter(summary["protocols"].values()))
    return s["deliveries"], wall, s


# -- SimPy, one event per delivery ----------------------------------------------------------------

class Baseline:
    """The inputs netemu uses, as plain Python lists: graph, initial values, wake-up gaps."""

    def __init__(self, d: dict, seconds: float) -> None:
        sc = from_dict(d)
        traj, topo, x0 = prepare(sc)
        recv, _, bounds = build.network(sc, traj, topo).graph(0.0)
        n = sc.network["nodes"]
        self.seconds = seconds
        self.neighbours = [recv[bounds[j]:bounds[j + 1]].tolist() for j in range(n)]
        self.x0 = np.asarray(x0, dtype=np.float64)[:, 0].tolist()
        k = int(RATE * seconds + 10 * math.sqrt(RATE * seconds + 1) + 20)
        while True:  # the same keyed uniforms as PoissonClock: node i's c-th gap
            u = keyed_uniform(sc.seed, "protocol", np.arange(n)[:, None], np.arange(k)[None, :])
            gaps = -np.log1p(-u) / RATE
            if gaps.sum(axis=1).min() > seconds:
                break
            k *= 2
        self.gaps = gaps.tolist()

    def run(self, delay: float = 0.0) -> tuple[list, int, float]:
        """Broadcast gossip written the naive way: (final values, deliveries, wall seconds)."""
        env = simpy.Environment()
        x = list(self.x0)
        neighbours, g = self.neighbours, GAMMA
        delivered = 0

        def mix(j, v):
            nonlocal delivered
            x[j] = g * x[j] + (1.0 - g) * v
            delivered += 1

        def node(i):
            for gap in self.gaps[i]:
                yield env.timeout(gap)
                xi = x[i]
                for j in neighbours[i]:
                    ev = env.timeout(delay)
                    ev.callbacks.append(lambda _e, j=j, v=xi: mix(j, v))

        t = time.perf_counter()
        for i in range(len(x)):
            env.process(node(i))
        env.run(until=self.seconds)
        return x, delivered, time.perf_counter() - t


# -- the benchmark --------------------------------------------------------------------------------

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=100, help="simulated seconds of the netemu runs")
    ap.add_argument("--baseline-seconds", type=int, default=10, help="simulated seconds of the SimPy run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--degree", type=float, default=20.0, help="target mean degree")
    ap.add_argument("--slot", type=float, default=0.01, help="slot of the slotted run (s); 0: skip it")
    ap.add_argument("--resolution", type=float, default=0.0,
                    help="also run netemu with [network.delay] latency = resolution = this (s)")
    args = ap.parse_args(argv)

    runs = {"netemu, continuous time": scenario_dict(args.nodes, args.seconds, args.degree)}
    if args.slot > 0:
        runs[f"netemu, wake-ups on {args.slot * 1e3:g} ms slots*"] = scenario_dict(
            args.nodes, args.seconds, args.degree,
            {"name": "broadcast-gossip", "gamma": GAMMA, "rate": RATE, "slot": args.slot})
    if args.resolution > 0:
        runs[f"netemu, delay + resolution {args.resolution * 1e3:g} ms"] = scenario_dict(
            args.nodes, args.seconds, args.degree,
            delay={"latency": args.resolution, "resolution": args.resolution})
    base = Baseline(runs["netemu, continuous time"], args.baseline_seconds)
    n = args.nodes
    degree = sum(map(len, base.neighbours)) / n
    print(f"broadcast gossip, {n} nodes, radio unit disk {RANGE:g} m, mean degree {degree:.1f}, "
          f"Poisson clocks 1/s, gamma {GAMMA}, no loss, no delay"
          f"{' (but in the resolution run)' if args.resolution > 0 else ''}; {args.repeats} repeats", flush=True)

    simpy_label = "SimPy, one event per delivery"
    rows: dict[str, list] = {simpy_label: [], **{k: [] for k in runs}}
    for r in range(args.repeats):
        _, dl, wall = base.run()
        rows[simpy_label].append((args.baseline_seconds, dl, wall))
        for label, d in runs.items():
            dl_n, wall_n, _ = run_netemu(d)
            rows[label].append((args.seconds, dl_n, wall_n))
        print(f"  repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    head = f"{'implementation':<38}{'sim s':>7}{'deliveries':>13}{'wall s':>9}{'deliveries/s':>14}"
    print(head + f"{'ratio (min / median / max)':>30}")
    print("-" * (len(head) + 30))
    for label, rs in rows.items():
        rates = [dl / wall for _, dl, wall in rs]
        ratios = [rate / (b[1] / b[2]) for rate, b in zip(rates, rows[simpy_label])]
        sim_s, dl, _ = rs[0]
        wall = statistics.median(w for _, _, w in rs)
        ratio = f"{min(ratios):.1f} / {statistics.median(ratios):.1f} / {max(ratios):.1f}x"
        print(f"{label:<38}{sim_s:>7}{dl:>13,}{wall:>9.2f}{statistics.median(rates):>14,.0f}{ratio:>30}")
    print(f"Rates are deliveries per wall-clock second (median over repeats); each ratio divides a run's "
          f"rate by the SimPy rate of the same repeat. SimPy runs {args.baseline_seconds} simulated s, "
          f"netemu {args.seconds} s (the rate per delivery does not depend on the horizon). netemu times "
          f"the whole run_scenario call (graph, metrics, output files).")
    if args.slot > 0:
        print("* broadcast-gossip with slot = the slot: wake-ups postponed to the next multiple of it, "
              "the nodes of one slot broadcast together (an approximation of continuous time).")
    print("Target: netemu >= 10x the per-delivery SimPy baseline.")


if __name__ == "__main__":
    main()
