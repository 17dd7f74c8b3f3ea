"""The optimization protocols equal dense references of docs/algorithms.md step by step, PULM-DGD
converges under packet loss where Push-DIGing does not, and divergence is reported, not a crash."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import read_metrics
from netemu import registry
from netemu.cli import main
from netemu.optim import step_size
from netemu.protocols.dgd import DGD
from netemu.protocols.easgd import EASGD
from netemu.protocols.local_sgd import LocalSGD
from netemu.protocols.pulm_dgd import PULMDGD
from netemu.protocols.push_diging import PushDIGing
from netemu.runner import make_task, run_scenario
from netemu.scenario.load import from_dict
from netemu.scenario import build

N, K, ROUNDS, FEAT, SAMPLES, RHO = 6, 4, 12, 3, 20, 0.02


def recorder(cls):
    """A protocol class that also keeps every node's iterate after each round."""

    class Rec(cls):
        states: list = []

        def start(self, x0):
            super().start(x0)
            type(self).states = [self.estimate().copy()]

        def end_round(self):
            super().end_round()
            type(self).states.append(self.estimate().copy())

    return Rec


def scenario(tmp_path, protocols, loss=0.15, rounds=ROUNDS):
    rng = np.random.default_rng(42)
    adj = rng.random((K, N, N)) < 0.45
    np.savez(tmp_path / "sched.npz", adjacency=adj)
    return from_dict({
        "seed": 3, "network": {"nodes": N, "topology": "schedule", "file": "sched.npz", "loss": loss},
        "run": {"rounds": rounds},
        "task": {"kind": "logistic", "samples": SAMPLES, "features": FEAT, "rho": RHO},
        "compute": {"device": "cpu"}, "output": {"plot": False}, "protocols": protocols,
    }, base_dir=tmp_path)


def reference_grad(task):
    """∇f_i of docs/algorithms.md in numpy, from the task's data (no netemu arithmetic)."""
    X, y = task.X.numpy(), task.y.numpy()

    def grad(x):
        out = np.empty_like(x)
        for i in range(N):
            h, t = X[i * SAMPLES:(i + 1) * SAMPLES], y[i * SAMPLES:(i + 1) * SAMPLES]
            s = 1.0 / (1.0 + np.exp(t * (h @ x[i])))
            out[i] = -(t * s) @ h / SAMPLES + RHO * 2 * x[i] / (1 + x[i] ** 2) ** 2
        return out

    return grad


def mixing_matrices(sc, rounds):
    """Per round: pull weights W (received set + self), push shares C (nominal out-degree), and
    the received mask R, from the same network realization the engine uses."""
    net = build.network(sc)
    out = []
    for k in range(rounds):
        rd = net.round(k)
        R = np.eye(N)
        R[rd.recv[~rd.lost], rd.send[~rd.lost]] = 1.0
        W = R / R.sum(axis=1, keepdims=True)
        C = R / (1.0 + np.bincount(rd.send, minlength=N))[None, :]
        out.append((W, C, R))
    return out


