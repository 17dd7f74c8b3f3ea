"""Compute times, stragglers and availability: the timing model, and what the engine does with it
(late nodes are silent and counted, their steps dropped; off nodes neither send nor receive)."""

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import read_metrics
from netemu.cli import main
from netemu.compute.availability import Periods
from netemu.compute.timing import Clock, StepTimes
from netemu.engine import Observer, SimEngine
from netemu.runner import make_task, prepare, run_scenario
from netemu.scenario.load import from_dict


def compute(**kw):
    base = {"deadline": None, "step_time": None, "speeds": None, "stragglers": None, "availability": None}
    return {**base, **kw}


def test_step_time_distributions_speeds_and_common_random_numbers(tmp_path):
    n = 50
    lognormal = StepTimes(compute(step_time={"dist": "lognormal", "median": 0.2, "sigma": 0.5}), n, 1, tmp_path)
    draws = np.concatenate([lognormal.draw(np.arange(n), np.full(n, j)) for j in range(300)])
    assert abs(np.median(draws) / 0.2 - 1) < 0.03
    assert abs(np.std(np.log(draws)) - 0.5) < 0.02
    # a node's j-th step takes the same time whatever else is requested with it, in any order
    a = lognormal.draw(np.array([7, 3]), np.array([4, 9]))
    b = StepTimes(compute(step_time={"dist": "lognormal", "median": 0.2, "sigma": 0.5}), n, 1, tmp_path)
    assert np.array_equal(b.draw(np.array([3]), np.array([9])), a[1:])

    np.save(tmp_path / "speeds.npy", np.linspace(0.5, 2.0, n))
    fixed = StepTimes(compute(step_time={"dist": "fixed", "value": 0.3},
                              speeds={"dist": "file", "file": "speeds.npy"}), n, 1, tmp_path)
    assert np.allclose(fixed.draw(np.arange(n), np.zeros(n, dtype=int)), 0.3 / np.linspace(0.5, 2.0, n))

    slow = StepTimes(compute(step_time={"dist": "fixed", "value": 1.0},
                             stragglers={"fraction": 0.25, "slowdown": 8.0, "persistent": False}), 400, 2, tmp_path)
    rows = np.array([slow.draw(np.arange(400), np.full(400, j)) for j in range(40)])
    assert set(np.unique(rows)) == {1.0, 8.0} and abs((rows == 8.0).mean() - 0.25) < 0.02
    assert not (rows == 8.0).all(axis=0).any()  # transient: no node is slow at every step
    sticky = StepTimes(compute(step_time={"dist": "fixed", "value": 1.0},
                               stragglers={"fraction": 0.25, "slowdown": 8.0, "persistent": True}), 400, 2, tmp_path)
    rows = np.array([sticky.draw(np.arange(400), np.full(400, j)) for j in range(5)])
    assert (rows == rows[0]).all() and abs((rows[0] == 8.0).mean() - 0.25) < 0.06


def test_clock_deadline_lateness_and_busy_nodes(tmp_path):
    np.savetxt(tmp_path / "speeds.txt", [1.0, 1.0, 0.5, 0.1])
    cfg = compute(step_time={"dist": "fixed", "value": 0.1}, speeds={"dist": "file", "file": "speeds.txt"},
                  deadline=0.15)
    clock = Clock(cfg, 4, 0, tmp_path)  # step times 0.1, 0.1, 0.2, 1.0
    clock.request(np.arange(4))
    window, late = clock.phase(0.0)
    assert window == pytest.approx(0.15) and late.tolist() == [False, False, True, True]
    assert clock.free(0.15).tolist() == [True, True, False, False]
    clock.request(np.arange(4))  # node 3 is still busy until 1.0: its next step ends at 2.0
    window, late = clock.phase(0.65)
    assert late.tolist() == [False, False, True, True] and clock.busy_until[3] == pytest.approx(2.0)
    assert clock.free(1.95).tolist() == [True, True, True, False]
    no_deadline = Clock({**cfg, "deadline": None}, 4, 0, tmp_path)
    no_deadline.request(np.arange(4))
    no_deadline.request(np.arange(4))  # two steps back to back
    window, late = no_deadline.phase(0.0)
    assert window == pytest.approx(2.0) and not late.any()
    assert no_deadline.compute_time() == pytest.approx(2.0)


