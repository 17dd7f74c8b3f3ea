"""The Python API: netemu.run, Results, Scenario.from_dict, and a light `import netemu`."""

import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import netemu
from netemu import NetemuError, Results, Scenario, ScenarioError

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "seed": 3,
    "network": {"nodes": 8, "topology": "random", "p": 0.4, "loss": 0.1},
    "run": {"rounds": 12},
    "task": {"kind": "consensus", "dim": 2},
    "output": {"plot": False},
    "protocols": [{"name": "pulm"}, {"name": "push-sum"}],
}

TOML = """
seed = 3
[network]
nodes = 8
topology = "random"
p = 0.4
loss = 0.1
[run]
rounds = 12
[task]
kind = "consensus"
dim = 2
[output]
plot = false
[[protocols]]
name = "pulm"
[[protocols]]
name = "push-sum"
"""


def _csv(res):
    return pd.read_csv(res.paths["metrics"])


def test_run_from_dict(tmp_path):
    data = copy.deepcopy(BASE)
    res = netemu.run(data, out=tmp_path / "o")
    assert data == BASE  # the caller's dict is left alone
    assert res.out == tmp_path / "o"
    assert list(res.metrics.columns) == ["protocol", "round", "time", "metric", "value"]
    pd.testing.assert_frame_equal(res.metrics, _csv(res), check_dtype=False)
    assert set(res.summary["protocols"]) == {"pulm", "push-sum"}
    assert res.paths["metrics"] == tmp_path / "o" / "metrics.csv"
    assert res.paths["summary"].is_file()
    assert res.paths["plots"] == [] and res.paths["trace"] is None
    assert [r.label for r in res.results] == ["pulm", "push-sum"]
    assert isinstance(res.scenario, Scenario)


def test_run_from_path_equals_dict(tmp_path, scenario_file):
    a = netemu.run(scenario_file(TOML), out=tmp_path / "a")
    b = netemu.run(str(scenario_file(TOML, "t.toml")), out=tmp_path / "b")
    c = netemu.run(copy.deepcopy(BASE), out=tmp_path / "c")
    pd.testing.assert_frame_equal(a.metrics, c.metrics)
    pd.testing.assert_frame_equal(b.metrics, c.metrics)
    assert (tmp_path / "a" / "metrics.csv").read_bytes() == (tmp_path / "c" / "metrics.csv").read_bytes()


def test_run_from_scenario_and_seed(tmp_path):
    sc = Scenario.from_dict(copy.deepcopy(BASE))
    a = netemu.run(sc, out=tmp_path / "a")
    b = netemu.run(sc, seed=4, out=tmp_path / "b")
    assert b.summary["seed"] == 4 and a.summary["seed"] == 3
    assert not a.metrics.equals(b.metrics)
    c = netemu.run(copy.deepcopy(BASE), seed=4, out=tmp_path / "c")
    pd.testing.assert_frame_equal(b.metrics, c.metrics)


def test_set_changes_the_run(tmp_path):
    a = netemu.run(BASE, out=tmp_path / "a")
    b = netemu.run(BASE, set={"network.loss": 0.4, "run.rounds": 7, "protocols.1.label": "ps"},
                   out=tmp_path / "b")
    assert b.scenario.network["loss"] == 0.4 and b.summary["scenario"]["network"]["loss"] == 0.4
    assert list(b.final().index) == ["pulm", "ps"]
    assert b.metrics["round"].max() == 7 and a.metrics["round"].max() == 12
    assert a.summary["protocols"]["pulm"]["drops"] != b.summary["protocols"]["pulm"]["drops"]


def test_set_is_the_cli_set(tmp_path, scenario_file):
    """set={k: v} gives the same scenario as --set k=v (numpy values become plain numbers)."""
    from netemu.scenario.load import load

    path = scenario_file(TOML)
    cli = load(path, ("network.loss=0.25", "run.rounds=9"))
    api = netemu.load(path, set={"network.loss": np.float64(0.25), "run.rounds": np.int64(9)})
    assert api.resolved() == cli.resolved()


