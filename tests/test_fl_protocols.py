"""The FL protocols on the event runtime: stragglers, determinism, batching, losses and retries,
message sizes, availability, and the errors for bad input (docs/fl.md)."""

import copy

import numpy as np
import pytest

from netemu import wire
from netemu.errors import ScenarioError
from netemu.runner import run_scenario
from netemu.scenario.load import from_dict

BASE = {"seed": 3, "network": {"nodes": 21, "topology": "random", "p": 0.0,
                               "uplink": {"server": 0, "latency": 0.01, "bandwidth": 1e5}},
        "run": {"rounds": 40, "period": 0.25},
        "task": {"kind": "logistic", "samples": 50, "features": 10},
        "output": {"plot": False, "record": False},
        "compute": {"step_time": {"dist": "lognormal", "median": 0.02, "sigma": 0.5},
                    "stragglers": {"fraction": 0.1, "slowdown": 10, "persistent": False}}}


def scenario(protocols, **tables):
    d = copy.deepcopy(BASE)
    for k, v in tables.items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    d["protocols"] = protocols
    return from_dict(d)


def run(tmp_path, protocols, name="out", **tables):
    res = run_scenario(scenario(protocols, **tables), tmp_path / name, progress=False)
    return {r.label: r for r in res}


def series(r, metric):
    return [m[metric] for _, _, m in r.rows if metric in m]


def test_async_reaches_the_target_before_wait_for_all(tmp_path):
    """20 clients, each local step 10× slower with probability 0.1: wait-for-all FedAvg waits for
    the slowest step of every round; FedAsync and FedBuff do not."""
    res = run(tmp_path, [{"name": "fedavg", "lr": 0.02}, {"name": "fedasync", "lr": 0.02},
                         {"name": "fedbuff", "K": 5, "lr": 0.02}], run={"target_loss": 0.6})
    t = {k: r.extra["time_to_target"] for k, r in res.items()}
    assert t["fedavg"] is not None  # wait-for-all gets there within the run, only later
    assert t["fedasync"] < t["fedavg"] and t["fedbuff"] < t["fedavg"]
    text = (tmp_path / "out" / "fl_table.csv").read_text().splitlines()
    assert text[0].startswith("protocol,time_to_target,final_loss")
    assert text[1].startswith(f"fedavg,{t['fedavg']!r},")
    # staleness: none in synchronous rounds, some once clients run on older models
    assert series(res["fedavg"], "staleness_max")[-1] == 0
    assert series(res["fedasync"], "staleness")[-1] > 1
    assert series(res["fedbuff"], "staleness")[-1] > 0


ALL = [{"name": "fedavg", "label": "fedavg-deadline", "deadline": 0.3, "fraction": 0.5},
       {"name": "fedasync", "staleness": "hinge", "a": 1.0, "b": 2.0},
       {"name": "fedbuff", "K": 4, "M": 8, "selection": "power-of-choice", "d": 6},
       {"name": "fedfix", "interval": 0.5}]
LOSSY = {"network": {"nodes": 11, "uplink": {"server": 0, "latency": 0.01, "bandwidth": 1e5, "loss": 0.2,
                                             "retries": 1}},
         "run": {"rounds": 12}}


def test_same_seed_same_bytes(tmp_path):
    a = run(tmp_path, ALL, "a", **LOSSY)
    b = run(tmp_path, ALL, "b", **LOSSY)
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "b" / "metrics.csv").read_bytes()
    assert (tmp_path / "a" / "fl_table.csv").read_bytes() == (tmp_path / "b" / "fl_table.csv").read_bytes()
    for k in a:
        assert a[k].extra["staleness_histogram"] == b[k].extra["staleness_histogram"]
        assert series(a[k], "updates_applied")[-1] > 0
    c = run(tmp_path, ALL, "c", seed=4, **LOSSY)  # another seed: other draws
    assert (tmp_path / "a" / "metrics.csv").read_bytes() != (tmp_path / "c" / "metrics.csv").read_bytes()
    assert c


