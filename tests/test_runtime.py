"""The event runtime: the event API on a hand-computed case, asynchronous protocols, live runs
equal to simulated ones, and the errors of protocols that misbehave."""

from __future__ import annotations

from pathlib import Path

import msgpack
import numpy as np
import pytest

from netemu import registry, wire
from netemu.engine import Observer, SimEngine
from netemu.errors import ProtocolError, ScenarioError
from netemu.protocol import EventProtocol
from netemu.rng import stream
from netemu.runner import make_task, prepare, run_scenario
from netemu.scenario.load import from_dict

LATENCY, BANDWIDTH, STEP = 0.1, 1000.0, 0.25


class Probe(EventProtocol):
    """The 3-node case: timers (one per node, two instants), a unicast, a compute completion."""

    name = "probe"
    needs_compute = True
    log: list = []

    def start(self, x0):
        self.x = np.array(x0, dtype=np.float64)
        self.got = {}

    def on_start(self):
        self.ctx.set_timer([0, 1, 2], [0.5, 0.5, 0.7], "t")
        self.ctx.compute.grad([1], self.x[[1]])
        Probe.log.append(("start", self.ctx.now))

    def on_timer(self, nodes, tag):
        Probe.log.append(("timer", self.ctx.now, nodes.tolist(), tag))
        if self.ctx.now == 0.5:
            self.ctx.send([0], [2], {"v": self.x[[0]]})

    def on_compute_done(self, nodes, result):
        Probe.log.append(("done", self.ctx.now, nodes.tolist()))
        self.g1 = result[0].copy()
        self.ctx.broadcast(nodes, {"g": result})

    def on_message(self, batch):
        Probe.log.append(("msg", self.ctx.now, batch.receivers.tolist(), batch.senders.tolist()))
        for name, values in batch.fields.items():
            for i, row in zip(batch.receivers.tolist(), batch.rows.tolist()):
                self.got[(name, i)] = values[row].copy()
                if name == "v":
                    self.x[i] = 0.5 * (self.x[i] + values[row])

    def estimate(self):
        return self.x


def three_nodes(**extra):
    data = {"seed": 3, "network": {"nodes": 3, "topology": "latent", "graph": "ring", "loss": 0.0,
                                    "delay": {"latency": LATENCY, "bandwidth": BANDWIDTH}},
            "run": {"rounds": 3, "period": 1.0}, "task": {"kind": "logistic", "features": 2, "samples": 5},
            "compute": {"device": "cpu", "step_time": {"dist": "fixed", "value": STEP}},
            "output": {"plot": False}, "protocols": [{"name": "probe"}]}
    data.update(extra)
    return from_dict(data, source="probe.toml")


@pytest.fixture
def probe():
    registry.register("probe", Probe)
    Probe.log = []
    yield Probe
    registry._extra.pop("probe", None)


class Keep(Observer):
    def __init__(self):
        self.proto = None

    def sample(self, run, k, t, proto, extra=None):
        self.proto = proto


def test_event_api_exact_times_and_states(probe):
    sc = three_nodes()
    task = make_task(sc)
    keep = Keep()
    res = SimEngine(sc, None, observers=(keep,), task=task).run_protocol(sc.protocols[0])
    x0 = task.x0()
    g = task.grads(task.capture(x0[[1]]), task.sample(np.array([1]), stream(3, "task", 1, 0)))
    vbytes = wire.message_bytes({"v": x0[[0]]}, 3)
    gbytes = wire.message_bytes({"g": np.asarray(g)}, 3)
    t_v = 0.5 + (LATENCY + vbytes / BANDWIDTH)  # arrival = send time + (latency + bytes / bandwidth)
    t_g = STEP + (LATENCY + gbytes / BANDWIDTH)
    assert Probe.log == [
        ("start", 0.0),
        ("done", STEP, [1]),
        ("msg", t_g, [0, 2], [1, 1]),  # node 1's ring neighbours hear its broadcast
        ("timer", 0.5, [0, 1], "t"),
        ("msg", t_v, [2], [0]),  # the unicast 0 → 2
        ("timer", 0.7, [2], "t"),
    ]
    p = keep.proto
    np.testing.assert_array_equal(p.g1, np.asarray(g)[0])
    np.testing.assert_array_equal(p.got[("g", 0)], p.g1)
    np.testing.assert_array_equal(p.x[2], 0.5 * (x0[2] + x0[0]))
    np.testing.assert_array_equal(p.x[:2], x0[:2])
    c = res.counters
    assert c["messages_sent"] == 2 and c["deliveries"] == 3 and c["bytes_sent"] == vbytes + gbytes
    assert [k for k, _, _ in res.rows] == [0, 1, 2, 3]


