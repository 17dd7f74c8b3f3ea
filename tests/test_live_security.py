"""Live mode trusts nothing it receives: values, tags, sequence numbers, ids, load, silence.

Real sockets, small scenarios at high time scales (each run well under a few seconds):
a forged, a replayed and a wrongly tagged datagram are dropped and counted; a NaN transmission is
rejected and the run equals the run without it; a second hello for a taken id is refused and
listed; a flood from an address outside the run is rate-limited and counted while the run stays
the same; a client killed with SIGKILL is reported departed within [live] timeout; a non-loopback
host needs a key or --insecure; a run that loses too many datagrams exits with status 3.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT
from netemu import wire
from netemu.cli import main
from netemu.errors import ScenarioError
from netemu.live import auth
from netemu.live import messages as M
from netemu.live.config import security, with_overrides
from netemu.live.external import Externals
from netemu.live.runtime import LocalNode, failure, run_live, run_live_async
from netemu.scenario.load import from_dict

PY = sys.executable
CLIENT = ROOT / "examples" / "live_client.py"
KEY = b"0123456789abcdef0123456789abcdef"


def scenario(rounds=30, scale=40.0, loss=0.1, live=None, seed=7, base_dir=None, protocol="pulm", nodes=8,
             trace=False):
    data = {"seed": seed, "network": {"nodes": nodes, "topology": "random", "p": 0.4, "loss": loss},
            "run": {"rounds": rounds, "period": 1.0}, "output": {"plot": False, "trace": trace},
            "protocols": [{"name": protocol}], "live": {"time_scale": scale, **(live or {})}}
    return with_overrides(from_dict(data, source="sec.toml", base_dir=base_dir))


def keyfile(tmp_path, text=KEY.decode() + "\n") -> str:
    p = tmp_path / "live.key"
    p.write_text(text)
    return str(p)


def tx(src, r, x=3.0, n=8) -> bytes:
    """A well-shaped PULM transmission of node ``src`` (x = [x], d = e_src)."""
    return wire.encode_transmission(src, r, {"x": np.array([x]), "d": np.eye(n)[src]})


class Peer:
    """An external node in a thread: hello (the handshake of docs/wire.md with a key), then one
    transmission per `round` datagram, the same every round (a stubborn PULM node), until `bye`.
    ``before(r)`` gives extra datagrams (payloads, tagged like the rest) to send before round r's."""

    def __init__(self, port, node=7, key=None, before=None):
        self.medium = ("127.0.0.1", port)
        self.node, self.before = node, before
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.ring = auth.Keyring(key, auth.ZERO_RUN) if key else None
        self.seq = 0
        self.sent: list[bytes] = []  # every datagram, as sent
        self.seen: list[dict] = []
        self.reply = None

    def seal(self, payload: bytes) -> bytes:
        if self.ring is None:
            return payload
        self.seq += 1
        return self.ring.seal(payload, auth.MEDIUM, self.seq)

    def send(self, payload: bytes) -> None:
        data = self.seal(payload)
        self.sent.append(data)
        self.sock.sendto(data, self.medium)

    def recv(self, to) -> dict:
        while True:
            data, addr = self.sock.recvfrom(65535)
            if addr != self.medium:
                continue
            if self.ring is None:
                return msgpack.unpackb(data)
            m = msgpack.unpackb(data[:-auth.TRAILER])
            ring = auth.Keyring(KEY, m["run"]) if m.get("t") == "challenge" else self.ring
            payload, _, _ = ring.open(data, to)  # raises if the medium's tag does not verify
            return msgpack.unpackb(payload)

    def hello(self, **extra) -> dict:
        nonce = os.urandom(16)
        msg = M.hello(self.node, nonce=nonce, **extra)
        if self.ring is not None:
            self.send(msg)
            c = self.recv(auth.HANDSHAKE)
            assert c["t"] == "challenge" and c["nonce"] == nonce
            self.ring = auth.Keyring(KEY, c["run"])
        self.send(msg)
        self.reply = self.recv(auth.HANDSHAKE)
        return self.reply

    def play(self) -> None:
        w = self.hello()
        if w["t"] != "welcome":
            return
        while True:
            m = self.recv(self.node)
            self.seen.append(m)
            if m["t"] == "round":
                for extra in (self.before(m["r"]) if self.before else ()):
                    self.send(extra)
                self.send(tx(self.node, m["r"]))
            elif m["t"] == "bye":
                return

    def start(self):
        self.thread = threading.Thread(target=self.play, daemon=True)
        self.thread.start()
        return self


