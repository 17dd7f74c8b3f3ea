"""Determinism, common random numbers, delays, lateness, Gilbert-Elliott loss, radio graphs."""

import json

import msgpack
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import read_metrics
from netemu.cli import main

BASE = """
    seed = 11
    [network]
    nodes = 12
    topology = "random"
    p = 0.3
    loss = 0.2
    {extra}
    [run]
    rounds = {rounds}
    [output]
    plot = false
    trace = {trace}
    [[protocols]]
    name = "pulm"
    [[protocols]]
    name = "push-sum"
"""


def run(path, out, *args):
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out), *args])
    assert r.exit_code == 0, r.output
    return out


def test_same_seed_byte_identical_other_seed_differs(scenario_file, tmp_path):
    path = scenario_file(BASE.format(extra="", rounds=40, trace="false"))
    a = (run(path, tmp_path / "a") / "metrics.csv").read_bytes()
    b = (run(path, tmp_path / "b") / "metrics.csv").read_bytes()
    c = (run(path, tmp_path / "c", "--seed", "12") / "metrics.csv").read_bytes()
    assert a == b
    assert a != c


def _events(path):
    with open(path, "rb") as f:
        recs = list(msgpack.Unpacker(f, raw=False))
    assert recs[0]["format"] == "netemu-events"
    return recs[1:]


def test_common_random_numbers_same_losses_for_every_protocol(scenario_file, tmp_path):
    path = scenario_file(BASE.format(extra="", rounds=15, trace="true"))
    out = run(path, tmp_path / "o")
    ev = _events(out / "events.msgpack")
    drops = {p: {(e["r"], e["src"], e["dst"]) for e in ev if e["e"] == "drop" and e["p"] == p}
             for p in ("pulm", "push-sum")}
    rx = {p: {(e["r"], e["src"], e["dst"]) for e in ev if e["e"] == "rx" and e["p"] == p}
          for p in ("pulm", "push-sum")}
    assert drops["pulm"] and drops["pulm"] == drops["push-sum"]
    assert rx["pulm"] == rx["push-sum"]
    summary = json.loads((out / "summary.json").read_text())["protocols"]
    assert summary["pulm"]["drops"] == len(drops["pulm"])
    assert summary["pulm"]["deliveries"] == len(rx["pulm"])
    # PULM messages carry n extra numbers, so they cost more bytes than push-sum's
    assert summary["pulm"]["bytes_sent"] > summary["push-sum"]["bytes_sent"]
    assert summary["pulm"]["messages_sent"] == 12 * 15
    # and the trace summary command reads the file back
    r = CliRunner().invoke(main, ["trace", "summary", str(out / "events.msgpack")])
    assert r.exit_code == 0
    assert "pulm" in r.output and str(len(drops["pulm"])) in r.output


def test_latency_past_the_period_makes_every_message_late(scenario_file, tmp_path):
    path = scenario_file(BASE.format(extra="[network.delay]\nlatency = 1.5", rounds=10, trace="false"))
    s = json.loads((run(path, tmp_path / "o") / "summary.json").read_text())["protocols"]["pulm"]
    assert s["deliveries"] == 0 and s["late"] > 0
    m = read_metrics(tmp_path / "o" / "metrics.csv")
    # nothing arrived: push-sum's estimate s/w never moves; PULM's memory says "only my own
    # value" (d_i = e_i → x_i = x_i⁰/n after one round) and stays there
    ps = m["push-sum"]["consensus_error"]
    assert all(v == pytest.approx(ps[0], rel=1e-12) for v in ps)
    pu = m["pulm"]["consensus_error"]
    assert pu[1] != pu[0] and all(v == pytest.approx(pu[1], rel=1e-12) for v in pu[1:])


def test_serialization_delay_counts_message_bytes(scenario_file, tmp_path):
    # push-sum's message is small, PULM's carries n floats more: with a bandwidth where the
    # small one fits in the period and the large one does not, only PULM's arrive late.
    from netemu import wire

    n = 12
    small = wire.message_bytes({"s": np.zeros((n, 1)), "w": np.zeros(n)}, n)
    large = wire.message_bytes({"x": np.zeros((n, 1)), "d": np.zeros((n, n))}, n)
    bw = (small + large) / 2.0  # bytes per second, period 1 s
    path = scenario_file(BASE.format(extra=f"[network.delay]\nbandwidth = {bw}", rounds=5, trace="false"))
    s = json.loads((run(path, tmp_path / "o") / "summary.json").read_text())["protocols"]
    assert s["push-sum"]["late"] == 0 and s["push-sum"]["deliveries"] > 0
    assert s["pulm"]["deliveries"] == 0 and s["pulm"]["late"] == s["push-sum"]["deliveries"]


