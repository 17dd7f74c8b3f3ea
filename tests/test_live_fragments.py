"""Live mode, wire format version 2: messages longer than one datagram travel as fragments.

Real UDP on loopback: a broadcast and a unicast of several hundred kB arrive intact (with and
without a key) and the run equals the simulated one; one fragment dropped on the way loses its
message, counted with its reason, and nothing else; a round protocol whose every message is
fragmented equals the simulated run; hostile fragments from a registered external node (bad
counts, overlaps, oversize totals, duplicates, nested garbage, untagged) are rejected by reason and
the run goes on; the reassembly buffers stay within their bounds under a flood of partial messages.
"""

import hashlib
import random
import socket

import msgpack
import numpy as np
import pytest

from netemu import registry, wire
from netemu.live import auth, fragments
from netemu.live import messages as M
from netemu.live.config import with_overrides
from netemu.live.runtime import run_live
from netemu.protocol import EventProtocol
from netemu.runner import run_scenario
from netemu.scenario.load import from_dict
from test_live_security import KEY, Peer, keyfile

SIZE = 50_000  # floats: a 400 kB message, 7 fragments of a 65000-byte datagram


def frag(**kw) -> bytes:
    return msgpack.packb({"v": 2, "t": "frag", **kw}, use_bin_type=True)


# -- the reassembler alone ------------------------------------------------------------------------

