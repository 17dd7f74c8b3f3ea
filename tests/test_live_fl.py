"""Federated learning live: the FL protocols over real UDP equal the simulated run, update by update,
with model messages that need fragments; an outside process joins as an FL client.

The acceptance run: a server and 4 clients over an uplink with loss and retries, a digits MLP whose
float32 model (77 kB) is longer than one datagram, fedavg, fedasync, fedbuff, and fedfix with top-k
compressed updates and error feedback (values and int32 indices, fragmented too). Every metrics row
(loss, accuracy, updates applied, staleness, bytes, model version at each sample), every counter
and every event of the trace (each transmission, delivery and drop, with its simulated time) are
the same in `netemu live` and `netemu run` on the same seed.
"""

import subprocess
import sys

import msgpack
import numpy as np
import pytest

from conftest import ROOT
from netemu import wire
from netemu.live.config import with_overrides
from netemu.live.runtime import run_live
from netemu.runner import run_scenario
from netemu.scenario.load import from_dict

HIDDEN = 256  # digits MLP 64-256-10: 19,210 float32 parameters, a 77 kB model message
PROTOCOLS = [{"name": "fedavg", "local_steps": 3, "lr": 0.1},
             {"name": "fedasync", "local_steps": 3, "lr": 0.1, "alpha": 0.6},
             {"name": "fedbuff", "local_steps": 3, "lr": 0.1, "K": 2, "M": 4},
             {"name": "fedfix", "local_steps": 3, "lr": 0.1, "interval": 0.5,
              "compress": {"kind": "topk", "fraction": 0.5, "feedback": "ef"}}]


def fl_scenario(protocols=PROTOCOLS, nodes=5, loss=0.2, scale=5.0, rounds=4, live=None, seed=3):
    return with_overrides(from_dict({
        "seed": seed,
        "network": {"nodes": nodes, "topology": "random", "p": 0.0,
                    "uplink": {"server": 0, "latency": 0.05, "bandwidth": 2e6, "loss": loss, "retries": 1}},
        "run": {"rounds": rounds, "period": 1.0},
        "task": {"kind": "digits", "hidden": HIDDEN, "batch": 16},
        "compute": {"device": "cpu", "threads": 1,
                    "step_time": {"dist": "lognormal", "median": 0.05, "sigma": 0.5}},
        "output": {"plot": False, "trace": True},
        "protocols": protocols, "live": {"time_scale": scale, **(live or {})}}, source="live_fl.toml"))


def trace(path):
    with open(path, "rb") as f:
        u = msgpack.Unpacker(f, raw=False)
        next(u)
        return sorted((r.get("p", ""), r["e"], r["t"], r["src"], r.get("dst", -1), r.get("why", ""),
                       r.get("bytes", 0)) for r in u)


def on_time(res) -> bool:
    """Every copy was taken in before its instant (a loaded machine can make the wall clock lag)."""
    return res.extra["live"]["late_receptions"] == 0


def test_live_fl_run_equals_the_simulated_one_update_by_update(tmp_path):
    sc = fl_scenario()
    model = {"x": np.zeros((1, 64 * HIDDEN + HIDDEN + HIDDEN * 10 + 10), np.float32), "v": np.zeros((1, 1), np.int64)}
    assert wire.message_bytes(model, 5) > sc.live["max_datagram"]  # the model needs fragments
    lives = run_live(sc, tmp_path / "live")
    sims = run_scenario(sc, tmp_path / "sim", progress=False)
    assert [r.label for r in lives] == [r.label for r in sims] == ["fedavg", "fedasync", "fedbuff", "fedfix"]
    for live, sim in zip(lives, sims):
        assert on_time(live), (live.label, live.extra["live"])
        assert len(live.rows) == len(sim.rows) == 5
        assert live.rows == sim.rows, live.label  # every sample, bit for bit
        assert sim.rows[-1][2]["updates_applied"] >= 4 and sim.rows[-1][2]["model_version"] >= 1
        for key in ("messages_sent", "bytes_sent", "drops", "retries"):
            assert live.counters.get(key) == sim.counters.get(key), (live.label, key)
        assert sim.counters["drops"] > 0 and sim.counters["retries"] > 0  # losses and retries happened
        # the simulator counts a delivery when it is planned; live mode when it is taken in
        assert live.counters["deliveries"] + live.extra["live"]["not_taken"] == sim.counters["deliveries"]
        fr = live.extra["datagrams"]["fragments"]
        assert fr["sent_by_local_nodes"] >= 2 * live.counters["messages_sent"]  # every message fragmented
        assert fr["messages_lost"] == 0 and sum(live.extra["rejected"].values()) == 0
    assert trace(tmp_path / "live" / "events.msgpack") == trace(tmp_path / "sim" / "events.msgpack")


# -- an outside process as an FL client ---------------------------------------------------------

