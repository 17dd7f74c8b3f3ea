"""Cooperative SGD with dynamic mixing (arXiv 2508.14565) in local SGD: the static symmetric
Metropolis matrix (``weights = "metropolis"``) and client selection (``fraction``), each against
a dense numpy reference; the Metropolis weights themselves are checked exactly."""

import numpy as np
import pytest

from netemu import mixing, registry
from netemu.errors import ScenarioError
from netemu.optim import step_size
from netemu.protocols.local_sgd import SELECT, LocalSGD
from netemu.rng import stream
from netemu.runner import make_task, run_scenario
from netemu.scenario import build
from netemu.scenario.load import from_dict

N, FEAT, SAMPLES, RHO = 6, 3, 20, 0.02
LR = {"lr": 0.3, "schedule": "inv-sqrt"}


def test_metropolis_weights_by_hand():
    # path 0 - 1 - 2 and an isolated node 3: degrees 1, 2, 1, 0
    recv, send = np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1])
    assert mixing.metropolis_weights(recv, send, np.array([1, 2, 1, 0])).tolist() == [1 / 3] * 4
    W = mixing.metropolis_matrix(recv, send, 4)
    want = np.array([[2 / 3, 1 / 3, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3, 0], [0, 0, 0, 1]])
    assert np.abs(W - want).max() <= 1e-15  # 1 − 1/3 − 1/3 is 1/3 up to rounding


def random_undirected(n, p, seed):
    rng = np.random.default_rng(seed)
    A = np.triu(rng.random((n, n)) < p, 1)
    A = A | A.T
    recv, send = np.nonzero(A)
    return A, recv, send


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metropolis_matrix_is_symmetric_doubly_stochastic_and_one_step_matches_dense(seed):
    n = 12
    A, recv, send = random_undirected(n, 0.3, seed)
    W = mixing.metropolis_matrix(recv, send, n)
    d = A.sum(axis=1)
    for i in range(n):  # the definition, entry by entry
        for j in range(n):
            if i != j:
                assert W[i, j] == (1.0 / (1 + max(d[i], d[j])) if A[i, j] else 0.0)
    assert np.array_equal(W, W.T)
    assert np.allclose(W.sum(axis=0), 1.0, atol=1e-15) and np.allclose(W.sum(axis=1), 1.0, atol=1e-15)
    assert (W >= 0).all()
    # one mixing step as the protocol does it: weighted sums over the deliveries + self weight
    x = np.random.default_rng(seed + 10).standard_normal((n, 5))
    w = mixing.metropolis_weights(recv, send, d)
    s = mixing.weighted_receiver_sum(recv, send, w, x, n)
    wsum = np.bincount(recv, weights=w, minlength=n)
    got = mixing.weighted_pull(x, s, wsum)
    assert np.abs(got - W @ x).max() <= 1e-14
    assert np.abs(got.mean(axis=0) - x.mean(axis=0)).max() <= 1e-14  # doubly stochastic: mean kept


def recorder(cls):
    class Rec(cls):
        states: list = []

        def start(self, x0):
            super().start(x0)
            type(self).states = [self.estimate().copy()]

        def end_round(self):
            super().end_round()
            type(self).states.append(self.estimate().copy())

    return Rec


def scenario(tmp_path, network, protocols, rounds, n=N):
    return from_dict({
        "seed": 5, "network": {"nodes": n, **network}, "run": {"rounds": rounds},
        "task": {"kind": "logistic", "samples": SAMPLES, "features": FEAT, "rho": RHO},
        "compute": {"device": "cpu"}, "output": {"plot": False}, "protocols": protocols,
    }, base_dir=tmp_path)


def reference_grad(task):
    X, y = task.X.numpy(), task.y.numpy()

    def grad(x):
        out = np.empty_like(x)
        for i in range(len(x)):
            h, t = X[i * SAMPLES:(i + 1) * SAMPLES], y[i * SAMPLES:(i + 1) * SAMPLES]
            s = 1.0 / (1.0 + np.exp(t * (h @ x[i])))
            out[i] = -(t * s) @ h / SAMPLES + RHO * 2 * x[i] / (1 + x[i] ** 2) ** 2
        return out

    return grad


def received(sc, rounds):
    """The received mask R_k (self included) of each round, from the engine's realization."""
    net = build.network(sc)
    out = []
    for k in range(rounds):
        rd = net.round(k)
        R = np.eye(N, dtype=bool)
        R[rd.recv[~rd.lost], rd.send[~rd.lost]] = True
        out.append(R)
    return out