def test_fedfix_aggregates_every_interval_and_deadline_drops_late_updates(tmp_path):
    res = run(tmp_path, [{"name": "fedfix", "interval": 0.5}, {"name": "fedavg"},
                         {"name": "fedavg", "label": "deadline", "deadline": 0.15}], run={"rounds": 20})
    for _, t, m in res["fedfix"].rows:  # version = aggregations so far = ⌊t / Δt⌋ (sampled after them)
        assert m["model_version"] in (np.floor(t / 0.5), np.floor(t / 0.5) - 1)
    assert res["fedfix"].final()["model_version"] >= 9
    late = res["deadline"].final()
    assert late["updates_dropped"] > 0  # late clients' updates arrive after their round closed
    assert late["model_version"] > res["fedavg"].final()["model_version"]  # rounds never wait for stragglers
    assert res["fedavg"].final()["updates_dropped"] == 0


def test_batched_local_steps_equal_one_by_one(tmp_path):
    """Full-batch logistic gradients: the batched jobs give what one client at a time gives (to
    rounding: a batched matrix product may sum in another order), in fewer model calls."""
    protos = [{"name": "fedbuff", "K": 5}, {"name": "fedbuff", "label": "single", "K": 5, "batched": False},
              {"name": "fedfix"}, {"name": "fedfix", "label": "fix-single", "batched": False}]
    res = run(tmp_path, protos, run={"rounds": 12})
    for a, b in (("fedbuff", "single"), ("fedfix", "fix-single")):
        ra, rb = res[a].rows, res[b].rows
        assert len(ra) == len(rb)
        for (_, _, ma), (_, _, mb) in zip(ra, rb):  # the same updates at the same times, values to rounding
            assert ma.keys() == mb.keys()
            for k in ma:
                assert ma[k] == pytest.approx(mb[k], rel=1e-9, abs=1e-12), k
        # batched jobs may be computed before the end of the run and finish after it
        assert res[a].extra["node_steps"] >= res[b].extra["node_steps"]
        assert res[a].extra["model_calls"] < res[b].extra["model_calls"] / 2


def test_message_sizes_and_bytes(tmp_path):
    """Downloads and uploads are sized by their encoded bytes; the runtime's bytes_sent is their
    sum; a slower uplink delays the same updates."""
    res = run(tmp_path, [{"name": "fedavg"}], run={"rounds": 4})
    r = res["fedavg"]
    f = r.final()
    P = 11  # 10 features and a bias
    down = wire.message_bytes({"x": np.zeros((1, P)), "v": np.zeros((1, 1), dtype=np.int64)}, 21)
    up = wire.message_bytes({"c_x": np.zeros((1, P)), "v": np.zeros((1, 1), dtype=np.int64)}, 21)
    assert f["bytes_down"] == (f["model_version"] + 1) * 20 * down  # every round sends 20 models
    uploads = f["bytes_up"] / up  # counted when sent: applied, or still on the way at the end
    assert uploads == int(uploads) and f["updates_applied"] <= uploads < f["updates_applied"] + 20
    assert r.counters["bytes_sent"] == f["bytes_up"] + f["bytes_down"]
    fast = run(tmp_path, [{"name": "fedbuff", "K": 5}], "fast", run={"rounds": 4})["fedbuff"].final()
    slow = run(tmp_path, [{"name": "fedbuff", "K": 5}], "slow", run={"rounds": 4},
               network={"uplink": {"server": 0, "latency": 0.01, "bandwidth": 2e3}})["fedbuff"].final()
    # each transfer takes 1.4 ms at 10⁵ B/s, 71 ms at 2·10³ B/s: fewer updates in the same time
    assert slow["updates_applied"] < 0.75 * fast["updates_applied"]


