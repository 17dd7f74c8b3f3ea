"""Distance to the optimum (docs/algorithms.md, Tasks and Metrics): the centralized x* of the
convex tasks equals independent solutions (normal equations; scikit-learn), opt_gap / dist_opt /
dist_opt_worst behave, [output] metrics is checked, and a DGD run records the new metrics."""

import numpy as np
import pytest
import torch

from conftest import read_metrics
from netemu.errors import ScenarioError
from netemu.metrics import optimization_metrics
from netemu.outputs import opt_plots
from netemu.scenario.load import from_dict
from netemu.tasks import build_task, is_convex

N = 8


def task(**cfg):
    base = {"samples": 40, "features": 5, "sigma_h": 1.0, "batch": 0}
    if cfg.get("kind") == "logistic":
        base.update(rho=0.0, l2=0.0)
    return build_task({**base, **cfg}, N, 7, "cpu", torch.float64)


def data(t):
    """The stacked training data of a task, as the model sees it (float64 compute)."""
    return t.X.numpy(), t.y.numpy()


def test_quadratic_optimum_is_the_normal_equations_solution():
    t = task(kind="quadratic")
    A, b = data(t)
    assert A.shape == (N * 40, 5)
    closed = np.linalg.solve(A.T @ A, A.T @ b)  # x* = (Σ A_iᵀA_i)⁻¹ Σ A_iᵀ b_i, equal m
    opt = t.optimum
    assert np.max(np.abs(opt.x - closed)) < 1e-6
    assert np.max(np.abs(opt.x - closed)) < 1e-12  # measured ~1e-15 (L-BFGS-B + Newton polish)
    assert opt.value == pytest.approx(np.sum((A @ closed - b) ** 2) / (2 * N * 40), rel=1e-14)
    assert t.optimum is opt  # solved once, cached with the task