def run_with_peer(sc, out, **peer):
    peers = []

    def start(session):
        peers.append(Peer(session.address[1], **peer).start())

    (res,) = run_live(sc, out, on_listen=start)
    peers[0].thread.join(5)
    return res, peers[0]


def on_time(res) -> bool:
    return (res.counters["late"] == 0 and res.extra["live"]["late_receptions"] == 0
            and res.extra["live"]["late_tx"] == 0 and res.extra["rejected"]["round"] == 0)


def same_run(a, b) -> None:
    """Two live runs of one scenario are the same run, when every datagram was on time in both
    (on a loaded machine a copy can miss its round: then the runs may differ, as in test_live)."""
    if on_time(a) and on_time(b):
        assert a.rows == b.rows
        for key in ("messages_sent", "deliveries", "bytes_sent", "drops"):
            assert a.counters[key] == b.counters[key], key


# -- values ------------------------------------------------------------------------------------


def test_nan_inf_and_huge_transmissions_are_rejected_and_the_run_is_unchanged(tmp_path):
    sc = scenario(rounds=25, live={"external": [7], "join_timeout": 10.0})
    poison = {3: [tx(7, 3, float("nan"))], 5: [tx(7, 5, float("inf"))], 8: [tx(7, 8, 1e300)],
              9: [tx(7, 9, -2e12)]}
    bad, bad_peer = run_with_peer(sc, tmp_path / "bad", before=lambda r: poison.get(r, ()))
    good, _ = run_with_peer(sc, tmp_path / "good")
    rej = bad.extra["rejected"]
    assert rej["non_finite"] == 2 and rej["too_large"] == 2, (rej, bad.extra["live"])
    assert sum(rej.values()) == 4 and sum(good.extra["rejected"].values()) == 0, rej
    assert bad.extra["live"]["externals"]["7"]["transmissions"] == 26  # the valid one of each round
    assert all(np.isfinite(m["consensus_error"]) for _, _, m in bad.rows)
    same_run(bad, good)
    summary = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert summary["protocols"]["pulm"]["rejected"]["non_finite"] == 2


def test_value_checks_and_x0_bound():
    spec = M.FieldSpec({"x": np.zeros((8, 1)), "d": np.zeros((8, 8))})
    f = msgpack.unpackb(tx(1, 0), raw=False)["f"]
    assert spec.ok(f) and spec.bad_values(f, 1e12) is None
    for v, why in ((float("nan"), "non_finite"), (float("-inf"), "non_finite"), (1e300, "too_large"),
                   (-1e13, "too_large")):
        assert spec.bad_values(msgpack.unpackb(tx(1, 0, v), raw=False)["f"], 1e12) == why
    assert M.bad_array(np.array([1, 2**62], dtype=np.int64), 1e12) == "too_large"
    assert M.check_x0([5.0], 1, 1e12) == [5.0] and M.check_x0([1e13], 1, 1e12) is None


# -- authentication ----------------------------------------------------------------------------


