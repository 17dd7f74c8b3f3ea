"""The asynchronous benchmark's SimPy baseline computes what netemu computes: on a small network,
with the same graph, initial values and wake-up times, both end with the same values bit for bit
and count the same deliveries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from netemu.engine import Observer, SimEngine
from netemu.runner import prepare
from netemu.scenario.load import from_dict

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_async", ROOT / "benchmarks" / "bench_async.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Keep(Observer):
    proto = None

    def sample(self, run, k, t, proto, extra=None):
        self.proto = proto


def test_simpy_baseline_equals_netemu():
    bench = _bench()
    d = bench.scenario_dict(40, 20, degree=6.0)
    sc = from_dict(d)
    traj, topo, x0 = prepare(sc)
    keep = Keep()
    res = SimEngine(sc, x0, traj, topo, observers=(keep,)).run_protocol(sc.protocols[0])
    x, delivered, _ = bench.Baseline(d, 20).run()
    assert delivered == res.counters["deliveries"] > 0
    assert np.array_equal(np.array(x), keep.proto.x[:, 0])
    assert np.ptp(x) < 0.5 * np.ptp(x0)  # and they mix