def test_set_protocol_parameter(tmp_path):
    data = {"seed": 1, "network": {"nodes": 6, "topology": "random", "p": 0.5},
            "run": {"rounds": 10}, "task": {"kind": "logistic", "samples": 60, "features": 3},
            "compute": {"device": "cpu"}, "output": {"plot": False},
            "protocols": [{"name": "dgd", "lr": 0.05}]}
    a = netemu.run(data, out=tmp_path / "a")
    b = netemu.run(data, set={"protocols.0.lr": 0.5}, out=tmp_path / "b")
    assert b.scenario.protocols[0]["lr"] == 0.5
    assert a.final().loc["dgd", "loss"] != b.final().loc["dgd", "loss"]


@pytest.mark.parametrize("bad, words", [
    ({"network.los": 0.3}, ["[network] los", "did you mean 'loss'"]),
    ({"network.loss": 1.5}, ["[network] loss = 1.5", "[0, 1]"]),
    ({"network.loss": "high"}, ["[network] loss = 'high'", "must be a number"]),
    ({"protocols.0.lr": 0.1}, ["[protocols #1] lr", "unknown key"]),
    ({"protocols.5.label": "x"}, ["protocols.5.label", "'5' is not an index", "0..1"]),
    ({"network.nodes.x": 3}, ["network.nodes.x"]),
    ({"": 3}, ["set key ''", "dotted key"]),
])
def test_bad_set_names_the_key(tmp_path, bad, words):
    out = tmp_path / "o"
    with pytest.raises(ScenarioError) as e:
        netemu.run(BASE, set=bad, out=out)
    for w in words:
        assert w in str(e.value)
    assert not out.exists()  # validated before anything is written


def test_set_must_be_a_dict():
    with pytest.raises(ScenarioError, match="dict of dotted keys"):
        netemu.load(BASE, set=["network.loss=0.3"])


def test_not_a_scenario():
    with pytest.raises(ScenarioError, match="not a scenario"):
        netemu.load(42)


def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match="no such scenario file"):
        netemu.run(tmp_path / "nope.toml", out=tmp_path / "o")


def test_final_and_pivot(tmp_path):
    res = netemu.run(BASE, out=tmp_path / "o")
    fin = res.final()
    assert list(fin.index) == ["pulm", "push-sum"]
    assert list(fin.columns) == ["consensus_error", "disagreement"]
    for label, row in fin.iterrows():
        assert row.to_dict() == res.summary["protocols"][label]["final"]
    piv = res.pivot("consensus_error")
    assert piv.shape == (13, 2)  # rounds 0..12
    assert list(piv.columns) == ["pulm", "push-sum"] and list(piv.index) == list(range(13))
    m = res.metrics
    want = m[(m.protocol == "push-sum") & (m.metric == "consensus_error")]["value"].to_numpy()
    np.testing.assert_array_equal(piv["push-sum"].to_numpy(), want)
    assert piv.iloc[-1].to_dict() == fin["consensus_error"].to_dict()
    by_time = res.pivot("disagreement", index="time")
    assert by_time.shape == (13, 2) and by_time.index.name == "time"
    with pytest.raises(NetemuError, match="did you mean 'consensus_error'"):
        res.pivot("consensus_eror")
    with pytest.raises(NetemuError, match='index="round"'):
        res.pivot("disagreement", index="step")


def test_results_reopens_a_folder(tmp_path):
    res = netemu.run(BASE, out=tmp_path / "o")
    again = Results(tmp_path / "o")
    pd.testing.assert_frame_equal(again.metrics, res.metrics)
    assert again.summary == json.loads((tmp_path / "o" / "summary.json").read_text())
    assert again.scenario is None and "pulm" in repr(again)
    with pytest.raises(NetemuError, match="no metrics.csv"):
        Results(tmp_path)


def test_labels_stay_strings(tmp_path):
    data = copy.deepcopy(BASE)
    data["protocols"] = [{"name": "pulm", "label": "1"}, {"name": "push-sum", "label": "NA"}]
    res = netemu.run(data, out=tmp_path / "o")
    assert list(res.final().index) == ["1", "NA"]
    assert not res.metrics["protocol"].isna().any()


