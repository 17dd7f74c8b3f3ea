"""The medium: one UDP endpoint that plays the radio channel between live nodes.

Every node (local or external) sends its transmission of round ``k`` to the medium as one
datagram. The medium checks it (``messages.decode`` + sender, round, field and value checks),
then forwards a copy of the message to each nominal out-neighbour of the sender in round ``k``
whose reception is not lost, after that reception's delay scaled to wall-clock time
(``delay / time_scale``, by a loop timer), exactly as ``Network.round(k)`` realizes the round
for ``netemu run`` (same seed, same graph, losses and jitter: common random numbers). A copy
whose arrival would fall after the round's end is not sent and is counted ``late``.

It trusts nothing it receives:

- every source address has a token bucket (``[live] rate_limit``); what exceeds it is dropped
  and counted (``dropped["rate_limit"]``) before any other work;
- with a key (``[live] key_file``, ``auth.py``), a datagram must carry a valid tag and a fresh
  sequence number; the copies the medium sends are tagged for their receiver. Sequence numbers
  skipped by a sender count as ``dropped["seq_gap"]``;
- values must be finite and within ``[live] max_abs``: a transmission with a NaN, an infinity
  or 1e300 is rejected whole (``non_finite``, ``too_large``) and reaches no node's state;
- an external id is granted once (``external.Externals.claim``);
- a message longer than one datagram arrives as fragments (``fragments.py``), accepted only from
  a node's registered address and reassembled within bounded memory; the medium checks the whole
  message, then forwards it in fragments again, each tagged for its receiver.

Anything unusable is dropped and counted in ``rejected`` by reason (``messages.REASONS``); no
datagram can stop the medium. The runtime drives it: ``begin_round`` before each round's
transmissions, ``tick`` to tell external nodes a round has begun, ``finish`` at the end.
"""

from __future__ import annotations

import asyncio
import logging
import math

import numpy as np

from netemu import wire
from netemu.live import auth, fragments
from netemu.live.forward import Forwarding
from netemu.live import messages as M
from netemu.live.udp import Endpoint, enlarge_buffers, open_endpoint

__all__ = ["Medium", "enlarge_buffers", "open_endpoint"]

log = logging.getLogger("netemu.live")
DROP_CAUSES = ("kernel", "rate_limit", "seq_gap")
MAX_WINDOWS = 65536  # senders whose sequence numbers are tracked (only key holders get one)


class _RoundPlan:
    """Who receives each sender's transmission in one round, and after which delay.

    ``t`` is the round's start in simulated seconds; ``nbytes`` the message size the simulator
    uses for serialization delay (set when the round's transmissions go out). Without a
    realization (``rd = None``) it is the report step after the last round: transmissions are
    recorded (external nodes' final state) and forwarded to no one.
    """

    def __init__(self, k: int, rd, n: int, end: float, t: float = 0.0, period: float = 1.0) -> None:
        self.k, self.end, self.report = k, end, rd is None
        self.t, self.period, self.nbytes = t, period, 0
        self.sent: set[int] = set()
        if rd is None:
            self.recv, self.lost, self.jitter = [[] for _ in range(n)], [[] for _ in range(n)], None
            return
        bounds = np.searchsorted(rd.send, np.arange(n + 1)).tolist()
        self.recv = [rd.recv[bounds[j]:bounds[j + 1]][~rd.lost[bounds[j]:bounds[j + 1]]] for j in range(n)]
        self.lost = [rd.recv[bounds[j]:bounds[j + 1]][rd.lost[bounds[j]:bounds[j + 1]]] for j in range(n)]
        jit = rd.jitter
        self.jitter = None if jit is None else [jit[bounds[j]:bounds[j + 1]][~rd.lost[bounds[j]:bounds[j + 1]]]
                                                for j in range(n)]