def test_handler_that_raises_names_protocol_event_and_node(probe, tmp_path):
    def boom(self, nodes, tag):
        raise ValueError("bad state")

    Probe.on_timer, saved = boom, Probe.on_timer
    try:
        with pytest.raises(ProtocolError, match=r"'probe' \(probe\): on_timer for nodes \[0, 1\] at t = 0.5 s "
                                                r"raised ValueError: bad state"):
            run_scenario(three_nodes(), tmp_path / "out", progress=False)
    finally:
        Probe.on_timer = saved
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("delay,shown", [(-1.0, "-1.0"), (float("nan"), "nan"), (float("inf"), "inf")])
def test_bad_timer_delay_is_refused(probe, delay, shown):
    def bad(self):
        self.ctx.set_timer([2], delay, "x")

    Probe.on_start, saved = bad, Probe.on_start
    try:
        with pytest.raises(ProtocolError, match=rf"set_timer in on_start at t = 0 s for node 2 has delay "
                                                rf"{shown}; a delay must be a finite number"):
            sc = three_nodes()
            SimEngine(sc, None, task=make_task(sc)).run_protocol(sc.protocols[0])
    finally:
        Probe.on_start = saved


def test_unicast_to_a_node_that_does_not_exist(probe):
    def bad(self):
        self.ctx.send([0], [7], {"v": self.x[[0]]})

    Probe.on_start, saved = bad, Probe.on_start
    try:
        with pytest.raises(ProtocolError, match=r"send \(destination\) in on_start at t = 0 s names node 7, "
                                                r"but node ids are 0..2"):
            sc = three_nodes()
            SimEngine(sc, None, task=make_task(sc)).run_protocol(sc.protocols[0])
    finally:
        Probe.on_start = saved


def test_settings_of_the_other_kind_are_refused():
    base = {"network": {"nodes": 5}, "task": {"kind": "consensus"}}
    with pytest.raises(ScenarioError, match=r"'broadcast-gossip' is event-driven, but \[compute\] deadline "
                                            r"is a setting of round protocols"):
        from_dict({**base, "compute": {"deadline": 0.1}, "protocols": [{"name": "broadcast-gossip"}]})
    with pytest.raises(ScenarioError, match=r"'pulm' is round-based and computes nothing: on a consensus "
                                            r"task \[compute\] only sets the clock rates of event protocols"):
        from_dict({**base, "compute": {"speeds": {"dist": "uniform"}}, "protocols": [{"name": "pulm"}]})
    with pytest.raises(ScenarioError, match=r"\[protocols #1\] inner_rounds: unknown key \(valid: gamma, label, name, rate, slot\)"):
        from_dict({**base, "protocols": [{"name": "broadcast-gossip", "inner_rounds": 2}]})


# -- asynchronous protocols -------------------------------------------------------------------

def consensus(protocol, seed=1, loss=0.0, nodes=12, rounds=40, **net):
    return from_dict({"seed": seed, "network": {"nodes": nodes, "topology": "random", "p": 0.3,
                                                "loss": loss, **net},
                      "run": {"rounds": rounds}, "task": {"kind": "consensus", "dim": 1},
                      "protocols": [{"name": protocol}]})


def run_one(sc):
    traj, topo, x0 = prepare(sc)
    keep = Keep()
    res = SimEngine(sc, x0, traj, topo, observers=(keep,)).run_protocol(sc.protocols[0])
    return res, keep.proto, x0


