"""Medium access: when each transmission starts (ALOHA, non-persistent CSMA).

**Carrier sense.** A transmission ``[s, e)`` of node ``k`` is sensed by the nodes whose
carrier-sense set holds ``k`` (``k`` itself included) during ``(s + τ, e + τ)``, ``τ`` the
propagation delay: a node deciding at ``t`` senses the medium busy when such an interval holds
``t``, and the busy end it sees is the latest ``e + τ`` of them.

**Non-persistent CSMA** (the issue's rule): a node ready at ``t`` senses; idle: it transmits at
``t``; busy: it defers to the busy end it senses and then backs off ``b`` slots, ``b`` uniform in
``{0, …, cw}``, and senses again (``attempts`` senses at most, when limited; then the frame is
dropped as ``busy``).

**A round of CSMA, vectorized.** Every node of a round is ready once (round start plus an initial
backoff). The decisions are made in parallel sweeps, each exact: a pending node may decide at its
time ``t_i`` only when every transmission it could sense at ``t_i`` is known, that is, when no
other pending node ``k`` of its carrier-sense set could start before ``t_i − τ``. A pending node
whose time lies inside a known transmission it senses cannot start before that transmission's
sensed end, so that end (not its own time) is its lower bound; this lets every node deferred by
one transmission defer in the same sweep. Sweeps repeat until every node has transmitted, been
dropped, or passed the round's end. The node with the earliest time always decides, so the sweeps
end; their number is about twice the number of transmissions that follow one another in one
neighbourhood.
"""

from __future__ import annotations

import numpy as np

from netemu.rng import keyed_uniform
from netemu.world.medium.resolve import gather

TAG_ROUND, TAG_EVENT = 0x4D41, 0x4D42  # keys of the backoff draws (concern "radio")


def backoff(seed: int, tag: int, node, key, attempt, cw: int) -> np.ndarray:
    """Backoff slot counts uniform in ``{0, …, cw}``, keyed by ``(node, key, attempt)``."""
    u = keyed_uniform(seed, "radio", tag, node, key, attempt)
    return np.minimum(np.floor(u * (cw + 1)), cw)


def sensed_end(nodes: np.ndarray, t: np.ndarray, indptr: np.ndarray, indices: np.ndarray, slots, tau: float
               ) -> np.ndarray:
    """For each node ``nodes[q]`` deciding at ``t[q]``: the latest sensed end ``e + τ`` of the known
    transmissions it senses at ``t[q]`` (``-inf``: idle). ``slots``: pairs ``(s, e)`` of per-node
    arrays (each node's known transmissions, ``nan`` where none)."""
    if len(nodes) == 1:  # one node (an event protocol's wake-up): its row
        j, tq = int(nodes[0]), float(t[0])
        k = indices[indptr[j]:indptr[j + 1]]
        best = -np.inf
        for s, e in slots:
            sk, ek = s[k] + tau, e[k] + tau
            on = ek[(sk < tq) & (tq < ek)]
            if len(on):
                best = max(best, float(on.max()))
        return np.array([best])
    pos, which = gather(indptr, nodes)
    k = indices[pos]
    tq = t[which]
    best = np.full(len(k), -np.inf)
    for s, e in slots:
        sk, ek = s[k] + tau, e[k] + tau
        on = (sk < tq) & (tq < ek)
        best = np.where(on & (ek > best), ek, best)
    out = np.full(len(nodes), -np.inf)
    if len(k):
        np.maximum.at(out, which, best)
    return out