class Medium(Forwarding, asyncio.DatagramProtocol):
    """The channel between live nodes; see the module docstring.

    ``addr[i]`` is node ``i``'s registered address (local nodes: their socket; external nodes:
    the address their hello came from). ``stats`` and ``rejected`` are the counters that end up
    in ``summary.json``.
    """

    def __init__(self, n: int, spec: M.FieldSpec, externals, delay, time_scale: float,
                 max_datagram: int, keys: auth.Keyring | None = None, max_abs: float = math.inf,
                 limit=None, frags: fragments.Reassembler | None = None) -> None:
        self.n, self.spec, self.ext = n, spec, externals
        self.delay, self.scale, self.max_datagram = delay, time_scale, max_datagram
        self.room = max_datagram - (auth.TRAILER if keys is not None else 0)  # longest unfragmented message
        self.frags = frags or fragments.Reassembler(16 * 2**20, 64 * 2**20, 5.0)
        self.msg_no = 0  # message numbers of the medium's fragmented copies
        self.origins: dict = {}  # message number -> (sender, round or ("s", seq)) of the message
        self.message_bytes = 0  # one node's message of a round protocol (set by the session), else 0
        self.clients = None  # with external FL clients: their checks (``external.FLClients``)
        self.server = -1  # the FL server's node id
        self._pieces = (None, ())  # the last message split, and its fragments
        self.keys, self.max_abs, self.limit = keys, max_abs, limit
        no_jitter = delay.jitter == "none" or delay.scale <= 0
        self.instant = delay.latency == 0 and not delay.bandwidth and no_jitter
        self.addr: list = [None] * n  # registered address of each node (checked on receipt)
        self.dest: list = [None] * n  # where copies go: None while a node is absent
        self.who: dict = {}  # registered address -> node id
        self.local: set[int] = set()
        self.ext_ids = set(externals.ids)
        self.heard: dict[int, float] = {}  # external id -> loop time of its last datagram
        self.windows: dict = {}  # address -> auth.Window of its sequence numbers (with a key)
        self.out_seq = [0] * n  # with a key: the last sequence number sent to each node
        self._suffix = [keys.suffix(i) for i in range(n)] if keys is not None else None  # run || to
        self.hs_seq = 0  # sequence numbers of the replies to hellos
        self.sock = None  # the raw socket of ``transport`` (see ``open_endpoint``)
        self.closed = False
        self.plan: _RoundPlan | None = None
        self.prev: _RoundPlan | None = None
        self.transport = None
        self.loop = None
        self.rt = None  # the runtime this medium serves (its network plans, observers, counters)
        self.planned: dict = {}  # (src, round or ("s", seq), receiver) -> planned arrival time
        self.timers: list = []  # loop times of the copies scheduled and not sent yet (a heap)
        self.rejected = dict.fromkeys(M.REASONS, 0)
        self.dropped = dict.fromkeys(DROP_CAUSES, 0)  # kernel: filled in by the runtime at the end
        self.stats = dict(received=0, from_nodes=0, rate_limited_nodes=0, accepted=0, bytes_accepted=0,
                          forwarded_local=0, forwarded_external=0, drops=0, late=0, late_tx=0,
                          absent=0, icmp_errors=0, reports=0, challenges=0, reassembled=0,
                          fragments_sent=0)
        self._logged = False

    # -- asyncio protocol --------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        if not isinstance(transport, Endpoint):
            enlarge_buffers(transport.get_extra_info("socket"))

    def connection_lost(self, exc) -> None:
        self.closed = True

    def error_received(self, exc) -> None:  # e.g. ICMP port unreachable from a gone receiver
        self.stats["icmp_errors"] += 1

    def datagram_received(self, data: bytes, addr) -> None:
        st = self.stats
        st["received"] += 1
        node = self.who.get(addr)
        if node is not None:
            st["from_nodes"] += 1
        if self.limit is not None and not self.limit.allow(addr, self.loop.time()):
            self.dropped["rate_limit"] += 1
            if node is not None:
                st["rate_limited_nodes"] += 1
            return
        try:
            if len(data) > self.max_datagram:
                raise M.Rejected("oversize")
            fresh = True
            if self.keys is not None:
                data, fresh = self._open(data, addr)
            msg = M.decode(data, self.max_datagram)
            t = msg["t"]
            if not fresh and t != "hello":  # only a first hello may be tagged under the zero run id
                raise M.Rejected("bad_tag")
            if t == "frag":
                if msg["v"] < 2:
                    raise M.Rejected("version", "fragments are version 2")
                data, msg = self._fragment(msg, addr)
                if data is None:  # more fragments to come
                    return
                t = msg["t"]
            if t == "tx":
                self._tx(msg, data, addr)
            elif t == "hello":
                self._hello(msg, addr, fresh)
            elif t == "bye":
                self._bye(msg, addr)
            else:
                raise M.Rejected("malformed", f"unknown type {t!r}")
        except M.Rejected as e:
            self.rejected[e.reason] += 1
            if e.reason == "version" and e.msg is not None and e.msg.get("t") == "hello":
                self._reply(M.refuse(f"version {e.msg.get('v')!r}: this medium speaks "
                                     f"versions {' and '.join(map(str, M.ACCEPTED))}"), addr)
        except Exception:  # never let one datagram stop the medium
            self.rejected["error"] += 1
            if not self._logged:
                self._logged = True
                log.exception("netemu live: unexpected error handling a datagram from %s", addr)

    # -- the runtime's side -----------------------------------------------------------------

    def register_local(self, i: int, addr) -> None:
        self.addr[i] = self.dest[i] = addr
        self.who[addr] = i
        self.local.add(i)

    def depart(self, i: int, info: dict) -> None:
        """External node ``i`` has gone silent: nothing more is sent to it or taken from it."""
        self.ext.left.add(i)
        self.ext.departed[i] = info
        self.dest[i] = None

    def begin_round(self, k: int, rd, end: float, t: float = 0.0, period: float = 1.0) -> None:
        """Round ``k`` (realization ``rd`` from ``Network.round(k)``, starting at simulated time
        ``t``) runs until loop time ``end``."""
        self.prev, self.plan = self.plan, _RoundPlan(k, rd, self.n, end, t, period)

    def begin_report(self, k: int, end: float) -> None:
        """The step after the last round ``k - 1``: record external nodes' round-``k`` state."""
        self.prev, self.plan = self.plan, _RoundPlan(k, None, self.n, end)

    def tick(self, k: int, out_degree: np.ndarray, seconds_left: float) -> None:
        """Tell every present external node that round ``k`` has begun (and its out-degree)."""
        for i in self.ext.ids:
            if self.ext.present(i):
                self._to_node(M.round_tick(k, int(out_degree[i]), seconds_left), i)

    def finish(self, why: str = "end") -> None:
        """Say ``bye`` to every present external node; forwarding stops."""
        self.plan = self.prev = None
        self.frags.close()
        if self.transport is None or self.closed or self.transport.is_closing():
            return
        for i in self.ext.ids:
            if self.ext.present(i):
                self._to_node(M.bye(why=why), i)
        self.closed = True  # copies still on the loop's timers are not sent

    # -- authentication -----------------------------------------------------------------------

    def _open(self, data: bytes, addr) -> tuple[bytes, bool]:
        """The payload of an authentic datagram and whether it is tagged under this run's id
        (else the all-zero one of a first hello, which is answered, never remembered)."""
        payload, seq, fresh = self.keys.open(data, auth.MEDIUM, zero_run=True)
        if not fresh:
            return payload, False
        win = self.windows.get(addr)
        if win is None:
            if len(self.windows) >= MAX_WINDOWS:  # keep the nodes' windows, forget the others
                self.windows = {a: w for a, w in self.windows.items() if a in self.who}
            win = self.windows[addr] = auth.Window()
        gap = win.accept(seq)  # raises Rejected("replayed")
        if gap:
            self.dropped["seq_gap"] += gap
        return payload, True

    # -- message handling ---------------------------------------------------------------------

    def _fragment(self, msg: dict, addr) -> tuple:
        """``(message bytes, decoded map)`` once a fragment completes its message, else
        ``(None, None)``; fragments come from a registered node's address only."""
        node = self.who.get(addr)
        if node is None:
            raise M.Rejected("unknown_sender", "fragments come from a node's registered address")
        if node in self.ext.left:
            raise M.Rejected("gone")
        now = self.loop.time()
        if node in self.ext_ids:
            self.heard[node] = now
        whole = self.frags.feed(addr, msg, now)
        if whole is None:
            return None, None
        self.stats["reassembled"] += 1
        msg = M.decode(whole, len(whole))
        if msg["t"] not in ("tx", "bye"):
            raise M.Rejected("malformed", "a fragmented message is a tx or a bye")
        return whole, msg

    def _sender(self, msg: dict, addr) -> int:
        src = msg.get("src")
        if type(src) is not int:
            raise M.Rejected("malformed", "no integer 'src'")
        if not 0 <= src < self.n or self.addr[src] is None:
            raise M.Rejected("unknown_sender")
        if self.addr[src] != addr:
            raise M.Rejected("spoofed")
        if src in self.ext_ids:
            if src in self.ext.left:
                raise M.Rejected("gone")
            self.heard[src] = self.loop.time()
        return src

    def _tx(self, msg: dict, data: bytes, addr) -> None:
        r, f = msg.get("r"), msg.get("f")
        if type(r) is not int or not isinstance(f, dict):
            raise M.Rejected("malformed", "no integer 'r' or map 'f'")
        src = self._sender(msg, addr)
        if "s" in msg:
            return self._event_tx(msg, data, src)
        plan, now = self.plan, self.loop.time()
        if plan is not None and r == plan.k:
            late = now > plan.end  # its round has ended, the next has not begun yet
        elif self.prev is not None and r == self.prev.k:
            plan, late = self.prev, True
        else:
            raise M.Rejected("round")
        if src in plan.sent:
            raise M.Rejected("duplicate")
        if self.spec is not None:
            if not self.spec.ok(f):
                raise M.Rejected("malformed", "fields do not match the protocol's message")
            bad = self.spec.bad_values(f, self.max_abs)
            if bad is not None:
                raise M.Rejected(bad)
        plan.sent.add(src)
        st = self.stats
        if plan.report:
            st["reports"] += 1
            if src in self.ext.addr:
                self.ext.record(src, f, r)
            return
        st["accepted"] += 1
        st["bytes_accepted"] += len(data)
        rt = self.rt
        lost = plan.lost[src]
        st["drops"] += len(lost)
        senders = np.full(len(lost), src, dtype=np.int64)
        if rt is not None and len(lost):
            rt.dropped(plan.k, plan.t, lost, senders, "loss")
        if src in self.ext.addr:
            self.ext.record(src, f, r)
            if rt is not None:
                rt._count_tx(np.array([src]), plan.nbytes)
        recv = plan.recv[src]
        if late:
            st["late_tx"] += 1
            st["late"] += len(recv)
            if rt is not None and len(recv):
                rt.dropped(plan.k, plan.t + plan.period, recv, np.full(len(recv), src), "late")
            return
        jit = plan.jitter[src] if plan.jitter is not None else None
        delay = self.delay.delays(plan.nbytes, jit, len(recv))
        ok = delay <= plan.period  # as the simulator: later than the round's end is late
        if not ok.all():
            st["late"] += int((~ok).sum())
            if rt is not None:
                rt.dropped(plan.k, plan.t + plan.period, recv[~ok], np.full(int((~ok).sum()), src), "late")
        self._forward(data, src, r, recv[ok], plan.t + delay[ok])

    def _event_tx(self, msg: dict, data: bytes, src: int) -> None:
        """An event-driven message: planned by the runtime's network with per-message draws."""
        seq, at, dst = msg.get("s"), msg.get("at"), msg.get("dst")
        if (type(seq) is not int or not isinstance(at, float) or not math.isfinite(at)
                or (dst is not None and type(dst) is not int)):
            raise M.Rejected("malformed", "event tx needs integer 's', finite float 'at'")
        rt = self.rt
        outside = src not in self.local
        if outside and self.clients is None:
            raise M.Rejected("malformed", "event messages come from local nodes and FL clients only")
        if outside and (rt is None or self.clients.proto is None):
            raise M.Rejected("unexpected", "the run has not started")
        if outside and seq != int(rt.seq[src]):
            raise M.Rejected("malformed", f"an external node numbers its messages 0, 1, …: expected s = {rt.seq[src]}")
        try:
            fields = M.unpack_fields(msg["f"])
        except (ValueError, TypeError):
            raise M.Rejected("malformed", "fields are not arrays") from None
        for a in fields.values():
            bad = M.bad_array(a, self.max_abs)
            if bad is not None:
                raise M.Rejected(bad)
        if outside:  # an external FL client's update: checked, numbered and timed here
            why = self.clients.check(src, dst, msg["f"])
            if why is not None:
                raise M.Rejected(why)
            rt.seq[src] += 1
            at = max(rt.clock.sim_now(), rt.clock.now)
            self.ext.record(src, msg["f"], -1)
        st = self.stats
        st["accepted"] += 1
        st["bytes_accepted"] += len(data)
        nbytes = wire.message_bytes({k: np.asarray(v)[None] for k, v in fields.items()}, self.n) if fields else 0
        one, seqs = np.array([src], dtype=np.int64), np.array([seq], dtype=np.int64)
        if outside:
            rt._count_tx(one, nbytes)
        if dst is None:
            plan = rt.net.message(one, seqs, at, nbytes)
        else:
            if not 0 <= dst < self.n:
                raise M.Rejected("malformed", "dst is not a node id")
            plan, out = rt.net.unicast(one, np.array([dst], dtype=np.int64), seqs, at, nbytes)
            if out.any():
                rt.dropped(rt.k, at, np.array([dst]), one, "range")
        if plan.tries is not None and plan.tries.any():  # uplink retries, as the simulator counts them
            more = plan.tries > 0
            rt.retried(plan.recv[more], plan.send[more], plan.tries[more])
        if plan.lost.any():
            st["drops"] += int(plan.lost.sum())
            rt.dropped(rt.k, at, plan.recv[plan.lost], plan.send[plan.lost], "loss")
        ok = ~plan.lost
        if self.clients is not None and src == self.server:  # models on their way to external clients
            for i in plan.recv[ok].tolist():
                if i in self.ext_ids:
                    self.clients.model_sent(i)
        self._forward(data, src, ("s", seq), plan.recv[ok], plan.arrive[ok])

    def _hello(self, msg: dict, addr, fresh: bool = True) -> None:
        if self.keys is not None:
            nonce = msg.get("nonce")
            if not isinstance(nonce, bytes) or not 8 <= len(nonce) <= 64:
                raise M.Rejected("malformed", "with a key, a hello carries a nonce of 8 to 64 bytes")
            if not fresh:  # step 1 of the handshake: tell the run id, remember nothing
                self.stats["challenges"] += 1
                self._reply(M.challenge(self.keys.run, nonce), addr)
                return
        if msg["v"] == 1 and self.message_bytes > self.room:
            nonce = msg.get("nonce") if isinstance(msg.get("nonce"), bytes) else None
            self._reply(M.refuse(f"version 1: this run's messages ({self.message_bytes} bytes) are longer than "
                                 f"one datagram ([live] max_datagram = {self.max_datagram}) and travel as "
                                 f"fragments, which version 1 does not have; speak version 2 (docs/wire.md)",
                                 nonce), addr)
            raise M.Rejected("version")
        reply, node, why = self.ext.claim(msg, addr)
        self._reply(reply, addr)
        if node is None:
            raise M.Rejected(why)
        self.addr[node] = self.dest[node] = addr
        self.who[addr] = node
        self.heard[node] = self.loop.time()

    def _bye(self, msg: dict, addr) -> None:
        src = self._sender(msg, addr)
        if src in self.local:
            raise M.Rejected("malformed", "bye from a local node")
        self.ext.left.add(src)
        self.dest[src] = None
