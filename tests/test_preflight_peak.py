"""The memory preflight's estimate is an upper bound of a real run's peak memory, and not a loose one.

Each case runs ``benchmarks/scale.py``'s child (the run the README's scale table measures: a radio
network sized for about 10 neighbours per node, consensus, loss 0.1) in a fresh process and compares
its peak resident memory (``ru_maxrss``, the interpreter and imports included) with
``netemu.scenario.preflight.estimate`` of the same scenario.
"""

from __future__ import annotations

import json
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