def test_broadcast_gossip_reaches_consensus_on_the_mean_in_expectation():
    """Aysal et al. 2009: consensus almost surely; E[limit] = initial mean (not the limit itself).
    Over S seeds, the mean deviation of the limit from the initial mean is within 4 standard
    errors of 0, and its spread is not 0."""
    dev = []
    for seed in range(60):
        res, proto, x0 = run_one(consensus("broadcast-gossip", seed=seed))
        assert res.final()["disagreement"] < 1e-6, seed
        dev.append(float(proto.x.mean() - x0.mean()))
    dev = np.array(dev)
    se = dev.std(ddof=1) / np.sqrt(len(dev))
    assert dev.std() > 1e-3  # the limit is random: the mean only in expectation
    assert abs(dev.mean()) < 4 * se, (dev.mean(), se)


def test_async_push_sum_exact_without_loss_biased_with_loss():
    res, proto, x0 = run_one(consensus("async-push-sum", loss=0.0))
    assert res.final()["consensus_error"] < 1e-10
    np.testing.assert_allclose(proto.s.sum(axis=0), x0.sum(axis=0), rtol=1e-12)  # mass conserved
    np.testing.assert_allclose(proto.w.sum(), 12.0, rtol=1e-12)
    res, proto, _ = run_one(consensus("async-push-sum", loss=0.2))
    assert res.final()["disagreement"] < 1e-6 and res.final()["consensus_error"] > 1e-3
    assert proto.w.sum() < 12.0 - 1e-3  # lost shares vanished


def test_async_protocols_share_the_channel_realization():
    a, _, _ = run_one(consensus("broadcast-gossip", loss=0.2, delay={"latency": 0.01, "jitter": "exponential",
                                                                     "jitter_scale": 0.05}))
    b, _, _ = run_one(consensus("async-push-sum", loss=0.2, delay={"latency": 0.01, "jitter": "exponential",
                                                                   "jitter_scale": 0.05}))
    for key in ("messages_sent", "deliveries", "drops"):
        assert a.counters[key] == b.counters[key]  # same wake-ups, same losses


def test_slow_nodes_have_slow_clocks():
    sc = from_dict({"seed": 2, "network": {"nodes": 40, "topology": "random", "p": 0.2},
                    "run": {"rounds": 100}, "task": {"kind": "consensus"},
                    "compute": {"stragglers": {"fraction": 0.25, "slowdown": 10.0, "persistent": True}},
                    "protocols": [{"name": "broadcast-gossip"}]})

    class Count(Observer):
        def __init__(self):
            self.tx = np.zeros(40)

        def transmit(self, label, k, t, senders, nbytes):
            np.add.at(self.tx, senders, 1)

    from netemu.compute.timing import StepTimes

    slow = StepTimes(sc.compute, 40, 2, Path(".")).slow_nodes
    count = Count()
    traj, topo, x0 = prepare(sc)
    SimEngine(sc, x0, traj, topo, observers=(count,)).run_protocol(sc.protocols[0])
    assert slow.any() and (~slow).any()
    # Poisson counts over 100 s: about 100 wake-ups at rate 1, about 10 at rate 0.1
    assert count.tx[~slow].mean() == pytest.approx(100, rel=0.15)
    assert count.tx[slow].mean() == pytest.approx(10, rel=0.4)


# -- live equals simulated --------------------------------------------------------------------

def trace_records(path):
    with open(path, "rb") as f:
        u = msgpack.Unpacker(f, raw=False)
        next(u)
        return sorted((r["e"], r["r"], r["t"], r["src"], r.get("dst", -1), r.get("why", ""), r.get("bytes", 0))
                      for r in u)


