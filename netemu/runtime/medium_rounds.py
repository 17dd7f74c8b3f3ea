"""A round protocol's broadcasts through the medium (``SimTransport.round`` with a medium).

Every active node has one message for the round's start ``t_k``. ALOHA: it starts after a random
wait (slotted: ``b`` slots, ``b`` uniform in ``{0, …, cw}``; pure: uniform in ``[0, (cw + 1) ·
airtime)``), so that the round's transmissions spread instead of all colliding at ``t_k``. CSMA: it
is ready after ``b`` slots and then follows carrier sense and backoff (``access.csma_round``). A
transmission that would start after the round's end is never sent; one that ends (plus the
propagation delay, latency and jitter) after the round's end is late. The transmissions of the
round, with the tails of earlier ones still on the air, are resolved in one call
(``resolve.resolve``; ``resolve.resolve_round`` when the round's own frames are alone on the air).

The protocol gets the round's deliveries as one batch (``RoundBatch``: the round's edges and a
mask) at the instant the last of them arrives; round protocols act only at the round's end, so
this changes nothing they compute. Observers (the event trace) get every reception at its own
arrival instant.
"""

from __future__ import annotations

import numpy as np

from netemu.rng import keyed_uniform
from netemu.runtime.batches import RoundBatch
from netemu.world.medium.access import TAG_ROUND, backoff, csma_round
from netemu.world.medium.resolve import resolve, resolve_round


def broadcast_round(rt, med, rd, fields: dict, nbytes: int, active: np.ndarray, period: float,
                    listen: np.ndarray | None) -> None:
    cfg, n, k = med.cfg, rt.n, rd.k
    t0, t_end = rd.time, rd.time + period
    net = rt.net
    pos = net._radio_positions(t0) if net.trajectories is not None else None
    geo = med.geometry(rd.recv, rd.send, pos)
    A = float(med.airtime(nbytes))
    nodes = np.flatnonzero(active)
    slot = cfg.unit_slot
    start = np.full(n, np.nan)
    busy = None
    if cfg.model == "csma":
        ready = np.full(n, np.inf)
        ready[nodes] = t0 + backoff(med.seed, TAG_ROUND, nodes, k, 0, cfg.cw) * slot
        start, busy, sweeps = csma_round(ready, nodes, np.full(n, A), t_end, geo.cs_indptr, geo.cs_indices,
                                         med.tau, slot, cfg.cw, cfg.attempts, med.last, med.seed, k,
                                         padded=geo.cs_padded)
        med.sweeps += sweeps
    elif med.slotted:
        start[nodes] = t0 + backoff(med.seed, TAG_ROUND, nodes, k, 0, cfg.cw) * cfg.slot
    else:
        start[nodes] = t0 + keyed_uniform(med.seed, "radio", TAG_ROUND, nodes, k, 0) * (cfg.cw + 1) * A
    start[start >= t_end] = np.nan
    sent = np.flatnonzero(np.isfinite(start))
    s = start[sent]
    e = s + A
    # earlier transmissions still on the air at t0 disturb this round's too
    old = np.flatnonzero(med.last[1] > t0)
    ctx_s = np.concatenate([s, med.last[0][old]])
    ctx_e = np.concatenate([e, med.last[1][old]])
    ctx_n = np.concatenate([sent, old])
    fast = not len(old) and med.threshold is None and geo.by_receiver.ok  # this round's frames alone, one airtime
    if fast:
        clean, busy_time, reach = resolve_round(geo.by_receiver, n, sent, s, e, med.watermark)
    else:
        res = resolve(ctx_s, ctx_e, ctx_n, geo.pairs, sinr=med.threshold, noise=1.0, floor=med.watermark,
                      equal=not len(old))
        busy_time, reach = res.busy, res.reach
    np.maximum(med.watermark, reach, out=med.watermark)
    med.record(sent, s, e)

    recv, send = rd.recv, rd.send
    is_sent = np.zeros(n, dtype=bool)
    is_sent[sent] = True
    heard = None  # which edges carry a transmission of an active node to a listening one (None: all)
    if listen is not None or not active.all():
        heard = active[send]
        if listen is not None:
            heard &= listen[recv]
    end = np.full(n, np.nan)
    end[sent] = e
    arrive = end + med.tau + net.delay.latency  # per node (nan: not sent); per edge with jitter
    on_air = is_sent[send]
    if rd.jitter is None:
        ok = (arrive <= t_end)[send]  # sent, and arrives in the round
    else:
        arrive = arrive[send] + rd.jitter
        ok = arrive <= t_end
    if heard is not None:
        on_air &= heard
        ok &= heard
    late = ~ok if heard is None else heard & ~ok
    if not fast:
        q = np.flatnonzero(ok)
        txpos = np.full(n, -1)
        txpos[sent] = np.arange(len(sent))
        clean = np.zeros(len(recv), dtype=bool)
        clean[q] = res.at(txpos[send[q]], geo.edge_col[q])
    keep = ok & clean
    collided = ok ^ keep  # ok & ~clean
    lost = keep & rd.lost
    keep ^= lost  # ok & clean & ~lost
    n_col, n_lost, n_late = (int(np.count_nonzero(x)) for x in (collided, lost, late))
    n_keep = int(np.count_nonzero(keep))
    hit = np.zeros(n, dtype=bool)  # senders with a collided reception
    rows = geo.sender_rows
    if rows is not None:  # the edges grouped by sender: one pass
        hit[rows[0]] = np.logical_or.reduceat(collided, rows[1])
    else:
        hit[send[collided]] = True
    med.stats.add(transmissions=len(sent), clean_transmissions=len(sent) - int(np.count_nonzero(hit[sent])),
                  busy_drops=int(busy.sum()) if busy is not None else 0, receptions=int(np.count_nonzero(on_air)),
                  collisions=n_col, late=n_late, airtime=len(sent) * A, access_delay=float((s - t0).sum()),
                  busy_time=float(busy_time.sum()))
    rt.dropped_where(k, t0, recv, send, collided, n_col, "collision")
    rt.dropped_where(k, t0, recv, send, lost, n_lost, "loss")
    rt.dropped_where(k, t_end, recv, send, late, n_late, "late")
    rt.res.counters["deliveries"] += n_keep
    if n_keep == 0:
        return
    by_node = rd.jitter is None
    t_last = float(arrive[send[keep]].max() if by_node else arrive[keep].max())
    batch = RoundBatch(n, rd.edges, keep, fields, n_keep)
    rt.at(t_last, _deliver, rt, t_last, batch, k, keep, arrive, by_node)


def _deliver(rt, t: float, batch, k: int, keep: np.ndarray, arrive: np.ndarray, by_node: bool) -> None:
    """``arrive``: the arrival instant per edge, or per sender when ``by_node``."""
    rt.res.counters["events"] += 1
    if rt._on_deliver:  # every reception at its own arrival instant
        idx = np.flatnonzero(keep)
        a = arrive[batch.edges.send[idx]] if by_node else arrive[idx]
        order = np.argsort(a, kind="stable")
        idx, a = idx[order], a[order]
        cuts = np.flatnonzero(np.diff(a)) + 1
        recv, send = batch.edges.recv, batch.edges.send
        for lo, hi in zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(a)]]).tolist()):
            for o in rt._on_deliver:
                o.deliver(rt.label, k, float(a[lo]), recv[idx[lo:hi]], send[idx[lo:hi]])
    rt._call("on_message", batch, rt.proto.on_message, batch, now=t)