@pytest.mark.parametrize("keyed", [False, True])
def test_an_outside_process_takes_part_as_an_fl_client(tmp_path, keyed):
    key = tmp_path / "live.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    sc = fl_scenario(protocols=[PROTOCOLS[1]], nodes=4, loss=0.0, scale=4.0,
                     live={"external": [3], "join_timeout": 30.0, **({"key_file": str(key)} if keyed else {})})
    procs = []

    def start(session):
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "examples" / "fl_client.py"),
                                       str(session.address[1]), "--id", "3"] + (["--key-file", str(key)] if keyed else []),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

    (res,) = run_live(sc, tmp_path / "o", on_listen=start)
    out, err = procs[0].communicate(timeout=30)
    assert procs[0].returncode == 0, err
    updates = int(out.split("updates ")[1])
    assert updates >= 2  # it received the model and answered, more than once
    ext = res.extra["live"]["externals"]["3"]
    assert ext["joined"] and not ext["departed"]
    assert updates - 1 <= ext["transmissions"] <= updates  # the last may come after the run's end
    assert res.extra["live"]["authenticated"] is keyed
    assert sum(res.extra["rejected"].values()) == 0, res.extra["rejected"]
    fr = res.extra["datagrams"]["fragments"]
    assert fr["at_medium"]["messages"] >= res.counters["messages_sent"]  # every message came in fragments
    assert fr["sent_by_medium"] > 0
    # nothing lost, but the client's update that was coming in when the run ended
    assert fr["messages_lost"] == fr["at_medium"]["unfinished"] <= 1
    with open(tmp_path / "o" / "events.msgpack", "rb") as f:
        u = msgpack.Unpacker(f, raw=False)
        next(u)
        recs = list(u)
    to_server = [r for r in recs if r["e"] == "rx" and r["src"] == 3 and r["dst"] == 0]
    sent_by_3 = [r for r in recs if r["e"] == "tx" and r["src"] == 3]
    assert len(sent_by_3) == ext["transmissions"] and len(to_server) >= ext["transmissions"] - 1
    last = res.rows[-1][2]
    assert last["updates_applied"] >= len(to_server) and last["bytes_up"] > 0


def test_external_fl_updates_are_checked_before_the_server_sees_them():
    from types import SimpleNamespace

    from netemu.fl.compress import build_codec
    from netemu.live.external import FLClients

    P = 6
    proto = SimpleNamespace(server=0, base={3: np.zeros(P)}, version=2, P=P,
                            codec=build_codec(None, [(P,)], 5, "compress"))
    cl = FLClients(proto, {"c_x": ["<f4", [P]], "v": ["<i8", [1]]})

    def f(x=np.ones(P, np.float32), v=1, **extra):
        return {"c_x": wire.pack_array(x), "v": wire.pack_array(np.array([v], np.int64)), **extra}

    assert cl.check(3, 0, f()) == "unexpected"  # no model was sent to it
    cl.model_sent(3)
    assert cl.check(3, 1, f()) == "unexpected"  # not to the server
    assert cl.check(3, 0, f(v=3)) == "unexpected"  # a version the server never had
    assert cl.check(3, 0, f(v=-1)) == "unexpected"
    assert cl.check(3, 0, f(x=np.ones(P))) == "malformed"  # float64, not the model's float32
    assert cl.check(3, 0, f(x=np.ones(P + 1, np.float32))) == "malformed"
    assert cl.check(3, 0, f(extra=wire.pack_array(np.zeros(1)))) == "malformed"
    assert cl.check(3, 0, f(x=np.full(P, np.nan, np.float32))) == "malformed"
    assert cl.check(4, 0, f()) == "unexpected"  # another client, never sent a model
    assert cl.check(3, 0, f()) is None  # the awaited update
    assert cl.check(3, 0, f()) == "unexpected"  # one update per model


def test_fl_external_settings_are_checked_before_any_socket(tmp_path):
    from netemu.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"\[live\] external = \[0\] includes the FL server \(node 0\)"):
        run_live(fl_scenario(protocols=[PROTOCOLS[1]], live={"external": [0]}), tmp_path / "o")
    sc = fl_scenario(protocols=[{"name": "dgd", "lr": 0.1}], live={"external": [3]})
    with pytest.raises(ScenarioError, match=r"external nodes take part in consensus tasks and as FL clients only"):
        run_live(sc, tmp_path / "o")


@pytest.mark.slow
def test_the_stragglers_scenario_live_equals_the_simulated_one(tmp_path):
    """scenarios/fl_stragglers.toml (51 nodes, the five FL protocols), 15 simulated seconds at time
    scale 10: the wall clock falls behind (seconds, with 50 clients), yet every event runs in its
    simulated order, so each protocol's rows equal netemu run's."""
    from netemu.scenario.load import load

    sc = with_overrides(load(ROOT / "scenarios" / "fl_stragglers.toml", (), None), 10.0, None, 1.5)
    lives = run_live(sc, tmp_path / "live")
    sims = run_scenario(sc, tmp_path / "sim", progress=False)
    assert len(lives) == len(sims) == 5
    for live, sim in zip(lives, sims):
        assert live.extra["live"]["late_receptions"] == 0 and sum(live.extra["rejected"].values()) == 0
        assert len(live.rows) == 16 and live.rows == sim.rows, live.label
        for key in ("messages_sent", "bytes_sent", "drops", "retries"):
            assert live.counters.get(key) == sim.counters.get(key), (live.label, key)


