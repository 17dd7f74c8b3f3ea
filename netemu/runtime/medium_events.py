"""Event protocols' broadcasts and unicasts through the medium (``SimTransport`` with a medium).

A message sent at ``t`` asks for the medium at ``t``. ALOHA starts it at once (slotted: at the next
slot boundary); CSMA senses (``access.sensed_end``) and either starts it or sets a retry at the
sensed busy end plus a backoff, an event of its own. A node's radio sends one frame at a time:
several messages of one node at one instant (unicasts to several nodes) go one after another.

**Exact resolution, batched.** A transmission's fate depends on every transmission that overlaps
it, and one that starts later may still overlap it; all of those have started, and are known, once
its airtime is over. So each transmission is resolved at its end ``e + τ``, together with every other
transmission ending at that instant, against the log of the transmissions still on the air in
that window (``resolve.resolve``); its receptions are then dropped (``collision``, ``loss``) or
delivered at ``e + τ`` plus the latency and jitter of ``[network.delay]``. Without those the
resolution event is the delivery event, so the medium adds no event per message over the ideal
channel's (retries of CSMA excepted).
"""

from __future__ import annotations

import math

import numpy as np

from netemu.protocol import Batch
from netemu.world.medium.access import TAG_EVENT, backoff, sensed_end
from netemu.world.medium.resolve import gather, resolve


class _Call:
    """One ``broadcast``/``send`` call: its plan rows by message, fields, request time, airtime."""

    __slots__ = ("plan", "fields", "t", "air", "senders", "seqs", "indptr", "tries", "ids")

    def __init__(self, plan, mi, fields, t, air, senders, seqs):
        """``mi[row]``: the message (index into ``senders``) of each plan row, ascending."""
        self.plan, self.fields, self.t, self.air = plan, fields, t, air
        self.senders, self.seqs = senders, seqs
        self.indptr = np.searchsorted(mi, np.arange(len(senders) + 1), side="left")
        self.tries = np.zeros(len(senders), dtype=np.int64)
        self.ids = np.full(len(senders), -1, dtype=np.int64)  # each message's transmission id


