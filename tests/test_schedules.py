"""Step-size and inner-round schedules (PULM paper, Theorem 2): the stated sequences, runs whose
communication rounds are Σ R_k, a dense reference step by step, and errors that name the key."""

import math

import numpy as np
import pytest

from netemu import registry
from netemu.errors import ProtocolError, ScenarioError
from netemu.optim import step_size
from netemu.protocols.dgd import DGD
from netemu.protocols.easgd import EASGD
from netemu.protocols.local_sgd import LocalSGD
from netemu.protocols.pulm_dgd import PULMDGD
from netemu.protocols.push_diging import PushDIGing
from netemu.runner import make_task, run_scenario
from netemu.scenario import build
from netemu.scenario.load import from_dict
from netemu.schedules import InnerRounds, StepSize, bind

N, FEAT, SAMPLES, RHO = 5, 3, 20, 0.02
LOG = {"schedule": "log", "c": 1.0, "min": 1}


def scenario(protocols, rounds=12, compute=None, loss=0.1):
    return from_dict({
        "seed": 4, "network": {"nodes": N, "topology": "random", "p": 0.5, "loss": loss},
        "run": {"rounds": rounds},
        "task": {"kind": "logistic", "samples": SAMPLES, "features": FEAT, "rho": RHO},
        "compute": {"device": "cpu", **(compute or {})}, "output": {"plot": False},
        "protocols": protocols,
    })


def recorder(cls, rounds="run"):
    """``cls`` that sets ``ctx.rounds`` (the run's rounds, or the given value, None: unbounded)
    before ``start`` and keeps its iterates and step counter after every round."""

    class Rec(cls):
        states: list = []
        steps: list = []
        last = None

        def start(self, x0):
            if rounds != "run":
                self.ctx.rounds = rounds
            elif getattr(self.ctx, "rounds", None) is None:
                self.ctx.rounds = type(self).run_rounds
            type(self).last = self
            super().start(x0)
            type(self).states, type(self).steps = [self.estimate().copy()], [self.k]

        def end_round(self):
            super().end_round()
            type(self).states.append(self.estimate().copy())
            type(self).steps.append(self.k)

    return Rec


def run(tmp_path, cls, params, rounds=12, compute=None, ctx_rounds="run"):
    rec = recorder(cls, ctx_rounds)
    rec.run_rounds = rounds
    registry.register("rec", rec)
    sc = scenario([{"name": "rec", **params}], rounds, compute)
    res = run_scenario(sc, tmp_path / "out", progress=False)[0]
    return rec, res, sc


# ---- the sequences -------------------------------------------------------------------------

def test_log_inner_rounds_sequence():
    assert [InnerRounds(None, 1.0, 1)(k) for k in range(9)] == [1, 1, 2, 2, 2, 2, 2, 3, 3]
    assert [InnerRounds(None, 2.0, 3)(k) for k in range(8)] == [3, 3, 3, 3, 4, 4, 4, 5]
    assert InnerRounds(None, 1.0, 1)(19) == 3 and InnerRounds(None, 1.0, 1)(20) == 4  # ln 21 > 3
    assert [InnerRounds(4)(k) for k in (0, 7, 1000)] == [4, 4, 4]


def test_outer_steps_is_the_largest_K_within_the_rounds():
    log = InnerRounds(None, 1.0, 1)  # cumulative rounds 1, 2, 4, 6, 8, 10, 12, 15, 18, …
    assert [log.outer_steps(r) for r in (0, 1, 2, 3, 4, 11, 12, 14, 15)] == [0, 1, 2, 2, 3, 6, 7, 7, 8]
    assert log.total(7) == 12 and InnerRounds(3).total(5) == 15
    for sched in (log, InnerRounds(None, 2.5, 2), InnerRounds(3)):
        for rounds in range(60):
            K = sched.outer_steps(rounds)
            assert sum(sched(k) for k in range(K)) <= rounds < sum(sched(k) for k in range(K + 1))


def test_step_size_tables():
    assert [StepSize("const", 0.05)(k) for k in (0, 9)] == [0.05, 0.05]
    assert [StepSize("inv_sqrt", 0.5)(k) for k in (0, 3, 15)] == [0.5, 0.25, 0.125]
    assert [StepSize("inv", 1.5)(k) for k in (0, 1, 2)] == [1.5, 0.75, 0.5]
    p = {"lr": {"schedule": "horizon", "a": 0.5}}
    assert bind(p, 16).lr(0) == bind(p, 16).lr(99) == 0.125  # R = 1: K = 16
    assert bind({**p, "inner_rounds": LOG}, 12).lr(3) == 0.5 / math.sqrt(7)  # K = 7
    assert bind({**p, "inner_rounds": LOG}, 12, local_steps=3).lr(0) == 0.5 / math.sqrt(21)
    assert bind({**p, "inner_rounds": 5}, 3).lr(0) == 0.5  # no whole step fits: K = 1
    assert bind({"lr": 0.1, "inner_rounds": LOG}, 15).K == 8 and bind({"lr": 0.1}, None).K is None