def run_rec(tmp_path, network, params, rounds, n=N):
    rec = recorder(LocalSGD)
    registry.register("rec", rec)
    sc = scenario(tmp_path, network, [{"name": "rec", **LR, **params}], rounds, n)
    results = run_scenario(sc, tmp_path / "out", progress=False)
    assert not results[0].diverged
    return sc, rec.states


@pytest.mark.parametrize("averaging", ["gossip", "pulm"])
def test_metropolis_local_sgd_equals_dense_reference(tmp_path, averaging):
    tau, R, rounds = 2, 2, 8
    network = {"topology": "latent", "graph": "erdos-renyi", "edge_prob": 0.5}
    sc, states = run_rec(tmp_path, network, {"tau": tau, "inner_rounds": R, "averaging": averaging,
                                             "weights": "metropolis"}, rounds)
    topo = build.topology(sc)
    W = mixing.metropolis_matrix(topo.recv, topo.send, N)
    assert not np.allclose(W, np.full((N, N), 1 / N))  # a sparse graph: W is not J
    grad = reference_grad(make_task(sc))
    x, k, want = np.zeros((N, FEAT + 1)), 0, []
    want.append(x)
    for _ in range(rounds // R):
        start = x
        for _ in range(tau):
            x = x - step_size(LR, k) * grad(x)
            k += 1
        delta, d = x - start, np.eye(N)
        for _ in range(R):
            if averaging == "pulm":  # PULM on the updates with the Metropolis W
                dt = W @ d
                x = W @ x - (np.diag(dt) - 1.0 / N)[:, None] * delta
                d = dt.copy()
                np.fill_diagonal(d, 1.0 / N)
            else:
                x = W @ x
            want.append(x)
    assert len(states) == len(want)
    for r, (got, exp) in enumerate(zip(states, want)):
        assert np.abs(got - exp).max() <= 1e-12 * max(1.0, np.abs(exp).max()), f"round {r}"


@pytest.mark.parametrize("network, key", [
    ({"topology": "random", "p": 0.5}, 'topology = "random"'),
    ({"topology": "latent", "graph": "ring", "loss": 0.1}, "loss = 0.1"),
    ({"topology": "latent", "graph": "ring", "disconnect": 0.2}, "disconnect = 0.2"),
    ({"topology": "latent", "graph": "directed-random", "edge_prob": 0.5}, "graph is directed"),
    ({"topology": "latent", "graph": "ring", "loss_model": {"kind": "gilbert-elliott"}}, "gilbert-elliott"),
    ({"topology": "latent", "graph": "ring", "delay": {"jitter": "uniform", "jitter_scale": 0.1}},
     'jitter = "uniform"'),
])
def test_metropolis_is_refused_off_a_static_undirected_lossless_graph(tmp_path, network, key):
    with pytest.raises(ScenarioError, match='weights = "metropolis" needs a static undirected graph') as e:
        sc = scenario(tmp_path, network, [{"name": "local-sgd", "averaging": "gossip", "weights": "metropolis"}], 4)
        run_scenario(sc, tmp_path / "out", progress=False)
    assert key in str(e.value) and 'weights = "uniform"' in str(e.value)
    assert not (tmp_path / "out").exists()


def selected(seed, s, m, n=N):
    mask = np.zeros(n, dtype=bool)
    mask[stream(seed, "protocol", SELECT, s).choice(n, size=m, replace=False)] = True
    return mask


@pytest.mark.parametrize("averaging", ["gossip", "pulm"])
def test_fraction_selects_seeded_clients_that_alone_train_and_average(tmp_path, averaging):
    tau, R, rounds, m = 2, 2, 10, 3  # fraction 0.5 of 6 nodes
    network = {"topology": "random", "p": 0.6, "loss": 0.2}
    sc, states = run_rec(tmp_path, network, {"tau": tau, "inner_rounds": R, "averaging": averaging,
                                             "fraction": 0.5}, rounds)
    grad, masks = reference_grad(make_task(sc)), received(sc, rounds)
    x, k, want = np.zeros((N, FEAT + 1)), 0, []
    want.append(x)
    for s in range(rounds // R):
        S = selected(sc.seed, s, m)
        start = x
        for _ in range(tau):
            x = np.where(S[:, None], x - step_size(LR, k) * grad(x), x)
            k += 1
        delta, d = x - start, np.eye(N)[:, S]  # memories over S: d_i = e_(position of i in S)
        for r in range(R):
            Rm = masks[s * R + r] & np.outer(S, S) | np.eye(N, dtype=bool)
            W = Rm / Rm.sum(axis=1, keepdims=True)
            x_new = W @ x
            if averaging == "pulm":
                dt = W @ d
                own = dt[S][np.arange(m), np.arange(m)]
                gap = np.zeros(N)
                gap[S] = own - 1.0 / m
                x_new = x_new - gap[:, None] * delta
                d = dt
                d[np.flatnonzero(S), np.arange(m)] = 1.0 / m
            x = np.where(S[:, None], x_new, x)
            want.append(x)
    assert len(states) == len(want)
    for r, (got, exp) in enumerate(zip(states, want)):
        assert np.abs(got - exp).max() <= 1e-12 * max(1.0, np.abs(exp).max()), f"round {r}"
    moved = [np.any(states[(s + 1) * R][i] != states[s * R][i]) for s in range(rounds // R) for i in range(N)]
    assert 0 < sum(moved) <= m * (rounds // R)  # only the selected nodes ever move


def test_fraction_tiny_exact_case(tmp_path):
    """4 nodes on a complete lossless graph, half selected: after one period the two selected
    nodes hold the mean of their τ-step iterates, the two others their initial model."""
    sc, states = run_rec(tmp_path, {"topology": "random", "p": 1.0},
                         {"tau": 3, "inner_rounds": 1, "averaging": "gossip", "fraction": 0.5}, 1, n=4)
    grad = reference_grad(make_task(sc))
    S = selected(sc.seed, 0, 2, n=4)
    x = np.zeros((4, FEAT + 1))
    for k in range(3):
        x = x - step_size(LR, k) * grad(x)
    want = np.where(S[:, None], x[S].mean(axis=0), 0.0)
    assert S.sum() == 2 and np.abs(states[1] - want).max() <= 1e-14
    assert np.all(states[1][~S] == 0.0) and np.all(states[1][S] != 0.0)


def test_plot_sweep_final_metric_against_a_swept_value(tmp_path, scenario_file):
    from click.testing import CliRunner

    from netemu.cli import main

    path = scenario_file("""
        seed = 1
        sweep = { "network.loss" = [0.0, 0.3] }
        [network]
        nodes = 6
        p = 0.5
        [run]
        rounds = 6
        [task]
        kind = "logistic"
        samples = 20
        features = 3
        [compute]
        device = "cpu"
        [output]
        plot = false
        [[protocols]]
        name = "local-sgd"
        label = "a"
        tau = 1
        inner_rounds = 1
        [[protocols]]
        name = "local-sgd"
        label = "b"
        tau = 3
        inner_rounds = 1
    """)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert r.exit_code == 0, r.output
    # x from each protocol's own parameters: one line per sweep folder
    r = CliRunner().invoke(main, ["plot-sweep", str(out), "--x", "protocols.tau", "--metric", "loss",
                                  "--mark", "2=two", "--name", "network.loss=0.3=lossy"])
    assert r.exit_code == 0, r.output
    rows = [line.split() for line in r.output.splitlines()[1:5]]
    assert [(s, t) for s, t, _ in rows] == [("network.loss=0.0", "1"), ("network.loss=0.0", "3"),
                                            ("network.loss=0.3", "1"), ("network.loss=0.3", "3")]
    import json
    final = json.loads((out / "network.loss=0.3" / "summary.json").read_text())["protocols"]["b"]["final"]
    assert float(rows[3][2]) == pytest.approx(final["loss"], rel=1e-4)
    assert "best loss (min) of network.loss=0.3" in r.output
    assert (out / "loss_vs_protocols.tau.png").stat().st_size > 1000
    # x a scenario key: one line per protocol; the value at a simulated time from metrics.csv
    r = CliRunner().invoke(main, ["plot-sweep", str(out), "--x", "network.loss", "--metric", "accuracy",
                                  "--at-time", "2", "--out", str(tmp_path / "acc.png")])
    assert r.exit_code == 0, r.output
    assert {line.split()[0] for line in r.output.splitlines()[1:5]} == {"a", "b"}
    assert (tmp_path / "acc.png").exists()
    r = CliRunner().invoke(main, ["plot-sweep", str(out), "--x", "protocols.alpha"])
    assert r.exit_code == 2 and "--x protocols.alpha: no such key in protocol 'a'" in r.output
    r = CliRunner().invoke(main, ["plot-sweep", str(out), "--x", "network.loss", "--at-time", "99"])
    assert r.exit_code == 2 and "before --at-time 99" in r.output
