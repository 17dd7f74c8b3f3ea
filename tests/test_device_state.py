"""Training at the kernel's speed: protocol state in the compute dtype on the compute device,
evaluation at a cadence, dtype defaults and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from netemu.engine import Observer, SimEngine
from netemu.errors import ScenarioError
from netemu.runner import make_task, prepare, run_scenario
from netemu.scenario.load import from_dict


def digits(rounds=12, **extra):
    data = {"seed": 3, "network": {"nodes": 8, "topology": "random", "p": 0.4, "loss": 0.1},
            "run": {"rounds": rounds}, "task": {"kind": "digits", "hidden": 16, "batch": 8},
            "compute": {"device": "cpu"}, "output": {"plot": False},
            "protocols": [{"name": "dgd", "lr": 0.1}, {"name": "pulm-dgd", "lr": 0.1},
                          {"name": "push-diging", "lr": 0.05}, {"name": "local-sgd", "lr": 0.1, "tau": 2},
                          {"name": "easgd", "lr": 0.1, "tau": 2}]}
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return from_dict(data, source="digits.toml")


class States(Observer):
    def __init__(self):
        self.kinds = []

    def sample(self, run, k, t, proto, extra=None):
        est = proto.estimate()
        self.kinds.append((type(est).__name__, str(est.dtype)))


def test_neural_state_lives_in_float32_tensors_and_float64_cpu_stays_numpy():
    sc = digits()
    assert sc.compute["dtype"] == "float32"  # the neural default
    task = make_task(sc)
    for p in sc.protocols:
        obs = States()
        res = SimEngine(sc, None, observers=(obs,), task=task).run_protocol(p)
        assert set(obs.kinds) == {("Tensor", "torch.float32")}, p["name"]
        assert np.isfinite(res.final()["loss"]) and res.final()["accuracy"] > 0.1
    sc64 = digits(compute={"dtype": "float64"})
    obs = States()
    SimEngine(sc64, None, observers=(obs,), task=make_task(sc64)).run_protocol(sc64.protocols[0])
    assert set(obs.kinds) == {("ndarray", "float64")}


def test_float32_device_state_tracks_the_float64_reference():
    """The same run in float32 tensors and in float64 numpy: the iterates agree to float32
    accuracy (the float64 path is the reference, bit-identical to the numpy implementation)."""
    finals = {}
    for dtype in ("float32", "float64"):
        sc = digits(rounds=20, compute={"dtype": dtype})
        res = SimEngine(sc, None, task=make_task(sc)).run_protocol(sc.protocols[0])
        finals[dtype] = res.final()
    assert finals["float32"]["loss"] == pytest.approx(finals["float64"]["loss"], rel=1e-3)
    assert finals["float32"]["disagreement"] == pytest.approx(finals["float64"]["disagreement"], rel=1e-2)


def test_evaluation_every_k_rounds_and_always_the_last(tmp_path):
    sc = digits(rounds=23, output={"eval_every": 5})
    res = run_scenario(sc, tmp_path / "o", progress=False)
    for r in res:
        evaluated = [k for k, _, m in r.rows if "loss" in m]
        assert evaluated == [0, 5, 10, 15, 20, 23]
        assert all("disagreement" in m for _, _, m in r.rows)  # cheap metrics every round
        assert len(r.rows) == 24
        assert "accuracy" in r.final()


def test_default_cadence_evaluates_cheap_tasks_every_round():
    from netemu.metrics import eval_every

    big = make_task(digits(rounds=1000, task={"hidden": 128}))  # 1437 samples x 9610 parameters
    assert big.samples * big.dim > 2_000_000 and eval_every(big, 1000, None) == 10
    small = make_task(digits(rounds=1000))  # hidden 16: 1437 x 1210
    assert small.samples * small.dim < 2_000_000 and eval_every(small, 1000, None) == 1
    assert eval_every(big, 1000, 7) == 7
    logistic = from_dict({"network": {"nodes": 30}, "run": {"rounds": 2000},
                          "task": {"kind": "logistic"}, "protocols": [{"name": "dgd"}]})
    assert eval_every(make_task(logistic), 2000, None) == 1  # 30·200·11 sample-parameters


def test_eval_every_below_one_and_dtype_of_a_consensus_task_are_refused():
    with pytest.raises(ScenarioError, match=r"\[output\] eval_every = 0 is out of range: it must be within \[1"):
        digits(output={"eval_every": 0})
    with pytest.raises(ScenarioError, match=r"\[compute\] dtype = 'float32': a consensus task keeps its values "
                                            r"in float64"):
        from_dict({"network": {"nodes": 5}, "compute": {"dtype": "float32"},
                   "protocols": [{"name": "broadcast-gossip"}]})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the CPU/CUDA comparison needs a GPU")
def test_cuda_equals_cpu():
    finals = {}
    for device in ("cpu", "cuda"):
        sc = digits(rounds=20, compute={"device": device})
        res = SimEngine(sc, None, task=make_task(sc)).run_protocol(sc.protocols[0])
        finals[device] = res.final()
    assert finals["cuda"]["loss"] == pytest.approx(finals["cpu"]["loss"], rel=1e-4)
    assert finals["cuda"]["accuracy"] == pytest.approx(finals["cpu"]["accuracy"], abs=0.02)


def test_digits_read_directly_equal_scikit_learns_loader():
    from sklearn.datasets import load_digits

    from netemu.tasks.digits import load

    X, y = load()
    d = load_digits()
    np.testing.assert_array_equal(X, d.data.astype(np.float64) / 16.0)
    np.testing.assert_array_equal(y, d.target)