def test_number_lr_keeps_the_old_arithmetic():
    for k in (0, 1, 7, 250):
        p = {"lr": 0.3, "schedule": "constant", "decay": 0.7, "decay_every": 20}
        assert step_size(p, k) == 0.3
        assert step_size({**p, "schedule": "inv-sqrt"}, k) == 0.3 / math.sqrt(k + 1)
        assert step_size({**p, "schedule": "step"}, k) == 0.3 * 0.7 ** (k // 20)


# ---- runs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [DGD, PULMDGD])
def test_communication_rounds_are_the_sum_of_inner_rounds(tmp_path, cls):
    log = InnerRounds(None, 1.0, 1)
    rec, res, _ = run(tmp_path, cls, {"lr": 0.1, "inner_rounds": LOG}, rounds=log.total(7))
    assert rec.steps[-1] == 7 and rec.last.r == 0  # 12 rounds: exactly 7 outer steps
    boundaries = [r for r in range(1, len(rec.steps)) if rec.steps[r] != rec.steps[r - 1]]
    assert boundaries == list(np.cumsum([log(k) for k in range(7)]))
    assert res.counters["messages_sent"] == 12 * N
    rec, _, _ = run(tmp_path, cls, {"lr": 0.1, "inner_rounds": LOG}, rounds=14)
    assert rec.steps[-1] == log.outer_steps(14) == 7 and rec.last.r == 2  # step 7 (R = 3) unfinished


def test_time_follows_the_inner_rounds(tmp_path):
    """With a fixed step time, each outer step's gradient costs time once: a run of Σ_{k<K} R_k
    rounds ends at rounds · period + K · step_time."""
    st = {"step_time": {"dist": "fixed", "value": 0.25}}
    for inner, K in ((LOG, 7), (2, 6), (1, 12)):
        _, res, _ = run(tmp_path, DGD, {"lr": 0.1, "inner_rounds": inner}, rounds=12, compute=st)
        assert res.rows[-1][1] == pytest.approx(12 * 1.0 + K * 0.25)


def test_local_sgd_periods_follow_the_inner_rounds(tmp_path):
    rec, _, _ = run(tmp_path, LocalSGD, {"lr": 0.1, "tau": 2, "inner_rounds": LOG}, rounds=12)
    assert rec.last.s == 7 and rec.last.r == 0
    assert rec.last.sched.K == 7


def dense_pulm_dgd(grad, mats, lr, inner, rounds):
    """docs/algorithms.md's PULM-DGD with R_k rounds and step α_k, in numpy."""
    x = np.zeros((N, FEAT + 1))
    hist, r, k = [x], 0, 0
    while r < rounds:
        g, a = grad(x), lr(k)
        z, d = x - a * g, np.eye(N)
        for _ in range(inner(k)):
            if r == rounds:
                break
            W = mats[r]
            dt = W @ d
            z = W @ z + a * (np.diag(dt) - 1.0 / N)[:, None] * g
            d = dt.copy()
            np.fill_diagonal(d, 1.0 / N)
            hist.append(z)
            r += 1
        x, k = z, k + 1
    return hist


def reference_grad(task):
    X, y = task.X.numpy(), task.y.numpy()

    def grad(x):
        out = np.empty_like(x)
        for i in range(N):
            h, t = X[i * SAMPLES:(i + 1) * SAMPLES], y[i * SAMPLES:(i + 1) * SAMPLES]
            s = 1.0 / (1.0 + np.exp(t * (h @ x[i])))
            out[i] = -(t * s) @ h / SAMPLES + RHO * 2 * x[i] / (1 + x[i] ** 2) ** 2
        return out

    return grad


def pull_weights(sc, rounds):
    net, out = build.network(sc), []
    for k in range(rounds):
        rd = net.round(k)
        R = np.eye(N)
        R[rd.recv[~rd.lost], rd.send[~rd.lost]] = 1.0
        out.append(R / R.sum(axis=1, keepdims=True))
    return out


@pytest.mark.parametrize("lr, want_lr", [
    ({"schedule": "inv_sqrt", "a": 0.8}, StepSize("inv_sqrt", 0.8)),
    ({"schedule": "horizon", "a": 0.8}, StepSize("horizon", 0.8, K=8)),  # 16 rounds: 8 log steps
])
def test_pulm_dgd_with_schedules_equals_the_dense_reference(tmp_path, lr, want_lr):
    rounds = 16
    rec, res, sc = run(tmp_path, PULMDGD, {"lr": lr, "inner_rounds": LOG}, rounds=rounds)
    assert not res.diverged
    want = dense_pulm_dgd(reference_grad(make_task(sc)), pull_weights(sc, rounds), want_lr,
                          InnerRounds(None, 1.0, 1), rounds)
    assert len(rec.states) == len(want) == rounds + 1
    for k, (got, exp) in enumerate(zip(rec.states, want)):
        assert np.abs(got - exp).max() <= 1e-12 * max(1.0, np.abs(exp).max()), f"round {k}"
    assert np.abs(want[-1] - want[0]).max() > 1e-2


@pytest.mark.parametrize("cls, params, K", [
    (PushDIGing, {}, 10), (EASGD, {"tau": 3}, 30), (LocalSGD, {"tau": 2, "inner_rounds": 2}, 10),
    (DGD, {"inner_rounds": LOG}, 6),
])
def test_every_protocol_takes_lr_tables(tmp_path, cls, params, K):
    rec, res, _ = run(tmp_path, cls, {"lr": {"schedule": "horizon", "a": 0.2}, **params}, rounds=10)
    assert rec.last.sched.lr(0) == 0.2 / math.sqrt(K) and not res.diverged
    _, res, _ = run(tmp_path, cls, {"lr": {"schedule": "inv", "a": 0.2}, **params}, rounds=10)
    assert not res.diverged and res.rows[-1][2]["loss"] < res.rows[0][2]["loss"]


# ---- errors name the key -------------------------------------------------------------------

@pytest.mark.parametrize("params, words", [
    ({"lr": {"schedule": "inv_sqr", "a": 0.1}},
     ["[protocols #1] lr.schedule = 'inv_sqr'", "did you mean 'inv_sqrt'"]),
    ({"lr": {"a": 0.1}}, ["[protocols #1] lr.schedule is missing", 'schedule = "inv_sqrt"']),
    ({"lr": {"schedule": "inv", "a": 0}}, ["[protocols #1] lr.a = 0.0 is out of range", "> 0"]),
    ({"lr": {"schedule": "inv", "a": -1.0}}, ["lr.a = -1.0 is out of range"]),
    ({"lr": {"schedule": "const", "a": float("inf")}}, ["lr.a = inf must be a finite number"]),
    ({"lr": {"schedule": "const", "a": float("nan")}}, ["lr.a = nan must be a finite number"]),
    ({"lr": float("inf")}, ["[protocols #1] lr = inf must be a finite number"]),
    ({"lr": {"schedule": "inv"}}, ["lr.a is missing", "a = 0.05"]),
    ({"lr": {"schedule": "inv", "a": 0.1, "c": 1.0}}, ["lr.c: unknown key of schedule = 'inv'"]),
    ({"lr": "fast"}, ["[protocols #1] lr = 'fast' must be a number", "or a table"]),
    ({"inner_rounds": {"schedule": "lg"}}, ["inner_rounds.schedule = 'lg'", "did you mean 'log'"]),
    ({"inner_rounds": {"schedule": "log", "c": 0}}, ["inner_rounds.c = 0.0 is out of range", "> 0"]),
    ({"inner_rounds": {"schedule": "log", "c": float("inf")}}, ["inner_rounds.c = inf must be a finite"]),
    ({"inner_rounds": {"schedule": "log", "min": 0}}, ["inner_rounds.min = 0 is out of range", ">= 1"]),
    ({"inner_rounds": {"schedule": "log", "min": 1.5}}, ["inner_rounds.min = 1.5 must be a whole number"]),
    ({"inner_rounds": 0}, ["[protocols #1] inner_rounds = 0 is out of range"]),
    ({"inner_rounds": 2.5}, ["inner_rounds = 2.5 must be a whole number"]),
])
def test_bad_schedules_name_the_key(params, words):
    with pytest.raises(ScenarioError) as e:
        scenario([{"name": "pulm-dgd", **params}])
    for w in words:
        assert w in str(e.value)


def test_horizon_needs_a_fixed_number_of_rounds(tmp_path):
    with pytest.raises(ProtocolError, match=r"protocol 'pulm-dgd': lr.schedule = \"horizon\" needs a fixed "
                                            r"number of outer steps.*\[run\] rounds"):
        run(tmp_path, PULMDGD, {"lr": {"schedule": "horizon", "a": 0.1}}, ctx_rounds=None)
    with pytest.raises(ProtocolError, match="not bound to a run"):
        step_size({"lr": {"schedule": "horizon", "a": 0.1}}, 0)


def test_a_table_lr_refuses_the_number_schedule_key(tmp_path):
    with pytest.raises(ProtocolError, match=r"schedule = 'step' applies to a number lr.*lr.schedule = 'inv'"):
        run(tmp_path, DGD, {"lr": {"schedule": "inv", "a": 0.1}, "schedule": "step"})


def test_shipped_defaults_are_numbers():
    sc = scenario([{"name": "dgd"}, {"name": "local-sgd", "inner_rounds": 3}])
    assert sc.protocols[0]["lr"] == 0.05 and sc.protocols[0]["inner_rounds"] == 1
    assert sc.protocols[1]["inner_rounds"] == 3 and isinstance(sc.protocols[1]["inner_rounds"], int)
