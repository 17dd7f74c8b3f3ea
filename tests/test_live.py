"""Live mode: real UDP datagrams on 127.0.0.1 (never any other address), wall-clock rounds.

Acceptance: PULM on 8 nodes converges over real datagrams; the example client, a separate
process, joins and its value enters the average; thousands of malformed datagrams during a run
are all counted by reason and the run still converges; bad [live] values get one-line errors;
cancelling (or Ctrl-C) writes partial outputs.
"""

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, read_metrics
from netemu import wire
from netemu.cli import main
from netemu.errors import NetemuError, ScenarioError
from netemu.live import messages as M
from netemu.live.config import with_overrides
from netemu.live.external import Externals
from netemu.live.runtime import run_live, run_live_async
from netemu.scenario.load import from_dict
from netemu.tasks.consensus import initial_values

PY = sys.executable
CLIENT = ROOT / "examples" / "live_client.py"


def scenario(rounds=60, scale=40.0, loss=0.1, protocols=("pulm",), live=None, delay=None, seed=7, **net):
    data = {"seed": seed, "network": {"nodes": 8, "topology": "random", "p": 0.4, "loss": loss, **net},
            "run": {"rounds": rounds, "period": 1.0}, "output": {"plot": False},
            "protocols": [{"name": p} for p in protocols],
            "live": {"time_scale": scale, **(live or {})}}
    if delay:
        data["network"]["delay"] = delay
    return with_overrides(from_dict(data, source="test.toml"))


def ratio(res) -> float:
    errs = [m["consensus_error"] for _, _, m in res.rows]
    return errs[-1] / errs[0]


def simulate(sc, tmp_path, x0=None):
    """The same scenario through 'netemu run' (optionally with given initial values)."""
    from netemu.engine import SimEngine
    from netemu.runner import prepare

    traj, topo, x = prepare(sc)
    return SimEngine(sc, x if x0 is None else x0, traj, topo).run_protocol(sc.protocols[0])


def test_pulm_converges_over_datagrams_and_matches_the_simulator(tmp_path):
    sc = scenario()
    (res,) = run_live(sc, tmp_path / "out")
    c = res.counters
    assert ratio(res) < 1e-3
    assert c["messages_sent"] == 8 * 60 and res.extra["live"]["rounds_completed"] == 60
    assert sum(res.extra["rejected"].values()) == 0
    m = read_metrics(tmp_path / "out" / "metrics.csv")
    assert len(m["pulm"]["consensus_error"]) == 61
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["protocols"]["pulm"]["rejected"]["spoofed"] == 0
    assert summary["scenario"]["live"]["time_scale"] == 40.0
    sim = simulate(sc, tmp_path)
    assert c["drops"] == sim.counters["drops"]  # same losses: common random numbers
    if c["late"] == 0:  # no timing accident on a loaded machine: the very same run
        assert c["deliveries"] == sim.counters["deliveries"]
        assert res.final()["consensus_error"] == pytest.approx(sim.final()["consensus_error"], rel=1e-6,
                                                               abs=1e-12)


def test_delays_and_jitter_run_on_loop_timers(tmp_path):
    sc = scenario(rounds=40, delay={"latency": 0.05, "jitter": "exponential", "jitter_scale": 0.1})
    (res,) = run_live(sc, tmp_path / "out")
    assert ratio(res) < 1e-2
    assert res.counters["deliveries"] > 0 and res.counters["drops"] > 0