def test_plots_and_trace_paths(tmp_path):
    res = netemu.run(BASE, set={"output.plot": True, "output.trace": True}, out=tmp_path / "o")
    assert res.paths["plots"] == [tmp_path / "o" / "consensus_error.png"]
    assert res.paths["trace"] == tmp_path / "o" / "events.msgpack"


def test_default_out_is_a_fresh_temporary_folder():
    a = netemu.run(BASE)
    b = netemu.run(BASE)
    try:
        assert a.out != b.out
        assert a.out.parent == Path(tempfile.gettempdir()) and a.out.name.startswith("netemu-")
        pd.testing.assert_frame_equal(a.metrics, b.metrics)
    finally:
        import shutil

        shutil.rmtree(a.out, ignore_errors=True)
        shutil.rmtree(b.out, ignore_errors=True)


SWEEP = TOML.replace("seed = 3", 'seed = 3\nsweep = { "network.loss" = [0.1, 0.3], "run.rounds" = [10] }')


def test_sweep_refused_unless_pinned(tmp_path, scenario_file):
    path = scenario_file(SWEEP)
    with pytest.raises(NetemuError) as e:
        netemu.run(path, out=tmp_path / "o")
    msg = str(e.value)
    assert "network.loss in [0.1, 0.3]" in msg and "set={'network.loss': 0.1}" in msg
    assert "run.rounds" not in msg  # a single value is no choice
    assert not (tmp_path / "o").exists()
    res = netemu.run(path, set={"network.loss": 0.3}, out=tmp_path / "o")
    assert res.scenario.network["loss"] == 0.3  # set pins the swept key
    assert res.scenario.run["rounds"] == 10  # single-valued sweep keys apply
    from netemu.scenario.load import load_sweep

    (label, sc), = [(lb, s) for lb, s in load_sweep(path) if lb == "network.loss=0.3,run.rounds=10"]
    assert res.scenario.resolved() == sc.resolved()


def test_shipped_sweep_example(tmp_path):
    res = netemu.run(ROOT / "scenarios" / "pulm_consensus.toml",
                     set={"network.loss": 0.3, "run.rounds": 10, "network.nodes": 8, "output.plot": False},
                     out=tmp_path / "o")
    assert res.pivot("consensus_error").shape == (11, 3)


def test_scenario_from_dict_validates():
    sc = Scenario.from_dict(BASE)
    assert sc.source == "<dict>" and sc.network["nodes"] == 8 and sc.protocols[1]["label"] == "push-sum"
    assert sc.base_dir == Path.cwd()
    with pytest.raises(ScenarioError, match=r"<dict>: netwrk: unknown key \(did you mean 'network'\?\)"):
        Scenario.from_dict({**BASE, "netwrk": {}})
    with pytest.raises(ScenarioError, match=r"mine: \[run\] rounds"):
        Scenario.from_dict({**BASE, "run": {"rounds": -1}}, source="mine")
    with pytest.raises(ScenarioError, match="sweep makes several scenarios"):
        Scenario.from_dict({**BASE, "sweep": {"network.loss": [0.1, 0.3]}})
    sc = Scenario.from_dict(BASE, base_dir=Path("/somewhere"))
    assert sc.base_dir == Path("/somewhere")


def test_public_names():
    for name in netemu.__all__:
        assert getattr(netemu, name) is not None
    assert netemu.__version__ == "0.1.0"
    assert issubclass(netemu.ScenarioError, netemu.NetemuError)
    assert callable(netemu.check_protocol) and callable(netemu.load)
    with pytest.raises(AttributeError):
        netemu.nonexistent  # noqa: B018


def test_import_is_light():
    code = ("import sys, netemu; heavy = [m for m in ('torch', 'matplotlib', 'pandas') if m in sys.modules]; "
            "assert not heavy, heavy; netemu.run, netemu.Scenario, netemu.Results, netemu.Protocol; "
            "heavy = [m for m in ('torch', 'matplotlib') if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
