"""The charlm task: corpus split per client, windows, model shapes and gradients, learning,
perplexity, scenario keys and the bad-input messages; and the tensor shapes tasks expose."""

import math

import numpy as np
import pytest
import torch

from netemu.compute.models import FunctionalModel
from netemu.errors import ScenarioError
from netemu.scenario.load import Scenario
from netemu.tasks import build_task, charlm, corpus
from netemu.tasks.data import DataTask

CFG = dict(kind="charlm", context=16, d_model=32, layers=2, heads=4, corpus="stdlib",
           chars_per_client=600, batch=8)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread, as runs default to ([compute] threads = 1): small models on a shared
    machine run slower and far more erratically on more."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task64():
    return build_task(CFG, 3, 0, "cpu", torch.float64)


# --- corpus ------------------------------------------------------------------------------------

def test_stdlib_corpus_is_deterministic_and_split_into_distinct_modules_per_client():
    texts, names = corpus.client_texts("stdlib", 5, 800)
    again, names2 = corpus.client_texts("stdlib", 5, 800)
    assert texts == again and names == names2
    assert [len(t) for t in texts] == [800] * 5
    assert len(set(texts)) == 5
    flat = [m for ns in names for m in ns]
    assert len(flat) == len(set(flat))  # no module is shared by two clients
    files = corpus.stdlib_files()
    assert files == sorted(files, key=lambda p: p.as_posix())
    assert not any(part in corpus.SKIP for p in files for part in p.parts[-3:-1])
    first = next(p for p in files if corpus.docstrings(p.read_text(encoding="utf-8")))
    assert names[0][0] == first.stem
    assert texts[0].startswith(corpus.docstrings(first.read_text(encoding="utf-8"))[:100])


def test_docstrings_come_in_source_order():
    src = '"""Mod."""\ndef f():\n    """F doc."""\nclass C:\n    """C doc."""\n    def g(self):\n        """G doc."""\n'
    assert corpus.docstrings(src) == "Mod.\n\nF doc.\n\nC doc.\n\nG doc."
    assert corpus.docstrings("def (") == ""


def test_file_and_folder_corpora(tmp_path):
    (tmp_path / "b.txt").write_text("second file " * 10)
    (tmp_path / "a.txt").write_text("first file " * 10)
    (tmp_path / "empty.txt").write_text("  \n")
    texts, names = corpus.client_texts(str(tmp_path), 2, 50)
    assert names == [["a.txt"], ["b.txt"]] and texts[0] == ("first file " * 10)[:50]
    f = tmp_path / "one.txt"
    f.write_text("p1 " * 20 + "\n\n" + "p2 " * 20 + "\n\n\n" + "p3 " * 20)
    texts, names = corpus.client_texts(str(f), 3, 30)
    assert names == [["paragraph 0"], ["paragraph 1"], ["paragraph 2"]] and texts[1].startswith("p2 p2")