def ref_dgd(grad, mats, p, R):
    x = np.zeros((N, FEAT + 1))
    hist = [x]
    for s in range(ROUNDS // R):
        z = x - step_size(p, s) * grad(x)
        for r in range(R):
            z = mats[s * R + r][0] @ z
            hist.append(z)
        x = z
    return hist


def ref_pulm_dgd(grad, mats, p, R):
    x = np.zeros((N, FEAT + 1))
    hist = [x]
    for s in range(ROUNDS // R):
        g, a = grad(x), step_size(p, s)
        z, d = x - a * g, np.eye(N)
        for r in range(R):
            W = mats[s * R + r][0]
            dt = W @ d
            z = W @ z + a * (np.diag(dt) - 1.0 / N)[:, None] * g
            d = dt.copy()
            np.fill_diagonal(d, 1.0 / N)
            hist.append(z)
        x = z
    return hist


def ref_push_diging(grad, mats, p):
    u = np.zeros((N, FEAT + 1))
    v, x = np.ones(N), u.copy()
    y = g_old = grad(x)
    hist = [x]
    for k in range(ROUNDS):
        C = mats[k][1]
        u, v = C @ (u - step_size(p, k) * y), C @ v
        x = u / v[:, None]
        g = grad(x)
        y, g_old = C @ y + g - g_old, g
        hist.append(x)
    return hist


def ref_local_sgd(grad, mats, p, tau, R):
    x = np.zeros((N, FEAT + 1))
    hist, k = [x], 0
    for s in range(ROUNDS // R):
        start = x
        for _ in range(tau):
            x = x - step_size(p, k) * grad(x)
            k += 1
        delta, d = x - start, np.eye(N)
        for r in range(R):
            W = mats[s * R + r][0]
            dt = W @ d
            x = W @ x - (np.diag(dt) - 1.0 / N)[:, None] * delta
            d = dt.copy()
            np.fill_diagonal(d, 1.0 / N)
            hist.append(x)
    return hist


def ref_easgd(grad, mats, p, alpha, tau, a):
    x = np.zeros((N, FEAT + 1))
    c, hist, k = x[a].copy(), [x], 0
    for s in range(ROUNDS):
        for _ in range(tau):
            x = x - step_size(p, k) * grad(x)
            k += 1
        Rm = mats[s][2]
        heard = Rm[:, a] > 0  # workers that heard the anchor (the anchor itself included)
        pulled = sum(x[j] - c for j in range(N) if Rm[a, j] > 0)
        x = np.where(heard[:, None], x - alpha * (x - c), x)
        c = c + alpha * pulled
        hist.append(x)
    return hist


LR = {"lr": 0.4, "schedule": "inv-sqrt", "decay": 0.5, "decay_every": 100}


@pytest.mark.parametrize("cls, params, ref", [
    (PULMDGD, {"inner_rounds": 3}, lambda g, m: ref_pulm_dgd(g, m, LR, 3)),
    (PULMDGD, {"inner_rounds": 1}, lambda g, m: ref_pulm_dgd(g, m, LR, 1)),
    (DGD, {"inner_rounds": 2}, lambda g, m: ref_dgd(g, m, LR, 2)),
    (PushDIGing, {}, lambda g, m: ref_push_diging(g, m, LR)),
    (LocalSGD, {"tau": 3, "inner_rounds": 4}, lambda g, m: ref_local_sgd(g, m, LR, 3, 4)),
    (EASGD, {"alpha": 0.2, "tau": 2, "anchor": 2}, lambda g, m: ref_easgd(g, m, LR, 0.2, 2, 2)),
])
def test_protocol_equals_dense_reference_step_by_step(tmp_path, cls, params, ref):
    rec = recorder(cls)
    registry.register("rec", rec)
    sc = scenario(tmp_path, [{"name": "rec", **LR, **params}])
    results = run_scenario(sc, tmp_path / "out", progress=False)
    assert not results[0].diverged
    want = ref(reference_grad(make_task(sc)), mixing_matrices(sc, ROUNDS))
    assert len(rec.states) == len(want) == ROUNDS + 1
    for k, (got, exp) in enumerate(zip(rec.states, want)):
        assert np.abs(got - exp).max() <= 1e-12 * max(1.0, np.abs(exp).max()), f"round {k}"
    assert np.abs(want[-1] - want[0]).max() > 1e-2  # the reference did move


def random_graph_run(tmp_path, loss, rounds=400):
    sc = from_dict({
        "seed": 1, "network": {"nodes": 10, "topology": "random", "p": 0.3, "loss": loss},
        "run": {"rounds": rounds}, "task": {"kind": "logistic"}, "compute": {"device": "cpu"},
        "output": {"plot": False},
        "protocols": [{"name": "pulm-dgd", "lr": 0.2}, {"name": "push-diging", "lr": 0.05}],
    })
    res = {r.label: r for r in run_scenario(sc, tmp_path / f"loss{loss}", progress=False)}
    drop = {}
    for label, r in res.items():
        g = [m["grad_norm_sq"] for _, _, m in r.rows]
        drop[label] = g[0] / g[-1] if np.isfinite(g[-1]) and g[-1] > 0 else 0.0
    return res, drop


def test_pulm_dgd_converges_under_loss_where_push_diging_does_not(tmp_path):
    res, drop = random_graph_run(tmp_path, 0.2)
    assert drop["pulm-dgd"] >= 100 and not res["pulm-dgd"].diverged
    assert res["push-diging"].diverged or drop["push-diging"] < 10
    res, drop = random_graph_run(tmp_path, 0.0)
    assert drop["pulm-dgd"] >= 100 and drop["push-diging"] >= 100


def test_divergence_stops_the_protocol_and_is_reported(tmp_path, scenario_file):
    path = scenario_file("""
        seed = 1
        [network]
        nodes = 30
        p = 0.2
        loss = 0.5
        [run]
        rounds = 1500
        [task]
        kind = "logistic"
        [compute]
        device = "cpu"
        [output]
        plot = false
        [[protocols]]
        name = "push-diging"
        lr = 0.1
        [[protocols]]
        name = "pulm-dgd"
        lr = 0.1
    """)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "DIVERGED" in r.output
    summary = json.loads((out / "summary.json").read_text())["protocols"]
    at = summary["push-diging"]["diverged_at_round"]
    assert summary["push-diging"]["diverged"] is True and 0 < at < 1500
    assert summary["pulm-dgd"]["diverged"] is False and summary["pulm-dgd"]["diverged_at_round"] is None
    m = read_metrics(out / "metrics.csv")
    assert len(m["push-diging"]["loss"]) == at + 1  # everything up to the diverging round is kept
    assert np.all(np.isfinite(m["push-diging"]["loss"][:-1]))
    # stopped when its state passed [run] diverge_at (1e12 x the initial scale), or became non-finite
    assert summary["push-diging"].get("diverged_magnitude", np.inf) > 1e12
    assert len(m["pulm-dgd"]["loss"]) == 1501


def test_step_size_schedules():
    p = {"lr": 0.8, "schedule": "constant", "decay": 0.5, "decay_every": 10}
    assert [step_size(p, k) for k in (0, 99)] == [0.8, 0.8]
    assert step_size({**p, "schedule": "inv-sqrt"}, 3) == pytest.approx(0.4)
    assert [step_size({**p, "schedule": "step"}, k) for k in (0, 9, 10, 25)] == [0.8, 0.8, 0.4, 0.2]


def test_digits_by_label_learns_and_writes_figures(tmp_path, scenario_file):
    path = scenario_file("""
        seed = 2
        [network]
        nodes = 10
        p = 0.4
        loss = 0.1
        [run]
        rounds = 60
        [task]
        kind = "digits"
        split = "by-label"
        hidden = 32
        [compute]
        device = "cpu"
        dtype = "float32"
        [[protocols]]
        name = "local-sgd"
        lr = 0.3
        tau = 4
        inner_rounds = 1
    """)
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = read_metrics(out / "metrics.csv")["local-sgd"]
    assert set(m) == {"loss", "grad_norm_sq", "accuracy", "disagreement", "stragglers"}
    assert m["accuracy"][0] < 0.3 and m["accuracy"][-1] > 0.7
    assert m["loss"][-1] < 0.5 * m["loss"][0]
    for f in ("loss.png", "loss_time.png", "grad_norm_sq.png", "accuracy.png", "accuracy_time.png"):
        assert (out / f).stat().st_size > 1000
