"""The network of a run: mobility, topology and channel, realized round by round or per message.

``Network.round(k)`` returns the nominal edges of round ``k``, which receptions are lost, and the
jitter of each reception. It is a pure function of the seed (the Gilbert-Elliott chain carries
state, so rounds must be asked for in order on one ``Network``); build one ``Network`` per
protocol run to give every protocol the same realization.

``Network.message(senders, seqs, t, nbytes)`` plans event-driven broadcasts: the graph is that of
the period containing ``t`` (``k = ⌊t / period⌋``, positions at the period's start), and each
reception's loss and jitter are keyed by ``(sender, sequence number, receiver)``.

Work that depends on the nominal graph only (out- and in-degrees, the sparse structure of sums per
receiver) is done once per graph (``Edges``): a static radio network computes it once per run.

It takes plain objects; ``netemu.scenario.build`` makes them from a scenario.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from netemu.rng import keyed_uniform


def _frozen(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)  # shared by every round of one graph
    return a


_ZERO = _frozen(np.zeros(1, dtype=np.int64))  # the row of a lone unicast
_OUT1 = _frozen(np.zeros(1, dtype=bool))  # a lone uplink unicast is never out of range


class Edges:
    """A nominal graph ``recv[m] ← send[m]`` (sorted by sender, then receiver) of ``n`` nodes, and
    what follows from it alone, computed on first use and shared by every round of the graph."""

    def __init__(self, recv: np.ndarray, send: np.ndarray, n: int) -> None:
        self.recv, self.send, self.n = recv, send, n

    @cached_property
    def out_degree(self) -> np.ndarray:
        return _frozen(np.bincount(self.send, minlength=self.n))

    @cached_property
    def in_degree(self) -> np.ndarray:
        return _frozen(np.bincount(self.recv, minlength=self.n))

    @cached_property
    def by_sender(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(indptr, indices)`` of the ``[n, n]`` receiver × sender matrix in compressed sparse
        column form whose entry ``m`` is edge ``m`` (sender ``j``'s edges are
        ``indices[indptr[j]:indptr[j + 1]]``), or None unless the edges are strictly sorted by
        ``(sender, receiver)`` (no duplicates), as every topology makes them."""
        recv, send, n = self.recv, self.send, self.n
        key = send * n + recv
        if len(key) > 1 and not (key[1:] > key[:-1]).all():
            return None
        idx = np.int32 if n < 2**31 and len(recv) < 2**31 else np.int64  # scipy keeps int32 as it is
        indptr = np.searchsorted(send, np.arange(n + 1)).astype(idx)
        return _frozen(indptr), _frozen(recv.astype(idx))


@dataclass
class Round:
    k: int
    time: float
    recv: np.ndarray
    send: np.ndarray
    lost: np.ndarray
    jitter: np.ndarray | None
    out_degree: np.ndarray
    edges: Edges | None = None  # ``recv``, ``send`` and what is derived from them once per graph


@dataclass
class Plan:
    """The receptions of a set of broadcasts (or unicasts): ``recv[m]`` hears ``send[m]``'s
    message ``msg[m]`` (an index into the senders given) at time ``arrive[m]`` unless ``lost[m]``.
    With ``[network.delay] resolution`` the arrival *times* are rounded up to its multiples, so
    receptions of messages sent at different instants can share an arrival instant."""

    recv: np.ndarray
    send: np.ndarray
    msg: np.ndarray
    lost: np.ndarray
    arrive: np.ndarray
    tries: np.ndarray | None = None  # extra attempts per reception (uplink retries); None: none


@dataclass
class Uplink:
    """A point-to-point link between every node and a server node (``server``), used by unicasts
    to or from the server instead of the radio: ``delay`` (latency + bytes / bandwidth) and
    ``loss`` (per message, keyed by sender, message number and receiver, like the radio's). A lost
    message is sent again up to ``retries`` times (attempt ``a`` keyed by ``a`` as well); each failed
    attempt costs its transfer time and one more ``latency`` (the missing acknowledgement), and a
    message lost in every attempt is lost."""

    server: int
    delay: object
    loss: object
    retries: int = 0