def test_encoding_and_windows():
    tok = corpus.encode("ab\n\u00e9")
    assert tok.tolist() == [corpus.VOCAB.index("a"), corpus.VOCAB.index("b"), 0, corpus.UNKNOWN]
    assert corpus.decode(tok[:3]) == "ab\n" and corpus.V == 97
    t = np.arange(50)
    x, y = corpus.windows(t, 8)
    assert x.shape == y.shape == (49 // 8, 8)
    assert np.array_equal(y, x + 1) and np.array_equal(x[1], np.arange(8, 16))


# --- model -------------------------------------------------------------------------------------

def test_model_shapes_parameter_count_and_task_layout(task64):
    P = corpus.parameter_count(16, 32, 2, 4)
    assert task64.dim == P == sum(math.prod(s) for s in task64.shapes)
    assert task64.shapes[0] == (16, 32) and task64.shapes[1] == (corpus.V, 32)  # pos, tok (module order)
    assert task64.sizes.tolist() == [(600 - 1) // 16] * 3
    module = charlm.CharTransformer(16, 32, 2, 4)
    x = torch.randint(0, corpus.V, (5, 16))
    assert module(x).shape == (5, 16, corpus.V)
    assert sum(p.numel() for p in module.parameters()) == P
    flat = task64.capture(task64.x0())
    assert task64.model.logits(flat, task64.X[:4].expand(3, 4, 16)).shape == (3, 4, 16, corpus.V)
    assert corpus.parameter_count() == 114_657  # the default model


def test_stacked_model_equals_the_vmap_reference_and_rows_are_independent():
    task = build_task({**CFG, "context": 8, "d_model": 8, "heads": 2, "chars_per_client": 100}, 3, 0, "cpu",
                      torch.float64)
    ref = FunctionalModel(task.model.module(), loss=charlm.window_loss).to(torch.float64)
    g = np.random.default_rng(1)
    flat = task.capture(task.x0() + 0.05 * g.normal(size=(3, task.dim)))
    idx, w = task.sample(np.arange(3), g)
    it = torch.as_tensor(idx)
    args = (task.X[it], task.y[it], task._t(w))
    loss, grad = task.model.loss_grad(flat, *args)
    rl, rg = ref.loss_grad(flat, *args)
    torch.testing.assert_close(loss, rl, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, rg, rtol=1e-10, atol=1e-12)
    l1, g1 = task.model.loss_grad(flat[1:2], *(a[1:2] for a in args))
    torch.testing.assert_close(g1[0], grad[1], rtol=1e-10, atol=1e-13)


def test_loss_decreases_over_a_few_dozen_steps_on_one_client():
    task = build_task({**CFG, "d_model": 16, "layers": 1, "heads": 2}, 3, 0, "cpu", torch.float64)
    n = task.sizes[0]
    whole = (np.arange(n)[None, :], np.full((1, n), 1.0 / n))  # client 0's windows

    def loss(x):
        return float(task.model.loss_grad(task.capture(x), task.X[whole[0]], task.y[whole[0]],
                                          task._t(whole[1]))[0][0])

    x = task.x0()[:1].copy()
    rng = np.random.default_rng(2)
    first = loss(x)
    for _ in range(30):
        x -= 1.0 * task.grads(x, task.sample(np.array([0]), rng))
    assert first > math.log(corpus.V) - 0.5 and loss(x) < first - 1.0


def test_perplexity_is_exp_loss_and_chunked_evaluation_equals_the_whole(task64, monkeypatch):
    x = task64.init + 0.01 * np.random.default_rng(3).normal(size=task64.dim)
    monkeypatch.setattr(charlm, "EVAL_CHUNK", 7)  # several chunks
    m = task64.evaluate(x)
    whole = DataTask.evaluate(task64, x)
    assert m["perplexity"] == math.exp(m["loss"])
    assert m["loss"] == pytest.approx(whole["loss"], rel=1e-12)
    assert m["grad_norm_sq"] == pytest.approx(whole["grad_norm_sq"], rel=1e-9)
    bad = task64.evaluate(np.full(task64.dim, np.nan))
    assert all(math.isnan(v) for v in bad.values()) and set(bad) == {"loss", "grad_norm_sq", "perplexity"}


def test_digits_exposes_its_tensor_shapes():
    from netemu.tasks import digits

    base = {"kind": "digits", "model": "mlp", "hidden": 16, "split": "iid", "test_fraction": 0.2, "batch": 8}
    t = digits.build(base, 3, 0, "cpu", torch.float32)
    assert t.shapes == [(16, 64), (16,), (10, 16), (10,)]
    t = digits.build({**base, "model": "cnn"}, 3, 0, "cpu", torch.float32)
    assert t.shapes[0] == (8, 1, 3, 3) and sum(math.prod(s) for s in t.shapes) == t.dim


# --- scenario and bad input ------------------------------------------------------------------

def scenario(tmp_path, **task):
    return {"network": {"nodes": 3}, "task": {"kind": "charlm", **task},
            "protocols": [{"name": "local-sgd", "lr": 0.1}]}


def test_scenario_keys_defaults_and_metrics(tmp_path):
    sc = Scenario.from_dict(scenario(tmp_path), base_dir=tmp_path)
    assert {k: sc.task[k] for k in ("corpus", "chars_per_client", "context", "d_model", "layers", "heads")} == \
        {"corpus": "stdlib", "chars_per_client": 2000, "context": 32, "d_model": 64, "layers": 2, "heads": 4}
    assert sc.compute["dtype"] == "float32"
    d = scenario(tmp_path)
    d["output"] = {"metrics": ["perplexity"]}
    Scenario.from_dict(d, base_dir=tmp_path)
    d["task"] = {"kind": "digits"}
    with pytest.raises(ScenarioError, match=r"perplexity is not recorded for \[task\] kind = 'digits'"):
        Scenario.from_dict(d, base_dir=tmp_path)
    with pytest.raises(ScenarioError, match=r"\[task\] hidden is a key of kind = 'digits', not of kind = 'charlm'"):
        Scenario.from_dict(scenario(tmp_path, hidden=3), base_dir=tmp_path)
    (tmp_path / "t.txt").write_text("some text " * 50)
    sc = Scenario.from_dict(scenario(tmp_path, corpus="t.txt"), base_dir=tmp_path)
    assert sc.task["corpus"] == str((tmp_path / "t.txt").absolute())


@pytest.mark.parametrize("make, text", [
    (lambda p: (p / "e.txt").write_text(""), "[task] corpus = 'e.txt' holds no text; point it at a non-empty"),
    (lambda p: (p / "e.txt").write_text(" \n\n \n"), "[task] corpus = 'e.txt' holds no text"),
    (lambda p: (p / "e.txt").mkdir(), "[task] corpus = 'e.txt' holds no text"),
    (lambda p: None, "[task] corpus = 'e.txt': no such file or folder"),
    (lambda p: (p / "e.txt").write_bytes(b"\xff\xfe\xfa"), "[task] corpus = 'e.txt': cannot read e.txt as UTF-8"),
])
def test_an_empty_or_missing_corpus_gets_one_line_naming_the_key(tmp_path, make, text):
    make(tmp_path)
    with pytest.raises(ScenarioError) as err:
        Scenario.from_dict(scenario(tmp_path, corpus="e.txt"), source="s.toml", base_dir=tmp_path)
    assert str(err.value).startswith("s.toml: ") and text in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("change, text", [
    ({"chars_per_client": 10}, "[task] chars_per_client = 10 is shorter than one window of context + 1 = 17"),
    ({"d_model": 30}, "[task] d_model = 30 is not a multiple of heads = 4; use e.g. d_model = 32"),
    ({"chars_per_client": 400}, "[task] chars_per_client = 400: corpus '{}' has 656 characters, enough for 1 "
                                "of the 3 clients; lower chars_per_client or use fewer nodes"),
])
def test_bad_model_or_size_keys(tmp_path, change, text):
    f = tmp_path / "small.txt"
    f.write_text("x" * 300 + "\n\n" + "y" * 300 + "\n\n" + "z" * 56)
    text = text.replace("{}", str(f))
    with pytest.raises(ScenarioError) as err:
        build_task({**CFG, "corpus": str(f), **change}, 3, 0, "cpu", torch.float32)
    assert text in str(err.value) and "\n" not in str(err.value)


def test_a_charlm_run_records_perplexity_and_states_its_parameter_count(tmp_path):
    import json

    import netemu

    sc = {"name": "tiny charlm", "seed": 3, "network": {"nodes": 3, "topology": "random", "p": 0.9},
          "run": {"rounds": 3, "period": 0.1}, "output": {"plot": False, "record": False},
          "task": {"kind": "charlm", "chars_per_client": 300, "context": 16, "d_model": 16, "layers": 1,
                   "heads": 2},
          "compute": {"device": "cpu"}, "protocols": [{"name": "local-sgd", "lr": 0.5, "tau": 2}]}
    netemu.run(sc, out=tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["task"] == {"kind": "charlm", "parameters": corpus.parameter_count(16, 16, 1, 2)}
    rows = [line.split(",") for line in (tmp_path / "out" / "metrics.csv").read_text().splitlines()[1:]]
    loss = {r[1]: float(r[4]) for r in rows if r[3] == "loss"}
    ppl = {r[1]: float(r[4]) for r in rows if r[3] == "perplexity"}
    assert set(loss) == set(ppl) and len(loss) == 4
    assert all(ppl[k] == pytest.approx(math.exp(loss[k]), rel=1e-12) for k in loss)
    assert loss["3"] < loss["0"]
    assert "accuracy" not in {r[3] for r in rows}