class EventMedium:
    def __init__(self, med, rt) -> None:
        self.med, self.rt = med, rt
        self.due: dict = {}  # resolution time -> [(call, msgs, s)]
        self.retries: dict = {}  # retry time -> [(call, msgs)]
        self.log_s: list = []
        self.log_e: list = []
        self.log_n: list = []
        self.log_id: list = []
        self.next_id = 0
        self.max_air = 0.0
        self.contending = np.zeros(rt.n, dtype=bool)  # csma: a node's frame is deferring
        self.queue: dict = {}  # node -> [(call, msg)] waiting behind its deferring frame

    def _geo(self, t: float):
        net = self.rt.net
        recv, send, _ = net.graph(t)
        pos = net._radio_positions(t) if net.trajectories is not None and self._needs_pos() else None
        return self.med.geometry(recv, send, pos)

    def _needs_pos(self) -> bool:
        c = self.med.cfg
        return c.reception == "sinr" or c.carrier_sense_range is not None or c.interference_range is not None

    def send(self, plan, mi, fields: dict, nbytes, t: float, senders: np.ndarray, seqs: np.ndarray) -> None:
        """Messages of ``senders`` (their ``seqs``-th) asking for the medium at ``t``; ``plan``:
        their receptions, ``mi``: the message of each plan row (ascending)."""
        if not len(senders):
            return
        air = float(self.med.airtime(nbytes))
        self.max_air = max(self.max_air, air)
        call = _Call(plan, mi, fields, t, air, senders, seqs)
        msgs = np.arange(len(senders))
        if len(senders) == 1:
            self._access(call, msgs, t)
            return
        # one frame at a time per radio: the r-th message of a node in this call waits r airtimes
        order = np.argsort(senders, kind="stable")
        srt = senders[order]
        first = np.searchsorted(srt, srt, side="left")
        rank = np.empty(len(senders), dtype=np.int64)
        rank[order] = np.arange(len(senders)) - first
        now = rank == 0
        self._access(call, msgs[now], t)
        for r in np.unique(rank[~now]).tolist():
            self._later(t + r * air, call, msgs[rank == r])

    def _later(self, at: float, call, msgs, retry: bool = False) -> None:
        bucket = self.retries.get(at)
        if bucket is None:
            self.retries[at] = bucket = []
            self.rt.at(at, self._retry, at)
        bucket.append((call, msgs, retry))

    def _retry(self, at: float) -> None:
        for call, msgs, retry in self.retries.pop(at):
            self._access(call, msgs, at, retry=retry)

    def _access(self, call, msgs: np.ndarray, t: float, retry: bool = False) -> None:
        med, cfg = self.med, self.med.cfg
        if cfg.model == "csma" and not retry:  # one deferring frame per node; later ones queue behind it
            behind = self.contending[call.senders[msgs]]
            if behind.any():
                for m in msgs[behind].tolist():
                    self.queue.setdefault(int(call.senders[m]), []).append((call, m))
                msgs = msgs[~behind]
                if not len(msgs):
                    return
        if cfg.model == "aloha":
            if not med.slotted:
                self._start(call, msgs, t)
                return
            k = math.ceil(t / cfg.slot - 1e-9)
            s = k * cfg.slot
            # a frame no longer than a slot ends by the next boundary (exactly, whatever the rounding)
            self._start(call, msgs, s, (k + 1) * cfg.slot if call.air <= cfg.slot else None)
            return
        geo = self._geo(t)
        snd = call.senders[msgs]
        end = sensed_end(snd, np.full(len(msgs), t), geo.cs_indptr, geo.cs_indices, (med.last, med.prev), med.tau)
        idle = end == -np.inf
        if idle.any():
            self._start(call, msgs[idle], t)
            if retry:  # the node's next frame contends once this one is over
                self.rt.at(t + call.air, self._next, call.senders[msgs[idle]], t + call.air)
        busy, bend = msgs[~idle], end[~idle]
        if not len(busy):
            return
        call.tries[busy] += 1
        if cfg.attempts > 0:
            out = call.tries[busy] >= cfg.attempts
            if out.any():
                self._drop_busy(call, busy[out], t)
                if retry:
                    self._next(call.senders[busy[out]], t)
            busy, bend = busy[~out], bend[~out]
        self.contending[call.senders[busy]] = True
        b = backoff(med.seed, TAG_EVENT, call.senders[busy], call.seqs[busy], call.tries[busy], cfg.cw)
        when = bend + b * cfg.unit_slot
        for at in np.unique(when).tolist():
            self._later(at, call, busy[when == at], retry=True)

    def _next(self, nodes: np.ndarray, t: float) -> None:
        """``nodes``' deferring frames are done (sent, or dropped): each one's next queued frame
        senses now."""
        self.contending[nodes] = False
        for j in nodes.tolist():
            waiting = self.queue.get(j)
            if waiting:
                call, m = waiting.pop(0)
                if not waiting:
                    del self.queue[j]
                self._access(call, np.array([m]), t)

    def _drop_busy(self, call, msgs, t: float) -> None:
        self.med.stats.add(busy_drops=len(msgs))
        rows, _ = gather(call.indptr, msgs)
        if len(rows):
            self.rt.dropped(self.rt.k, t, call.plan.recv[rows], call.plan.send[rows], "busy")

    def _start(self, call, msgs: np.ndarray, s: float, e: float | None = None) -> None:
        med = self.med
        snd = call.senders[msgs]
        e = s + call.air if e is None else min(s + call.air, e)
        med.record(snd, s, e)
        self.log_s.extend([s] * len(msgs))
        self.log_e.extend([e] * len(msgs))
        self.log_n.extend(snd.tolist())
        ids = np.arange(self.next_id, self.next_id + len(msgs))
        self.next_id += len(msgs)
        call.ids[msgs] = ids
        self.log_id.extend(ids.tolist())
        # busy time: starts come in time order, so a watermark per node measures the union
        geo = self._geo(s)
        if len(snd) == 1:  # one row of the sorted pair structure: unique already
            j = int(snd[0])
            u = geo.pairs.indices[geo.pairs.indptr[j]:geo.pairs.indptr[j + 1]]
        else:
            pos, _ = gather(geo.pairs.indptr, snd)
            u = np.unique(geo.pairs.indices[pos])
        wm = med.watermark[u]
        add = np.maximum(e - np.maximum(s, wm), 0.0)
        med.watermark[u] = np.maximum(wm, e)
        med.stats.add(transmissions=len(msgs), airtime=len(msgs) * call.air,
                      access_delay=len(msgs) * (s - call.t), busy_time=float(add.sum()))
        at = e + med.tau
        bucket = self.due.get(at)
        if bucket is None:
            self.due[at] = bucket = []
            self.rt.at(at, self._resolve, at)
        bucket.append((call, msgs, s))

    def _resolve(self, at: float) -> None:
        med = self.med
        items = self.due.pop(at)
        ls, le = np.array(self.log_s), np.array(self.log_e)
        ln = np.array(self.log_n, dtype=np.int64)
        li = np.array(self.log_id, dtype=np.int64)
        lo = min(s for _, _, s in items)
        near = le > lo
        ctx_s, ctx_e, ctx_n, ctx_id = ls[near], le[near], ln[near], li[near]
        # each message against the graph it was planned on (that of its send time's period)
        groups: dict = {}
        for item in items:
            geo = self._geo(item[0].t)
            groups.setdefault(id(geo), (geo, []))[1].append(item)
        # prune the log before any delivery (a protocol may send again from its handler): nothing
        # resolved later starts before at − τ − the longest airtime
        keep = le > at - med.tau - self.max_air
        if not keep.all():
            self.log_s, self.log_e = ls[keep].tolist(), le[keep].tolist()
            self.log_n, self.log_id = ln[keep].tolist(), li[keep].tolist()
        for geo, part in groups.values():
            if sum(len(m) for _, m, _ in part) <= SMALL:  # a few transmissions: one at a time
                res = _Small(ctx_s, ctx_e, ctx_n, geo.pairs, med.threshold)
            else:
                res = resolve(ctx_s, ctx_e, ctx_n, geo.pairs, sinr=med.threshold, noise=1.0)
            for call, msgs, s in part:
                self._finish(call, msgs, at, res, np.searchsorted(ctx_id, call.ids[msgs]))

    def _finish(self, call, msgs, at, res, where) -> None:
        rt, med, plan = self.rt, self.med, call.plan
        rows, which = gather(call.indptr, msgs)
        if not len(rows):
            med.stats.add(clean_transmissions=len(msgs))
            return
        recv = plan.recv[rows]
        clean = res.lookup(recv, where[which]) if len(msgs) > 1 else res.lookup(recv, where[0])
        lost = plan.lost[rows]
        col = ~clean
        n_col = int(np.count_nonzero(col))
        hit = np.bincount(which[col], minlength=len(msgs)) > 0
        med.stats.add(receptions=len(rows), collisions=n_col, clean_transmissions=int(np.count_nonzero(~hit)))
        if n_col:
            rt.dropped(rt.k, at, recv[col], plan.send[rows][col], "collision")
        bad = clean & lost
        if bad.any():
            rt.dropped(rt.k, at, recv[bad], plan.send[rows][bad], "loss")
        ok = clean & ~lost
        rows = rows[ok]
        if not len(rows):
            return
        rt.res.counters["deliveries"] += len(rows)
        arrive = at + (plan.arrive[rows] - call.t)
        recv, send, msg = plan.recv[rows], plan.send[rows], plan.msg[rows]
        if (arrive == at).all():
            rt.deliver(at, Batch(rt.n, recv, send, msg, call.fields))
            return
        order = np.argsort(arrive, kind="stable")
        recv, send, msg, arrive = recv[order], send[order], msg[order], arrive[order]
        cuts = np.flatnonzero(np.diff(arrive)) + 1
        for a, b in zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(arrive)]]).tolist()):
            ta = float(arrive[a])
            rt.at(ta, rt.deliver, ta, Batch(rt.n, recv[a:b], send[a:b], msg[a:b], call.fields))



