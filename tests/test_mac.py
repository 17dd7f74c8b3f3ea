"""The shared medium (``[network.mac]``): exactness of the vectorized parts against brute force,
hidden terminals, the ideal default, SINR capture, late frames, bad input.

The throughput curves of ALOHA and CSMA are checked in ``test_mac_theory.py``."""

from __future__ import annotations

import heapq
import json
import math

import numpy as np
import pytest

from netemu.engine import SimEngine
from netemu.errors import ScenarioError
from netemu.runtime.results import Observer
from netemu.scenario import build
from netemu.scenario.load import Scenario
from netemu.world.medium.access import TAG_ROUND, backoff, csma_round
from netemu.world.medium.resolve import Pairs, resolve


def _pairs(n, adj, power=None):
    """Pairs from a boolean ``adj[j, i]`` (sender j's signal counts at i), the diagonal set."""
    adj = adj | np.eye(n, dtype=bool)
    indptr = np.concatenate([[0], np.cumsum(adj.sum(axis=1))])
    indices = np.concatenate([np.flatnonzero(adj[j]) for j in range(n)])
    pw = None if power is None else np.concatenate([power[j, adj[j]] for j in range(n)])
    return Pairs(indptr, indices, n, pw)


@pytest.mark.parametrize("seed", range(6))
def test_resolve_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = 12, 40
    adj = rng.random((n, n)) < 0.4
    s = np.round(rng.uniform(0, 10, m), 1)  # ties and touching intervals on purpose
    e = s + np.round(rng.uniform(0.1, 2, m), 1)
    snd = rng.integers(0, n, m)
    pairs = _pairs(n, adj)
    floor = np.where(rng.random(n) < 0.3, 3.0, -np.inf)
    res = resolve(s, e, snd, pairs, floor=floor)
    adj_d = adj | np.eye(n, dtype=bool)
    for q in range(len(res.node)):
        i, k = res.node[q], res.tx[q]
        others = [j for j in range(m) if j != k and adj_d[snd[j], i] and s[j] < e[k] and s[k] < e[j]]
        assert res.clean[q] == (not others)
    for i in range(n):  # busy time: the union of the intervals heard at i, from floor[i] on
        iv = sorted((max(s[j], floor[i]), e[j]) for j in range(m) if adj_d[snd[j], i])
        total, reach = 0.0, -np.inf
        for a, b in iv:
            if b > max(a, reach):
                total += b - max(a, reach)
            reach = max(reach, b)
        assert res.busy[i] == pytest.approx(total, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_sinr_matches_brute_force(seed):
    rng = np.random.default_rng(100 + seed)
    n, m = 10, 30
    adj = rng.random((n, n)) < 0.6
    power = 10 ** rng.uniform(0, 4, (n, n))
    np.fill_diagonal(power, np.inf)
    s = rng.uniform(0, 5, m)
    e = s + rng.uniform(0.2, 1.5, m)
    snd = rng.integers(0, n, m)
    pairs = _pairs(n, adj, power)
    res = resolve(s, e, snd, pairs, sinr=10.0, noise=1.0)
    adj_d = adj | np.eye(n, dtype=bool)
    for q in range(len(res.node)):
        i, k = res.node[q], res.tx[q]
        if snd[k] == i:
            continue
        over = [j for j in range(m) if j != k and adj_d[snd[j], i] and s[j] < e[k] and s[k] < e[j]]
        if any(snd[j] == i for j in over):
            assert not res.clean[q]
            continue
        interference = sum(power[snd[j], i] for j in over)
        assert res.clean[q] == (power[snd[k], i] >= 10.0 * (1.0 + interference))


def _reference_csma(ready, nodes, air, t_end, cs_in, tau, slot, cw, attempts, seed, k):
    """One round of non-persistent CSMA, one decision at a time in time order (ties together)."""
    n = len(ready)
    start = np.full(n, np.nan)
    tries = np.zeros(n, dtype=np.int64)
    heap = [(float(ready[i]), int(i)) for i in nodes if ready[i] < t_end]
    heapq.heapify(heap)
    while heap:
        t = heap[0][0]
        now = []
        while heap and heap[0][0] == t:
            now.append(heapq.heappop(heap)[1])
        go = []
        for i in now:
            ends = [start[j] + air[j] + tau for j in cs_in[i]
                    if not np.isnan(start[j]) and start[j] + tau < t < start[j] + air[j] + tau]
            if not ends:
                go.append(i)
                continue
            tries[i] += 1
            if attempts and tries[i] >= attempts:
                continue
            b = backoff(seed, TAG_ROUND, np.array([i]), k, np.array([tries[i]]), cw)[0]
            t2 = max(ends) + b * slot
            if t2 < t_end:
                heapq.heappush(heap, (t2, i))
        for i in go:
            start[i] = t
    return start


@pytest.mark.parametrize("seed,tau,attempts", [(0, 0.0, 0), (1, 0.0, 0), (2, 3e-5, 0), (3, 1e-4, 2), (4, 0.0, 3)])
def test_csma_round_matches_sequential(seed, tau, attempts):
    """The vectorized sweeps of a CSMA round give the start times of one decision at a time."""
    rng = np.random.default_rng(seed)
    n = 60
    pos = rng.uniform(0, 200, (n, 2))
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    hears = d <= 60
    indptr = np.concatenate([[0], np.cumsum(hears.sum(axis=1))])
    indices = np.concatenate([np.flatnonzero(hears[i]) for i in range(n)])
    cs_in = [np.flatnonzero(hears[i]) for i in range(n)]
    air = rng.choice([4e-4, 1e-3], n)
    slot, cw = 2e-5, 15
    nodes = np.flatnonzero(rng.random(n) < 0.9)
    ready = np.full(n, np.inf)
    ready[nodes] = backoff(seed, TAG_ROUND, nodes, 5, 0, cw) * slot
    start, busy, sweeps = csma_round(ready, nodes, air, 0.02, indptr, indices, tau, slot, cw, attempts,
                                     (np.full(n, np.nan), np.full(n, np.nan)), seed, 5)
    ref = _reference_csma(ready, nodes, air, 0.02, cs_in, tau, slot, cw, attempts, seed, 5)
    np.testing.assert_array_equal(start, ref)
    sent = np.isfinite(start)
    assert (start[sent] > ready[sent]).sum() > 5  # nodes deferred: the case is not trivial
    assert busy.any() == (attempts > 0)
    assert sweeps < sent.sum()  # sweeps decide many nodes at once


class Drops(Observer):
    def __init__(self):
        self.drops = []
        self.deliveries = []

    def drop(self, label, k, t, recv, send, why):
        self.drops += [(int(i), int(j), why) for i, j in zip(recv.tolist(), send.tolist())]

    def deliver(self, label, k, t, recv, send):
        self.deliveries += [(int(i), int(j), t) for i, j in zip(recv.tolist(), send.tolist())]


def _line(tmp_path, mac, rounds=30, protocol="push-sum", **extra):
    """A–B–C on a line, 40 m apart, range 50 m: A and C cannot hear (or sense) each other."""
    np.save(tmp_path / "pos.npy", np.array([[0.0, 0.0], [40.0, 0.0], [80.0, 0.0]]))
    data = {"seed": 2, "network": {"nodes": 3, "topology": "radio", "range": 50.0, "mac": mac, **extra},
            "mobility": {"model": "static", "positions": "pos.npy", "area": [100, 100]},
            "run": {"rounds": rounds, "period": 1.0}, "protocols": [{"name": protocol}]}
    sc = Scenario.from_dict(data, base_dir=tmp_path)
    obs = Drops()
    x0 = np.arange(3.0)[:, None]
    res = SimEngine(sc, x0, trajectories=build.trajectories(sc), observers=(obs,)).run_protocol(sc.protocols[0])
    return res, obs


def test_hidden_terminals(tmp_path):
    """CSMA does not protect B: A and C never sense each other, so their frames overlap at B and
    B loses both; A and C, each hearing only B, lose B's frame only when they transmit meanwhile.
    With a carrier-sense range that reaches from A to C, B's collisions (nearly) vanish."""
    mac = {"model": "csma", "bitrate": 2e5, "cw": 7}
    res, obs = _line(tmp_path, mac)
    at_b = [(i, j) for i, j, why in obs.drops if why == "collision" and i == 1]
    assert {j for _, j in at_b} == {0, 2}
    assert len(at_b) >= 10
    assert res.extra["mac"]["collisions"] == sum(why == "collision" for *_, why in obs.drops)
    res2, obs2 = _line(tmp_path, {**mac, "carrier_sense_range": 90.0})
    at_b2 = [1 for i, j, why in obs2.drops if why == "collision" and i == 1]
    assert len(at_b2) < len(at_b) / 3


def test_collisions_then_loss_then_late(tmp_path):
    """Loss still applies to the receptions the medium leaves, counted apart; a frame that ends
    after its round is late."""
    res, obs = _line(tmp_path, {"model": "aloha", "bitrate": 2e5}, loss=0.5)
    why = {w for *_, w in obs.drops}
    assert {"collision", "loss"} <= why
    # 400 b/s: a push-sum message (about 60 bytes) takes over a second, longer than the round
    res, obs = _line(tmp_path, {"model": "csma", "bitrate": 400.0}, rounds=3)
    assert all(w == "late" for *_, w in obs.drops) and obs.drops
    assert res.counters["deliveries"] == 0 and res.extra["mac"]["late"] == len(obs.drops)


def test_deliveries_arrive_after_the_airtime(tmp_path):
    res, obs = _line(tmp_path, {"model": "csma", "bitrate": 2e5}, rounds=3)
    air = res.counters["bytes_sent"] / res.counters["messages_sent"] * 8 / 2e5
    for i, j, t in obs.deliveries:
        assert t - math.floor(t) >= air - 1e-12


def test_ideal_is_no_medium(tmp_path):
    """``model = "ideal"`` builds no medium and gives the same metrics as no [network.mac]."""
    base = {"seed": 4, "network": {"nodes": 30, "topology": "random", "p": 0.2, "loss": 0.2},
            "run": {"rounds": 20}, "protocols": [{"name": "push-sum"}, {"name": "async-push-sum"}]}
    a = Scenario.from_dict(base)
    b = Scenario.from_dict({**base, "network": {**base["network"], "mac": {"model": "ideal", "bitrate": 5.0}}})
    assert build.network(b).medium is None
    x0 = np.random.default_rng(0).normal(size=(30, 1))
    for p in range(2):
        ra = SimEngine(a, x0).run_protocol(a.protocols[p])
        rb = SimEngine(b, x0).run_protocol(b.protocols[p])
        assert ra.rows == rb.rows and ra.counters == rb.counters and "mac" not in rb.extra


def test_same_seed_same_outcome(tmp_path):
    r1, o1 = _line(tmp_path, {"model": "csma", "bitrate": 2e5}, rounds=10)
    r2, o2 = _line(tmp_path, {"model": "csma", "bitrate": 2e5}, rounds=10)
    assert r1.rows == r2.rows and o1.drops == o2.drops and o1.deliveries == o2.deliveries


def test_sinr_capture(tmp_path):
    """B hears A from 10 m and C from 80 m. When their frames overlap at B, the protocol model
    loses both there; the SINR model keeps A's (10·3·log10(8) ≈ 27 dB stronger than C's, above the
    10 dB threshold: captured) and loses C's. Both runs have the same transmission times (ALOHA, one
    seed), so B loses C's frames equally often in both, and A's less often with SINR (only while B
    itself transmits)."""
    np.save(tmp_path / "pos.npy", np.array([[0.0, 0.0], [10.0, 0.0], [90.0, 0.0]]))
    out = {}
    for reception in ("protocol", "sinr"):
        mac = {"model": "aloha", "bitrate": 2e4, "slot": 0.2, "cw": 1, "reception": reception}
        if reception == "sinr":
            mac |= {"sinr_threshold": 10.0, "tx_power": 20.0, "reference_loss": 40.0, "path_loss_exponent": 3.0,
                    "noise": -95.0}
        data = {"seed": 3, "network": {"nodes": 3, "topology": "radio", "range": 100.0, "mac": mac},
                "mobility": {"model": "static", "positions": "pos.npy", "area": [100, 100]},
                "run": {"rounds": 40, "period": 1.0}, "protocols": [{"name": "push-sum"}]}
        sc = Scenario.from_dict(data, base_dir=tmp_path)
        obs = Drops()
        SimEngine(sc, np.arange(3.0)[:, None], trajectories=build.trajectories(sc), observers=(obs,)).run_protocol(sc.protocols[0])
        out[reception] = obs
    from collections import Counter

    col_p = Counter((i, j) for i, j, w in out["protocol"].drops if w == "collision")
    col_s = Counter((i, j) for i, j, w in out["sinr"].drops if w == "collision")
    assert col_p[(1, 2)] == col_s[(1, 2)] > 0
    assert col_s[(1, 0)] < col_p[(1, 0)]


BAD = [
    ({"model": "csma", "bitrate": 0}, "[network.mac] bitrate"),
    ({"model": "csma", "bitrate": -5.0}, "[network.mac] bitrate"),
    ({"model": "csma", "cw": 0}, "[network.mac] cw"),
    ({"model": "aloha", "interference_range": 30.0}, "interference_range = 30 is smaller than the reception range"),
    ({"model": "csma", "sinr_threshold": 10.0}, 'reception = "sinr" needs the path-loss parameters'),
    ({"model": "csma", "reception": "sinr", "sinr_threshold": 10.0, "tx_power": 20.0},
     "reference_loss, path_loss_exponent are not set"),
    ({"model": "tdma"}, "[network.mac] model"),
    ({"model": "aloha", "attempts": 2}, "attempts = 2 limits carrier sensing"),
]


@pytest.mark.parametrize("mac,text", BAD)
def test_bad_input(mac, text):
    data = {"network": {"nodes": 5, "topology": "radio", "range": 50.0, "mac": mac},
            "protocols": [{"name": "push-sum"}]}
    with pytest.raises(ScenarioError) as e:
        Scenario.from_dict(data)
    msg = str(e.value)
    assert text in msg and "\n" not in msg


def test_bad_input_without_positions():
    data = {"network": {"nodes": 5, "topology": "random", "mac": {"model": "csma", "carrier_sense_range": 9.0}},
            "protocols": [{"name": "push-sum"}]}
    with pytest.raises(ScenarioError, match="carrier_sense_range = 9 needs positions"):
        Scenario.from_dict(data)
    data["network"]["mac"] = {"model": "csma"}
    data["network"]["delay"] = {"bandwidth": 1000.0}
    with pytest.raises(ScenarioError, match="remove bandwidth"):
        Scenario.from_dict(data)


def test_summary_and_metrics(tmp_path):
    res, _ = _line(tmp_path, {"model": "csma", "bitrate": 2e5}, rounds=5)
    mac = res.extra["mac"]
    assert mac["transmissions"] == res.counters["messages_sent"] == 15
    assert 0 < mac["channel_utilisation"] < 1 and mac["mean_access_delay"] >= 0
    assert json.dumps(mac)
    names = set(res.rows[-1][2])
    assert {"collision_share", "channel_utilisation"} <= names


def test_trace_summary_counts_collisions(tmp_path):
    from netemu.tracefile import TraceWriter, summarize

    np.save(tmp_path / "pos.npy", np.array([[0.0, 0.0], [40.0, 0.0], [80.0, 0.0]]))
    data = {"seed": 2, "network": {"nodes": 3, "topology": "radio", "range": 50.0,
                                   "mac": {"model": "csma", "bitrate": 2e5, "cw": 7}},
            "mobility": {"model": "static", "positions": "pos.npy", "area": [100, 100]},
            "run": {"rounds": 10, "period": 1.0}, "protocols": [{"name": "push-sum"}]}
    sc = Scenario.from_dict(data, base_dir=tmp_path)
    trace, obs = TraceWriter(tmp_path / "events.msgpack"), Drops()
    res = SimEngine(sc, np.arange(3.0)[:, None], trajectories=build.trajectories(sc),
                    observers=(trace, obs)).run_protocol(sc.protocols[0])
    trace.close()
    head, row = summarize(tmp_path / "events.msgpack").splitlines()
    assert "drop:collision" in head
    cols = dict(zip(head.split(), row.split()))
    assert int(cols["drop:collision"]) == res.extra["mac"]["collisions"] > 0
    assert int(cols["rx"]) == res.counters["deliveries"] == len(obs.deliveries)


def test_fl_uploads_over_the_radio_contend(tmp_path):
    """Event protocols get the medium too: FedBuff with its server a radio node sends models and
    updates as radio unicasts; at 20 kb/s a model (about 130 bytes) holds the channel ≈ 50 ms, so
    frames wait (access delay) and fewer updates reach the server in the same time than with the
    ideal channel."""
    from netemu.runner import run_scenario
    from netemu.scenario.load import from_dict

    pos = tmp_path / "pos.csv"
    pos.write_text("x,y\n0,0\n50,0\n0,50\n60,60\n30,30\n-40,10\n")
    out = {}
    for model in ("ideal", "csma"):
        d = {"seed": 3, "network": {"nodes": 6, "topology": "radio", "range": 100.0,
                                    "mac": {"model": model, "bitrate": 2e4}},
             "mobility": {"positions": str(pos)}, "run": {"rounds": 8, "period": 0.25},
             "task": {"kind": "logistic", "samples": 50, "features": 10},
             "output": {"plot": False},
             "compute": {"step_time": {"dist": "fixed", "value": 0.02}},
             "protocols": [{"name": "fedbuff", "K": 2}]}
        out[model] = run_scenario(from_dict(d), tmp_path / model, progress=False)[0]
    mac = out["csma"].extra["mac"]
    assert mac["transmissions"] > 10 and mac["mean_access_delay"] > 0
    assert 0 < out["csma"].final()["updates_applied"] < out["ideal"].final()["updates_applied"]


@pytest.mark.parametrize("seed", range(4))
def test_resolve_equal_airtimes_path(seed):
    """The path for one airtime gives what the general one gives (clean pairs, busy time, reach)."""
    rng = np.random.default_rng(50 + seed)
    n, m = 15, 60
    adj = rng.random((n, n)) < 0.3
    s = np.round(rng.uniform(0, 10, m), 1)
    e = s + 0.7
    snd = rng.integers(0, n, m)
    pairs = _pairs(n, adj)
    floor = np.where(rng.random(n) < 0.3, 4.0, -np.inf)
    a = resolve(s, e, snd, pairs, floor=floor)
    b = resolve(s, e, snd, pairs, floor=floor, equal=True)
    np.testing.assert_array_equal(a.built, b.built)
    np.testing.assert_array_equal(a.node, b.node)
    np.testing.assert_allclose(a.busy, b.busy, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(a.reach, b.reach)
    assert not a.clean.all() and a.clean.any()


@pytest.mark.parametrize("reception", ["protocol", "sinr"])
def test_event_frames_across_moving_graphs(reception):
    """Moving nodes and short periods: many frames start in one period's graph and end in the
    next; each is resolved against the graph it was sent on, and every reception on the air is
    delivered or dropped exactly once."""
    mac = {"model": "csma", "bitrate": 5e4, "reception": reception}
    if reception == "sinr":
        mac |= {"sinr_threshold": 6.0, "tx_power": 20.0, "reference_loss": 40.0, "path_loss_exponent": 3.0}
    data = {"seed": 6, "network": {"nodes": 25, "topology": "radio", "range": 120.0, "mac": mac},
            "mobility": {"model": "random-waypoint", "area": [300, 300], "speed": [20, 40]},
            "run": {"rounds": 60, "period": 0.05},
            "protocols": [{"name": "async-push-sum", "rate": 4.0}]}
    sc = Scenario.from_dict(data)
    obs = Drops()
    res = SimEngine(sc, np.random.default_rng(1).normal(size=(25, 1)), trajectories=build.trajectories(sc),
                    observers=(obs,)).run_protocol(sc.protocols[0])
    mac = res.extra["mac"]
    assert mac["transmissions"] > 100 and mac["collisions"] > 0
    assert len(obs.deliveries) == res.counters["deliveries"]
    assert mac["receptions"] == len(obs.deliveries) + sum(w in ("collision", "loss") for *_, w in obs.drops)