def test_split_and_reassemble_in_any_order_with_duplicates():
    msg = random.Random(1).randbytes(100_000)
    pieces = fragments.split(msg, 7, 1000)
    assert len(pieces) == -(-len(msg) // (1000 - fragments.HEADER)) and max(map(len, pieces)) <= 1000
    assert all(fragments.is_fragment(p) for p in pieces) and not fragments.is_fragment(wire.encode_transmission(0, 0, {}))
    r = fragments.Reassembler(200_000, 400_000, 10.0)
    order = list(range(len(pieces)))
    random.Random(2).shuffle(order)
    out = []
    for step, j in enumerate(order):
        out.append(r.feed("a", msgpack.unpackb(pieces[j]), 0.0))
        if step % 10 == 3:  # a duplicate while pending: dropped, the message goes on
            with pytest.raises(M.Rejected) as e:
                r.feed("a", msgpack.unpackb(pieces[j]), 0.0)
            assert e.value.reason == "frag_duplicate"
    assert out[:-1] == [None] * (len(pieces) - 1) and out[-1] == msg
    with pytest.raises(M.Rejected) as e:  # a late copy of a fragment of a finished message
        r.feed("a", msgpack.unpackb(pieces[0]), 0.0)
    assert e.value.reason == "frag_duplicate"
    assert r.feed("b", msgpack.unpackb(pieces[0]), 0.0) is None  # another source's message 7 is another message
    assert r.stats["messages"] == 1 and r.lost == 0 and r.held > 0
    assert r.stats["fragments"] == len(pieces) + 1  # accepted ones only, duplicates not
    r.close()
    assert r.lost == 1 and r.stats["unfinished"] == 1 and r.held == 0 and not r.pending


def reason(r, source="a", now=0.0, **kw):
    try:
        r.feed(source, msgpack.unpackb(frag(**kw)), now)
    except M.Rejected as e:
        return e.reason
    return None


def test_hostile_fragments_are_rejected_by_reason():
    r = fragments.Reassembler(1000, 10_000, 10.0)
    d = b"x" * 10
    assert reason(r, m=1, i=0, k=1, o=0, n=10, d=d) == "frag_count"  # one fragment is no fragmentation
    assert reason(r, m=1, i=3, k=3, o=0, n=30, d=d) == "frag_count"  # index beyond the count
    assert reason(r, m=1, i=0, k=50, o=0, n=30, d=d) == "frag_count"  # more fragments than bytes
    assert reason(r, m=1, i=0, k=2, o=0, n=1001, d=d) == "frag_oversize"
    assert reason(r, m=1, i=0, k=2, o=25, n=30, d=d) == "frag_overlap"  # runs past the end
    assert reason(r, m=1, i=0, k=2, o=0, n=30, d=b"") == "frag_overlap"  # empty
    assert reason(r, m=1, i=0, k=2, o=-1, n=30, d=d) == "frag_overlap"
    assert reason(r, m="1", i=0, k=2, o=0, n=30, d=d) == "malformed"
    assert reason(r, m=1, i=0, k=2, o=0, n=30, d="text") == "malformed"
    assert not r.pending and r.held == 0  # none of these took memory
    # overlapping offsets: the message is discarded, its later fragments are duplicates
    assert reason(r, m=2, i=0, k=3, o=0, n=30, d=d) is None
    assert reason(r, m=2, i=1, k=3, o=5, n=30, d=d) == "frag_overlap"
    assert reason(r, m=2, i=2, k=3, o=20, n=30, d=d) == "frag_duplicate"
    # one index with other bytes; a count or size that changes
    assert reason(r, m=3, i=0, k=2, o=0, n=20, d=d) is None
    assert reason(r, m=3, i=0, k=2, o=0, n=20, d=b"y" * 10) == "frag_overlap"
    assert reason(r, m=4, i=0, k=2, o=0, n=20, d=d) is None
    assert reason(r, m=4, i=1, k=3, o=10, n=20, d=d) == "frag_count"
    assert reason(r, m=5, i=0, k=2, o=0, n=20, d=d) is None
    assert reason(r, m=5, i=1, k=2, o=10, n=21, d=d) == "frag_count"
    # all fragments in, but they leave a hole
    assert reason(r, m=6, i=0, k=2, o=0, n=40, d=d) is None
    assert reason(r, m=6, i=1, k=2, o=20, n=40, d=d) == "frag_count"
    assert r.stats["discarded"] == 5 and r.lost == 5 and not r.pending and r.held == 0


def test_memory_stays_bounded_under_a_flood_of_partial_messages():
    r = fragments.Reassembler(20_000, 50_000, 10.0, max_pending=100)
    message = random.Random(3).randbytes(15_000)
    honest = fragments.split(message, 0, 2000)
    assert len(honest) == 8
    peak = 0
    for m in range(5000):  # a flooder: 5000 messages that never complete, 1 kB each
        assert reason(r, "flood", m=m, i=0, k=2, o=0, n=2000, d=b"z" * 1000) is None
        if m % 500 == 0 and m // 500 < 7:  # an honest source's fragments, between the flood's
            assert r.feed("honest", msgpack.unpackb(honest[m // 500]), 0.0) is None
        peak = max(peak, r.held)
        assert r.held <= 50_000 and len(r.pending) <= 100
        assert r.count["flood"] <= fragments.PER_SOURCE
    assert peak <= 50_000 and r.stats["peak_bytes"] <= 50_000 and r.stats["peak_pending"] <= 100
    assert r.stats["evicted"] >= 5000 - fragments.PER_SOURCE
    # the flooder shed its own messages: the honest one completes
    assert r.feed("honest", msgpack.unpackb(honest[7]), 0.0) == message
    # a huge declared total costs only the bytes that came, and a message that never completes goes
    assert reason(r, "late", now=1.0, m=0, i=0, k=2, o=0, n=20_000, d=b"q") is None
    assert r.pending[("late", 0)].held == 1 + fragments.SLOT
    lost = r.lost
    assert reason(r, "late", now=20.0, m=1, i=0, k=2, o=0, n=20, d=b"q") is None  # 19 s later
    assert ("late", 0) not in r.pending and r.stats["timed_out"] >= 1 and r.lost > lost


# -- a big broadcast through real UDP ---------------------------------------------------------

class Bigcast(EventProtocol):
    """Node 0 broadcasts 400 kB at t = 0; node 1 sends 400 kB to node 2; at t = 1, node 1
    broadcasts 400 kB. Receivers note what arrived, when, from whom (content digest)."""

    name = "bigcast"
    got: list = []

    def start(self, x0):
        self.x = np.array(x0, dtype=np.float64)
        rng = np.random.default_rng(0)
        self.big = rng.standard_normal((3, SIZE))

    def on_start(self):
        self.ctx.broadcast([0], {"m": self.big[[0]]})
        self.ctx.send([1], [2], {"m": self.big[[1]]})
        self.ctx.set_timer([1], 1.0, "again")

    def on_timer(self, nodes, tag):
        self.ctx.broadcast(nodes, {"m": self.big[[2]]})

    def on_message(self, batch):
        m = batch.fields["m"]
        for i, j, row in zip(batch.receivers.tolist(), batch.senders.tolist(), batch.rows.tolist()):
            Bigcast.got.append((self.ctx.now, i, j, hashlib.sha256(np.ascontiguousarray(m[row])).hexdigest()))

    def estimate(self):
        return self.x


@pytest.fixture
def bigcast():
    registry.register("bigcast", Bigcast)
    Bigcast.got = []
    yield Bigcast
    registry._extra.pop("bigcast", None)


def big_scenario(live=None, loss=0.0, trace=False):
    return with_overrides(from_dict({
        "seed": 2, "network": {"nodes": 4, "topology": "random", "p": 1.0, "loss": loss,
                               "delay": {"latency": 0.1}},
        "run": {"rounds": 3}, "output": {"plot": False, "trace": trace}, "protocols": [{"name": "bigcast"}],
        "live": {"time_scale": 5.0, **(live or {})}}, source="big.toml"))


def run_both(sc, tmp_path, on_listen=None):
    Bigcast.got = []
    (live,) = run_live(sc, tmp_path / "live", on_listen=on_listen)
    got_live, Bigcast.got = sorted(Bigcast.got), []
    (sim,) = run_scenario(sc, tmp_path / "sim", progress=False)
    return live, sim, got_live, sorted(Bigcast.got)


@pytest.mark.parametrize("keyed", [False, True])
def test_big_messages_arrive_intact_and_equal_the_simulation(bigcast, tmp_path, keyed):
    sc = big_scenario({"key_file": keyfile(tmp_path)} if keyed else None)
    live, sim, got_live, got_sim = run_both(sc, tmp_path)
    truth = {j: hashlib.sha256(np.random.default_rng(0).standard_normal((3, SIZE))[j]).hexdigest()
             for j in range(3)}
    assert len(got_sim) == 3 + 1 + 3  # broadcasts reach the 3 others, the unicast 1
    assert got_live == got_sim  # same instants, receivers, senders and contents
    assert {d for *_, d in got_live} == set(truth.values())
    for key in ("messages_sent", "deliveries", "bytes_sent", "drops"):
        assert live.counters[key] == sim.counters[key], key
    assert live.counters["bytes_sent"] > 3 * 8 * SIZE
    fr = live.extra["datagrams"]["fragments"]
    per_message = len(fragments.split(b"\0" * (8 * SIZE + 60), 0, 65000 - (24 if keyed else 0)))
    assert per_message >= 7
    assert fr["sent_by_local_nodes"] == 3 * per_message
    assert fr["sent_by_medium"] == 7 * per_message
    assert fr["at_medium"]["messages"] == 3 and fr["at_local_nodes"]["messages"] == 7
    assert fr["messages_lost"] == 0 and sum(live.extra["rejected"].values()) == 0
    assert fr["at_local_nodes"]["peak_bytes"] <= sc.live["reassembly_bytes"]
    assert live.extra["live"]["authenticated"] is keyed


def drops_in_trace(out):
    with open(out / "events.msgpack", "rb") as f:
        u = msgpack.Unpacker(f, raw=False)
        next(u)
        return [(r["dst"], r["src"], round(r["t"], 9), r["why"]) for r in u if r["e"] == "drop"]


def test_a_lost_fragment_loses_its_message_and_is_counted(bigcast, tmp_path):
    sc = big_scenario({"reassembly_timeout": 0.1}, trace=True)
    dropped = []

    def cut(session):  # the medium loses fragment 1 of the first message it sends node 3
        medium = session.medium
        send = medium.transport.sendto

        def lossy(data, addr):
            if not dropped and addr == medium.addr[3] and fragments.is_fragment(data) \
                    and msgpack.unpackb(data)["i"] == 1:
                dropped.append(msgpack.unpackb(data)["m"])
                return
            send(data, addr)

        medium.transport.sendto = lossy

    live, sim, got_live, got_sim = run_both(sc, tmp_path, cut)
    assert len(dropped) == 1
    missing = [g for g in got_sim if g not in got_live]
    assert len(missing) == 1 and missing[0][1:3] == (3, 0)  # node 0's broadcast, at node 3 only
    assert [g for g in got_sim if g != missing[0]] == got_live  # everything else intact
    assert live.counters["deliveries"] == sim.counters["deliveries"] - 1
    assert live.counters["drops"] == sim.counters["drops"] + 1 == 1  # a drop of that reception
    assert drops_in_trace(tmp_path / "live") == [(3, 0, 0.1, "incomplete")]  # at its planned instant
    assert drops_in_trace(tmp_path / "sim") == []
    fr = live.extra["datagrams"]["fragments"]
    assert fr["messages_lost"] == 1
    assert fr["at_local_nodes"]["timed_out"] == 1  # node 3's next message came 0.2 s later
    assert fr["at_medium"]["messages"] == 3 and fr["at_local_nodes"]["messages"] == 6


def test_a_message_longer_than_max_message_is_a_clear_error(bigcast, tmp_path):
    from netemu.errors import NetemuError

    sc = big_scenario({"max_message": 100_000})
    with pytest.raises(NetemuError, match=r"node 0's message is \d+ bytes, more than \[live\] max_message = "
                                          r"100000; raise max_message"):
        run_live(sc, tmp_path / "o")


# -- a round protocol, every message fragmented -------------------------------------------------

def test_round_protocol_with_every_message_fragmented_equals_the_simulation(tmp_path):
    sc = with_overrides(from_dict({
        "seed": 3, "network": {"nodes": 60, "topology": "random", "p": 0.1, "loss": 0.1},
        "run": {"rounds": 15}, "output": {"plot": False}, "protocols": [{"name": "pulm"}],
        "live": {"time_scale": 15.0, "max_datagram": 512}}, source="frag_pulm.toml"))
    (live,) = run_live(sc, tmp_path / "live")
    (sim,) = run_scenario(sc, tmp_path / "sim", progress=False)
    fr = live.extra["datagrams"]["fragments"]
    assert fr["sent_by_local_nodes"] == 2 * 60 * 15  # 535 bytes: two fragments each
    assert fr["at_medium"]["messages"] == 60 * 15 and fr["messages_lost"] == 0
    if live.extra["live"]["late_receptions"] == 0 and live.counters["late"] == 0:
        assert live.rows == sim.rows
    for key in ("messages_sent", "bytes_sent", "drops"):
        assert live.counters[key] == sim.counters[key], key


# -- hostile fragments from a registered external node -------------------------------------------

class FragPeer(Peer):
    """An external PULM node that sends its own transmissions in 16-byte pieces, last piece first,
    then the first piece again (a duplicate), and ``hostile`` datagrams before its first one."""

    hostile: list = []

    def play(self) -> None:
        w = self.hello()
        assert w["t"] == "welcome", w
        no = 0
        while True:
            m = self.recv(self.node)
            self.seen.append(m)
            if m["t"] == "round":
                if m["r"] == 0:
                    for kind, data in self.hostile:
                        if kind == "raw":
                            self.sock.sendto(data, self.medium)
                        elif kind == "other":
                            other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                            other.sendto(self.ring.seal(data, auth.MEDIUM, 1), self.medium)
                            other.close()
                        else:
                            self.send(data)
                pieces = fragments.split(tx(self.node, m["r"]), no, 80)
                for piece in pieces[::-1] + pieces[:1]:
                    self.send(piece)
                no += 1
            elif m["t"] == "bye":
                return


def tx(src, r, x=3.0, n=8) -> bytes:
    return wire.encode_transmission(src, r, {"x": np.array([x]), "d": np.eye(n)[src]})


def test_hostile_fragments_are_counted_and_the_run_goes_on(tmp_path):
    d = b"x" * 10
    nested_hello = M.hello(7, nonce=b"n" * 16)
    hostile = [
        ("frag_count", frag(m=100, i=0, k=1, o=0, n=10, d=d)),
        ("frag_count", frag(m=101, i=3, k=3, o=0, n=30, d=d)),
        ("frag_count", frag(m=102, i=0, k=20, o=0, n=10, d=b"x" * 5)),
        ("frag_oversize", frag(m=103, i=0, k=2, o=0, n=10**9, d=d)),
        ("frag_overlap", frag(m=104, i=0, k=2, o=8, n=10, d=b"x" * 5)),
        (None, frag(m=105, i=0, k=3, o=0, n=30, d=d)),
        ("frag_overlap", frag(m=105, i=1, k=3, o=5, n=30, d=d)),
        ("frag_duplicate", frag(m=105, i=2, k=3, o=20, n=30, d=d)),
        (None, frag(m=106, i=0, k=2, o=0, n=20, d=d)),
        ("frag_count", frag(m=106, i=1, k=3, o=10, n=20, d=d)),
        (None, frag(m=107, i=0, k=2, o=0, n=20, d=d)),
        ("frag_overlap", frag(m=107, i=0, k=2, o=0, n=20, d=b"y" * 10)),
        (None, frag(m=108, i=0, k=2, o=0, n=20, d=d)),
        ("frag_duplicate", frag(m=108, i=0, k=2, o=0, n=20, d=d)),
        (None, frag(m=109, i=0, k=2, o=0, n=40, d=d)),
        ("frag_count", frag(m=109, i=1, k=2, o=20, n=40, d=d)),
        ("malformed", frag(m="x", i=0, k=2, o=0, n=20, d=d)),
        (None, frag(m=110, i=0, k=2, o=0, n=4, d=b"\xc1\xc1")),
        ("garbage", frag(m=110, i=1, k=2, o=2, n=4, d=b"\xc1\xc1")),  # the whole is not msgpack
        (None, frag(m=111, i=0, k=2, o=0, n=len(nested_hello), d=nested_hello[:5])),
        ("malformed", frag(m=111, i=1, k=2, o=5, n=len(nested_hello), d=nested_hello[5:])),
        ("unauthenticated", frag(m=112, i=0, k=2, o=0, n=20, d=d)),  # no tag
        ("unknown_sender", frag(m=113, i=0, k=2, o=0, n=20, d=d)),  # tagged, from another address
    ]
    # then a flood of partial messages, far beyond the reassembly bound
    flood = [frag(m=1000 + j, i=0, k=2, o=0, n=2000, d=b"z" * 1000) for j in range(300)]
    FragPeer.hostile = [("raw" if why == "unauthenticated" else "other" if why == "unknown_sender" else why, data)
                        for why, data in hostile] + [(None, f) for f in flood]
    sc = with_overrides(from_dict({
        "seed": 7, "network": {"nodes": 8, "topology": "random", "p": 0.4, "loss": 0.1},
        "run": {"rounds": 20}, "output": {"plot": False}, "protocols": [{"name": "pulm"}],
        "live": {"time_scale": 10.0, "external": [7], "key_file": keyfile(tmp_path), "max_message": 20_000,
                 "reassembly_bytes": 50_000, "rate_limit": 0}}, source="hostile.toml"))
    peers = []

    def start(session):
        peers.append(FragPeer(session.address[1], key=KEY).start())

    (res,) = run_live(sc, tmp_path / "o", on_listen=start)
    peers[0].thread.join(5)
    peers[0].sock.close()
    rej = res.extra["rejected"]
    want: dict = {}
    for why, _ in hostile:
        if why is not None:
            want[why] = want.get(why, 0) + 1
    ext = res.extra["live"]["externals"]["7"]
    assert ext["transmissions"] == 21  # every fragmented transmission of the peer got through (and its report)
    want["frag_duplicate"] += ext["transmissions"]  # the repeated first piece of each
    for why, count in want.items():
        assert rej[why] == count, (why, rej)
    assert sum(rej.values()) == sum(want.values()), rej
    at = res.extra["datagrams"]["fragments"]["at_medium"]
    assert at["discarded"] == 4  # 105, 106, 107 and 109 (a hole); 110 and 111 were whole, then rejected
    assert at["peak_bytes"] <= 50_000 and at["evicted"] >= 300 - fragments.PER_SOURCE
    assert res.extra["live"]["rounds_completed"] == 20


def test_live_refuses_the_shared_medium_it_does_not_emulate(tmp_path):
    from netemu.errors import ScenarioError

    sc = with_overrides(from_dict({"seed": 1, "network": {"nodes": 4, "mac": {"model": "aloha"}},
                                   "run": {"rounds": 2}, "protocols": [{"name": "pulm"}]}, source="mac.toml"))
    with pytest.raises(ScenarioError, match=r"mac.toml: \[network.mac\] .* is simulated by netemu run only: "
                                            r".*remove \[network.mac\] to run live"):
        run_live(sc, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_reassembly_bytes_below_max_message_is_refused(tmp_path):
    from netemu.errors import ScenarioError

    sc = with_overrides(from_dict({"seed": 1, "network": {"nodes": 4}, "run": {"rounds": 2},
                                   "protocols": [{"name": "pulm"}],
                                   "live": {"max_message": 4096, "reassembly_bytes": 1000}}, source="r.toml"))
    with pytest.raises(ScenarioError, match=r"r.toml: \[live\] reassembly_bytes = 1000 is less than \[live\] "
                                            r"max_message = 4096: .* raise reassembly_bytes to at least 4096"):
        run_live(sc, tmp_path / "o")