@pytest.mark.parametrize("proto,loss", [("pulm", 0.1), ("push-sum", 0.0)])
def test_example_client_joins_as_a_separate_process(proto, loss, tmp_path):
    sc = scenario(rounds=80, loss=loss, protocols=(proto,), live={"external": [7], "join_timeout": 20.0})
    procs = []

    def start_client(session):
        port = session.address[1]
        procs.append(subprocess.Popen([PY, str(CLIENT), str(port), "--id", "7", "--x0", "100"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

    (res,) = run_live(sc, tmp_path / "out", on_listen=start_client)
    out, err = procs[0].communicate(timeout=20)
    assert procs[0].returncode == 0, err
    x0 = initial_values(sc.task, 8, sc.seed, Path("."))
    x0[7] = 100.0
    target = x0.mean()
    final_7 = float(out.split("final [")[1].split("]")[0])
    assert final_7 == pytest.approx(target, abs=1e-2)  # its 100 is in everybody's average
    ext = res.extra["live"]["externals"]["7"]
    assert ext["joined"] and ext["x0"] == [100.0] and ext["transmissions"] == 81
    assert res.rows[0][2]["consensus_error"] == pytest.approx(abs(100.0 - target))
    assert ratio(res) < 1e-3
    sim = simulate(sc, tmp_path, x0)  # the simulator with 100 as node 7's value
    if res.counters["late"] == 0:
        assert res.final()["consensus_error"] == pytest.approx(sim.final()["consensus_error"], rel=1e-6,
                                                               abs=1e-12)


def test_external_node_that_leaves_is_absent_not_a_crash(tmp_path):
    sc = scenario(rounds=30, live={"external": [7], "join_timeout": 20.0})
    seen = []

    def leaver(port):  # hello, transmit in rounds 0 and 1, then bye
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(10)
        s.sendto(M.hello(7, [3.0]), ("127.0.0.1", port))
        while True:
            m = msgpack.unpackb(s.recv(65535))
            seen.append(m["t"])
            if m["t"] == "round" and m["r"] < 2:
                s.sendto(_tx(7, r=m["r"]), ("127.0.0.1", port))
            elif m["t"] == "round":
                s.sendto(M.bye(src=7), ("127.0.0.1", port))
                break
        s.close()

    import threading

    threads = []

    def start(session):
        threads.append(threading.Thread(target=leaver, args=(session.address[1],)))
        threads[0].start()

    (res,) = run_live(sc, tmp_path / "o", on_listen=start)
    threads[0].join(5)
    live = res.extra["live"]
    assert seen[0] == "welcome" and live["externals"]["7"]["left"]
    assert live["externals"]["7"]["transmissions"] == 2 and live["absent"] > 0
    assert sum(res.extra["rejected"].values()) == 0 and live["rounds_completed"] == 30


def _tx(src, r=0, v=M.VERSION, **extra):
    f = {"x": wire.pack_array(np.zeros(1)), "d": wire.pack_array(np.zeros(8))}
    return msgpack.packb({"v": v, "t": "tx", "src": src, "r": r, "f": f, **extra}, use_bin_type=True)


async def fuzz(session, sent: dict, done: asyncio.Event) -> None:
    """Thousands of bad datagrams at the medium (and some at a node), paced so none is lost."""
    rnd = random.Random(5)
    medium = session.medium
    node_addr = medium.addr[2]
    kinds = {
        "random": lambda: rnd.randbytes(rnd.randint(1, 300)),
        "truncated": lambda: (lambda b: b[:rnd.randint(0, len(b) - 1)])(_tx(3)),
        "version": lambda: (_tx(3, v=3) if rnd.random() < 0.5
                            else msgpack.packb({"v": 9, "t": "hello", "id": None})),
        "unknown_sender": lambda: _tx(rnd.choice([8, 99, -1, 2**40])),
        "spoofed": lambda: _tx(rnd.randrange(8)) if rnd.random() < 0.8 else M.bye(src=3),
        "oversize": lambda: rnd.randbytes(rnd.randint(2001, 9000)),
        "malformed": lambda: rnd.choice([msgpack.packb([1, 2]), msgpack.packb({"t": "tx"}),
                                         msgpack.packb({"v": 1}), msgpack.packb({"v": 1, "t": "rx"}),
                                         msgpack.packb({"v": 1, "t": "tx", "src": "a", "r": 0, "f": {}}),
                                         msgpack.packb({"v": 1, "t": 3})]),
        "hello": lambda: M.hello(rnd.randrange(8)),
        "not_medium": lambda: rnd.randbytes(40),
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    names = list(kinds)
    total = 0
    try:
        for _ in range(150):
            for _ in range(20):
                kind = rnd.choice(names)
                data = kinds[kind]()
                sock.sendto(data, node_addr if kind == "not_medium" else session.address)
                sent[kind] = sent.get(kind, 0) + 1
                total += 1
            deadline = time.monotonic() + 2.0
            while sum(medium.rejected.values()) < total and time.monotonic() < deadline:
                await asyncio.sleep(0.0005)
    finally:
        sock.close()
        done.set()


def test_fuzzed_medium_counts_every_bad_datagram_and_still_converges(tmp_path):
    sc = scenario(rounds=80, scale=30.0, live={"max_datagram": 2000})
    sent: dict = {}
    done = asyncio.Event()
    tasks = []

    def start(session):
        tasks.append(asyncio.get_running_loop().create_task(fuzz(session, sent, done)))

    async def main_():
        (res,) = await run_live_async(sc, tmp_path / "out", on_listen=start)
        return res, done.is_set()

    res, finished = asyncio.run(main_())
    assert finished, "the fuzzer did not finish within the run"
    rej = res.extra["rejected"]
    total = sum(sent.values())
    assert total == 3000
    assert sum(rej.values()) == total, (rej, sent)
    for kind in ("version", "unknown_sender", "spoofed", "oversize", "hello", "not_medium"):
        assert rej[kind] == sent[kind], kind
    assert rej["garbage"] + rej["truncated"] + rej["malformed"] == (
        sent["random"] + sent["truncated"] + sent["malformed"])
    assert rej["truncated"] >= sent["truncated"] and rej["malformed"] >= sent["malformed"]
    assert rej["error"] == rej["round"] == rej["duplicate"] == 0
    assert ratio(res) < 1e-3
    assert res.counters["messages_sent"] == 8 * 80
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["protocols"]["pulm"]["rejected"] == rej


def test_cancelling_writes_partial_outputs(tmp_path):
    sc = scenario(rounds=1000, scale=50.0)  # 20 s if left alone

    async def main_():
        task = asyncio.ensure_future(run_live_async(sc, tmp_path / "out"))
        await asyncio.sleep(0.6)
        task.cancel()
        return await task

    t = time.monotonic()
    (res,) = asyncio.run(main_())
    assert time.monotonic() - t < 5
    live = res.extra["live"]
    assert live["interrupted"] and 3 < live["rounds_completed"] < 1000
    m = read_metrics(tmp_path / "out" / "metrics.csv")
    assert len(m["pulm"]["consensus_error"]) == live["rounds_completed"] + 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["protocols"]["pulm"]["live"]["interrupted"] is True


def test_ctrl_c_ends_the_cli_cleanly_with_partial_results(tmp_path, scenario_file):
    path = scenario_file("""
        [network]
        nodes = 8
        p = 0.4
        [run]
        rounds = 2000
        [live]
        time_scale = 50
        [output]
        plot = false
        [[protocols]]
        name = "pulm"
    """)
    out = tmp_path / "out"
    proc = subprocess.Popen([str(Path(PY).parent / "netemu"), "live", str(path), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert "medium 127.0.0.1:" in line, line + proc.stderr.read()
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocols"]["pulm"]["live"]["interrupted"] is True
    assert (out / "metrics.csv").read_text().count("\n") > 3


def test_cli_live_writes_the_run_outputs(tmp_path):
    path = ROOT / "scenarios" / "live_pulm.toml"
    r = CliRunner().invoke(main, ["live", str(path), "--out", str(tmp_path / "o"), "--time-scale", "80",
                                  "--duration", "0.75"])
    assert r.exit_code == 0, r.output
    assert "medium 127.0.0.1:" in r.output and "consensus_error" in r.output
    for f in ("metrics.csv", "summary.json", "consensus_error.png"):
        assert (tmp_path / "o" / f).is_file()
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["scenario"]["run"]["rounds"] == 60
    m = read_metrics(tmp_path / "o" / "metrics.csv")
    assert m["pulm"]["consensus_error"][-1] < 1e-2 * m["pulm"]["consensus_error"][0]


BAD = [
    ({"time_scale": 0}, "[live] time_scale = 0.0 is out of range: it must be within (0, "),
    ({"time_scale": "fast"}, "[live] time_scale = 'fast' must be a number"),
    ({"port_base": 70000}, "[live] port_base = 70000 is out of range"),
    ({"external": [8]}, "[live] external = [8] names node 8, but node ids are 0..7"),
    ({"external": [1, 1]}, "lists node 1 twice"),
    ({"external": list(range(8))}, "leaves no local node"),
    ({"external": 3}, "[live] external = 3 must be a list of whole numbers"),
    ({"max_datagram": 100}, "[live] max_datagram = 100 is out of range: it must be within [512, 65507]"),
    ({"join_timeout": -1}, "[live] join_timeout = -1.0 is out of range"),
    ({"timescale": 2}, "[live] timescale: unknown key (did you mean 'time_scale'?)"),
]


@pytest.mark.parametrize("live,text", BAD)
def test_bad_live_values_get_one_line_errors(live, text):
    data = {"network": {"nodes": 8}, "protocols": [{"name": "pulm"}], "live": live}
    with pytest.raises(ScenarioError) as e:
        from_dict(data, source="s.toml")
    assert text in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("s.toml: ")


def test_live_only_checks_before_any_socket(tmp_path, scenario_file):
    big = scenario_file("""
        [network]
        nodes = 100
        [live]
        max_message = 600
        [[protocols]]
        name = "pulm"
    """)
    r = CliRunner().invoke(main, ["live", str(big), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2
    assert "one node's message is 855 bytes" in r.output and "raise max_message" in r.output
    assert not (tmp_path / "o").exists()
    two = scenario_file("""
        [network]
        nodes = 8
        [live]
        external = [7]
        [[protocols]]
        name = "pulm"
        [[protocols]]
        name = "push-sum"
    """, "two.toml")
    r = CliRunner().invoke(main, ["live", str(two), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs exactly one [[protocols]] entry" in r.output
    r = CliRunner().invoke(main, ["live", str(big), "--time-scale", "-2"])
    assert r.exit_code == 2 and "error: --time-scale = -2.0 is out of range" in r.output


def test_missing_external_node_is_a_clear_error(tmp_path):
    sc = scenario(live={"external": [7], "join_timeout": 0.2})
    with pytest.raises(NetemuError, match=r"external node\(s\) \[7\] did not say hello within "
                                          r"\[live\] join_timeout = 0.2 s"):
        run_live(sc, tmp_path / "o")
    assert not (tmp_path / "o" / "summary.json").exists()


def test_hello_claims_refusals_and_repeats():
    x0 = np.arange(8.0)[:, None]
    ext = Externals([5, 7], x0, "pulm", dict(n=8, fields={}, period=1.0, time_scale=1.0,
                                              max_datagram=65000))

    def ask(addr, **msg):
        reply, node = ext.hello(msg, addr)
        return msgpack.unpackb(reply), node

    w, node = ask(("127.0.0.1", 1), id=None)
    assert node == 5 and w["t"] == "welcome" and w["x0"] == [5.0] and w["n"] == 8
    assert ask(("127.0.0.1", 1), id=7)[1] == 5  # a repeated hello from the same address
    assert "taken" in ask(("127.0.0.1", 2), id=5)[0]["why"]
    assert "not external" in ask(("127.0.0.1", 2), id=3)[0]["why"]
    assert "x0 must be a list of 1 finite numbers" in ask(("127.0.0.1", 2), id=7, x0=[1, 2])[0]["why"]
    assert "x0 must be a list of 1 finite numbers" in ask(("127.0.0.1", 2), id=7, x0=[float("nan")])[0]["why"]
    assert "speaks protocol 'pulm'" in ask(("127.0.0.1", 2), id=7, protocol="push-sum")[0]["why"]
    w, node = ask(("127.0.0.1", 2), id=7, x0=[100])
    assert node == 7 and w["x0"] == [100.0] and ext.all_joined()
    assert "no free external node id" in ask(("127.0.0.1", 3), id=None)[0]["why"]
    assert ext.initial(x0)[7, 0] == 100.0
    ext.started = True
    assert "has started" in ask(("127.0.0.1", 4), id=None)[0]["why"]


@pytest.mark.parametrize("data,reason", [
    (b"", "truncated"), (b"\xc1", "garbage"), (b"\x01\x02", "garbage"), (b"\x92\x01", "truncated"),
    (msgpack.packb([1]), "malformed"), (msgpack.packb({"v": "1", "t": "tx"}), "malformed"),
    (msgpack.packb({"v": 3, "t": "tx"}), "version"), (b"\x00" * 600, "oversize"),
    (msgpack.packb({"v": 1, "t": "tx"})[:-1], "truncated"), (b"\xa2\xff\xfe", "garbage"),
])
def test_decode_names_the_reason(data, reason):
    with pytest.raises(M.Rejected) as e:
        M.decode(data, 512)
    assert e.value.reason == reason
