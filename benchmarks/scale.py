"""How far one machine goes: seconds per round, peak memory and bytes per node against network size.

    python benchmarks/scale.py                      # push-sum, gossip: 10^4..10^6; pulm: 10^3..10^4
    python benchmarks/scale.py --sizes 1e7 --protocols push-sum --rounds 3   # one big size alone

Each (protocol, size) runs in a fresh process, one at a time: a static radio network (unit disk,
range 100 m) in a square sized for a mean degree of about ``--degree`` neighbours, loss 0.1, a
consensus task, no plots, a few rounds. The child builds the run as ``netemu run`` does
(``runner.prepare``, ``SimEngine.run_protocol``) and reports:

- ``s/round``: the median time between round starts (the steady state: the first round, which
  builds the radio links once, is counted in ``build s`` instead);
- ``peak RSS``: the process's peak resident memory (``VmHWM``, else ``ru_maxrss``), imports included;
- ``bytes/node``: (peak RSS − RSS after the imports) / nodes;
- ``preflight``: netemu's own estimate of the run's memory (``netemu.scenario.preflight``), an
  upper bound of the peak RSS, and ``ratio``: preflight / peak RSS.

``--degree`` and ``--mobility`` (``random-waypoint``, ``random-walk``: the nodes move) change the
network; they are what the preflight's bytes per edge and per node were measured with.

Before each size the parent reads the memory available now (``/proc/meminfo``) and skips a size
whose preflight estimate is above ``--max-gb`` or above what is available (the machine is shared);
``--fit GB`` then extrapolates, from the measured points (a least-squares line of peak RSS against
nodes, per protocol, of the rows with the given ``--mobility`` and ``--degree``), the largest size
that fits in GB, and says it is extrapolated; it also prints the largest size the preflight admits
in GB (``--max-memory`` lets a bigger run try). ``--report FILE`` prints the rows of a ``--json``
file, with the preflight column recomputed by the netemu installed now.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

RANGE = 100.0  # metres


def scenario(n: int, protocol: str, rounds: int, degree: float, mobility: str = "static") -> dict:
    side = math.sqrt(n * math.pi * RANGE**2 / degree)
    return {"seed": 1, "name": f"scale {protocol} {n}",
            "network": {"nodes": n, "topology": "radio", "range": RANGE, "loss": 0.1},
            "mobility": {"model": mobility, "area": [side, side]},
            "run": {"rounds": rounds},
            "output": {"plot": False, "record": False},
            "protocols": [{"name": protocol}]}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    """This process's peak resident memory: ``VmHWM``, which starts afresh at exec (``ru_maxrss``
    also keeps the RSS of the parent the process was forked from), else ``ru_maxrss``."""
    import resource

    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(spec: dict) -> dict:
    """Run one size in this process; the numbers of the module docstring."""
    import numpy as np

    from netemu.api import load
    from netemu.engine import SimEngine
    from netemu.runner import prepare
    from netemu.scenario import preflight

    sc = load(scenario(spec["n"], spec["protocol"], spec["rounds"], spec["degree"], spec.get("mobility", "static")))
    estimate = int(preflight.estimate(sc))
    base = _rss()
    start = time.perf_counter()
    trajectories, topology, x0 = prepare(sc)
    ticks, cpu = [], []

    def tick() -> None:
        ticks.append(time.perf_counter())
        cpu.append(time.process_time())

    engine = SimEngine(sc, x0, trajectories, topology, (), on_round=tick)
    res = engine.run_protocol(sc.protocols[0])
    end = time.perf_counter()
    tick()
    peak = _peak()
    steps, cpu_steps = np.diff(ticks), np.diff(cpu)
    return {"protocol": spec["protocol"], "nodes": spec["n"], "rounds": spec["rounds"],
            "degree": spec["degree"], "mobility": spec.get("mobility", "static"),
            "s_per_round": float(np.median(steps[1:] if len(steps) > 1 else steps)),
            "cpu_s_per_round": float(np.median(cpu_steps[1:] if len(cpu_steps) > 1 else cpu_steps)),
            "build_s": float(ticks[0] - start) if ticks else float("nan"),
            "total_s": end - start, "peak_rss": peak, "base_rss": base,
            "bytes_per_node": (peak - base) / spec["n"], "preflight": estimate,
            "deliveries": res.counters["deliveries"], "bytes_sent": res.counters["bytes_sent"],
            "consensus_error": res.final().get("consensus_error")}


def available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def estimate(n: int, protocol: str, rounds: int, degree: float, mobility: str = "static") -> int:
    from netemu.api import load
    from netemu.scenario import preflight

    return int(preflight.estimate(load(scenario(n, protocol, rounds, degree, mobility))))


def gb(x) -> str:
    return "–" if x is None else f"{x / 2**30:.2f} GB"


def show(r: dict) -> None:
    print(f"{r['protocol']:<9} {r['nodes']:>10} {r['s_per_round']:>9.4f} {r.get('cpu_s_per_round', 0):>9.4f} "
          f"{r['build_s']:>8.2f} "
          f"{gb(r['peak_rss']):>10} {r['bytes_per_node']:>11.0f} {gb(r['preflight']):>10} "
          f"{r['preflight'] / r['peak_rss']:>6.2f}  {r.get('mobility', 'static')}, degree {r.get('degree', 10):g}",
          flush=True)


def admitted(protocol: str, rounds: int, degree: float, mobility: str, limit: float) -> int:
    """The largest node count whose preflight estimate is within ``limit`` bytes (bisection)."""
    lo, hi = 1, 2
    while estimate(hi, protocol, rounds, degree, mobility) <= limit:
        lo, hi = hi, hi * 2
    while hi - lo > max(1, lo // 1000):
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if estimate(mid, protocol, rounds, degree, mobility) <= limit else (lo, mid)
    return lo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="node counts of push-sum and gossip")
    ap.add_argument("--pulm-sizes", default="1e3,3e3,1e4", help="node counts of pulm ('' for none)")
    ap.add_argument("--protocols", default="push-sum,gossip")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--degree", type=float, default=10.0, help="mean number of neighbours")
    ap.add_argument("--mobility", default="static", choices=("static", "random-waypoint", "random-walk"),
                    help="[mobility] model (defaults of speed, pause and interval)")
    ap.add_argument("--max-gb", type=float, default=14.0, help="skip a size whose estimate is above this")
    ap.add_argument("--fit", type=float, default=24.0, help="extrapolate the largest size fitting in GB")
    ap.add_argument("--json", type=Path, default=None, help="append the measured rows to this file")
    ap.add_argument("--report", type=Path, default=None,
                    help="print the table and fits of the rows in this --json file, running nothing")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    jobs = [(p, int(float(s))) for p in args.protocols.split(",") if p for s in args.sizes.split(",") if s]
    jobs += [("pulm", int(float(s))) for s in args.pulm_sizes.split(",") if s]
    rows = []
    if args.report:  # the preflight column is recomputed: the estimate of the netemu installed now
        rows, jobs, args.json = sorted(json.loads(args.report.read_text()),
                                       key=lambda r: (r.get("mobility", "static"), r["protocol"] == "pulm",
                                                      r["protocol"], r.get("degree", 10), r["nodes"])), [], None
        for r in rows:
            r["preflight"] = estimate(r["nodes"], r["protocol"], r["rounds"], r.get("degree", 10.0),
                                      r.get("mobility", "static"))
    print(f"{'protocol':<9} {'nodes':>10} {'s/round':>9} {'CPU s/rd':>9} {'build s':>8} {'peak RSS':>10} {'bytes/node':>11} "
          f"{'preflight':>10} {'ratio':>6}  network", flush=True)
    for protocol, n in jobs:
        est, free = estimate(n, protocol, args.rounds, args.degree, args.mobility), available()
        if (est > args.max_gb * 2**30 or est > 0.8 * free):
            print(f"{protocol:<9} {n:>10} skipped: estimate {gb(est)}, limit {args.max_gb:g} GB, "
                  f"available now {gb(free)}", flush=True)
            continue
        spec = {"n": n, "protocol": protocol, "rounds": args.rounds, "degree": args.degree,
                "mobility": args.mobility}
        p = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{protocol:<9} {n:>10} failed: {p.stderr.strip().splitlines()[-1:]}", flush=True)
            continue
        rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
        show(rows[-1])
    if args.report:
        for r in rows:
            show(r)
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.is_file() else []
        args.json.write_text(json.dumps(old + rows, indent=1) + "\n")
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        n = admitted(protocol, args.rounds, args.degree, args.mobility, args.fit * 2**30)
        print(f"{protocol}: the preflight admits up to about {n:.3g} nodes in {args.fit:g} GB "
              f"({args.mobility}, degree {args.degree:g}, {args.rounds} rounds; --max-memory overrides it)")
        pts = [(r["nodes"], r["peak_rss"]) for r in rows if r["protocol"] == protocol
               and r.get("mobility", "static") == args.mobility and r.get("degree", 10.0) == args.degree]
        if len(pts) < 2:
            continue
        import numpy as np

        power = 2 if protocol == "pulm" else 1  # pulm's messages and state are [n, n]
        x, y = (np.array(v, dtype=float) for v in zip(*pts))
        slope, icpt = np.polyfit(x**power, y, 1)
        if slope > 0:
            fit = ((args.fit * 2**30 - icpt) / slope) ** (1 / power)
            term = "nodes" if power == 1 else "nodes²"
            print(f"{protocol}: peak RSS ≈ {icpt / 2**30:.2f} GB + {slope:.4g} B × {term} (least squares over "
                  f"{len(pts)} measured sizes); {args.fit:g} GB fits about {fit:.3g} nodes (extrapolated)")


if __name__ == "__main__":
    main()
