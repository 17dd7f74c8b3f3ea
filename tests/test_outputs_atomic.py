"""Outputs that never lie: CSV quoting, whole-set replacement, failed and interrupted runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from netemu import registry
from netemu.errors import ScenarioError
from netemu.protocol import EventProtocol
from netemu.runner import run_scenario
from netemu.scenario.load import from_dict

ROOT = Path(__file__).resolve().parents[1]


def small(**extra):
    data = {"seed": 1, "network": {"nodes": 5, "topology": "random", "p": 0.5}, "run": {"rounds": 5},
            "protocols": [{"name": "pulm", "label": 'pulm, "fast"'}, {"name": "gossip"}]}
    data.update(extra)
    return from_dict(data)


def test_a_label_with_a_comma_round_trips_through_pandas(tmp_path):
    run_scenario(small(), tmp_path / "o", progress=False)
    df = pd.read_csv(tmp_path / "o" / "metrics.csv")
    assert set(df["protocol"]) == {'pulm, "fast"', "gossip"}
    assert len(df) == 2 * 6 * 2 and list(df.columns) == ["protocol", "round", "time", "metric", "value"]


def test_a_rerun_replaces_the_whole_set(tmp_path):
    out = tmp_path / "o"
    run_scenario(small(), out, progress=False)
    assert (out / "consensus_error.png").is_file()
    (out / "stale.txt").write_text("from an earlier run")
    assert (out / "recording.npz").is_file()
    run_scenario(small(output={"plot": False, "record": False}), out, progress=False)  # no plot, no recording
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "summary.json"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".netemu-")]


def test_an_output_folder_with_other_files_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ScenarioError, match="holds files that are not a netemu run's results"):
        run_scenario(small(), tmp_path, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


class Broken(EventProtocol):
    name = "broken"

    def start(self, x0):
        self.x = x0

    def on_start(self):
        raise RuntimeError("boom")

    def estimate(self):
        return self.x


def test_a_failed_run_leaves_only_its_error(tmp_path):
    registry.register("broken", Broken)
    try:
        from click.testing import CliRunner

        from netemu.cli import main

        path = tmp_path / "s.toml"
        path.write_text('[network]\nnodes = 4\n[[protocols]]\nname = "broken"\n')
        out = tmp_path / "o"
        r = CliRunner().invoke(main, ["run", str(path), "--out", str(out), "--no-progress"])
    finally:
        registry._extra.pop("broken", None)
    assert r.exit_code == 2 and "raised RuntimeError: boom" in r.stderr
    assert [p.name for p in out.iterdir()] == ["error.txt"]
    assert "raised RuntimeError: boom" in (out / "error.txt").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".netemu-")]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_a_run_leaves_no_temporary_folder(tmp_path, sig, code):
    path = tmp_path / "long.toml"
    path.write_text('[network]\nnodes = 400\ntopology = "random"\np = 0.05\n[run]\nrounds = 200000\n'
                    '[[protocols]]\nname = "push-sum"\n')
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "netemu", "run", str(path), "--out", str(out), "--no-progress"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline and not list(tmp_path.glob(".netemu-*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".netemu-*")), "the run never started staging"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert not list(tmp_path.glob(".netemu-*")) and not out.exists()
