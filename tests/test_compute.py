"""The batched compute backend: batched gradients equal a per-node loop over separate modules,
lazy batching is exact, device selection and bad task inputs give clear errors."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from netemu.cli import main
from netemu.compute.device import resolve
from netemu.compute.handle import ComputeHandle
from netemu.compute.models import MLP, FunctionalModel, as_mlp, small_cnn
from netemu.errors import ScenarioError
from netemu.tasks import logistic
from netemu.tasks.data import DataTask, ModuleTask

N = 6


def node_data(rng, n=N, per=(9, 14), features=64, classes=10):
    sizes = rng.integers(per[0], per[1], n)
    X = rng.random((int(sizes.sum()), features))
    y = rng.integers(0, classes, int(sizes.sum()))
    return X, y, sizes


def loop_grads(module_factory, params, X, y, idx, w, loss_fn=None):
    """The reference: one separate nn.Module per node, autograd, one backward each."""
    out = []
    for i in range(len(params)):
        m = module_factory().double()
        nn.utils.vector_to_parameters(torch.as_tensor(params[i]), m.parameters())
        xb, yb = torch.as_tensor(X[idx[i]]), torch.as_tensor(y[idx[i]])
        per = (loss_fn or (lambda o, t: nn.functional.cross_entropy(o, t, reduction="none")))(m(xb), yb)
        (per * torch.as_tensor(w[i])).sum().backward()
        out.append(nn.utils.parameters_to_vector(p.grad for p in m.parameters()).numpy())
    return np.array(out)


def rel_err(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("batch", [5, 0])
def test_batched_mlp_equals_loop_of_modules(batch):
    rng = np.random.default_rng(0)
    X, y, sizes = node_data(rng)
    model = MLP([64, 16, 12, 10])
    task = DataTask(model, X, y, sizes, batch=batch, dtype=torch.float64)
    params = rng.normal(scale=0.3, size=(N, model.P))  # every node its own parameters
    idx, w = task.sample(np.arange(N), np.random.default_rng(1))
    got = task.grads(params, (idx, w))
    want = loop_grads(model.module, params, X, y, idx, w)
    assert rel_err(got, want) < 1e-12
    if batch == 0:  # full local datasets: padded entries carry zero weight
        assert np.allclose(w.sum(axis=1), 1.0) and (w == 0).any()


def test_batched_cnn_and_custom_module_equal_loop():
    rng = np.random.default_rng(2)
    X, y, sizes = node_data(rng)
    for factory in (small_cnn, lambda: nn.Sequential(nn.Linear(64, 8), nn.Tanh(), nn.Linear(8, 10))):
        template = factory().double()
        model = FunctionalModel(template)
        task = DataTask(model, X, y, sizes, batch=7, dtype=torch.float64)
        params = rng.normal(scale=0.2, size=(N, model.P))
        sample = task.sample(np.arange(N), np.random.default_rng(3))
        got = task.grads(params, sample)
        want = loop_grads(factory, params, X, y, *sample)
        assert rel_err(got, want) < 1e-12


def test_logistic_closed_form_equals_autograd():
    cfg = dict(samples=30, features=4, sigma_h=1.0, rho=0.05, batch=None)
    task = logistic.build(cfg, N, seed=5, device="cpu", dtype=torch.float64)
    params = np.random.default_rng(4).normal(size=(N, 5))
    sample = task.sample(np.arange(N), np.random.default_rng(0))
    got = task.grads(params, sample)
    X, y = task.X.numpy(), task.y.numpy()
    for i in range(N):
        h = torch.as_tensor(X[task.offsets[i]:task.offsets[i] + 30])
        yi = torch.as_tensor(y[task.offsets[i]:task.offsets[i] + 30])
        x = torch.tensor(params[i], requires_grad=True)
        f = torch.log1p(torch.exp(-yi * (h @ x))).mean() + 0.05 * (x**2 / (1 + x**2)).sum()
        f.backward()
        assert rel_err(got[i], x.grad.numpy()) < 1e-12
    # F(x̄) and ∇F(x̄) of evaluate() are the means of the nodes' f_i and ∇f_i
    xbar = params.mean(axis=0)
    ev = task.evaluate(xbar)
    g = task.grads(np.tile(xbar, (N, 1)), sample).mean(axis=0)
    assert abs(ev["grad_norm_sq"] - float(g @ g)) < 1e-12 * max(1.0, float(g @ g))


def test_lazy_batching_is_one_call_and_exact():
    rng = np.random.default_rng(6)
    X, y, sizes = node_data(rng)
    model = MLP([64, 8, 10])
    task = DataTask(model, X, y, sizes, batch=4, dtype=torch.float64)
    p1, p2 = rng.normal(size=(3, model.P)), rng.normal(size=(2, model.P))
    kept = p1.copy()
    h = ComputeHandle(task, N, seed=9)
    f1 = h.grad([0, 2, 4], p1)
    f2 = h.grad([1, 5], p2)
    p1[:] = 0.0  # inputs are captured at request time
    assert not f1.done() and not f2.done() and h.calls == 0
    g2 = f2.result()
    assert f1.done() and h.calls == 1 and h.node_steps == 5
    one = ComputeHandle(task, N, seed=9)  # the same requests, executed one at a time
    r1 = one.grad([0, 2, 4], kept).result()
    r2 = one.grad([1, 5], p2).result()
    assert one.calls == 2
    assert rel_err(f1.result(), r1) < 1e-14 and rel_err(g2, r2) < 1e-14
    assert np.abs(r1).max() > 0


def test_fast_path_detection_and_module_task():
    mlp = nn.Sequential(nn.Linear(64, 20), nn.ReLU(), nn.Linear(20, 10))
    assert isinstance(as_mlp(mlp), MLP) and as_mlp(mlp).P == sum(p.numel() for p in mlp.parameters())
    assert as_mlp(nn.Sequential(nn.Linear(64, 20), nn.Tanh(), nn.Linear(20, 10))) is None
    rng = np.random.default_rng(7)
    data = [(rng.random((12, 64)), rng.integers(0, 10, 12)) for _ in range(3)]
    task = ModuleTask(mlp, data, test=data[0], batch=4, dtype=torch.float64)
    assert isinstance(task.model, MLP) and task.n == 3
    assert np.allclose(task.x0()[2], nn.utils.parameters_to_vector(mlp.parameters()).detach().numpy())
    ev = task.evaluate(task.init)
    assert set(ev) == {"loss", "grad_norm_sq", "accuracy"} and 0.0 <= ev["accuracy"] <= 1.0
    with pytest.raises(ScenarioError, match="node 1 gets no training samples"):
        ModuleTask(mlp, [data[0], (np.zeros((0, 64)), np.zeros(0, dtype=int))])


def test_device_choice():
    notes = []
    dev, dt = resolve("auto", "float32", notice=notes.append)
    assert dt == torch.float32
    if torch.cuda.is_available():
        assert dev.type == "cuda" and not notes
    else:
        assert dev.type == "cpu" and "no CUDA device" in notes[0]
        with pytest.raises(ScenarioError, match='device = "cuda": torch sees no CUDA device'):
            resolve("cuda", "float64")


BASE = """
seed = 1
[network]
nodes = 4
p = 0.5
[run]
rounds = 3
[task]
kind = "digits"
[compute]
device = "cpu"
[[protocols]]
name = "dgd"
"""


@pytest.mark.parametrize("edit, expected", [
    (('kind = "digits"', 'kind = "digit"'), ["[task] kind = 'digit'", "did you mean 'digits'"]),
    (('kind = "digits"', 'kind = "digits"\nmodel = "resnet"'), ["[task] model = 'resnet'", "mlp, cnn"]),
    (('name = "dgd"', 'name = "dgd"\nlr = 0'), ["[protocols #1] lr = 0.0", "> 0"]),
    (('name = "dgd"', 'name = "pulm-dgd"\nlr = -0.1'), ["lr = -0.1", "> 0"]),
    (("nodes = 4", "nodes = 1500"), ["split = 'iid'", "leaves", "nodes with no data"]),
    (('device = "cpu"', 'device = "gpu"'), ["[compute] device = 'gpu'", "auto, cpu, cuda"]),
    (('kind = "digits"', 'kind = "consensus"'), ["'dgd' optimizes", 'kind = "logistic"']),
    (('name = "dgd"', 'name = "pulm"'), ["'pulm' is a consensus protocol", "pulm-dgd"]),
    (('kind = "digits"', 'kind = "digits"\nsamples = 50'), ["[task] samples is a key of kind = 'logistic'"]),
    (('kind = "digits"', 'kind = "custom"'), ['kind = "custom" takes its task from Python']),
])
def test_bad_task_inputs(tmp_path, edit, expected):
    path = tmp_path / "s.toml"
    path.write_text(BASE.replace(*edit))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out)])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("notice")]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.output
    for e in expected:
        assert e in lines[0], lines[0]
    assert not out.exists()


def test_cuda_choice_from_the_cli(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(BASE.replace('device = "cpu"', 'device = "cuda"'))
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "o")])
    if torch.cuda.is_available():
        assert r.exit_code == 0, r.output
    else:
        assert r.exit_code == 2 and r.stderr.startswith("error: [compute] device = \"cuda\"")
        assert 'use device = "cpu" or "auto"' in r.stderr and "Traceback" not in r.output
