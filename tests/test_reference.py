"""netemu reproduces an independent dense implementation of docs/algorithms.md round by round."""

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import read_metrics
from netemu.cli import main

N, DIM, K, ROUNDS = 7, 3, 5, 23


def reference(adj, x0, rounds):
    """Dense textbook versions of gossip, push-sum and PULM (docs/algorithms.md), no netemu code."""
    n = x0.shape[0]
    xg, s, w = x0.copy(), x0.copy(), np.ones(n)
    xp, d = x0.copy(), np.eye(n)
    hist = {"gossip": [xg.copy()], "push-sum": [s / w[:, None]], "pulm": [xp.copy()]}
    for k in range(rounds):
        a = adj[k % len(adj)].astype(float)
        np.fill_diagonal(a, 0.0)
        r = a + np.eye(n)                      # received set, self included (no loss)
        wpull = r / r.sum(axis=1, keepdims=True)
        delta = a.sum(axis=0)                  # nominal out-degree of each sender j
        c = r / (delta + 1.0)[None, :]
        xg = wpull @ xg
        s, w = c @ s, c @ w
        xt, dt = wpull @ xp, wpull @ d
        xp = xt + (1.0 / n - np.diag(dt))[:, None] * x0
        d = dt.copy()
        np.fill_diagonal(d, 1.0 / n)
        hist["gossip"].append(xg.copy())
        hist["push-sum"].append(s / w[:, None])
        hist["pulm"].append(xp.copy())
    return hist


@pytest.fixture
def schedule_run(tmp_path, scenario_file):
    rng = np.random.default_rng(42)
    adj = rng.random((K, N, N)) < 0.35
    x0 = rng.normal(size=(N, DIM)) * 5 + 1
    np.savez(tmp_path / "sched.npz", adjacency=adj)
    np.save(tmp_path / "x0.npy", x0)
    path = scenario_file(f"""
        seed = 3
        [network]
        nodes = {N}
        topology = "schedule"
        file = "sched.npz"
        loss = 0.0
        [run]
        rounds = {ROUNDS}
        [task]
        x0 = "x0.npy"
        [output]
        plot = false
        [[protocols]]
        name = "gossip"
        [[protocols]]
        name = "push-sum"
        [[protocols]]
        name = "pulm"
    """)
    return path, adj, x0


def _metrics(x, target):
    return (np.max(np.abs(x - target)), np.max(np.abs(x - x.mean(axis=0))))


def test_cli_metrics_match_reference_round_by_round(schedule_run, tmp_path):
    path, adj, x0 = schedule_run
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert r.exit_code == 0, r.output
    got = read_metrics(out / "metrics.csv")
    ref = reference(adj, x0, ROUNDS)
    target = x0.mean(axis=0)
    for proto in ("gossip", "push-sum", "pulm"):
        assert len(got[proto]["consensus_error"]) == ROUNDS + 1
        for k in range(ROUNDS + 1):
            ce, dis = _metrics(ref[proto][k], target)
            assert got[proto]["consensus_error"][k] == pytest.approx(ce, rel=1e-6, abs=1e-12)
            assert got[proto]["disagreement"][k] == pytest.approx(dis, rel=1e-6, abs=1e-12)


def test_engine_states_match_reference(schedule_run):
    from netemu.engine import Observer, SimEngine
    from netemu.runner import prepare
    from netemu.scenario.load import load

    class States(Observer):  # the public hook: every metrics point sees the protocol
        def __init__(self):
            self.states = []

        def sample(self, run, k, t, proto, extra=None):
            self.states.append(proto.estimate().copy())

    path, adj, x0 = schedule_run
    ref = reference(adj, x0, ROUNDS)
    for proto in ("gossip", "push-sum", "pulm"):
        sc = load(path, (f"run.rounds={ROUNDS}",))
        traj, topology, x = prepare(sc)
        obs = States()
        SimEngine(sc, x, traj, topology, observers=(obs,)).run_protocol({"name": proto, "label": proto})
        states = obs.states
        assert len(states) == ROUNDS + 1
        for k in range(ROUNDS + 1):
            np.testing.assert_allclose(states[k], ref[proto][k], rtol=1e-9, atol=1e-12)


def test_pulm_invariant_x_equals_d_times_x0(schedule_run):
    """PULM keeps x_i = Σ_l d_il x_l⁰ (docs/algorithms.md invariant), also under loss."""
    from netemu.protocol import Batch, Context
    from netemu.protocols.pulm import PULM

    _, adj, x0 = schedule_run
    rng = np.random.default_rng(0)
    p = PULM(Context(n=N, seed=0))
    p.start(x0)
    for k in range(300):
        p.message()
        recv, send = np.nonzero(adj[k % K] & ~np.eye(N, dtype=bool))
        keep = rng.random(len(recv)) > 0.3
        p.receive(Batch(N, recv[keep], send[keep], send[keep], p.message()))
        p.end_round()
        np.testing.assert_allclose(p.x, p.d @ x0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p.x, np.tile(x0.mean(axis=0), (N, 1)), atol=1e-8)