def scenario(tmp_path, rounds=6, protocols=None, **comp):
    return from_dict({
        "seed": 4, "network": {"nodes": 8, "p": 0.5, "loss": 0.1}, "run": {"rounds": rounds},
        "task": {"kind": "logistic", "samples": 40, "features": 3}, "output": {"plot": False},
        "compute": {"device": "cpu", **comp},
        "protocols": protocols or [{"name": "dgd", "lr": 0.2, "inner_rounds": 2}],
    }, base_dir=tmp_path)


def test_compute_phases_shift_simulated_time(tmp_path):
    sc = scenario(tmp_path, step_time={"dist": "fixed", "value": 0.25})
    r = run_scenario(sc, tmp_path / "out", progress=False)[0]
    times = [t for _, t, _ in r.rows]
    # steps start at rounds 0, 2, 4; each round: compute phase, then the 1 s communication period
    assert times == pytest.approx([0, 1.25, 2.25, 3.5, 4.5, 5.75, 6.75])
    assert r.extra["compute_seconds"] == pytest.approx(0.75) and r.extra["node_steps"] == 3 * 8
    assert all(m["stragglers"] == 0 for _, _, m in r.rows)


def test_nodes_that_miss_the_deadline_are_silent_and_take_no_step(tmp_path):
    sc = scenario(tmp_path, step_time={"dist": "fixed", "value": 0.1}, deadline=1e-6)
    r = run_scenario(sc, tmp_path / "out", progress=False)[0]
    # steps start in rounds 0, 2, 4 (R = 2): every node is busy at those broadcasts, free after
    assert [m["stragglers"] for _, _, m in r.rows[1:]] == [8, 0, 8, 0, 8, 0]
    assert r.counters["messages_sent"] == 3 * 8
    assert len({m["loss"] for _, _, m in r.rows}) == 1  # every gradient dropped: nothing moves
    ok = run_scenario(scenario(tmp_path, step_time={"dist": "fixed", "value": 0.1}), tmp_path / "o2",
                      progress=False)[0]
    assert ok.rows[-1][2]["loss"] < ok.rows[0][2]["loss"] and ok.counters["messages_sent"] == 6 * 8


def test_stragglers_and_off_nodes_are_counted_and_silent(tmp_path):
    kw = dict(deadline=0.15, step_time={"dist": "lognormal", "median": 0.1, "sigma": 0.3},
              stragglers={"fraction": 0.2, "slowdown": 10.0}, availability={"kind": "periods", "on": 4, "off": 2})
    protos = [{"name": "pulm-dgd", "lr": 0.2}, {"name": "local-sgd", "tau": 3, "inner_rounds": 2}]
    sc = scenario(tmp_path, rounds=30, protocols=protos, **kw)
    results = run_scenario(sc, tmp_path / "out", progress=False)
    for r in results:
        silent = sum(m["stragglers"] + m["offline"] for _, _, m in r.rows[1:])
        assert r.counters["messages_sent"] == 30 * 8 - silent
        assert sum(m["stragglers"] for _, _, m in r.rows) > 5 and sum(m["offline"] for _, _, m in r.rows) > 5
    again = run_scenario(scenario(tmp_path, rounds=30, protocols=protos, **kw), tmp_path / "o2", progress=False)
    assert [r.rows for r in again] == [r.rows for r in results]  # deterministic per seed
    m = read_metrics(tmp_path / "out" / "metrics.csv")["pulm-dgd"]
    assert {"stragglers", "offline", "loss", "grad_norm_sq", "accuracy", "disagreement"} <= set(m)