def test_jitter_splits_deliveries_into_instants_and_keeps_results_exact(scenario_file, tmp_path):
    extra = "[network.delay]\nlatency = 0.1\njitter = \"exponential\"\njitter_scale = 0.3"
    path = scenario_file(BASE.format(extra=extra, rounds=30, trace="false"))
    s = json.loads((run(path, tmp_path / "o") / "summary.json").read_text())["protocols"]["pulm"]
    assert s["late"] > 0 and s["deliveries"] > 0
    assert s["events"] > 2 * 30  # many arrival instants, each one batch event
    # a late message is not received: the same run with everything on time delivers more
    path2 = scenario_file(BASE.format(extra="", rounds=30, trace="false"), name="s2.toml")
    s2 = json.loads((run(path2, tmp_path / "o2") / "summary.json").read_text())["protocols"]["pulm"]
    assert s2["deliveries"] == s["deliveries"] + s["late"]


def test_gilbert_elliott_loss_rate_matches_stationary_chain(scenario_file, tmp_path):
    extra = ("[network.loss_model]\nkind = \"gilbert-elliott\"\np_good_bad = 0.1\np_bad_good = 0.3\n"
             "loss_good = 0.0\nloss_bad = 1.0")
    path = scenario_file(BASE.format(extra=extra, rounds=400, trace="false").replace("p = 0.3", "p = 1.0"))
    s = json.loads((run(path, tmp_path / "o") / "summary.json").read_text())["protocols"]["pulm"]
    rate = s["drops"] / (s["drops"] + s["deliveries"])
    assert rate == pytest.approx(0.1 / (0.1 + 0.3), abs=0.02)
    # bursty: a lost reception is followed by another loss on that link far more often than 0.25
    from netemu.world.channel import GilbertElliottLoss

    ge = GilbertElliottLoss(p_good_bad=0.1, p_bad_good=0.3, loss_good=0.0, loss_bad=1.0, seed=1)
    recv, send = np.array([0]), np.array([1])
    seq = np.array([ge.lost(k, recv, send, 2)[0] for k in range(4000)])
    after_loss = seq[1:][seq[:-1]].mean()
    assert after_loss == pytest.approx(0.7, abs=0.05)


def test_radio_unit_disk_equals_brute_force_and_log_distance_without_shadowing():
    from netemu.world.topology import PathLoss, RadioTopology

    rng = np.random.default_rng(5)
    pos = np.c_[rng.uniform(0, 300, (80, 2)), np.zeros(80)]
    recv, send = RadioTopology(80, 60.0, 1).edges(0, pos)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    want = {(i, j) for i in range(80) for j in range(80) if i != j and d[i, j] <= 60.0}
    assert set(zip(recv.tolist(), send.tolist())) == want
    # log-distance: tx 20 - ref 40 - 30 log10(d) >= -80  ⇔  d <= 100 m
    loss = dict(tx_power=20.0, reference_loss=40.0, exponent=3.0, threshold=-80.0)
    recv2, send2 = RadioTopology(80, None, 1, path_loss=PathLoss(shadowing=0.0, **loss)).edges(0, pos)
    want2 = {(i, j) for i in range(80) for j in range(80) if i != j and d[i, j] <= 100.0}
    assert set(zip(recv2.tolist(), send2.tolist())) == want2
    # shadowing makes some far links appear and some near ones fail
    recv3, send3 = RadioTopology(80, None, 1, path_loss=PathLoss(shadowing=6.0, **loss)).edges(0, pos)
    got3 = set(zip(recv3.tolist(), send3.tolist()))
    assert got3 - want2 and want2 - got3


def test_latent_ring_with_disconnections_changes_nominal_degree():
    from netemu.scenario.load import from_dict
    from netemu.scenario import build

    sc = from_dict({"network": {"nodes": 10, "topology": "latent", "graph": "ring", "disconnect": 0.5},
                    "protocols": [{"name": "pulm"}]})
    net = build.network(sc)
    degs = [net.round(k).out_degree for k in range(50)]
    assert all(d.max() <= 2 for d in degs)
    assert np.mean([d.sum() for d in degs]) == pytest.approx(10, abs=1.5)  # half of 20 links up


