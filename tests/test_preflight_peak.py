"""The memory preflight's estimate is an upper bound of a real run's peak memory, and not a loose one.

Each case runs ``benchmarks/scale.py``'s child (the run the README's scale table measures: a radio
network sized for about 10 neighbours per node, consensus, loss 0.1) in a fresh process and compares
its peak resident memory (``ru_maxrss``, the interpreter and imports included) with
``netemu.scenario.preflight.estimate`` of the same scenario.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCALE = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"


@pytest.mark.parametrize("protocol, n, mobility", [("push-sum", 100_000, "static"),
                                                   ("gossip", 100_000, "random-waypoint"),
                                                   ("pulm", 2_000, "static")])
def test_estimate_bounds_the_measured_peak(protocol, n, mobility):
    spec = {"n": n, "protocol": protocol, "rounds": 3, "degree": 10.0, "mobility": mobility}
    p = subprocess.run([sys.executable, str(SCALE), "--child", json.dumps(spec)], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["nodes"] == n and r["deliveries"] > n  # the run happened, over the radio links
    assert r["peak_rss"] <= r["preflight"], (r["peak_rss"], r["preflight"])
    assert r["preflight"] <= 2 * r["peak_rss"], (r["peak_rss"], r["preflight"])


# a static radio run through the shared medium (bench_mac.py's network at 5·10⁴ nodes: range 50 m, about
# 27 neighbours), in a fresh process; prints the peak RSS (scale.py's VmHWM) and the preflight's estimate
MEDIUM_CHILD = """
import json, math, sys
sys.path.insert(0, sys.argv[1])
from scale import _peak
from netemu.api import load
from netemu.engine import SimEngine
from netemu.runner import prepare
from netemu.scenario import preflight
n, mac = 50_000, json.loads(sys.argv[2])
side = math.sqrt(n * math.pi * 50.0**2 / 27)
sc = load({"seed": 1, "network": {"nodes": n, "topology": "radio", "range": 50.0, "mac": mac},
           "mobility": {"model": "static", "area": [side, side]}, "run": {"rounds": 3},
           "output": {"plot": False, "record": False}, "protocols": [{"name": "push-sum"}]})
est = int(preflight.estimate(sc))
traj, topo, x0 = prepare(sc)
res = SimEngine(sc, x0, traj, topo, ()).run_protocol(sc.protocols[0])
print(json.dumps({"peak_rss": _peak(), "preflight": est, "transmissions": res.extra["mac"]["transmissions"]}))
"""


@pytest.mark.parametrize("mac", [{"model": "csma"}, {"model": "aloha", "interference_range": 75.0}])
def test_estimate_bounds_the_medium_peak(mac):
    """The medium's structures (``preflight.MAC_EDGE_BYTES``, ``MAC_NODE_BYTES``) keep the estimate
    above the peak of a run through ``[network.mac]``, which needs about twice ideal's memory."""
    p = subprocess.run([sys.executable, "-c", MEDIUM_CHILD, str(SCALE.parent), json.dumps(mac)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["transmissions"] == 3 * 50_000  # the run went through the medium
    assert r["peak_rss"] <= r["preflight"] <= 2 * r["peak_rss"], (r["peak_rss"], r["preflight"])


def test_estimate_counts_the_medium():
    """The medium's part: none with the ideal channel; per pair within the medium's largest range
    and per node otherwise (the interference range widens it)."""
    from netemu.api import load
    from netemu.scenario import preflight

    def est(mac):
        net = {"nodes": 10_000, "topology": "radio", "range": 50.0}
        if mac is not None:
            net["mac"] = mac
        return preflight.estimate(load({"network": net, "mobility": {"model": "static", "area": [1000, 1000]},
                                        "protocols": [{"name": "push-sum"}]}))

    none, ideal, csma = est(None), est({"model": "ideal"}), est({"model": "csma"})
    wide = est({"model": "csma", "interference_range": 100.0})
    assert none.total == ideal.total and not any(p.what == "radio medium" for p in ideal.parts)
    degree = 9_999 * math.pi * 50.0**2 / 1000**2
    part = 10_000 * (degree * preflight.MAC_EDGE_BYTES + preflight.MAC_NODE_BYTES)
    assert csma.total - ideal.total == pytest.approx(part, abs=2)  # totals are whole bytes
    assert wide.total - ideal.total == pytest.approx(10_000 * (4 * degree * preflight.MAC_EDGE_BYTES
                                                               + preflight.MAC_NODE_BYTES), abs=2)
    assert "[network.mac] interference_range = 100 m" in wide.breakdown(10)