def test_losses_are_retried_or_dropped(tmp_path):
    lossy = {"server": 0, "latency": 0.01, "bandwidth": 1e5, "loss": 0.3}
    once = run(tmp_path, [{"name": "fedbuff", "K": 5}], "a", run={"rounds": 12},
               network={"uplink": lossy})["fedbuff"].final()
    again = run(tmp_path, [{"name": "fedbuff", "K": 5}], "b", run={"rounds": 12},
                network={"uplink": {**lossy, "retries": 3}})["fedbuff"]
    assert once["updates_dropped"] > 0 and once["updates_retried"] == 0
    f = again.final()
    assert f["updates_retried"] > 0 and again.counters["retries"] >= f["updates_retried"]
    assert f["updates_dropped"] < once["updates_dropped"]  # 0.3⁴: rarely lost four times


def test_clients_go_offline(tmp_path):
    res = run(tmp_path, [{"name": "fedasync"}], run={"rounds": 20},
              compute={"availability": {"kind": "periods", "on": 1.0, "off": 1.0}})["fedasync"]
    off = series(res, "clients_offline")
    assert max(off) > 0 and min(off) < 20
    for _, _, m in res.rows:
        assert m["clients_idle"] + m["clients_training"] + m["clients_offline"] == 20
    assert res.final()["updates_applied"] > 0


def test_radio_server(tmp_path):
    """Without an uplink the server is a radio node: in range of some clients it works; with no
    client in range the run is refused before it starts."""
    radio = {"nodes": 6, "topology": "radio", "range": 100.0, "uplink": None}
    pos = tmp_path / "pos.csv"
    pos.write_text("x,y\n0,0\n50,0\n0,50\n60,60\n30,30\n900,900\n")
    res = run(tmp_path, [{"name": "fedbuff", "K": 2}], network=radio, mobility={"positions": str(pos)},
              run={"rounds": 8})["fedbuff"]
    f = res.final()
    assert f["updates_applied"] > 0
    far = tmp_path / "far.csv"
    far.write_text("x,y\n900,900\n0,0\n50,0\n0,50\n60,60\n30,30\n")
    with pytest.raises(ScenarioError, match=r"the server \(node 0\) has no radio link to any client at t = 0 "
                                            r"and there is no \[network.uplink\]"):
        run(tmp_path, [{"name": "fedbuff", "K": 2}], "far", network=radio, mobility={"positions": str(far)})


@pytest.mark.parametrize("proto, error", [
    ({"name": "fedbuff", "K": 21}, r"\[protocols #1\] K = 21 is more than the 20 clients; the buffer would never "
                                   r"fill: set K <= 20"),
    ({"name": "fedbuff", "M": 30}, r"\[protocols #1\] M = 30 is more than the 20 clients"),
    ({"name": "fedavg", "fraction": 0.0}, r"\[protocols #1\] fraction = 0.0 is out of range"),
    ({"name": "fedavg", "fraction": 1.5}, r"\[protocols #1\] fraction = 1.5 is out of range"),
    ({"name": "fedavg", "deadline": 0.0}, r"\[protocols #1\] deadline = 0.0 is out of range"),
    ({"name": "fedavg", "deadline": -2}, r"\[protocols #1\] deadline = -2"),
    ({"name": "fedasync", "staleness": "linear"}, r"\[protocols #1\] staleness = 'linear' is not one of constant, "
                                                  r"polynomial, hinge"),
    ({"name": "fedfix", "server": 3}, r"\[protocols #1\] server = 3 differs from \[network.uplink\] server = 0"),
    ({"name": "fedfix", "compress": {"kind": "zip"}}, r"\[protocols #1\] compress.kind = 'zip'"),
])
def test_bad_input(proto, error):
    with pytest.raises(ScenarioError, match=error):
        scenario([proto])


def test_fl_needs_a_client():
    with pytest.raises(ScenarioError, match=r"name = 'fedavg' needs a server and at least one client; set "
                                            r"\[network\] nodes >= 2"):
        scenario([{"name": "fedavg"}], network={"nodes": 1, "uplink": None})


