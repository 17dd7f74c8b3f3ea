"""The stored ns-3 comparison (benchmarks/data/ns3_broadcast.csv, made by
benchmarks/ns3_broadcast.py, which needs ``pip install ns3``; CI does not).

What is checked here, without ns-3:

- netemu's lines of the stored file are reproduced exactly by the script (same seed, same
  geometry, same counts), for the light and medium loads of the two smaller densities;
- at light load (offered load per neighbourhood below 0.15) netemu's delivery ratio is within
  0.05 of ns-3's. Justification: there both lose only the few frames that overlap, mostly from
  hidden terminals on the same geometry; the models differ in the backoff (802.11 freezes its
  counter, netemu draws a new one after every busy period), in DIFS and in ns-3's per-node
  queue, all of which matter only as frames meet. The heavier loads differ more, as
  docs/medium.md explains, and are not held to a tolerance.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "benchmarks" / "data" / "ns3_broadcast.csv"


def _script():
    spec = importlib.util.spec_from_file_location("ns3_broadcast", ROOT / "benchmarks" / "ns3_broadcast.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows():
    with open(CSV) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("nodes,rate", [(10, 2.0), (10, 10.0), (20, 2.0), (20, 10.0)])
def test_netemu_lines_reproduce(nodes, rate):
    mod = _script()
    stored = next(r for r in _rows() if r["simulator"] == "netemu" and int(r["nodes"]) == nodes
                  and float(r["rate"]) == rate)
    got = mod.run_netemu(nodes, rate, 10.0, 1)
    for key in ("broadcasts", "expected", "received"):
        assert int(stored[key]) == got[key], key


def test_light_load_agrees_with_ns3():
    rows = _rows()
    ns3 = {(r["nodes"], r["rate"]): r for r in rows if r["simulator"] == "ns-3"}
    light = [r for r in rows if r["simulator"] == "netemu" and float(r["offered_load"]) < 0.15]
    assert len(light) >= 3 and len(ns3) == len(rows) // 2
    for r in light:
        other = ns3[(r["nodes"], r["rate"])]
        assert abs(float(r["delivery_ratio"]) - float(other["delivery_ratio"])) <= 0.05, (r, other)
