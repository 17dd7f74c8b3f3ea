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

**The common round, with less work per sweep** (one airtime, no propagation delay, no earlier
frame on the air, a symmetric relation that padding does not more than double: ``_csma_pushed``).
The same decisions, but a sweep no longer reads the rows for the sensed ends: each start tells the
nodes that sense it, which keep the latest start before their time (with one airtime the latest
start ends last), and a blocked node waits on one node (the sensed node of the earliest bound)
instead of being looked at after every change near it.
"""

from __future__ import annotations

import numpy as np

from netemu.rng import keyed_uniform
from netemu.world.medium.resolve import gather, stable_argsort

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
               seed: int, k: int, out: tuple | None = None, padded: list | None = None
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """Start times of the round's transmissions (``nan``: not sent: past the round's end, or
    dropped busy) of ``nodes`` ready at ``ready[nodes]``, airtimes ``air`` (per node).

    ``indptr, indices``: the carrier-sense sets by node (rows include the node); ``out``: the same
    relation transposed (who senses each node; default: symmetric, the same). ``old``: ``(s, e)``
    of each node's latest earlier transmission (``nan``: none). ``padded``: a list the caller keeps
    per relation, where the padded rows (``padded_rows``) are put the first time. Returns
    ``(start, busy, sweeps)``: start times per node, the nodes dropped busy (mask), and the number
    of sweeps.

    A sweep looks only at the pending nodes near a change of the last one (a node that started,
    deferred or left, and the nodes that sense it): the others were blocked and still are."""
    if tau == 0 and out is None and len(nodes) and np.all(air[nodes] == air[nodes[0]]):
        if padded is None:
            padded = []
        if not padded:  # the caller keeps it for the next round of the same relation
            padded.append(padded_rows(indptr, indices))
        nb = padded[0]
        if nb is not None and not np.any(old[1] > np.min(ready[nodes], initial=np.inf)):
            return _csma_pushed(ready, nodes, float(air[nodes[0]]), t_end, nb, slot, cw, attempts, seed, k)
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
            dn, _ = _sensed_busy(dn, tries, attempts, busy, pend)
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


def _sensed_busy(dn, tries, attempts, busy, pend):
    """Nodes ``dn`` sensed the medium busy once more: those that reach ``attempts`` (> 0) give up
    (``busy``, no longer pending); returns ``(the others, those that gave up)``."""
    tries[dn] += 1
    if attempts <= 0:
        return dn, dn[:0]
    out = tries[dn] >= attempts
    gone = dn[out]
    busy[gone] = True
    pend[gone] = False
    return dn[~out], gone


def _cover_of(cover: np.ndarray, P: np.ndarray, wait: np.ndarray, dn: np.ndarray) -> np.ndarray:
    """The sensed ends of the deferring nodes ``dn`` (a subset of ``P[wait]``, in order)."""
    pw, cw_ = P[wait], cover[wait]
    return cw_[np.searchsorted(pw, dn)]


def padded_rows(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray | None:
    """The rows of a compressed relation as one ``(n, D)`` array, padded with ``n`` (a node that
    never transmits and never blocks); None when the relation is not symmetric or padding would
    more than double it (a hub)."""
    n = len(indptr) - 1
    cnt = np.diff(indptr)
    d = int(cnt.max(initial=0))
    rows = np.repeat(np.arange(n, dtype=np.int64), cnt)
    nb = None
    if n * d <= 2 * len(indices) + 1024 and np.array_equal(np.sort(rows * n + indices), np.sort(indices * n + rows)):
        nb = np.full((n, d), n, dtype=np.int64)
        nb[rows, np.arange(len(indices)) - np.repeat(indptr[:-1], cnt)] = indices
    return nb


def _csma_pushed(ready, nodes, air: float, t_end, nb, slot, cw, attempts, seed, k):
    """``csma_round`` for one airtime ``air``, no propagation delay, no earlier frame on the air
    and a symmetric relation, over padded rows ``nb``. The same decisions, found with less work:

    - a node's sensed end is known without looking at its row: ``below[i]``, the latest start
      before ``t[i]`` among the nodes it senses, is kept up to date by each start telling the
      nodes that sense it (``above[i]``: the latest one at or after ``t[i]``, folded in when
      ``t[i]`` moves on); the sensed end at ``t[i]`` is ``below[i] + air`` when that is after
      ``t[i]`` (one airtime: the latest start ends last);
    - a blocked node waits on the sensed node of the earliest bound and is looked at again only
      when that node's bound changes."""
    n = len(ready)
    t_pad = np.append(ready, np.inf)  # index n: the padding
    t = t_pad[:n]
    start = np.full(n, np.nan)
    tries = np.zeros(n, dtype=np.int64)
    busy = np.zeros(n, dtype=bool)
    pend = np.zeros(n, dtype=bool)
    pend[nodes] = True
    pend &= t < t_end
    below = np.full(n + 1, -np.inf)  # index n: the padding
    above = np.full(n + 1, -np.inf)
    lb_all = np.full(n + 1, np.inf)  # lower bound of each pending node's start
    lb_all[:n][pend] = t[pend]
    watch = np.full(n, n)  # the sensed node a blocked node waits on (n: none)
    changed = np.zeros(n + 1, dtype=bool)  # whose bound changed in the last sweep (n: never)
    sweeps = 0
    P = np.flatnonzero(pend)
    while len(P) or pend.any():
        if not len(P):  # (not reached: the node a blocked node waits on changes first)
            P = np.flatnonzero(pend)
        sweeps += 1
        tp = t[P]
        cover = below[P] + air
        covered = cover > tp
        before = lb_all[P]
        lb_all[P] = np.where(covered, cover, tp)
        kk = np.take(nb, P, axis=0)
        lbk = np.take(lb_all, kk)  # (take: faster than indexing here)
        arg = lbk.argmin(axis=1)
        low = lbk[np.arange(len(P)), arg]
        blocked = low < tp  # a sensed node may still start before t
        go = ~blocked & ~covered
        wait = ~blocked & covered
        sent = P[go]
        start[sent] = t[sent]
        pend[sent] = False
        lb_all[sent] = np.inf
        dn = P[wait]
        if len(dn):
            dn, gone = _sensed_busy(dn, tries, attempts, busy, pend)
            lb_all[gone] = np.inf
            b = backoff(seed, TAG_ROUND, dn, k, tries[dn], cw)
            t2 = cover[wait][np.searchsorted(P[wait], dn)] + b * slot
            t[dn] = t2
            # every start known now is at or before t2; those before it are sensed from t2 on
            up = above[dn]
            tie = up >= t2  # (a start at t2 exactly: rare)
            below[dn] = np.maximum(below[dn], np.where(tie, -np.inf, up))
            above[dn] = -np.inf
            for i in dn[tie]:  # both from the row
                s_row = start[nb[i][nb[i] < n]]
                below[i] = s_row[s_row < t[i]].max(initial=-np.inf)
                above[i] = s_row[s_row >= t[i]].max(initial=-np.inf)
            left = t2 >= t_end
            pend[dn[left]] = False
            lb_all[dn] = np.where(left, np.inf, t2)
        if len(sent):  # each start tells the nodes that sense it (the latest start per node)
            kn = nb[sent].ravel()
            o = stable_argsort(kn, n + 1)
            kn = kn[o]
            sv = np.repeat(t[sent], nb.shape[1])[o]
            first = np.flatnonzero(np.concatenate([[True], kn[1:] != kn[:-1]]))
            u = kn[first]
            lt = sv < t_pad[kn]
            got = np.maximum.reduceat(np.where(lt, sv, -np.inf), first)
            below[u] = np.maximum(below[u], got)
            got = np.maximum.reduceat(np.where(lt, -np.inf, sv), first)
            above[u] = np.maximum(above[u], got)
        watch[P] = np.where(blocked, kk[np.arange(len(P)), arg], P)  # the others: on themselves
        changed[P] = (lb_all[P] != before) | ~blocked
        Q = P
        P = np.flatnonzero(pend & changed[watch])
        changed[Q] = False
    return start, busy, sweeps