def test_sweep_runs_each_combination_into_its_folder(scenario_file, tmp_path):
    text = BASE.format(extra="", rounds=20, trace="false").replace(
        "seed = 11", 'seed = 11\nsweep = { "network.loss" = [0.0, 0.5] }')
    path = scenario_file(text)
    out = run(path, tmp_path / "o")
    a = json.loads((out / "network.loss=0.0" / "summary.json").read_text())
    b = json.loads((out / "network.loss=0.5" / "summary.json").read_text())
    assert a["scenario"]["network"]["loss"] == 0.0 and a["protocols"]["pulm"]["drops"] == 0
    assert b["scenario"]["network"]["loss"] == 0.5 and b["protocols"]["pulm"]["drops"] > 0
    # same seed, same nominal graphs: deliveries + drops are the same nominal receptions
    assert a["protocols"]["pulm"]["deliveries"] == b["protocols"]["pulm"]["deliveries"] + b["protocols"]["pulm"]["drops"]


def test_sweep_validates_every_combination_before_running(scenario_file, tmp_path):
    text = BASE.format(extra="", rounds=5, trace="false").replace(
        "seed = 11", 'seed = 11\nsweep = { "network.loss" = [0.1, 3.0] }')
    path = scenario_file(text)
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "[network] loss = 3.0" in r.output
    assert not (tmp_path / "o").exists()


def test_live_refuses_a_sweep_with_a_clear_error(scenario_file, tmp_path):
    text = BASE.format(extra="", rounds=5, trace="false").replace(
        "seed = 11", 'seed = 11\nsweep = { "network.loss" = [0.1, 0.3] }')
    path = scenario_file(text)
    r = CliRunner().invoke(main, ["live", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "only 'netemu run' does" in r.output
    assert not (tmp_path / "o").exists()


def test_separate_processes_give_identical_bytes(scenario_file, tmp_path):
    """Radio + random waypoint + jitter, run in two processes with different hash seeds."""
    import os
    import subprocess
    import sys

    path = scenario_file("""
        seed = 4
        [network]
        nodes = 25
        topology = "radio"
        range = 150.0
        loss = 0.2
        [network.delay]
        latency = 0.05
        jitter = "lognormal"
        jitter_scale = 0.2
        [mobility]
        model = "random-waypoint"
        area = [500, 500]
        [run]
        rounds = 25
        [output]
        plot = false
        [[protocols]]
        name = "pulm"
        [[protocols]]
        name = "push-sum"
    """)
    outs = []
    for hs in ("1", "2"):
        out = tmp_path / f"o{hs}"
        subprocess.run([sys.executable, "-m", "netemu", "run", str(path), "--out", str(out)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": hs}, capture_output=True)
        outs.append((out / "metrics.csv").read_bytes())
    assert outs[0] == outs[1]
    assert b"push-sum" in outs[0]


def test_delay_resolution_rounds_arrivals_up_into_shared_instants(scenario_file, tmp_path):
    extra = "[network.delay]\nlatency = 0.1\njitter = \"exponential\"\njitter_scale = 0.3"
    exact = scenario_file(BASE.format(extra=extra, rounds=30, trace="false"), name="a.toml")
    coarse = scenario_file(BASE.format(extra=extra + "\nresolution = 0.05", rounds=30, trace="false"),
                           name="b.toml")
    a = json.loads((run(exact, tmp_path / "a") / "summary.json").read_text())["protocols"]["pulm"]
    b = json.loads((run(coarse, tmp_path / "b") / "summary.json").read_text())["protocols"]["pulm"]
    # at most 1 s / 0.05 s = 20 arrival instants per round, plus the round's own events
    assert b["events"] <= 30 * (20 + 1) < a["events"]
    # rounding up never makes a message earlier: only more can be late, the rest arrive
    assert b["late"] >= a["late"]
    assert a["deliveries"] + a["late"] == b["deliveries"] + b["late"]
    from netemu.world.channel import Delay

    d = Delay(latency=0.01, jitter="uniform", scale=0.5, resolution=0.1, seed=1)
    j = d.jitter_draws(0, 1000)
    got, want = d.delays(0, j, 1000), 0.01 + j
    assert np.all(got >= want) and np.all(got - want < 0.1 + 1e-12)
    assert np.allclose(got / 0.1, np.round(got / 0.1))


def test_parallel_sweep_writes_the_same_bytes(scenario_file, tmp_path):
    text = BASE.format(extra="", rounds=20, trace="false").replace(
        "seed = 11", 'seed = 11\nsweep = { "network.loss" = [0.0, 0.3] }')
    path = scenario_file(text)
    seq = run(path, tmp_path / "seq")
    par = run(path, tmp_path / "par", "--jobs", "2")
    for label in ("network.loss=0.0", "network.loss=0.3"):
        assert (seq / label / "metrics.csv").read_bytes() == (par / label / "metrics.csv").read_bytes()
        assert json.loads((par / label / "summary.json").read_text())["scenario"]["network"]["loss"] == \
            float(label.split("=")[1])