def test_forged_replayed_and_wrongly_tagged_datagrams_are_dropped_and_counted(tmp_path):
    sc = scenario(rounds=25, live={"external": [7], "key_file": keyfile(tmp_path), "join_timeout": 10.0})
    outsider = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    outsider.bind(("127.0.0.1", 0))
    holder = {}

    def attacks(r):
        peer, port = holder["peer"], holder["port"]
        if r == 4:  # replay: the peer's own round-3 transmission, byte for byte, from its address
            peer.sock.sendto(peer.sent[-1], peer.medium)
        if r == 5:  # a wrong tag: the peer's next datagram with one tag bit flipped
            peer.seq += 1
            data = bytearray(peer.ring.seal(tx(7, 5, 50.0), auth.MEDIUM, peer.seq))
            data[-1] ^= 1
            peer.sock.sendto(bytes(data), peer.medium)
        if r == 6:  # forged: no key, so a plain message, and one with a made-up trailer
            outsider.sendto(tx(3, 6, 50.0), ("127.0.0.1", port))
            outsider.sendto(tx(3, 6, 50.0) + os.urandom(24), ("127.0.0.1", port))
            # and a right tag for another run: replayed from an earlier run
            other = auth.Keyring(KEY, bytes(range(16)))
            peer.seq += 1
            peer.sock.sendto(other.seal(tx(7, 6, 50.0), auth.MEDIUM, peer.seq), peer.medium)
        return ()

    def start(session):
        holder["port"] = session.address[1]
        holder["peer"] = Peer(session.address[1], key=KEY, before=attacks).start()

    (res,) = run_live(sc, tmp_path / "attacked", on_listen=start)
    holder["peer"].thread.join(5)
    outsider.close()
    rej = res.extra["rejected"]
    assert rej["replayed"] == 1 and rej["bad_tag"] == 3 and rej["unauthenticated"] == 1, rej
    assert sum(rej.values()) == 5
    live = res.extra["live"]
    assert live["authenticated"] and len(live["run_id"]) == 32
    assert live["externals"]["7"]["transmissions"] == 26
    # the sequence numbers the peer burnt on rejected datagrams show as gaps, nothing else is lost
    assert res.extra["dropped"] == {"kernel": 0, "rate_limit": 0, "seq_gap": 2}
    assert live["failure"] is None
    peer = holder["peer"]
    assert [m["r"] for m in peer.seen if m["t"] == "round"] == list(range(26))
    plain, _ = run_with_peer(scenario(rounds=25, live={"external": [7], "join_timeout": 10.0}),
                             tmp_path / "plain")
    same_run(res, plain)  # authentication changes nothing in the run


def test_local_nodes_check_the_medium_copies():
    ring = auth.Keyring(KEY, auth.new_run_id())
    inbox, rejected, dropped = [], dict.fromkeys(M.REASONS, 0), {"seq_gap": 0}
    medium = ("127.0.0.1", 4000)
    node = LocalNode(2, inbox, medium, rejected, lambda: None, ring, dropped)
    copy = ring.seal(tx(1, 0), 2, 1)
    node.datagram_received(copy, medium)
    node.datagram_received(copy, medium)  # replayed
    node.datagram_received(ring.seal(tx(1, 0), 3, 2), medium)  # a copy meant for node 3
    node.datagram_received(tx(1, 0), medium)  # untagged
    node.datagram_received(ring.seal(tx(1, 0), 2, 5), medium)  # numbers 2 to 4 never came
    node.datagram_received(ring.seal(tx(1, 0), 2, 6), ("127.0.0.1", 4001))  # not from the medium
    assert [d for _, d in inbox] == [tx(1, 0)] * 2
    assert rejected["replayed"] == 1 and rejected["bad_tag"] == 1 and rejected["unauthenticated"] == 1
    assert rejected["not_medium"] == 1 and dropped["seq_gap"] == 3


def test_window_and_keyring():
    w = auth.Window()
    assert [w.accept(s) for s in (5, 6, 9)] == [0, 0, 2]
    assert w.accept(8) == -1  # a late one fills its gap
    for s in (9, 8, 5, 9 - 64):
        with pytest.raises(M.Rejected, match="replayed"):
            w.accept(s)
    assert w.accept(200) == 190 and w.top == 200
    ring = auth.Keyring(KEY, bytes(16))
    data = ring.seal(b"\x81\xa1t\xa2tx", auth.MEDIUM, 7)
    assert ring.open(data, auth.MEDIUM) == (b"\x81\xa1t\xa2tx", 7, True)
    with pytest.raises(M.Rejected, match="bad_tag"):
        ring.open(data, 3)  # another receiver


def test_wire_doc_example_tag_is_what_the_code_computes():
    """docs/wire.md gives a worked example; a client in another language can check itself on it."""
    text = (ROOT / "docs" / "wire.md").read_text()
    payload = msgpack.packb({"v": 1, "t": "hello", "id": 7, "nonce": bytes(range(16))})
    ring = auth.Keyring(KEY, auth.ZERO_RUN)
    data = ring.seal(payload, auth.MEDIUM, 1)
    assert payload.hex() in text
    assert data[-24:].hex() in text.replace(" ", "")


