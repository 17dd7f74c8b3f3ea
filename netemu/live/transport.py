"""The live transport: the runtime's messages as real UDP datagrams through the medium.

It has the simulated transport's methods (``netemu.runtime.transport.SimTransport``), so the
same runtime and round driver run unchanged:

- a transmission is one datagram per local sender, from that node's own socket to the medium
  (``wire.encode_transmission``), or its fragments when it is longer than one datagram
  (``fragments.py``: each node numbers its fragmented messages 0, 1, …); the medium (``medium.Medium``) draws who receives it exactly as
  the simulator does and forwards verbatim copies at the planned instants, scaled to wall-clock
  time;
- what a local node's socket receives is decoded and handed to the runtime as batches, one per
  planned arrival instant, ordered as the simulator orders them (by instant, sender, receiver),
  each delivery stamped with its planned simulated time. Round protocols get their round's
  deliveries before the round ends (``settle``, run by the wall clock before every event);
  event protocols get each batch as an event of the clock at its planned instant (the clock
  wakes for it), so it comes after every earlier timer, compute completion and delivery.

A round's rows are gathered into one ``[n, …]`` buffer per field (row ``j`` = sender ``j``'s
message), so per-receiver sums run over the same rows in the same order as in the simulator: a
live run equals the simulated one bit for bit when every copy arrives in time.
"""

from __future__ import annotations

import asyncio

import msgpack
import numpy as np

from netemu import wire
from netemu.arrays import host, is_tensor
from netemu.errors import NetemuError
from netemu.live import fragments
from netemu.live import messages as M
from netemu.protocol import Batch