SMALL = 8  # resolutions of at most this many transmissions take the direct path


class _Small:
    """``resolve``'s answers for a few transmissions, one at a time: the others overlapping
    transmission ``m``, and the nodes where their signals count (protocol model: those nodes
    lose ``m``; SINR model: their powers add up to the interference there)."""

    def __init__(self, s, e, snd, pairs, sinr) -> None:
        self.s, self.e, self.snd, self.pairs, self.sinr = s, e, snd, pairs, sinr

    def lookup(self, recv: np.ndarray, m) -> np.ndarray:
        if np.ndim(m):  # several transmissions: each reception against its own
            out = np.empty(len(recv), dtype=bool)
            for mm in np.unique(m).tolist():
                q = m == mm
                out[q] = self.lookup(recv[q], mm)
            return out
        s, e, snd, p = self.s, self.e, self.snd, self.pairs
        other = np.flatnonzero((s < e[m]) & (e > s[m]))
        other = other[other != m]
        if not len(other):
            return np.ones(len(recv), dtype=bool)
        rows = [p.indices[p.indptr[j]:p.indptr[j + 1]] for j in snd[other].tolist()]
        if self.sinr is None:
            return ~np.isin(recv, np.concatenate(rows))
        pw = [p.power[p.indptr[j]:p.indptr[j + 1]] for j in snd[other].tolist()]
        nodes, powers = np.concatenate(rows), np.concatenate(pw)
        interference = np.zeros(p.n)
        np.add.at(interference, nodes, powers)
        j = int(snd[m])
        row = p.indices[p.indptr[j]:p.indptr[j + 1]]
        signal = p.power[p.indptr[j]:p.indptr[j + 1]][np.searchsorted(row, recv)]
        with np.errstate(invalid="ignore"):
            return signal >= self.sinr * (1.0 + interference[recv])