def test_second_hello_for_a_taken_id_is_refused_and_listed(tmp_path):
    sc = scenario(rounds=20, live={"external": [7], "key_file": keyfile(tmp_path), "join_timeout": 10.0})
    holder = {}

    def others(port):
        time.sleep(0.3)  # a holds 7 by now
        holder["b"] = b = Peer(port, key=KEY)
        holder["b_reply"] = b.hello()
        c = Peer(port)  # no key: its hello is not even answered
        c.sock.settimeout(0.2)
        try:
            holder["c_reply"] = c.hello()
        except socket.timeout:
            holder["c_reply"] = None

    def start(session):
        port = session.address[1]
        holder["a"] = Peer(port, key=KEY).start()
        holder["others"] = threading.Thread(target=others, args=(port,), daemon=True)
        holder["others"].start()

    (res,) = run_live(sc, tmp_path / "o", on_listen=start)
    holder["a"].thread.join(5)
    holder["others"].join(5)
    assert holder["a"].reply["t"] == "welcome" and holder["a"].reply["id"] == 7
    assert holder["b_reply"]["t"] == "refuse" and "taken" in holder["b_reply"]["why"]
    assert holder["c_reply"] is None
    rej = res.extra["rejected"]
    assert rej["id_taken"] == 1 and rej["unauthenticated"] == 1
    live = res.extra["live"]
    b_addr = "127.0.0.1:%d" % holder["b"].sock.getsockname()[1]
    assert live["refused_claims"] == [{"id": 7, "address": b_addr, "held_by": live["externals"]["7"]["address"],
                                       "why": "node id 7 is taken by another process"}]
    assert live["claims_refused"] == 1 and live["challenges"] == 2
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())["protocols"]["pulm"]
    assert summary["live"]["refused_claims"][0]["address"] == b_addr
    assert summary["rejected"]["id_taken"] == 1


def test_an_id_is_granted_once():
    ext = Externals([7], np.zeros((8, 1)), "pulm", dict(n=8, fields={}, period=1.0, time_scale=1.0,
                                                         max_datagram=65000))
    assert ext.claim({"id": 7}, ("127.0.0.1", 1))[1] == 7
    ext.left.add(7)
    reply, node, why = ext.claim({"id": 7}, ("127.0.0.1", 1))
    assert node is None and why == "id_taken" and "has left" in msgpack.unpackb(reply)["why"]
    reply, node, why = ext.claim({"id": None}, ("127.0.0.1", 2))
    assert node is None and why == "hello"
    assert ext.claims_refused == 1


# -- load --------------------------------------------------------------------------------------


