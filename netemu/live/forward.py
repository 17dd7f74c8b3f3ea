"""The medium's sending side: copies of a message to its receivers at their planned instants.

A copy leaves at the wall time of its planned arrival (``clock.wall``), by a loop timer; copies of
one instant go together. A message longer than one datagram goes as its fragments
(``fragments.split``; the copies of one message share them and their message number). With a key,
every datagram is tagged for its receiver (the message hashed once, the suffix per copy). The
runtime's wall clock asks ``due()`` before each event, so a copy whose time has come is sent (and
read) before a later event runs.
"""

from __future__ import annotations

import heapq

import numpy as np

from netemu.live import auth, fragments


class Forwarding:
    """Mixed into ``medium.Medium``: ``_forward`` (plan the copies), ``_send_all`` (send them),
    ``_reply`` / ``_to_node`` (the medium's own datagrams)."""

    def _reply(self, payload: bytes, addr) -> None:
        """A reply to a hello (tagged for ``HANDSHAKE``: it echoes the hello's nonce); a welcome
        longer than a datagram (a large ``x0``) goes in fragments."""
        for piece in self._split(payload):
            if self.keys is not None:
                self.hs_seq += 1
                piece = self.keys.seal(piece, auth.HANDSHAKE, self.hs_seq)
            self.transport.sendto(piece, addr)

    def _to_node(self, payload: bytes, i: int) -> None:
        for piece in self._split(payload):
            if self.keys is not None:
                self.out_seq[i] += 1
                piece = self.keys.seal(piece, i, self.out_seq[i])
            self.transport.sendto(piece, self.addr[i])

    def _forward(self, data: bytes, src: int, tag, recv: np.ndarray, arrive: np.ndarray) -> None:
        """Send copies of ``data`` to ``recv`` at the planned simulated instants ``arrive``."""
        if not len(recv):
            return
        for i, t in zip(recv.tolist(), arrive.tolist()):
            self.planned[(src, tag, i)] = t
        clock = self.rt.clock if self.rt is not None else None
        if self.instant or clock is None:
            self._send_all(data, recv.tolist(), (src, tag))
            return
        order = np.argsort(arrive, kind="stable")
        recv, arrive = recv[order], arrive[order]
        cuts = np.flatnonzero(np.diff(arrive)) + 1
        for a, b in zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(arrive)]]).tolist()):
            when = clock.wall(float(arrive[a]))
            heapq.heappush(self.timers, when)
            self.loop.call_at(when, self._send_timed, data, recv[a:b].tolist(), (src, tag))

    def _send_timed(self, data: bytes, receivers, origin) -> None:
        heapq.heappop(self.timers)  # timers fire in the order of their times
        self._send_all(data, receivers, origin)

    def due(self) -> bool:
        """Whether a copy's sending time has come and it is not sent yet (the loop will send it)."""
        return bool(self.timers) and self.timers[0] <= self.loop.time()

    def _send_all(self, data: bytes, receivers, origin=None) -> None:
        """Send ``data`` (a message; ``origin``: its sender and round or message number) to each
        node of ``receivers`` that is present; with a key, each copy is tagged for its receiver
        (the message hashed once, the suffix per copy)."""
        if self.closed:
            return
        dest, ext, st = self.dest, self.ext_ids, self.stats
        sendto = self.transport.sendto
        keys = self.keys
        pieces = self._split(data, origin)
        if keys is not None:
            hashed = []
            for piece in pieces:
                h0 = keys.keyed.copy()
                h0.update(piece)
                hashed.append((piece, h0))
            suffix, seqs = self._suffix, self.out_seq
        sent = to_ext = 0
        for i in receivers:
            a = dest[i]
            if a is None:
                st["absent"] += 1
                if self.clients is not None and self.rt is not None:  # the FL server learns it is lost
                    self.rt.dropped(self.rt.k, self.rt.clock.now, np.array([i]), np.array([self.server]), "absent")
                continue
            if keys is None:
                for piece in pieces:
                    sendto(piece, a)
            else:
                for piece, h0 in hashed:
                    s = seqs[i] + 1
                    seqs[i] = s
                    sb = s.to_bytes(8, "big")
                    h = h0.copy()
                    h.update(suffix[i])
                    h.update(sb)
                    sendto(piece + sb + h.digest(), a)
            sent += 1
            if i in ext:
                to_ext += 1
        st["forwarded_local"] += sent - to_ext
        st["forwarded_external"] += to_ext
        if len(pieces) > 1:
            st["fragments_sent"] += sent * len(pieces)

    def _split(self, data: bytes, origin=None):
        """``data`` as the datagrams that carry it: itself, or its fragments (the copies of one
        message share its fragments and message number, whose ``origin`` is kept)."""
        if len(data) <= self.room:
            return (data,)
        last, pieces = self._pieces
        if last is not data:
            if origin is not None:
                self.origins[self.msg_no] = origin
                if len(self.origins) > 65536:  # the oldest are long reassembled or lost
                    self.origins.pop(next(iter(self.origins)))
            pieces = fragments.split(data, self.msg_no, self.room)
            self.msg_no += 1
            self._pieces = (data, pieces)
        return pieces

    def lost_copy(self, i: int, m: int) -> None:
        """Local node ``i`` never got the whole of the medium's fragmented message ``m``: the
        reception is a drop (``incomplete``: counters, event trace, and the protocol's drop
        observers, e.g. the FL server's acknowledgements), as the simulator counts one."""
        origin, rt = self.origins.get(m), self.rt
        if origin is None or rt is None:
            return
        src, tag = origin
        t = self.planned.pop((src, tag, i), None)
        if t is not None:
            rt.dropped(rt.k, t, np.array([i]), np.array([src]), "incomplete")
