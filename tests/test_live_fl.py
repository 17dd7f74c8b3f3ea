"""Federated learning live: the FL protocols over real UDP equal the simulated run, update by update,
with model messages that need fragments; an outside process joins as an FL client.

The acceptance run: a server and 4 clients over an uplink with loss and retries, a digits MLP whose
float32 model (77 kB) is longer than one datagram, fedavg, fedasync and fedbuff. Every metrics row
(loss, accuracy, updates applied, staleness, bytes, model version at each sample), every counter
and every event of the trace (each transmission, delivery and drop, with its simulated time) are
the same in `netemu live` and `netemu run` on the same seed.
"""

import subprocess
import sys

import msgpack
import numpy as np

from conftest import ROOT
from netemu import wire
from netemu.live.config import with_overrides
from netemu.live.runtime import run_live
from netemu.runner import run_scenario
from netemu.scenario.load import from_dict

HIDDEN = 256  # digits MLP 64-256-10: 19,210 float32 parameters, a 77 kB model message
PROTOCOLS = [{"name": "fedavg", "local_steps": 3, "lr": 0.1},
             {"name": "fedasync", "local_steps": 3, "lr": 0.1, "alpha": 0.6},
             {"name": "fedbuff", "local_steps": 3, "lr": 0.1, "K": 2, "M": 4}]


def fl_scenario(protocols=PROTOCOLS, nodes=5, loss=0.2, scale=5.0, rounds=4, live=None, seed=3):
    return with_overrides(from_dict({
        "seed": seed,
        "network": {"nodes": nodes, "topology": "random", "p": 0.0,
                    "uplink": {"server": 0, "latency": 0.05, "bandwidth": 2e6, "loss": loss, "retries": 1}},
        "run": {"rounds": rounds, "period": 1.0},
        "task": {"kind": "digits", "hidden": HIDDEN, "batch": 16},
        "compute": {"device": "cpu", "threads": 1,
                    "step_time": {"dist": "lognormal", "median": 0.05, "sigma": 0.5}},
        "output": {"plot": False, "trace": True},
        "protocols": protocols, "live": {"time_scale": scale, **(live or {})}}, source="live_fl.toml"))


def trace(path):
    with open(path, "rb") as f:
        u = msgpack.Unpacker(f, raw=False)
        next(u)
        return sorted((r.get("p", ""), r["e"], r["t"], r["src"], r.get("dst", -1), r.get("why", ""),
                       r.get("bytes", 0)) for r in u)


def on_time(res) -> bool:
    """Every copy was taken in before its instant (a loaded machine can make the wall clock lag)."""
    return res.extra["live"]["late_receptions"] == 0


def test_live_fl_run_equals_the_simulated_one_update_by_update(tmp_path):
    sc = fl_scenario()
    model = {"x": np.zeros((1, 64 * HIDDEN + HIDDEN + HIDDEN * 10 + 10), np.float32), "v": np.zeros((1, 1), np.int64)}
    assert wire.message_bytes(model, 5) > sc.live["max_datagram"]  # the model needs fragments
    lives = run_live(sc, tmp_path / "live")
    sims = run_scenario(sc, tmp_path / "sim", progress=False)
    assert [r.label for r in lives] == [r.label for r in sims] == ["fedavg", "fedasync", "fedbuff"]
    for live, sim in zip(lives, sims):
        assert on_time(live), (live.label, live.extra["live"])
        assert len(live.rows) == len(sim.rows) == 5
        assert live.rows == sim.rows, live.label  # every sample, bit for bit
        assert sim.rows[-1][2]["updates_applied"] >= 4 and sim.rows[-1][2]["model_version"] >= 1
        for key in ("messages_sent", "bytes_sent", "drops", "retries"):
            assert live.counters.get(key) == sim.counters.get(key), (live.label, key)
        assert sim.counters["drops"] > 0 and sim.counters["retries"] > 0  # losses and retries happened
        # the simulator counts a delivery when it is planned; live mode when it is taken in
        assert live.counters["deliveries"] + live.extra["live"]["not_taken"] == sim.counters["deliveries"]
        fr = live.extra["datagrams"]["fragments"]
        assert fr["sent_by_local_nodes"] >= 2 * live.counters["messages_sent"]  # every message fragmented
        assert fr["messages_lost"] == 0 and sum(live.extra["rejected"].values()) == 0
    assert trace(tmp_path / "live" / "events.msgpack") == trace(tmp_path / "sim" / "events.msgpack")
