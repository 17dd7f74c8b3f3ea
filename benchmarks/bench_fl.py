"""Events per second of the FL protocols with 1000 straggling clients, and what batching their
local steps buys.

Scenario: one server and ``--clients`` clients (default 1000) over an uplink (20 ms, 1 MB/s);
the cheap ``logistic`` task (50 samples per client, 10 features, full-batch gradients), so that
the event machinery is what is measured; 5 local steps per update whose durations are lognormal
(median 0.1 s, sigma 0.5) and 10× slower on 10% of the clients. Every run happens in this one
invocation, so the ratios are comparable.

1. Events per second over ``--seconds`` simulated seconds (default 100) for ``fedbuff`` (K = 10,
   every client training all the time) and ``fedfix`` (Δt = 1 s), in continuous time
   (``slot = 0``: every end of local training is its own event) and with ``slot = --slot`` (ends
   of training rounded up to multiples of the slot: the clients of one slot upload together, one
   event and one batch).
2. The speed-up from batching: the same protocols in continuous time with ``batched = true`` (the
   local steps of every job not yet computed run in one batched gradient call per step) and
   ``batched = false`` (one client's job at a time), over ``--compare-seconds`` (default 20; one
   client at a time is slow): the ratio of their wall times, and the runs end with the same model
   (full-batch gradients; to rounding).

Counted per run (wall time of the protocol's run, not of building the task): ``clock events``
(instants the simulator processes: deliveries, timers), and ``FL events`` = model downloads and
update uploads delivered + local steps computed + server aggregations. The issue's target is
100 k events per second.

Run:  python benchmarks/bench_fl.py [--clients 1000] [--seconds 100] [--compare-seconds 20] [--slot 0.05]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from netemu.runner import run_scenario
from netemu.scenario.load import from_dict


def scenario_dict(clients: int, seconds: int, protocols: list[dict]) -> dict:
    return {"seed": 1, "name": "FL benchmark",
            "network": {"nodes": clients + 1, "topology": "random", "p": 0.0,
                        "uplink": {"server": 0, "latency": 0.02, "bandwidth": 1e6}},
            "run": {"rounds": seconds, "period": 1.0},
            "task": {"kind": "logistic", "samples": 50, "features": 10},
            "output": {"plot": False, "record": False},
            "compute": {"step_time": {"dist": "lognormal", "median": 0.1, "sigma": 0.5},
                        "stragglers": {"fraction": 0.1, "slowdown": 10.0, "persistent": True}},
            "protocols": protocols}


BASES = ({"name": "fedbuff", "K": 10}, {"name": "fedfix", "interval": 1.0})


def variant(base: dict, slot: float, batched: bool) -> dict:
    label = f"{base['name']} slot={slot:g} {'batched' if batched else 'one-by-one'}"
    return {**base, "label": label, "local_steps": 5, "lr": 0.1, "slot": slot, "batched": batched}


def run_one(clients: int, seconds: int, proto: dict) -> dict:
    sc = from_dict(scenario_dict(clients, seconds, [proto]))
    with tempfile.TemporaryDirectory() as out:
        (r,) = run_scenario(sc, Path(out), progress=False)
    f = r.final()
    fl_events = r.counters["deliveries"] + r.extra["node_steps"] + f["model_version"]
    return {"wall": r.wall_seconds, "clock_events": r.counters["events"], "fl_events": fl_events,
            "calls": r.extra["model_calls"], "loss": f["loss"], "updates": f["updates_applied"]}


def table(title: str, runs: dict) -> dict:
    print(title)
    print(f"  {'variant':30s} {'wall s':>7s} {'clock ev/s':>11s} {'FL ev/s':>10s} {'model calls':>11s} "
          f"{'updates':>8s} {'loss':>8s}")
    med = {}
    for label, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        r = rs[0]
        med[label] = (wall, r)
        print(f"  {label:30s} {wall:7.2f} {r['clock_events'] / wall:11,.0f} {r['fl_events'] / wall:10,.0f} "
              f"{r['calls']:11,d} {int(r['updates']):8,d} {r['loss']:8.5f}")
    return med


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=100)
    ap.add_argument("--compare-seconds", type=int, default=20)
    ap.add_argument("--slot", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args(argv)
    rate = [variant(b, s, True) for b in BASES for s in (0.0, a.slot)]
    pairs = [(variant(b, 0.0, True), variant(b, 0.0, False)) for b in BASES]
    run_one(10, 2, rate[0])  # import and warm up torch once
    runs: dict[str, list] = {p["label"]: [] for p in rate}
    comp: dict[str, list] = {p["label"]: [] for pair in pairs for p in pair}
    for _ in range(a.repeats):  # interleaved, so a slow moment of the machine hits every variant
        for p in rate:
            runs[p["label"]].append(run_one(a.clients, a.seconds, p))
        for pair in pairs:
            for p in pair:
                comp[p["label"]].append(run_one(a.clients, a.compare_seconds, p))
    print(f"{a.clients} clients, logistic task, 5 local steps per update, median of {a.repeats} run(s)")
    table(f"1. events per second, {a.seconds} s simulated:", runs)
    med = table(f"2. batched local steps against one client at a time, {a.compare_seconds} s simulated:", comp)
    for b, o in pairs:
        wb, rb = med[b["label"]]
        wo, ro = med[o["label"]]
        print(f"  {b['name']}: batching is {wo / wb:.2f}x faster ({ro['calls'] / rb['calls']:.0f}x fewer model "
              f"calls); final loss equal to rounding: {abs(rb['loss'] - ro['loss']) <= 1e-9 * abs(ro['loss'])}")


if __name__ == "__main__":
    main()