async def flood(port: int, count: int, sent: list) -> None:
    """``count`` junk transmissions from an address outside the run, in bursts of 20 (about
    20,000/s: far above the rate limit, well below what fills the medium's socket queue)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    junk = tx(3, 0, 1e6)
    try:
        await asyncio.sleep(0.1)
        while sent[0] < count:
            for _ in range(20):
                sock.sendto(junk, ("127.0.0.1", port))
                sent[0] += 1
            await asyncio.sleep(0.001)
    finally:
        sock.close()


def test_flood_from_outside_is_rate_limited_and_counted_and_the_run_is_unchanged(tmp_path):
    sc = scenario(rounds=40, scale=40.0, live={"rate_limit": 200.0})
    sent = [0]

    async def flooded():
        tasks = []

        def start(session):
            tasks.append(asyncio.get_running_loop().create_task(flood(session.address[1], 4000, sent)))

        (res,) = await run_live_async(sc, tmp_path / "flooded", on_listen=start)
        await tasks[0]
        return res

    res = asyncio.run(flooded())
    calm = run_live(sc, tmp_path / "calm")[0]
    assert sent[0] == 4000
    dropped, rej = res.extra["dropped"], res.extra["rejected"]
    assert dropped["kernel"] == 0 and dropped["seq_gap"] == 0
    assert dropped["rate_limit"] + rej["spoofed"] == 4000, (dropped, rej)
    assert dropped["rate_limit"] > 3000  # 64 at once, then 200/s over about 0.3 s
    dg = res.extra["datagrams"]
    assert dg["received"] >= 4000 and dg["dropped"] == dropped["rate_limit"] and dg["rejected"] == rej["spoofed"]
    assert dg["lost"] == 0 and dg["drop_share"] == 0.0 and res.extra["live"]["failure"] is None
    same_run(res, calm)
    summary = json.loads((tmp_path / "flooded" / "summary.json").read_text())["protocols"]["pulm"]
    assert summary["dropped"]["rate_limit"] == dropped["rate_limit"]
    assert summary["datagrams"]["received"] == dg["received"]


def test_rate_limit_bucket():
    from netemu.live.udp import RateLimit

    lim = RateLimit(100.0, burst=5, max_sources=3)
    a = ("127.0.0.1", 1)
    assert [lim.allow(a, 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert lim.allow(a, 0.01) and not lim.allow(a, 0.01)  # one token per 10 ms
    for port in range(2, 10):  # the table stays bounded
        lim.allow(("127.0.0.1", port), 1.0)
    assert len(lim.buckets) <= 3


def test_a_run_that_loses_too_many_datagrams_exits_with_status_3(tmp_path, scenario_file):
    path = scenario_file("""
        [network]
        nodes = 4
        p = 0.5
        [run]
        rounds = 100
        [live]
        time_scale = 200
        rate_limit = 1
        [output]
        plot = false
        [[protocols]]
        name = "pulm"
    """)
    r = CliRunner().invoke(main, ["live", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 3, r.output
    assert "of the run's datagrams were lost" in r.output and "max_drop_share = 0.05" in r.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())["protocols"]["pulm"]
    assert summary["live"]["failure"]["kind"] == "dropped"
    assert summary["dropped"]["rate_limit"] > 0 and summary["datagrams"]["drop_share"] > 0.05


# -- departures ------------------------------------------------------------------------------


def _killed_client(tmp_path, on_departure):
    key = keyfile(tmp_path)
    sc = scenario(rounds=80, live={"external": [7], "key_file": key, "timeout": 0.3, "join_timeout": 20.0,
                                   "on_departure": on_departure}, trace=True)
    procs, killed = [], {}

    def start(session):
        procs.append(subprocess.Popen([PY, str(CLIENT), str(session.address[1]), "--id", "7", "--key-file", key],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))

        def kill():
            time.sleep(1.0)  # about 15 rounds in
            procs[0].send_signal(signal.SIGKILL)
            killed["at"] = time.monotonic()

        threading.Thread(target=kill, daemon=True).start()

    t0 = time.monotonic()
    (res,) = run_live(sc, tmp_path / "o", on_listen=start)
    procs[0].wait(5)
    assert procs[0].returncode == -signal.SIGKILL
    return res, killed["at"] - t0, time.monotonic() - t0


def test_killed_external_process_is_reported_departed_within_timeout(tmp_path):
    res, killed_at, _ = _killed_client(tmp_path, "continue")
    live = res.extra["live"]
    dep = live["externals"]["7"]["departed"]
    assert live["departed"] == [7] and dep is not None
    assert 0.3 < dep["silent_s"] <= 0.3 + 0.15  # noticed at the timeout (plus a watch step or so)
    assert 5 <= dep["round"] < 80 and live["rounds_completed"] == 80  # then the run goes on
    assert live["failure"] is None and res.extra["rejected"]["gone"] == 0
    assert live["externals"]["7"]["transmissions"] <= dep["round"] + 1
    with open(tmp_path / "o" / "events.msgpack", "rb") as f:
        records = [r for r in msgpack.Unpacker(f, raw=False) if r.get("e") == "departed"]
    assert records == [{"e": "departed", "p": "pulm", "r": dep["round"], "t": dep["t"], "src": 7,
                        "why": "timeout"}]
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())["protocols"]["pulm"]
    assert summary["live"]["externals"]["7"]["departed"]["round"] == dep["round"]


def test_departure_can_fail_the_run(tmp_path):
    res, killed_at, took = _killed_client(tmp_path, "fail")
    live = res.extra["live"]
    assert live["failure"]["kind"] == "departed" and live["failure"]["status"] == 4
    assert "external node 7 sent nothing" in live["failure"]["message"]
    assert live["rounds_completed"] < 80 and took < 2.0 + 1.0
    assert failure([res]) == live["failure"]


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("content,text", [
    (None, "no such file"), ("", "the file is empty"), ("  \n", "the file is empty"),
    ("short", "holds a key of 5 bytes; a BLAKE2b key has 16 to 64 bytes"),
    ("x" * 65, "holds a key of 65 bytes"),
])
def test_key_file_errors(tmp_path, content, text):
    if content is not None:
        keyfile(tmp_path, content)
    sc = scenario(live={"key_file": "live.key"}, base_dir=tmp_path)
    with pytest.raises(ScenarioError) as e:
        security(sc, sc.live)
    assert text in str(e.value) and "[live] key_file = 'live.key'" in str(e.value) and "\n" not in str(e.value)


def test_unreadable_key_file(tmp_path, monkeypatch):
    keyfile(tmp_path)

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    sc = scenario(live={"key_file": "live.key"}, base_dir=tmp_path)
    with pytest.raises(ScenarioError, match=r"cannot read .* \(permission denied\)"):
        security(sc, sc.live)
    monkeypatch.undo()
    (tmp_path / "dir.key").mkdir()
    sc = scenario(live={"key_file": "dir.key"}, base_dir=tmp_path)
    with pytest.raises(ScenarioError, match="is a folder"):
        security(sc, sc.live)


def test_key_is_read_relative_to_the_scenario(tmp_path):
    keyfile(tmp_path, "  " + KEY.decode() + "\r\n")
    sc = scenario(live={"key_file": "live.key"}, base_dir=tmp_path)
    assert security(sc, sc.live) == {"key": KEY, "bind": "127.0.0.1", "nodes": "127.0.0.1"}


def test_other_interfaces_need_a_key_or_insecure(tmp_path, scenario_file):
    sc = scenario(live={"host": "0.0.0.0"})
    with pytest.raises(ScenarioError, match=r"\[live\] host = '0.0.0.0' is not a loopback address and there "
                                            r"is no \[live\] key_file.*or pass --insecure"):
        security(sc, sc.live)
    assert security(sc, sc.live, insecure=True) == {"key": None, "bind": "0.0.0.0", "nodes": "127.0.0.1"}
    keyed = scenario(live={"host": "0.0.0.0", "key_file": keyfile(tmp_path)})
    assert security(keyed, keyed.live)["key"] == KEY
    with pytest.raises(ScenarioError, match="is not an IPv4 address"):
        bad = scenario(live={"host": "no-such-host.invalid"})
        security(bad, bad.live)
    path = scenario_file("""
        [network]
        nodes = 4
        [run]
        rounds = 20
        [live]
        time_scale = 100
        host = "0.0.0.0"
        [output]
        plot = false
        [[protocols]]
        name = "pulm"
    """)
    r = CliRunner().invoke(main, ["live", str(path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "pass --insecure" in r.output and not (tmp_path / "o").exists()
    r = CliRunner().invoke(main, ["live", str(path), "--out", str(tmp_path / "o"), "--insecure"])
    assert r.exit_code == 0, r.output
    assert "medium 0.0.0.0:" in r.output


def test_live_checks_before_any_socket(tmp_path):
    sc = scenario(live={"external": [7], "timeout": 0.01})
    with pytest.raises(ScenarioError, match=r"\[live\] timeout = 0.01 s is not longer than one round"):
        run_live(sc, tmp_path / "o")
    big = scenario(live={"key_file": keyfile(tmp_path), "max_message": 512}, nodes=60)
    with pytest.raises(ScenarioError, match=r"message is 535 bytes with 60 nodes, more than \[live\] "
                                            r"max_message = 512"):
        run_live(big, tmp_path / "o")
    for live, text in (({"on_departure": "stop"}, "is not one of continue, fail"),
                       ({"max_drop_share": 2}, "max_drop_share = 2.0 is out of range"),
                       ({"rate_limit": -1}, "rate_limit = -1.0 is out of range"),
                       ({"max_abs": 0}, "max_abs = 0.0 is out of range")):
        with pytest.raises(ScenarioError, match=text):
            scenario(live=live)
