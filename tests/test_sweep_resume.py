"""Sweeps keep what finished: interrupted by a real signal, a killed worker, a failing run; and
bad input is one line naming the key before any run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from netemu.cli import main

ROOT = Path(__file__).resolve().parents[1]

SLOW = """\
seed = 1
name = "slow"
[network]
nodes = 150
topology = "random"
p = 0.2
[run]
rounds = 120
[output]
plot = false
[[protocols]]
name = "push-sum"
"""

TINY = SLOW.replace("nodes = 150", "nodes = 8").replace("rounds = 120", "rounds = 5")


def start(path, out, *extra):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.Popen([sys.executable, "-m", "netemu", "sweep", str(path), "--grid",
                             "network.loss=0,0.1,0.2,0.3", "--seeds", "2", "--out", str(out), *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(out):
    return sorted(p.parent.name for p in (out / "runs").glob("*/summary.json")) if (out / "runs").is_dir() else []


def wait_for(cond, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_sweep_keeps_its_runs_and_a_rerun_finishes_the_rest(tmp_path, scenario_file, sig, status):
    path = scenario_file(SLOW)
    out = tmp_path / "o"
    proc = start(path, out, "--jobs", "1")
    assert wait_for(lambda: len(finished(out)) >= 2), proc.communicate(timeout=30)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    assert "the finished runs are kept" in err
    kept = finished(out)
    assert 2 <= len(kept) < 8
    assert not [p for p in out.rglob(".netemu-*")]  # no staging folder left
    stamps = {rid: (out / "runs" / rid / "metrics.csv").stat().st_mtime_ns for rid in kept}
    proc = start(path, out, "--jobs", "2")
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"8 runs (4 grid combinations × 2 seeds), {len(kept)} already finished, {8 - len(kept)} to run" in stdout
    assert len(finished(out)) == 8
    assert {rid: (out / "runs" / rid / "metrics.csv").stat().st_mtime_ns for rid in kept} == stamps
    assert len(pd.read_csv(out / "sweep.csv")) == 8 * 2  # runs × (consensus_error, disagreement)


def children(pid):
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def test_a_killed_worker_loses_only_its_run(tmp_path, scenario_file):
    path = scenario_file(SLOW)
    out = tmp_path / "o"
    proc = start(path, out, "--jobs", "1")
    assert wait_for(lambda: len(finished(out)) >= 1), proc.communicate(timeout=30)
    # the pool's worker: a spawned child (not multiprocessing's resource tracker)
    workers = [c for c in children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
    assert workers
    os.kill(workers[0], signal.SIGKILL)
    stdout, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err  # its run was given to a fresh worker once more
    assert len(finished(out)) == 8


DIVERGING = """\
        seed = 1
        [network]
        nodes = 6
        p = 0.5
        [run]
        rounds = 15
        on_diverge = "fail"
        [task]
        kind = "quadratic"
        samples = 20
        features = 3
        [output]
        plot = false
        [[protocols]]
        name = "dgd"
        lr = 0.01
        """


def test_on_diverge_fail_fails_a_netemu_run(tmp_path, scenario_file):
    path = scenario_file(DIVERGING)
    r = CliRunner().invoke(main, ["run", str(path), "--set", "protocols.0.lr=100", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert f"error: {path}: protocol 'dgd' diverged at round" in r.output
    assert 'and [run] on_diverge = "fail"' in r.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["error.txt"]
    r = CliRunner().invoke(main, ["run", str(path), "--set", "protocols.0.lr=100", "--set", "run.on_diverge=stop",
                                  "--out", str(tmp_path / "s")])
    assert r.exit_code == 0 and "DIVERGED at round" in r.output


def test_a_failing_run_is_recorded_and_the_others_complete(tmp_path, scenario_file):
    path = scenario_file(DIVERGING)
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["sweep", str(path), "--grid", "protocols.0.lr=0.01,100", "--seeds", "2",
                                  "-j", "2", "--out", str(out)])
    assert r.exit_code == 1, r.output
    assert "2 of 4 runs failed; see" in r.output
    failed = pd.read_csv(out / "failed.csv")
    assert sorted(failed["protocols.0.lr"]) == [100, 100] and sorted(failed["seed"]) == [1, 2]
    assert all("protocol 'dgd' diverged at round" in e and 'on_diverge = "fail"' in e for e in failed["error"])
    for rid, e in zip(failed["run"], failed["error"]):
        assert (out / "runs" / rid / "error.txt").read_text().strip() == e
    finals = pd.read_csv(out / "sweep.csv")
    assert list(finals[finals["status"] == "failed"]["run"]) == list(failed["run"])
    ok = finals[finals["status"] == "ok"]
    assert set(ok["protocols.0.lr"]) == {0.01} and ok["run"].nunique() == 2
    assert "| protocols.0.lr=100 | 2/2 failed |" in (out / "tables.md").read_text()
    # a re-run tries the failed runs again, and only them
    r = CliRunner().invoke(main, ["sweep", str(path), "--grid", "protocols.0.lr=0.01,100", "--seeds", "2",
                                  "-j", "1", "--out", str(out)])
    assert r.exit_code == 1 and "2 already finished, 2 to run" in r.output


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("args,message", [
    (["--grid", "network.losss=0,0.1"],
     "--grid 'network.losss=0,0.1' (value 0): {path}: [network] losss: unknown key (did you mean 'loss'?)"),
    (["--grid", "network.loss=0,high"],
     "--grid 'network.loss=0,high' (value 'high'): {path}: [network] loss = 'high' must be a number"),
    (["--grid", "run.rounds=10,2.5"], "[run] rounds = 2.5 must be a whole number"),
    (["--grid", "network.loss=0,1.5"], "[network] loss = 1.5 is out of range"),
    (["--grid", "protocols.0.lr=0.1"], "[protocols #1] lr: unknown key"),
    (["--grid", "protocols.3.lr=0.1"],
     "--grid 'protocols.3.lr=0.1': '3' is not an index of the 1 entries of protocols; use 0..0"),
    (["--seeds", "0"], "--seeds 0: give the number of seeds per grid combination"),
    (["--grid", "seed=1,2"], "--grid 'seed=1,2': seed cannot be a grid key; seeds are set with --seeds N"),
    (["--grid", "network.loss"], "--grid 'network.loss': expected KEY=V1,V2,…"),
    (["--ray", "127.0.0.1:{port}"], "--ray 127.0.0.1:{port}: cannot reach a Ray cluster at 127.0.0.1:{port}"),
    (["--ray", "auto", "--jobs", "2"], "--jobs and --ray: give one"),
])
def test_bad_input_is_one_line_before_any_run(tmp_path, scenario_file, args, message):
    path = scenario_file(TINY)
    port = closed_port()
    out = tmp_path / "o"
    r = CliRunner().invoke(main, ["sweep", str(path), *[a.format(port=port) for a in args], "--out", str(out)])
    assert r.exit_code == 2
    line = r.output.strip()
    assert "\n" not in line and line.startswith("error: ")
    assert message.format(path=path, port=port) in line
    assert not out.exists()


def test_ray_missing_says_how_to_install_it(tmp_path, scenario_file, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    r = CliRunner().invoke(main, ["sweep", str(scenario_file(TINY)), "--ray", "auto", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "--ray auto: Ray is not installed; install it with pip install 'netemu[ray]'" in r.output
    assert not (tmp_path / "o").exists()


def test_an_out_holding_another_sweep_is_refused(tmp_path, scenario_file):
    path = scenario_file(TINY)
    out = tmp_path / "o"
    assert CliRunner().invoke(main, ["sweep", str(path), "--grid", "network.loss=0,0.1", "-j", "1",
                                     "--out", str(out)]).exit_code == 0
    before = sorted(p.name for p in (out / "runs").iterdir())
    for other in (["--set", "network.p=0.5", "--grid", "network.loss=0,0.1"], ["--grid", "network.p=0.1,0.2"]):
        r = CliRunner().invoke(main, ["sweep", str(path), *other, "--out", str(out)])
        assert r.exit_code == 2
        assert f"error: --out {out}: holds the runs of another sweep" in r.output
        assert "choose another --out" in r.output
    assert sorted(p.name for p in (out / "runs").iterdir()) == before
    # more values and seeds of the same sweep are welcome: the finished runs are kept
    r = CliRunner().invoke(main, ["sweep", str(path), "--grid", "network.loss=0,0.1,0.2", "--seeds", "2",
                                  "-j", "1", "--out", str(out)])
    assert r.exit_code == 0 and "2 already finished, 4 to run" in r.output
    # a folder of other files, or of a netemu run, is not a sweep's
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    r = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "holds files and no sweep.json" in r.output


def test_sigterm_stops_a_ray_sweep_and_keeps_its_runs(tmp_path, scenario_file):
    pytest.importorskip("ray", reason="the Ray executor needs pip install 'netemu[ray]'")
    path = scenario_file(SLOW)
    out = tmp_path / "o"
    proc = start(path, out, "--ray", "auto")
    assert wait_for(lambda: len(finished(out)) >= 1, timeout=120), proc.communicate(timeout=30)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err  # the sweep's own handler, not Ray's
    assert "the finished runs are kept" in err
    assert 1 <= len(finished(out)) < 8
    assert not [p for p in out.rglob(".netemu-*")]