def test_live_optimization_run_equals_the_simulated_one(tmp_path):
    from netemu.live.config import with_overrides
    from netemu.live.runtime import run_live

    data = {"seed": 5, "network": {"nodes": 8, "topology": "random", "p": 0.4, "loss": 0.1,
                                    "delay": {"latency": 0.05, "jitter": "exponential", "jitter_scale": 0.1}},
            "run": {"rounds": 25, "period": 1.0}, "task": {"kind": "logistic", "features": 4, "samples": 40},
            "output": {"plot": False, "trace": True},
            "compute": {"device": "cpu", "step_time": {"dist": "lognormal", "median": 0.05}},
            "protocols": [{"name": "dgd", "lr": 0.1}], "live": {"time_scale": 10.0}}
    sc = with_overrides(from_dict(data, source="live_dgd.toml"))
    (live,) = run_live(sc, tmp_path / "live")
    (sim,) = run_scenario(sc, tmp_path / "sim", progress=False)
    assert live.extra["live"]["late_receptions"] == 0
    assert len(live.rows) == len(sim.rows) == 26
    for a, b in zip(live.rows, sim.rows):
        assert a == b  # round, simulated time and every metric, bit for bit
    for key in ("messages_sent", "deliveries", "drops", "late", "bytes_sent"):
        assert live.counters[key] == sim.counters[key], key
    assert live.counters["drops"] > 0
    assert trace_records(tmp_path / "live" / "events.msgpack") == trace_records(tmp_path / "sim" / "events.msgpack")


def test_live_runs_an_event_protocol(tmp_path):
    from netemu.live.config import with_overrides
    from netemu.live.runtime import run_live

    sc = with_overrides(from_dict({"seed": 4, "network": {"nodes": 8, "topology": "random", "p": 0.4,
                                                            "delay": {"latency": 0.02}},
                                   "run": {"rounds": 30}, "task": {"kind": "consensus"},
                                   "output": {"plot": False}, "protocols": [{"name": "async-push-sum"}],
                                   "live": {"time_scale": 30.0}}, source="live_async.toml"))
    (live,) = run_live(sc, tmp_path / "live")
    (sim,) = run_scenario(sc, tmp_path / "sim", progress=False)
    assert live.counters["messages_sent"] == sim.counters["messages_sent"] > 100
    assert live.final()["consensus_error"] < 1e-6  # mass conserved over real datagrams


class Sender(EventProtocol):
    """Node 0 unicasts to the server (2), node 1 to node 3 (out of radio range on the ring)."""

    name = "sender"
    seen: list = []

    def start(self, x0):
        self.x = np.array(x0, dtype=np.float64)

    def on_start(self):
        self.ctx.send([0, 1], [2, 3], {"v": self.x[[0, 1]]})

    def on_message(self, batch):
        Sender.seen.append((self.ctx.now, batch.receivers.tolist(), batch.senders.tolist()))

    def estimate(self):
        return self.x


def test_unicast_over_the_uplink_and_out_of_radio_range(tmp_path):
    registry.register("sender", Sender)
    Sender.seen = []
    try:
        sc = from_dict({"seed": 1, "network": {"nodes": 4, "topology": "latent", "graph": "ring",
                                               "uplink": {"server": 2, "latency": 0.3, "bandwidth": 100.0}},
                        "run": {"rounds": 2}, "output": {"trace": True, "plot": False},
                        "protocols": [{"name": "sender"}]})
        (res,) = run_scenario(sc, tmp_path / "o", progress=False)
    finally:
        registry._extra.pop("sender", None)
    size = wire.message_bytes({"v": np.zeros((1, 1))}, 4)
    assert Sender.seen == [(0.0 + (0.3 + size / 100.0), [2], [0])]  # 0 and 2 are not ring neighbours
    drops = [r for r in trace_records(tmp_path / "o" / "events.msgpack") if r[0] == "drop"]
    assert drops == [("drop", 0, 0.0, 1, 3, "range", 0)]
    assert res.counters["deliveries"] == 1 and res.counters["drops"] == 1


def test_uplink_server_must_be_a_node():
    with pytest.raises(ScenarioError, match=r"\[network.uplink\] server = 9 is not a node: ids are 0..3"):
        from_dict({"network": {"nodes": 4, "uplink": {"server": 9}}, "protocols": [{"name": "pulm"}]})


class TxTimes(Observer):
    def __init__(self):
        self.t, self.nodes, self.rx = [], [], []

    def transmit(self, label, k, t, senders, nbytes):
        self.t += [t] * len(senders)
        self.nodes += senders.tolist()

    def deliver(self, label, k, t, recv, send):
        self.rx.append((t, len(recv)))


