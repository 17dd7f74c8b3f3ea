"""Receptions resolved per second through the shared medium, against the ideal channel.

The network of ``bench_delivery.py``: 4000 static nodes uniform in 1000 m × 1000 m, range 50 m
(about 27 neighbours each, 31 away from the edges), push-sum, no loss. One process runs, in turn
and ``--repeats`` times, the same rounds with ``[network.mac] model = "ideal"``, ``"aloha"`` and
``"csma"`` (1 Mb/s, cw 15, carrier sense = reception range), each as ``SimEngine.run_protocol``
(the KD-tree and the start-up are outside the timing). A reception counts as resolved when the
medium has decided it (delivered, or dropped by collision or lateness); the ideal channel resolves
every nominal edge of a round. The ratio ideal rate / medium rate is taken within each repeat.

CSMA's cost splits in two: the round's access (carrier sense and backoff, ``access.csma_round``:
sweeps that each decide every node whose decision is known) and the collision resolution
(``resolve.resolve_round``, or ``resolve.resolve`` with earlier frames on the air: the intervals
sorted per receiver); both are timed apart. docs/medium.md (Cost) has the figures.

Run:  python benchmarks/bench_mac.py [--rounds 20] [--repeats 3] [--nodes 4000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from netemu.engine import SimEngine
from netemu.scenario import build
from netemu.scenario.load import Scenario


def scenario(n: int, rounds: int, model: str) -> Scenario:
    side = 1000.0 * (n / 4000) ** 0.5  # the density of bench_delivery at any n
    net = {"nodes": n, "topology": "radio", "range": 50.0}
    if model != "ideal":
        net["mac"] = {"model": model, "bitrate": 1e6, "cw": 15}
    return Scenario.from_dict({"seed": 1, "network": net, "mobility": {"model": "static", "area": [side, side]},
                               "run": {"rounds": rounds, "period": 1.0}, "output": {"plot": False},
                               "protocols": [{"name": "push-sum"}]})


class Timer:
    """Wall time spent in the medium's access and resolution functions."""

    def __init__(self) -> None:
        import netemu.runtime.medium_rounds as R

        self.R, self.access, self.resolve = R, 0.0, 0.0
        self._saved = {name: getattr(R, name) for name in ("csma_round", "resolve", "resolve_round")}

        def timed(f, field):
            def call(*a, **k):
                t = time.perf_counter()
                try:
                    return f(*a, **k)
                finally:
                    setattr(self, field, getattr(self, field) + time.perf_counter() - t)
            return call

        for name, f in self._saved.items():
            setattr(R, name, timed(f, "access" if name == "csma_round" else "resolve"))

    def close(self) -> None:
        for name, f in self._saved.items():
            setattr(self.R, name, f)


def run(n: int, rounds: int, model: str, traj, x0):
    sc = scenario(n, rounds, model)
    eng = SimEngine(sc, x0, trajectories=traj)
    timer = Timer()
    t = time.perf_counter()
    res = eng.run_protocol(sc.protocols[0])
    wall = time.perf_counter() - t
    timer.close()
    mac = res.extra.get("mac")
    if mac is None:
        resolved = res.counters["deliveries"] + res.counters["drops"] + res.counters["late"]
    else:
        resolved = mac["receptions"] + mac["late"]
    return resolved, wall, timer.access, timer.resolve, mac


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=4000)
    a = ap.parse_args()
    base = scenario(a.nodes, a.rounds, "ideal")
    traj = build.trajectories(base)
    x0 = np.random.default_rng(0).normal(size=(a.nodes, 1))
    deg = len(build.topology(base).edges(0, traj.positions(0.0))[0]) / a.nodes
    print(f"{a.nodes} nodes, mean degree {deg:.1f}, {a.rounds} rounds, {a.repeats} repeats")
    ratios = {"aloha": [], "csma": []}
    for r in range(a.repeats):
        rates = {}
        for model in ("ideal", "aloha", "csma"):
            resolved, wall, acc, rsv, mac = run(a.nodes, a.rounds, model, traj, x0)
            rates[model] = resolved / wall
            extra = ""
            if mac is not None:
                extra = (f"  access {acc / a.rounds * 1e3:6.1f} ms/round, resolution {rsv / a.rounds * 1e3:5.1f} "
                         f"ms/round, collision share {mac['collision_share']:.3f}")
            print(f"repeat {r + 1}  {model:6s} {resolved:>10,d} receptions in {wall:6.2f} s = "
                  f"{rates[model] / 1e6:6.2f} M/s{extra}")
        for model in ratios:
            ratios[model].append(rates["ideal"] / rates[model])
    for model, rs in ratios.items():
        rs = sorted(rs)
        print(f"{model}: cost per reception / ideal's = {rs[0]:.2f} / {statistics.median(rs):.2f} / {rs[-1]:.2f} "
              f"(min / median / max over repeats; target <= 3)")


if __name__ == "__main__":
    main()
