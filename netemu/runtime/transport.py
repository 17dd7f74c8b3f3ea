"""The simulated transport: transmissions become delivery events on the clock.

Receptions that arrive at the same instant are *one* event handing the protocol *one* batch over
the node dimension (that is what makes the runtime fast); a batch's rows index the fields of the
transmission. The live transport (``netemu.live.transport``) has the same methods and moves the
same messages over UDP instead.
"""

from __future__ import annotations

import numpy as np

from netemu.protocol import Batch
from netemu.runtime.batches import RoundBatch
from netemu.world.network import Plan


def _groups(delay: np.ndarray):
    """Slices of equal values in the sorted ``delay``."""
    cuts = np.flatnonzero(np.diff(delay)) + 1
    starts = np.concatenate([[0], cuts]).tolist()
    ends = np.concatenate([cuts, [len(delay)]]).tolist()
    return zip(starts, ends)


class SimTransport:
    mac = None  # the shared medium's event path (netemu.runtime.medium_events), None: ideal

    def attach(self, rt) -> None:
        self.rt = rt
        medium = getattr(rt.net, "medium", None)
        if medium is not None:
            from netemu.runtime.medium_events import EventMedium

            self.mac = EventMedium(medium, rt)

    def begin_round(self, k: int, rd, t: float, period: float, out_degree) -> None:
        """Round ``k`` begins at ``t`` (the live transport tells its medium and external nodes)."""

    def end_round(self, k: int) -> None:
        """Round ``k`` has ended."""

    # -- round protocols: one realization per round (``Network.round``) -----------------------

    def round(self, rd, fields: dict, nbytes: int, active: np.ndarray, period: float,
              listen: np.ndarray | None = None) -> None:
        """Broadcast round ``rd.k``'s ``fields`` from the ``active`` nodes at ``rd.time``; receptions
        later than ``period`` are dropped as ``late`` (``listen``: who can receive at all)."""
        if self.mac is not None:  # through the shared medium (airtime, carrier sense, collisions)
            from netemu.runtime.medium_rounds import broadcast_round

            broadcast_round(self.rt, self.mac.med, rd, fields, nbytes, active, period, listen)
            return
        if rd.jitter is None and rd.edges is not None:
            self._one_instant(rd, fields, nbytes, active, period, listen)
            return
        rt = self.rt
        tx = active[rd.send]
        if listen is not None:  # receivers that are off hear nothing
            tx &= listen[rd.recv]
        recv, send = rd.recv[tx], rd.send[tx]
        lost = rd.lost[tx]
        jitter = rd.jitter[tx] if rd.jitter is not None else None
        delay = rt.net.delay.delays(nbytes, jitter, len(recv))
        late = ~lost & (delay > period)
        ok = ~lost & ~late
        rt.dropped(rd.k, rd.time, recv[lost], send[lost], "loss")
        rt.dropped(rd.k, rd.time + period, recv[late], send[late], "late")
        recv, send, delay = recv[ok], send[ok], delay[ok]
        rt.res.counters["deliveries"] += len(recv)
        if len(recv) == 0:
            return
        if jitter is None:  # one arrival instant for every reception
            rt.at(rd.time + delay[0], rt.deliver, rd.time + delay[0], Batch(rt.n, recv, send, send, fields), rd.k)
            return
        order = np.argsort(delay, kind="stable")
        recv, send, delay = recv[order], send[order], delay[order]
        for a, b in _groups(delay):
            t = rd.time + delay[a]
            rt.at(t, rt.deliver, t, Batch(rt.n, recv[a:b], send[a:b], send[a:b], fields), rd.k)

    def _one_instant(self, rd, fields: dict, nbytes: int, active: np.ndarray, period: float,
                     listen: np.ndarray | None) -> None:
        """``round`` without jitter: every reception takes the same delay, so the round is one
        batch, kept as a mask over the round's edges (``RoundBatch``); no per-edge array is cut out
        unless an observer or the protocol asks for the delivered edges themselves."""
        rt = self.rt
        delay = rt.net.delay.fixed(nbytes)
        heard = None  # which edges carry a transmission (None: all of them)
        if listen is not None or not active.all():
            heard = active[rd.send]
            if listen is not None:  # receivers that are off hear nothing
                heard &= listen[rd.recv]
        lost = rd.lost if heard is None else rd.lost & heard
        n_lost = int(np.count_nonzero(lost))
        rt.dropped_where(rd.k, rd.time, rd.recv, rd.send, lost, n_lost, "loss")
        keep = ~lost if heard is None else heard & ~rd.lost
        n_keep = len(keep) - n_lost if heard is None else int(np.count_nonzero(keep))
        if delay > period:  # every reception is late
            rt.dropped_where(rd.k, rd.time + period, rd.recv, rd.send, keep, n_keep, "late")
            return
        rt.dropped_where(rd.k, rd.time + period, rd.recv, rd.send, slice(0, 0), 0, "late")
        rt.res.counters["deliveries"] += n_keep
        if n_keep == 0:
            return
        t = rd.time + delay
        rt.at(t, rt.deliver, t, RoundBatch(rt.n, rd.edges, keep, fields, n_keep), rd.k)

    # -- event protocols: per-message draws (``Network.message``) -----------------------------

    def broadcast(self, senders, seqs, fields: dict, nbytes: int, t: float) -> None:
        plan = self.rt.net.message(senders, seqs, t, nbytes)
        if self.mac is not None:
            self.mac.send(plan, plan.msg, fields, nbytes, t, senders, seqs)
            return
        self._schedule(plan, fields, t)

    def unicast(self, src, dst, seqs, fields: dict, nbytes: int, t: float) -> None:
        plan, out = self.rt.net.unicast(src, dst, seqs, t, nbytes)
        if out.any():
            self.rt.dropped(self.rt.k, t, dst[out], src[out], "range")
        if self.mac is not None:  # radio unicasts through the medium, the uplink beside it
            self._unicast_mac(plan, out, fields, nbytes, t, src, dst, seqs)
            return
        self._schedule(plan, fields, t)

    def _unicast_mac(self, plan, out, fields, nbytes, t, src, dst, seqs) -> None:
        up = np.zeros(len(src), dtype=bool)
        uplink = self.rt.net.uplink
        if uplink is not None:
            up = (src == uplink.server) | (dst == uplink.server)
        radio = np.flatnonzero(~out & ~up)
        on_radio = ~up[plan.msg]
        if not on_radio.all():
            self._schedule(Plan(*(getattr(plan, f)[~on_radio] for f in ("recv", "send", "msg", "lost", "arrive"))),
                           fields, t)
        rp = Plan(*(getattr(plan, f)[on_radio] for f in ("recv", "send", "msg", "lost", "arrive")))
        self.mac.send(rp, np.searchsorted(radio, rp.msg), fields, nbytes, t, src[radio], seqs[radio])

    def _schedule(self, plan, fields: dict, t: float) -> None:
        rt = self.rt
        lost = plan.lost
        if len(lost) == 1 and plan.tries is None and not lost[0]:  # one message on its way (an FL upload)
            rt.res.counters["deliveries"] += 1
            ta = float(plan.arrive[0])
            rt.at(ta, rt.deliver, ta, Batch(rt.n, plan.recv, plan.send, plan.msg, fields))
            return
        if plan.tries is not None and plan.tries.any():  # uplink retries (lost ones retried too)
            more = plan.tries > 0
            rt.retried(plan.recv[more], plan.send[more], plan.tries[more])
        if lost.any():
            rt.dropped(rt.k, t, plan.recv[lost], plan.send[lost], "loss")
            ok = ~lost
            recv, send, msg, arrive = plan.recv[ok], plan.send[ok], plan.msg[ok], plan.arrive[ok]
        else:
            recv, send, msg, arrive = plan.recv, plan.send, plan.msg, plan.arrive
        rt.res.counters["deliveries"] += len(recv)
        if len(recv) == 0:
            return
        if arrive[0] == arrive[-1] and (len(arrive) < 3 or (arrive == arrive[0]).all()):  # one instant
            ta = float(arrive[0])
            rt.at(ta, rt.deliver, ta, Batch(rt.n, recv, send, msg, fields))
            return
        order = np.argsort(arrive, kind="stable")
        recv, send, msg, arrive = recv[order], send[order], msg[order], arrive[order]
        for a, b in _groups(arrive):
            ta = float(arrive[a])
            rt.at(ta, rt.deliver, ta, Batch(rt.n, recv[a:b], send[a:b], msg[a:b], fields))
