"""Every user mistake gets one clear line naming the value, its place and the fix; exit 2; no
traceback; no output files."""

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from netemu.cli import main

GOOD = """
seed = 1
[network]
nodes = 6
topology = "random"
p = 0.3
loss = 0.1
[run]
rounds = 5
[[protocols]]
name = "pulm"
"""


def check_error(path, tmp_path, *expected, args=()):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out), *args])
    assert r.exit_code == 2, r.output
    text = r.stderr if hasattr(r, "stderr") else r.output
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, text
    assert lines[0].startswith("error: ")
    assert "Traceback" not in r.output
    for e in expected:
        assert e in lines[0], lines[0]
    assert not out.exists(), "nothing may be written for a bad scenario"
    return lines[0]


CASES = [
    ("unknown key", GOOD.replace("loss = 0.1", "los = 0.1"), ["[network] los", "did you mean 'loss'"]),
    ("unknown table", GOOD.replace("[run]", "[rnu]"), ["rnu", "did you mean 'run'"]),
    ("loss > 1", GOOD.replace("loss = 0.1", "loss = 1.5"), ["[network] loss = 1.5", "[0, 1]"]),
    ("loss < 0", GOOD.replace("loss = 0.1", "loss = -0.1"), ["loss = -0.1", "out of range"]),
    ("nodes < 1", GOOD.replace("nodes = 6", "nodes = 0"), ["[network] nodes = 0", "within [1, 100000000]"]),
    ("nodes not int", GOOD.replace("nodes = 6", 'nodes = "six"'), ["nodes = 'six'", "whole number"]),
    ("negative range", GOOD.replace('topology = "random"', 'topology = "radio"\nrange = -5'),
     ["[network] range = -5.0", "within (0, 1e7]"]),
    ("negative period", GOOD.replace("rounds = 5", "rounds = 5\nperiod = -1"), ["[run] period = -1.0", "within [1e-6, 1e6]"]),
    ("bad topology", GOOD.replace('"random"', '"randon"'), ["topology = 'randon'", "did you mean 'random'"]),
    ("unknown protocol", GOOD.replace('"pulm"', '"pusl"'), ["unknown protocol 'pusl'", "did you mean 'pulm'"]),
    ("no protocols", GOOD.split("[[protocols]]")[0], ["protocols is missing"]),
    ("toml syntax", GOOD.replace("loss = 0.1", "loss = = 0.1"), ["TOML syntax error", "line 7"]),
    ("schedule without file", GOOD.replace('"random"', '"schedule"'), ["needs file"]),
    ("missing schedule", GOOD.replace('"random"', '"schedule"\nfile = "nope.npz"'),
     ["[network] file = 'nope.npz'", "no such file"]),
    ("missing x0", GOOD + '[task]\nx0 = "nope.npy"\n', ["[task] x0 = 'nope.npy'", "no such file"]),
    ("bad graph", GOOD.replace('"random"', '"latent"\ngraph = "star"'), ["graph = 'star'", "ring"]),
    ("trace node count", GOOD.replace('"random"', '"radio"') + '[mobility]\nmodel = "trace"\nfile = "'
     + str(__import__("pathlib").Path(__file__).resolve().parents[1] / "traces" / "swarm_rwp.ns_movements") + '"\n',
     ["has 50 nodes", "nodes = 6", "set nodes = 50"]),
    ("trace without file", GOOD.replace('"random"', '"radio"') + '[mobility]\nmodel = "trace"\n', ["needs file"]),
]


@pytest.mark.parametrize("label,text,expected", CASES, ids=[c[0] for c in CASES])
def test_scenario_errors(label, text, expected, tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(text)
    check_error(p, tmp_path, *expected)


def test_schedule_shape_and_dtype(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(GOOD.replace('"random"', '"schedule"\nfile = "a.npz"'))
    np.savez(tmp_path / "a.npz", adjacency=np.ones((3, 5, 5), dtype=bool))
    check_error(p, tmp_path, "shape (3, 5, 5)", "[K, 6, 6]")
    np.savez(tmp_path / "a.npz", adjacency=np.ones((3, 6, 6), dtype=np.int64))
    check_error(p, tmp_path, "dtype int64", "bool")
    np.savez(tmp_path / "a.npz", adj=np.ones((3, 6, 6), dtype=bool))
    check_error(p, tmp_path, "no array 'adjacency'")
    (tmp_path / "a.npz").write_text("not a zip")
    check_error(p, tmp_path, "cannot read it as .npz")


def test_x0_shape(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(GOOD + '[task]\nx0 = "x.npy"\n')
    np.save(tmp_path / "x.npy", np.zeros((5, 2)))
    check_error(p, tmp_path, "shape (5, 2)", "[6, dim]")
    np.save(tmp_path / "x.npy", np.array([["a"]] * 6))
    check_error(p, tmp_path, "dtype", "numbers")


def test_set_override_errors(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(GOOD)
    check_error(p, tmp_path, "--set 'nokey'", "dotted.key=value", args=("--set", "nokey"))
    check_error(p, tmp_path, "[network] loss = 2.0", args=("--set", "network.loss=2.0"))
    check_error(p, tmp_path, "not an index", args=("--set", "protocols.3.name=x"))


def test_missing_scenario_file(tmp_path):
    check_error(tmp_path / "nope.toml", tmp_path, "no such scenario file")


def test_real_process_exit_code_and_no_traceback(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(GOOD.replace("loss = 0.1", "loss = 7"))
    r = subprocess.run([sys.executable, "-m", "netemu", "run", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: ") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