def test_live_run_equals_the_simulated_one(tmp_path):
    """Over UDP (netemu live) an FL run with uplink losses and retries gives the simulator's
    metrics, update by update."""
    from netemu.live.runtime import run_live

    d = {"network": {"nodes": 6, "uplink": {"server": 0, "latency": 0.02, "bandwidth": 1e6, "loss": 0.2,
                                            "retries": 1}},
         "run": {"rounds": 6, "period": 1.0}, "live": {"time_scale": 4.0},
         "compute": {"step_time": {"dist": "fixed", "value": 0.1}}}
    sc = scenario([{"name": "fedbuff", "K": 2}], **d)
    run_live(sc, tmp_path / "live")
    run_scenario(sc, tmp_path / "sim", progress=False)
    live = [",".join(line.split(",")[:5]) for line in (tmp_path / "live" / "metrics.csv").read_text().splitlines()]
    sim = (tmp_path / "sim" / "metrics.csv").read_text().splitlines()
    assert live == sim
    assert any(",updates_retried," in line and not line.endswith(",0.0") for line in sim)


def test_a_rank_the_tensors_do_not_allow_is_refused_before_any_run(tmp_path):
    sc = scenario([{"name": "fedavg"}, {"name": "fedbuff", "K": 5, "compress": {"kind": "pca", "rank": 2}}])
    with pytest.raises(ScenarioError, match=r"<scenario>: \[protocols #2\] compress.rank = 2 is larger than any "
                                            r"tensor allows"):
        run_scenario(sc, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("proto", [
    {"name": "fedasync", "alpha": 0.5, "staleness": "constant"},
    {"name": "fedasync", "alpha": 0.5, "staleness": "polynomial", "a": 0.5},
    {"name": "fedasync", "alpha": 0.5, "staleness": "hinge", "a": 1.0, "b": 1.0},
    {"name": "fedbuff", "K": 2, "server_lr": 0.8},
])
def test_protocols_apply_their_rule_to_each_arrival(tmp_path, monkeypatch, proto):
    """Three clients of speeds 1, 2 and 3 (a fixed arrival order, staleness growing with it): every
    arrival changes the server model exactly as the hand-written rule says, with the staleness
    counted from the version the client's model came from."""
    from netemu import registry

    cls = registry.get(proto["name"])
    log = []
    orig = cls.on_update

    def on_update(self, c, delta, v):
        before, base, version = self.x.copy(), self.base[c].copy(), self.version
        orig(self, c, delta, v)
        log.append((before, base, delta.copy(), version - v, self.x.copy()))

    monkeypatch.setattr(cls, "on_update", on_update)
    speeds = tmp_path / "speeds.txt"
    speeds.write_text("1\n1\n2\n3\n")
    res = run(tmp_path, [proto], network={"nodes": 4}, run={"rounds": 8},
              compute={"step_time": {"dist": "fixed", "value": 0.05}, "stragglers": None,
                       "speeds": {"dist": "file", "file": str(speeds)}})
    assert len(log) > 10 and max(t for *_, t, _ in log) >= 2
    buf = []
    for before, base, delta, tau, after in log:
        if proto["name"] == "fedasync":
            s = {"constant": 1.0, "polynomial": (tau + 1.0) ** -0.5,
                 "hinge": 1.0 if tau <= 1 else 1.0 / (tau - 1.0 + 1.0)}[proto["staleness"]]
            expect = (1 - 0.5 * s) * before + 0.5 * s * (base + delta)
        else:
            buf.append((-delta) / (1.0 + tau) ** 0.5)  # Δ = x_start − x_end, weight 1/√(1 + τ)
            expect = before
            if len(buf) == 2:
                expect = before - 0.8 * (buf[0] + buf[1]) / 2
                buf = []
        np.testing.assert_allclose(after, expect, rtol=0, atol=1e-12)
    assert res[proto["name"]].final()["updates_applied"] == (len(log) if proto["name"] == "fedasync"
                                                           else len(log) // 2 * 2)