def test_quadratic_gradients_are_those_of_f_i():
    t = task(kind="quadratic")
    A, b = data(t)
    x = np.random.default_rng(0).standard_normal((N, 5))
    nodes = np.arange(N)
    g = t.grads(x, t.sample(nodes, np.random.default_rng(1)))
    for i in range(N):
        Ai, bi = A[i * 40:(i + 1) * 40], b[i * 40:(i + 1) * 40]
        np.testing.assert_allclose(g[i], Ai.T @ (Ai @ x[i] - bi) / 40, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("l2", [1e-3, 0.1])
def test_convex_logistic_optimum_equals_sklearn(l2):
    """netemu: F(x) = (1/N) Σ_s log(1 + exp(−y_s h_s·x)) + (l2/2)‖x‖², the bias being the weight of
    the constant-1 feature and regularized like the others. scikit-learn, without its own
    intercept (which it would not penalize) on the same augmented features, minimises
    (1/2)‖x‖² + C Σ_s log(1 + exp(−y_s h_s·x)): the same minimiser when C = 1/(l2 · N).
    Labels are ±1 in both (+1 is sklearn's positive class)."""
    from sklearn.linear_model import LogisticRegression

    t = task(kind="logistic", l2=l2)
    H, y = data(t)
    assert np.all(H[:, -1] == 1.0) and set(np.unique(y)) == {-1.0, 1.0}
    clf = LogisticRegression(C=1.0 / (l2 * len(y)), fit_intercept=False, solver="newton-cholesky",
                             tol=1e-14, max_iter=1000).fit(H, y)
    assert list(clf.classes_) == [-1.0, 1.0]
    assert np.max(np.abs(t.optimum.x - clf.coef_[0])) < 1e-6


def test_logistic_l2_is_the_ridge_term_and_zero_changes_nothing():
    x = np.random.default_rng(2).standard_normal((N, 6))
    plain = task(kind="logistic", rho=0.01)
    ridge = task(kind="logistic", rho=0.01, l2=0.3)
    assert type(plain.model).__name__ == "Logistic"  # l2 = 0: today's model, today's arithmetic
    s = plain.sample(np.arange(N), np.random.default_rng(1))
    np.testing.assert_allclose(ridge.grads(x, s), plain.grads(x, s) + 0.3 * x, rtol=1e-13, atol=1e-15)
    xbar = x.mean(axis=0)
    assert ridge.evaluate(xbar)["loss"] == pytest.approx(plain.evaluate(xbar)["loss"] + 0.15 * xbar @ xbar)


def test_opt_gap_and_distances():
    for t in (task(kind="quadratic"), task(kind="logistic", l2=0.01), task(kind="logistic")):
        opt = t.optimum
        at = t.evaluate(opt.x)
        assert at["opt_gap"] == 0.0 and at["dist_opt"] == 0.0  # exactly: the same float64 function
        at = optimization_metrics(t, np.tile(opt.x, (N, 1)))  # x̄: the mean of N equal rows rounds
        assert abs(at["opt_gap"]) < 1e-14 and at["dist_opt"] < 1e-14 and at["dist_opt_worst"] == 0.0
        rng = np.random.default_rng(3)
        for scale in (1e-3, 1.0, 10.0):
            x = opt.x + scale * rng.standard_normal((N, len(opt.x)))
            m = optimization_metrics(t, x)
            assert m["opt_gap"] > 0
            xbar = x.mean(axis=0)
            assert m["opt_gap"] == pytest.approx(m["loss"] - opt.value, rel=1e-9, abs=1e-15)
            assert m["dist_opt"] == pytest.approx(np.linalg.norm(xbar - opt.x), rel=1e-12)
            assert m["dist_opt_worst"] >= m["dist_opt"]
            assert m["dist_opt_worst"] == pytest.approx(np.max(np.linalg.norm(x - opt.x, axis=1)))


def test_non_convex_tasks_gain_no_metrics():
    t = task(kind="logistic", rho=0.01)
    assert not t.convex and t.optimum is None
    m = optimization_metrics(t, np.zeros((N, 6)))
    assert list(m) == ["loss", "grad_norm_sq", "accuracy", "disagreement"]
    assert is_convex({"kind": "quadratic"}) and is_convex({"kind": "logistic", "rho": 0.0})
    assert not is_convex({"kind": "logistic", "rho": 0.01}) and not is_convex({"kind": "digits"})


def test_separable_logistic_without_ridge_is_an_error():
    t = build_task({"kind": "logistic", "samples": 2, "features": 6, "sigma_h": 1.0, "rho": 0.0,
                    "l2": 0.0, "batch": 0}, 2, 1, "cpu", torch.float64)
    with pytest.raises(ScenarioError, match=r"linearly separable.*set \[task\] l2 > 0"):
        t.optimum


def scenario(task_cfg, output=None, protocols=({"name": "dgd", "lr": 0.2},), rounds=40):
    return from_dict({
        "seed": 1, "network": {"nodes": N, "topology": "latent", "graph": "ring"},
        "run": {"rounds": rounds}, "task": task_cfg, "compute": {"device": "cpu"},
        "output": {"plot": False, **(output or {})}, "protocols": list(protocols),
    }, source="s.toml")


def test_output_metrics_errors():
    with pytest.raises(ScenarioError) as e:
        scenario({"kind": "logistic"}, {"metrics": ["opt_gap"]})
    assert str(e.value).startswith('s.toml: [output] metrics = ["opt_gap"]: opt_gap needs a convex task '
                                   '(quadratic, or logistic with rho = 0); [task] rho = 0.01 is not convex; '
                                   'set [task] rho = 0')
    with pytest.raises(ScenarioError, match=r'\[output\] metrics = \["dist_opt"\]: dist_opt needs a convex '
                                            r"task .*kind = 'digits' is not convex"):
        scenario({"kind": "digits"}, {"metrics": ["dist_opt"]})
    with pytest.raises(ScenarioError, match=r"\[output\] metrics = \[\"dist_ot\"\]: 'dist_ot' is not one "
                                            r".*did you mean 'dist_opt'"):
        scenario({"kind": "quadratic"}, {"metrics": ["dist_ot"]})
    with pytest.raises(ScenarioError, match=r"\[output\] metrics = 'opt_gap' must be a list"):
        scenario({"kind": "quadratic"}, {"metrics": "opt_gap"})
    with pytest.raises(ScenarioError, match=r"accuracy is not recorded for \[task\] kind = 'quadratic'"):
        scenario({"kind": "quadratic"}, {"metrics": ["accuracy"]})
    with pytest.raises(ScenarioError, match=r"\[task\] l2 = -1.0 is out of range"):
        scenario({"kind": "logistic", "l2": -1})
    with pytest.raises(ScenarioError, match=r"\[task\] rho is a key of kind = 'logistic'"):
        scenario({"kind": "quadratic", "rho": 0.0})
    sc = scenario({"kind": "logistic", "rho": 0, "l2": 1e-3}, {"metrics": ["opt_gap", "dist_opt_worst"]})
    assert sc.output["metrics"] == ["opt_gap", "dist_opt_worst"]


def test_opt_plots():
    base = [("loss", True), ("grad_norm_sq", True), ("accuracy", False), ("disagreement", True)]
    assert opt_plots({"kind": "logistic", "rho": 0.01}, {"metrics": []}) == base
    assert opt_plots({"kind": "digits"}, {}) == base
    assert opt_plots({"kind": "logistic", "rho": 0.0}, {"metrics": ["dist_opt_worst", "opt_gap"]}) == \
        base + [("opt_gap", True), ("dist_opt", True), ("dist_opt_worst", True)]
    assert opt_plots({"kind": "quadratic"}, {"metrics": ["stragglers"]}) == \
        [("loss", True), ("grad_norm_sq", True), ("disagreement", True), ("opt_gap", True),
         ("dist_opt", True), ("stragglers", False)]


def test_dgd_on_quadratic_records_distance_to_optimum(tmp_path):
    from netemu.runner import run_scenario

    sc = scenario({"kind": "quadratic", "samples": 30, "features": 4}, {"metrics": ["dist_opt_worst"]})
    run_scenario(sc, tmp_path, progress=False)
    m = read_metrics(tmp_path / "metrics.csv")["dgd"]
    for name in ("loss", "grad_norm_sq", "opt_gap", "dist_opt", "dist_opt_worst", "disagreement"):
        assert len(m[name]) == 41, name
    assert "accuracy" not in m
    gap, dist, worst = map(np.asarray, (m["opt_gap"], m["dist_opt"], m["dist_opt_worst"]))
    assert np.all(gap >= 0) and np.all(worst >= dist)
    assert gap[-1] < 1e-2 * gap[0] and dist[-1] < 0.2 * dist[0]