def csma_round(ready: np.ndarray, nodes: np.ndarray, air: np.ndarray, t_end: float, indptr: np.ndarray,
               indices: np.ndarray, tau: float, slot: float, cw: int, attempts: int, old: tuple,
               seed: int, k: int, out: tuple | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Start times of the round's transmissions (``nan``: not sent: past the round's end, or
    dropped busy) of ``nodes`` ready at ``ready[nodes]``, airtimes ``air`` (per node).

    ``indptr, indices``: the carrier-sense sets by node (rows include the node); ``out``: the same
    relation transposed (who senses each node; default: symmetric, the same). ``old``: ``(s, e)``
    of each node's latest earlier transmission (``nan``: none). Returns ``(start, busy, sweeps)``:
    start times per node, the nodes dropped busy (mask), and the number of sweeps.

    A sweep looks only at the pending nodes near a change of the last one (a node that started,
    deferred or left, and the nodes that sense it): the others were blocked and still are."""
    n = len(ready)
    out_indptr, out_indices = out if out is not None else (indptr, indices)
    t = ready.copy()
    start = np.full(n, np.nan)
    cur_e = np.full(n, np.nan)
    tries = np.zeros(n, dtype=np.int64)
    busy = np.zeros(n, dtype=bool)
    pend = np.zeros(n, dtype=bool)
    pend[nodes] = True
    pend &= t < t_end
    old_s, old_e = old
    slots = [(start, cur_e)]
    if np.any(old_e > np.min(t[pend], initial=np.inf) - tau):  # earlier frames still on the air
        slots.append((old_s, old_e))
    sweeps = 0
    lb_all = np.where(pend, t, np.inf)  # lower bound of each pending node's start
    dirty = pend.copy()
    while True:
        P = np.flatnonzero(pend & dirty)
        if not len(P):
            if not pend.any():
                break
            # every pending node looks again: a node blocked by a neighbour whose bound rose
            # without a move (newly inside a frame) is not marked by the moves
            dirty = pend.copy()
            continue
        sweeps += 1
        pos, which = gather(indptr, P)
        kk = indices[pos]
        tp = t[P]
        tq = tp[which]
        if len(slots) == 1 and tau == 0:  # the common case: fewer passes
            sk, ek = start[kk], cur_e[kk]
            best = np.where((sk < tq) & (tq < ek), ek, -np.inf)
        else:
            best = np.full(len(kk), -np.inf)
            for s, e in slots:
                sk, ek = s[kk] + tau, e[kk] + tau
                on = (sk < tq) & (tq < ek)
                best = np.where(on & (ek > best), ek, best)
        cnt = indptr[P + 1] - indptr[P]
        rows = np.cumsum(cnt) - cnt  # every row holds its own node: none is empty
        cover = np.maximum.reduceat(best, rows)
        covered = cover > tp
        lb_all[P] = np.where(covered, cover, tp)
        # lb_all is inf off the pending set, and a node's own bound is never below its time
        early = (lb_all[kk] + tau < tq) if tau else (lb_all[kk] < tq)
        blocked = np.logical_or.reduceat(early, rows)
        go = ~blocked & ~covered
        wait = ~blocked & covered
        sent = P[go]
        start[sent] = t[sent]
        cur_e[sent] = t[sent] + air[sent]
        pend[sent] = False
        changed = [sent]
        dn = P[wait]
        if len(dn):
            tries[dn] += 1
            if attempts > 0:
                gone = dn[tries[dn] >= attempts]
                busy[gone] = True
                pend[gone] = False
                dn = dn[tries[dn] < attempts]
            b = backoff(seed, TAG_ROUND, dn, k, tries[dn], cw)
            t[dn] = _cover_of(cover, P, wait, dn) + b * slot
            pend[dn] &= t[dn] < t_end
            lb_all[dn] = t[dn]
            changed.append(P[wait])
        moved = np.concatenate(changed)
        lb_all[moved[~pend[moved]]] = np.inf
        dirty[:] = False
        dirty[moved] = True
        near, _ = gather(out_indptr, moved)
        dirty[out_indices[near]] = True
    return start, busy, sweeps


def _cover_of(cover: np.ndarray, P: np.ndarray, wait: np.ndarray, dn: np.ndarray) -> np.ndarray:
    """The sensed ends of the deferring nodes ``dn`` (a subset of ``P[wait]``, in order)."""
    pw, cw_ = P[wait], cover[wait]
    return cw_[np.searchsorted(pw, dn)]