class Heard(Observer):
    def __init__(self):
        self.tx, self.rx = {}, {}

    def transmit(self, label, k, t, senders, nbytes):
        self.tx[k] = set(senders.tolist())

    def deliver(self, label, k, t, recv, send):
        self.rx.setdefault(k, set()).update(recv.tolist())


def test_availability_trace_off_nodes_neither_send_nor_receive(tmp_path):
    (tmp_path / "avail.csv").write_text("node,start,end\n1,0,2.5\n2,0,1\n2,3,100\n3,0,4.5\n")
    sc = scenario(tmp_path, rounds=7, availability={"kind": "trace", "file": "avail.csv"})
    sc.network["p"] = 1.0  # everyone hears everyone: only availability silences a node
    sc.network["loss"] = 0.0
    obs = Heard()
    trajectories, topology, _ = prepare(sc)
    engine = SimEngine(sc, None, trajectories, topology, observers=(obs,), task=make_task(sc))
    r = engine.run_protocol(sc.protocols[0])
    on = {0: {0, 1, 2, 3, 4, 5, 6, 7}}
    off_at = {k: {n for n, ivs in {1: [(0, 2.5)], 2: [(0, 1), (3, 100)], 3: [(0, 4.5)]}.items()
                  if not any(a <= k < b for a, b in ivs)} for k in range(7)}
    assert [m["offline"] for _, _, m in r.rows[1:]] == [len(off_at[k]) for k in range(7)]
    assert off_at[5] == {1, 3} and on  # the trace as intended
    for k in range(7):
        assert obs.tx[k] == set(range(8)) - off_at[k]
        assert obs.rx.get(k, set()) == set(range(8)) - off_at[k]


def test_availability_periods_match_their_means():
    p = Periods(4000, on=3.0, off=1.0, seed=5)
    assert abs(p.online(0.0).mean() - 0.75) < 0.03 and abs(p.online(50.0).mean() - 0.75) < 0.03
    a, b = p.online(50.0), p.online(50.5)
    assert 0 < (a != b).mean() < 0.3  # states persist over short times
    assert np.array_equal(Periods(4000, 3.0, 1.0, seed=5).online(50.0), a)


BAD = """
seed = 1
[network]
nodes = 4
[run]
rounds = 2
[task]
kind = "logistic"
[compute]
device = "cpu"
{extra}
[[protocols]]
name = "dgd"
"""


@pytest.mark.parametrize("extra, expected", [
    ('[compute.step_time]\ndist = "lognormal"', ["[compute.step_time] dist = 'lognormal' needs median"]),
    ('[compute.step_time]\ndist = "gamma"', ["[compute.step_time] dist = 'gamma'", "lognormal"]),
    ('[compute.stragglers]\nfraction = 1.5', ["[compute.stragglers] fraction = 1.5", "[0, 1]"]),
    ('[compute.stragglers]\nslowdown = 0.5', ["[compute.stragglers] slowdown = 0.5", "within [1, "]),
    ('[compute.speeds]\ndist = "file"\nfile = "sp.txt"', ["[compute.speeds] file = 'sp.txt'", "needs 4 positive"]),
    ('[compute.availability]\nkind = "trace"\nfile = "nope.csv"', ["file = 'nope.csv'", "no such file"]),
    ('[compute.availability]\nkind = "trace"\nfile = "av.csv"', ["av.csv', line 2", "node,start,end"]),
    ('deadline = 0', ["[compute] deadline = 0.0", "within (0, "]),
])
def test_bad_compute_inputs(tmp_path, extra, expected):
    (tmp_path / "sp.txt").write_text("1.0\n2.0\n")
    (tmp_path / "av.csv").write_text("0,0,5\n1;2;3\n")
    path = tmp_path / "s.toml"
    path.write_text(BAD.format(extra=extra))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.output
    for e in expected:
        assert e in lines[0], lines[0]
    assert not out.exists()