def test_a_model_that_loses_a_fragment_is_a_drop_and_the_server_moves_on(tmp_path):
    """The medium loses one fragment of the first model it sends client 2: the copy never comes
    whole, counts as a drop of that reception (incomplete) at its planned instant, the server's
    acknowledgement timeout frees client 2, and it gets a model again later."""
    from netemu.live import fragments

    sc = fl_scenario(protocols=[PROTOCOLS[1]], loss=0.0, live={"reassembly_timeout": 0.05})
    cut = []

    def lossy_medium(session):
        medium = session.medium
        send = medium.transport.sendto

        def lossy(data, addr):
            if not cut and addr == medium.addr[2] and fragments.is_fragment(data):
                cut.append(msgpack.unpackb(data)["m"])
                return
            send(data, addr)

        medium.transport.sendto = lossy

    (live,) = run_live(sc, tmp_path / "live", on_listen=lossy_medium)
    (sim,) = run_scenario(sc, tmp_path / "sim", progress=False)
    assert len(cut) == 1
    drops = [r for r in trace(tmp_path / "live" / "events.msgpack") if r[1] == "drop"]
    assert [(r[3], r[4], r[5]) for r in drops] == [(0, 2, "incomplete")]  # server → client 2
    assert live.counters["drops"] == sim.counters["drops"] + 1 == 1
    lost_at = drops[0][2]
    later = [r for r in trace(tmp_path / "live" / "events.msgpack")
             if r[1] == "rx" and r[4] == 2 and r[2] > lost_at + 1.0]  # after the server's 1 s timeout
    assert later, "client 2 never got a model again"
    assert live.extra["datagrams"]["fragments"]["at_local_nodes"]["timed_out"] == 1


class HostileClient:
    """An outside FL client (a thread, plain UDP) that answers every model well, but also sends,
    before and after its first answer, updates the server must never see."""

    def __init__(self, port):
        import socket

        self.medium = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.sent: dict = {}
        self.answered = 0

    def send(self, s, x, v, why=None, drop=()):
        from netemu.live import fragments

        f = {"c_x": x, "v": np.array([v], np.int64)}
        data = wire.encode_event(3, s, 0.0, {k: a for k, a in f.items() if k not in drop}, 0)
        for piece in fragments.split(data, self.no, 65000) if len(data) > 65000 else [data]:
            self.sock.sendto(piece, self.medium)
        self.no += 1
        if why:
            self.sent[why] = self.sent.get(why, 0) + 1

    def play(self):
        from netemu.live import fragments

        self.no = 0
        self.sock.sendto(msgpack.packb({"v": 2, "t": "hello", "id": 3}), self.medium)
        r = fragments.Reassembler(1 << 24, 1 << 26, 5.0)
        s = 0
        while True:
            data, _ = self.sock.recvfrom(65535)
            m = msgpack.unpackb(data)
            if m["t"] == "frag":
                whole = r.feed("m", m, 0.0)
                if whole is None:
                    continue
                m = msgpack.unpackb(whole)
            if m["t"] == "welcome":
                P = m["fields"]["x"][1][0]
                self.send(0, np.zeros(P, np.float32), 0, "unexpected")  # no model sent to it yet
            elif m["t"] == "bye":
                return
            elif m["t"] == "tx":
                x = np.frombuffer(m["f"]["x"][2], np.float32)
                v = int(np.frombuffer(m["f"]["v"][2], np.int64)[0])
                if not self.answered:
                    self.send(s + 5, -0.01 * x, v, "malformed")  # a message number out of turn
                    self.send(s, np.full_like(x, np.nan), v, "non_finite")
                    self.send(s, -0.01 * x, v + 7, "unexpected")  # a version the server never had
                    self.send(s, -0.01 * x, v, "malformed", drop=("v",))
                self.send(s, -0.01 * x, v)  # the update the server waits for
                s += 1
                if not self.answered:
                    self.send(s, -0.01 * x, v, "unexpected")  # a second answer to one model
                self.answered += 1


def test_an_outside_fl_client_cannot_send_what_the_server_does_not_wait_for(tmp_path):
    import threading

    sc = fl_scenario(protocols=[PROTOCOLS[1]], nodes=4, loss=0.0, scale=4.0,
                     live={"external": [3], "join_timeout": 30.0})
    peers = []

    def start(session):
        peers.append(HostileClient(session.address[1]))
        peers[0].thread = threading.Thread(target=peers[0].play, daemon=True)
        peers[0].thread.start()

    (res,) = run_live(sc, tmp_path / "o", on_listen=start)
    peer = peers[0]
    peer.thread.join(10)
    peer.sock.close()
    rej = res.extra["rejected"]
    assert {k: v for k, v in rej.items() if v} == peer.sent  # each counted under its reason
    assert peer.answered >= 2 and res.extra["live"]["externals"]["3"]["transmissions"] >= peer.answered - 1
    assert res.rows[-1][2]["updates_applied"] > 0 and np.isfinite(res.rows[-1][2]["loss"])