def test_slotted_clocks_postpone_wake_ups_to_the_slot_and_batch_them():
    def run(**params):
        sc = from_dict({"seed": 6, "network": {"nodes": 200, "topology": "random", "p": 0.05},
                        "run": {"rounds": 20}, "task": {"kind": "consensus"},
                        "protocols": [{"name": "broadcast-gossip", **params}]})
        obs = TxTimes()
        traj, topo, x0 = prepare(sc)
        res = SimEngine(sc, x0, traj, topo, observers=(obs,)).run_protocol(sc.protocols[0])
        return res, obs

    cont, oc = run()
    slot, os_ = run(slot=0.1)
    t = np.array(os_.t)
    assert np.allclose(t / 0.1, np.round(t / 0.1), atol=1e-9)  # every wake-up on a slot
    per_node_c = np.bincount(oc.nodes, minlength=200)
    per_node_s = np.bincount(os_.nodes, minlength=200)
    assert np.abs(per_node_c - per_node_s).max() <= 1  # the same Poisson times, only postponed
    assert slot.counters["events"] < cont.counters["events"] / 5  # one event per slot, not per wake-up
    assert slot.final()["disagreement"] < 1e-3


def test_resolution_rounds_event_arrival_times():
    sc = from_dict({"seed": 6, "network": {"nodes": 50, "topology": "random", "p": 0.1,
                                           "delay": {"latency": 0.01, "resolution": 0.5}},
                    "run": {"rounds": 10}, "task": {"kind": "consensus"},
                    "protocols": [{"name": "async-push-sum"}]})
    obs = TxTimes()
    traj, topo, x0 = prepare(sc)
    SimEngine(sc, x0, traj, topo, observers=(obs,)).run_protocol(sc.protocols[0])
    times = np.array([t for t, _ in obs.rx])
    assert np.allclose(times / 0.5, np.round(times / 0.5))  # arrivals on the resolution's multiples
    assert np.all(np.array(obs.t) < 10.0)


def test_divergence_by_magnitude_stops_one_protocol_and_leaves_the_others(tmp_path):
    base = {"seed": 4, "network": {"nodes": 10, "topology": "random", "p": 0.3, "loss": 0.2},
            "run": {"rounds": 60}, "task": {"kind": "quadratic", "features": 3, "samples": 30},
            "compute": {"device": "cpu"}, "output": {"plot": False}}
    others = [{"name": "dgd", "lr": 0.1}, {"name": "pulm-dgd", "lr": 0.1}]
    (a, b, c) = run_scenario(from_dict({**base, "protocols": [others[0], {"name": "push-diging", "lr": 50.0},
                                                              others[1]]}), tmp_path / "a", progress=False)
    alone = run_scenario(from_dict({**base, "protocols": others}), tmp_path / "b", progress=False)
    assert b.diverged and 0 < b.diverged_at_round < 60
    assert 1e12 < b.extra["diverged_magnitude"] < np.inf  # stopped while still finite
    assert b.rows[-1][0] == b.diverged_at_round  # stopped there
    assert not a.diverged and not c.diverged
    assert a.rows == alone[0].rows and c.rows == alone[1].rows  # the others unchanged


def test_live_run_with_float32_device_state_equals_the_simulated_one(tmp_path):
    from netemu.live.config import with_overrides
    from netemu.live.runtime import run_live

    sc = with_overrides(from_dict({"seed": 3, "network": {"nodes": 6, "topology": "random", "p": 0.5, "loss": 0.1},
                                   "run": {"rounds": 15}, "task": {"kind": "digits", "hidden": 16},
                                   "compute": {"device": "cpu"}, "output": {"plot": False},
                                   "protocols": [{"name": "dgd", "lr": 0.1}], "live": {"time_scale": 8.0}},
                                  source="live_digits.toml"))
    assert sc.compute["dtype"] == "float32"
    (live,) = run_live(sc, tmp_path / "live")
    (sim,) = run_scenario(sc, tmp_path / "sim", progress=False)
    assert sum(live.extra["rejected"].values()) == 0
    assert live.extra["live"]["late_receptions"] == 0, live.extra["live"]  # every copy in time
    assert live.counters["deliveries"] == sim.counters["deliveries"]
    assert live.rows == sim.rows