class Network:
    def __init__(self, n: int, topology, loss, delay, period: float = 1.0, trajectories=None,
                 uplink: Uplink | None = None, medium=None) -> None:
        self.n, self.period = n, period
        self.uplink = uplink
        self.medium = medium  # the shared radio medium (netemu.world.medium), None: ideal
        self.topology = topology
        self.trajectories = trajectories
        self.loss = loss
        self.delay = delay
        self._epoch: tuple | None = None  # (k, recv, send, bounds) of the last period asked for
        self._edges: Edges | None = None  # the graph of the last round asked for
        # static nodes (one breakpoint each) stand at it at every t: their positions, once
        self._still = trajectories is not None and trajectories.still()
        self._still_pos: np.ndarray | None = None

    def positions(self, t: float) -> np.ndarray | None:
        return None if self.trajectories is None else self.trajectories.positions(t)

    def _radio_positions(self, t: float) -> np.ndarray | None:
        """``positions(t)`` as the topology reads them (computed once for static nodes)."""
        if not self._still:
            return self.positions(t)
        if self._still_pos is None:
            self._still_pos = _frozen(self.positions(t))
        return self._still_pos

    def round(self, k: int, t: float | None = None) -> Round:
        """Round ``k``, its radio positions taken at ``t`` (default ``k · period``; rounds shifted
        by compute phases start later). Every random draw is keyed by ``k`` alone."""
        t = k * self.period if t is None else t
        pos = self._radio_positions(t) if self.topology.needs_positions else None
        recv, send = self.topology.edges(k, pos)
        edges = self._edges
        if edges is None or edges.recv is not recv or edges.send is not send:  # a new graph
            edges = self._edges = Edges(recv, send, self.n)
        lost = self.loss.lost(k, recv, send, self.n)
        jitter = self.delay.jitter_draws(k, len(recv))
        return Round(k, t, recv, send, lost, jitter, edges.out_degree, edges)

    # -- event-driven traffic -------------------------------------------------------------------

    def graph(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(recv, send, bounds)`` of the period containing ``t``: sender ``j``'s nominal
        out-neighbours are ``recv[bounds[j]:bounds[j + 1]]``."""
        k = max(0, math.floor(t / self.period + 1e-12))
        if self._epoch is None or self._epoch[0] != k:
            pos = self.positions(k * self.period) if self.topology.needs_positions else None
            recv, send = self.topology.edges(k, pos)
            bounds = np.searchsorted(send, np.arange(self.n + 1))
            self._epoch = (k, recv, send, bounds)
        return self._epoch[1], self._epoch[2], self._epoch[3]

    def out_degree(self, t: float) -> np.ndarray:
        bounds = self.graph(t)[2]
        return np.diff(bounds)

    def message(self, senders: np.ndarray, seqs: np.ndarray, t: float, nbytes) -> Plan:
        """Broadcasts of ``senders`` (their ``seqs``-th messages) at time ``t``."""
        recv_all, _, bounds = self.graph(t)
        if len(senders) == 1:  # one sender (a wake-up): its neighbour slice, no index arithmetic
            j = senders[0]
            lo, hi = bounds[j], bounds[j + 1]
            m = int(hi - lo)
            msg = np.zeros(m, dtype=np.int64)
            recv = recv_all[lo:hi].copy() if m else np.empty(0, dtype=np.int64)
            return self._plan(recv, senders.repeat(m), msg, seqs[:1].repeat(m), nbytes, msg, t)
        lo, hi = bounds[senders], bounds[senders + 1]
        counts = hi - lo
        msg = np.repeat(np.arange(len(senders)), counts)
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        recv = recv_all[starts + np.arange(len(msg))] if len(msg) else np.empty(0, dtype=np.int64)
        return self._plan(recv, senders[msg], msg, seqs[msg], nbytes, msg, t)

    def unicast(self, src: np.ndarray, dst: np.ndarray, seqs: np.ndarray, t: float, nbytes) -> tuple[Plan, np.ndarray]:
        """Unicasts ``src[m] → dst[m]``: over the uplink when one end is its server, else over the
        radio; returns the plan and the mask of radio unicasts out of range (never sent)."""
        up = np.zeros(len(src), dtype=bool)
        if self.uplink is not None:
            if len(src) == 1 and (src[0] == self.uplink.server or dst[0] == self.uplink.server):
                return self._uplink(src, dst, seqs, t, nbytes, _ZERO, None), _OUT1  # one message to or from the server
            up = (src == self.uplink.server) | (dst == self.uplink.server)
            if up.all():  # every message over the uplink: no radio graph
                return self._uplink(src, dst, seqs, t, nbytes, np.arange(len(src)), None), np.zeros(len(src), bool)
        recv_all, _, bounds = self.graph(t)
        ok = up.copy()
        for m, (j, i) in enumerate(zip(src.tolist(), dst.tolist())):
            if up[m]:
                continue
            nb = recv_all[bounds[j]:bounds[j + 1]]
            p = np.searchsorted(nb, i)
            ok[m] = p < len(nb) and nb[p] == i
        radio = np.flatnonzero(ok & ~up)
        plan = self._plan(dst[radio], src[radio], radio, seqs[radio], nbytes, radio, t)
        if up.any():
            plan = self._uplink(src, dst, seqs, t, nbytes, np.flatnonzero(up), plan)
        return plan, ~ok

    def _uplink(self, src, dst, seqs, t: float, nbytes, link: np.ndarray, plan: Plan | None) -> Plan:
        """The plan of unicasts ``link`` over the uplink, after ``plan``'s radio receptions."""
        u = self.uplink
        size = nbytes if type(nbytes) is int or not np.ndim(nbytes) else np.asarray(nbytes)[link]
        s, q, r = src[link], seqs[link], dst[link]
        lost = u.loss.lost_keyed(s, q, r, self.n)
        d = u.delay.delays(size, None, len(link))
        arrive = t + d
        tries = None
        if u.retries and lost.any():
            tries = np.zeros(len(link), dtype=np.int64)
            for a in range(1, u.retries + 1):  # a message is sent again while it is lost
                again = np.flatnonzero(lost)
                if not len(again):
                    break
                tries[again] += 1
                lost[again] = keyed_uniform(u.loss.seed, "loss", s[again], q[again], r[again], a) < u.loss.loss
            arrive = t + tries * (d + u.delay.latency) + d
        if plan is None:
            return Plan(r, s, link, lost, arrive, tries)
        if tries is not None:
            tries = np.concatenate([np.zeros(len(plan.recv), dtype=np.int64), tries])
        return Plan(np.concatenate([plan.recv, r]), np.concatenate([plan.send, s]), np.concatenate([plan.msg, link]),
                    np.concatenate([plan.lost, lost]), np.concatenate([plan.arrive, arrive]), tries)

    def _plan(self, recv, send, msg, seq, nbytes, index, t: float) -> Plan:
        lost = self.loss.lost_keyed(send, seq, recv, self.n)
        jitter = self.delay.jitter_keyed(send, seq, recv)
        size = np.asarray(nbytes)[index] if np.ndim(nbytes) else nbytes
        return Plan(recv, send, msg, lost, self.delay.arrivals(t, size, jitter, len(recv)))