class UdpTransport:
    def __init__(self, medium, address, nodes: list, inbox: list, spec, n: int, seal: dict | None = None,
                 room: int = M.UDP_MAX, max_message: int = 16 * 2**20) -> None:
        self.medium, self.address = medium, address
        self.nodes = nodes  # [(node id, endpoint)] of the local nodes
        self.sock = {i: t for i, t in nodes}
        self.seal = seal  # with a key: node id -> its sealer (``auth.Keyring.sealer``)
        self.inbox = inbox  # (receiver, datagram bytes) appended by the local sockets
        self.spec, self.n = spec, n
        self.k = -1
        self.buffer: dict | None = None  # the current round's [n, …] rows, per field
        self.late_rx = self.delivered = self.received = 0
        self.room, self.max_message = room, max_message  # longest unfragmented message; longest message
        self.msg_no: dict = {}  # node id -> number of its next fragmented message
        self.fragments_sent = 0
        self.tensors: dict = {}  # node id -> whether its last event message was torch tensors
        self._flush_pending = False

    def attach(self, rt) -> None:
        self.rt = rt
        self.medium.rt = rt

    def wake(self) -> None:
        """Called by a local socket on receipt: event runs deliver soon, round runs at ``settle``."""
        round_based = getattr(self.rt.proto, "inner", None) is not None
        if not round_based and not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_pending = False
        self.take()

    # -- round protocols -----------------------------------------------------------------------

    def begin_round(self, k: int, rd, t: float, period: float, out_degree) -> None:
        clock = self.rt.clock
        self.k = k
        self.buffer = {name: np.zeros((self.n,) + tuple(shape), dtype=np.dtype(dt))
                       for name, (dt, shape, _) in self.spec.spec.items()} if self.spec else {}
        end = clock.wall(t + period)
        self.medium.begin_round(k, rd, end, t, period)
        loop = asyncio.get_running_loop()
        self.medium.tick(k, out_degree, max(0.0, end - loop.time()))

    def round(self, rd, fields: dict, nbytes: int, active: np.ndarray, period: float, listen=None) -> None:
        self.medium.plan.nbytes = nbytes
        seal = self.seal
        for i, t in self.nodes:
            if active[i]:
                data = wire.encode_transmission(i, rd.k, {f: host(v[i]) for f, v in fields.items()})
                if len(data) > self.room:
                    self._fragments(i, t, data)
                else:
                    t.sendto(data if seal is None else seal[i](data), self.address)

    def end_round(self, k: int) -> None:
        pass

    # -- event protocols -----------------------------------------------------------------------

    def broadcast(self, senders, seqs, fields: dict, nbytes: int, t: float) -> None:
        self._send(senders, seqs, None, fields, nbytes, t)

    def unicast(self, src, dst, seqs, fields: dict, nbytes: int, t: float) -> None:
        self._send(src, seqs, dst, fields, nbytes, t)

    def _send(self, senders, seqs, dst, fields, nbytes, t) -> None:
        tensors = any(is_tensor(v) for v in fields.values())
        for m, (j, s) in enumerate(zip(senders.tolist(), seqs.tolist())):
            sock = self.sock.get(j)
            if sock is None:  # not a local node: it is not this process's to send
                continue
            self.tensors[j] = tensors
            data = wire.encode_event(j, s, t, {f: host(v[m]) for f, v in fields.items()},
                                     None if dst is None else int(dst[m]))
            if len(data) > self.room:
                self._fragments(j, sock, data)
            else:
                sock.sendto(data if self.seal is None else self.seal[j](data), self.address)

    def _fragments(self, j: int, sock, data: bytes) -> None:
        """Send node ``j``'s message ``data``, longer than one datagram, as fragments."""
        if len(data) > self.max_message:
            raise NetemuError(f"protocol {self.rt.label!r}: node {j}'s message is {len(data)} bytes, more than "
                              f"[live] max_message = {self.max_message}; raise max_message (and "
                              f"reassembly_bytes to at least as much)")
        no = self.msg_no.get(j, 0)
        self.msg_no[j] = no + 1
        seal = self.seal[j] if self.seal is not None else None
        pieces = fragments.split(data, no, self.room)
        self.fragments_sent += len(pieces)
        for piece in pieces:
            sock.sendto(piece if seal is None else seal(piece), self.address)

    # -- receptions ----------------------------------------------------------------------------

    async def settle(self) -> None:
        """Let every datagram already on its way be read, then deliver them: what the local
        sockets hold, what the medium has yet to read, and the copies whose sending time has come
        (when the wall clock lags, a transmission can still be at any of these steps)."""
        st, medium = self.medium.stats, self.medium
        for _ in range(10_000):
            before = (len(self.inbox), st["received"], st["forwarded_local"])
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if (len(self.inbox), st["received"], st["forwarded_local"]) == before and not medium.due():
                break
        self.take()

    def take(self) -> None:
        """Deliver what the local sockets received, one batch per planned instant."""
        if not self.inbox:
            return
        items = self.inbox[:]
        del self.inbox[:]
        self.received += len(items)
        rt, planned = self.rt, self.medium.planned
        decoded: dict = {}
        rows: list = []  # (t, src, receiver, row key)
        for i, data in items:
            d = decoded.get(data)
            if d is None:
                d = decoded[data] = self._decode(data)
            if d is None:
                self.late_rx += 1
                rt.res.counters["late"] += 1
                continue
            src, key, tag = d
            t = planned.pop((src, tag, i), None)
            if t is None:
                t = rt.clock.now
            rows.append((t, src, i, key))
        if not rows:
            return
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        self.delivered += len(rows)
        rt.res.counters["deliveries"] += len(rows)
        xp = rt.ctx.xp
        buffer = self.buffer  # state on the compute device: the rows go there once per take
        if xp.torch and buffer is not None:
            buffer = {k: xp.like(v) for k, v in buffer.items()}
        start = 0
        for m in range(1, len(rows) + 1):
            if m == len(rows) or rows[m][0] != rows[start][0]:
                self._deliver(rows[start:m], decoded, buffer)
                start = m

    def _decode(self, data: bytes):
        """``(src, row key, planned-time tag)``, or ``None`` for a copy of an ended round."""
        msg = msgpack.unpackb(data, raw=False)
        src = msg["src"]
        if "s" in msg:  # an event transmission: its own row
            return src, ("e", data), ("s", msg["s"])
        if msg["r"] != self.k:
            return None
        for name, v in M.unpack_fields(msg["f"]).items():
            self.buffer[name][src] = v
        return src, ("r", src), msg["r"]

    def _deliver(self, group: list, decoded: dict, buffer) -> None:
        t = group[0][0]
        recv = np.array([g[2] for g in group], dtype=np.int64)
        send = np.array([g[1] for g in group], dtype=np.int64)
        if group[0][3][0] == "r":
            batch = Batch(self.n, recv, send, send, buffer)
        else:
            order: dict = {}
            for g in group:
                order.setdefault(g[3][1], len(order))
            msgs = [msgpack.unpackb(d, raw=False) for d in order]
            parts = [M.unpack_fields(m["f"]) for m in msgs]
            fields = {name: np.stack([p[name] for p in parts]) for name in parts[0]} if parts else {}
            if self.rt.ctx.xp.torch and self.tensors.get(msgs[0]["src"], False):
                # as sent: tensors on the compute device, or numpy arrays (the FL protocols')
                fields = {k: self.rt.ctx.xp.like(v) for k, v in fields.items()}
            idx = np.array([order[g[3][1]] for g in group], dtype=np.int64)
            batch = Batch(self.n, recv, send, idx, fields)
            # on the clock at its planned instant: after every earlier timer, completion or delivery
            self.rt.at(t, self.rt.deliver, t, batch)
            return
        self.rt.deliver(t, batch)
