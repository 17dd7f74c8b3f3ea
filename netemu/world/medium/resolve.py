"""Collision resolution, vectorized over a set of transmissions by sorting intervals per receiver.

Transmission ``m`` occupies ``[s[m], e[m])`` (airtime) at its sender ``snd[m]``; with one fixed
propagation delay for every pair of nodes, it occupies ``[s[m] + τ, e[m] + τ)`` at every receiver,
so overlaps at a receiver are overlaps of the send intervals. ``Pairs`` (a compressed row per
sender) lists where a sender's signal counts: the nodes within its interference range, itself
included (a node that transmits cannot receive: half duplex).

``resolve`` builds every (node, transmission) pair of a set, groups the pairs by node with the
transmissions in order of start (one sort of the transmissions, one stable counting sort of the
pairs by node), and then, per pair and with no loop over packets:

- **protocol model**: the pair is clean when no other interval in its node's group overlaps it:
  no earlier one ends after it starts (a running maximum of the ends within the group) and the
  next one starts at or after its end;
- **SINR model**: the interference at the pair is the sum of the powers of the other intervals of
  the group that overlap it: (those starting before its end) − (those ending at or before its
  start), both prefix sums in a sorted order;
- the time during which each node hears at least one transmission (its busy time: the union of its
  group's intervals), for the channel utilisation.

Times are compared through their integer ranks among all the set's starts and ends, so a running
maximum per group is one ``np.maximum.accumulate`` over ``group · R + rank`` (exact, no float
offsets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Pairs:
    """``indices[indptr[j]:indptr[j + 1]]``: the nodes where sender ``j``'s signal counts (sorted,
    ``j`` itself included); ``power``: the received power of each entry (SINR model), else None."""

    indptr: np.ndarray
    indices: np.ndarray
    n: int
    power: np.ndarray | None = None


def gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the entries of ``rows`` of a compressed structure, row after row, and the
    index (into ``rows``) of the row of each."""
    if len(rows) == 1:
        j = int(rows[0])
        a, b = int(indptr[j]), int(indptr[j + 1])
        return np.arange(a, b), np.zeros(b - a, dtype=np.int64)
    lo, hi = indptr[rows], indptr[rows + 1]
    cnt = hi - lo
    total = int(cnt.sum())
    which = np.repeat(np.arange(len(rows)), cnt)
    if total == 0:
        return np.empty(0, dtype=np.int64), which
    offs = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
    return offs + np.arange(total), which


@dataclass
class Resolution:
    """Per (node, transmission) pair, grouped by node, transmissions in order of start within a
    group: ``node``, ``tx`` (index into the set), ``clean`` (protocol model: no overlap; SINR model:
    SINR above the threshold); ``key`` (``node · M + rank of tx by start``, sorted) to look pairs up;
    ``busy``: per node, the length of the union of its intervals not before ``floor``."""

    node: np.ndarray
    tx: np.ndarray
    clean: np.ndarray
    key: np.ndarray | None
    rank: np.ndarray  # rank[m]: position of transmission m in start order
    m: int
    busy: np.ndarray | None = None
    built: np.ndarray | None = None  # clean, in the order the pairs were built (by start, then row)
    offset: np.ndarray | None = None  # offset[m]: where transmission m's row starts in that order
    reach: np.ndarray | None = None  # per node, the latest end among its pairs (-inf: none; with floor)

    def lookup(self, node: np.ndarray, tx: np.ndarray) -> np.ndarray:
        """``clean`` of the pairs ``(node[q], tx[q])`` (every one must be a pair of the set)."""
        if self.key is None:
            self.key = self.node * self.m + self.rank[self.tx]
        pos = np.searchsorted(self.key, node * self.m + self.rank[tx])
        return self.clean[pos]

    def at(self, tx: np.ndarray, col: np.ndarray) -> np.ndarray:
        """``clean`` of the ``col[q]``-th entry of the row of transmission ``tx[q]`` (its sender's
        row of ``Pairs``): a gather, no search."""
        return self.built[self.offset[tx] + col]


def resolve(s: np.ndarray, e: np.ndarray, snd: np.ndarray, pairs: Pairs, *, sinr: float | None = None,
            noise: float = 0.0, floor: np.ndarray | None = None, equal: bool = False) -> Resolution:
    """Resolve transmissions ``[s[m], e[m])`` of senders ``snd[m]`` against each other.

    ``sinr``: the linear SINR threshold of the physical model (None: protocol model), with
    ``noise`` in the unit of ``pairs.power``. ``floor``: per node, time before which its busy time
    was already counted (union measured from there on; None: no busy time). ``equal``: every
    ``e[m]`` is ``s[m] + A`` for one ``A`` (one round's frames), so within a group the ends are in
    the order of the starts and each pair only needs its neighbours in the group."""
    m = len(s)
    order = np.argsort(s, kind="stable")
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m)
    pos, which = gather(pairs.indptr, snd[order])
    node = pairs.indices[pos]
    tx = order[which]
    cnt = pairs.indptr[snd + 1] - pairs.indptr[snd]
    offset = np.empty(m, dtype=np.int64)
    offset[order] = np.cumsum(cnt[order]) - cnt[order]
    # stable sort by node: transmissions stay in start order within a node's group
    by_node = stable_argsort(node, pairs.n)
    node, tx, pos = node[by_node], tx[by_node], pos[by_node]
    if equal and sinr is None:
        return _equal(s, e, node, tx, by_node, rank, m, offset, pairs.n, floor)
    # integer ranks of every start and end
    times, inv = np.unique(np.concatenate([s, e]), return_inverse=True)
    rs, re_ = inv[:m][tx], inv[m:][tx]
    span = len(times) + 1
    first = np.ones(len(node), dtype=bool)
    first[1:] = node[1:] != node[:-1]
    group = np.cumsum(first) - 1
    base = group * span
    run = np.maximum.accumulate(base + re_)  # running max of the ends within the group
    prev = np.empty(len(node), dtype=np.int64)
    prev[0] = -1
    prev[1:] = run[:-1]
    prev[first] = -1
    prev_end = np.where(prev >= 0, prev - base, -1)  # rank of the latest end before this pair (-1: none)
    last = np.ones(len(node), dtype=bool)
    last[:-1] = first[1:]
    nxt = np.empty(len(node), dtype=np.int64)
    nxt[:-1] = rs[1:]
    nxt[last] = span  # nothing after it in its group
    if sinr is None:
        clean = (prev_end <= rs) & (nxt >= re_)
    else:
        clean = _sinr_clean(rs, re_, base, pairs.power[pos], group, first, sinr, noise)
    busy = reach = None
    if floor is not None:
        reach = np.full(pairs.n, -np.inf)  # per node, the latest end it hears
        reach[node[last]] = times[run[last] - base[last]]
        t_prev = np.where(prev_end >= 0, times[np.maximum(prev_end, 0)], -np.inf)
        lo = np.maximum(np.maximum(times[rs], t_prev), floor[node])
        add = np.maximum(times[re_] - lo, 0.0)
        busy = np.bincount(node, weights=add, minlength=pairs.n)
    key = None
    built = np.empty(len(clean), dtype=bool)
    built[by_node] = clean
    return Resolution(node, tx, clean, key, rank, m, busy, built, offset, reach)


def _equal(s, e, node, tx, by_node, rank, m, offset, n, floor) -> Resolution:
    """``resolve``'s protocol model when all airtimes are equal: ends sorted like starts within a
    group (``s + A`` is monotone in ``s``), so the latest earlier end is the previous pair's."""
    k = len(node)
    first = np.ones(k, dtype=bool)
    first[1:] = node[1:] != node[:-1]
    last = np.ones(k, dtype=bool)
    last[:-1] = first[1:]
    ss, ee = s[tx], e[tx]
    prev_e = np.empty(k)
    prev_e[0] = -np.inf
    prev_e[1:] = ee[:-1]
    prev_e[first] = -np.inf
    next_s = np.empty(k)
    next_s[-1] = np.inf
    next_s[:-1] = ss[1:]
    next_s[last] = np.inf
    clean = (prev_e <= ss) & (next_s >= ee)
    busy = reach = None
    if floor is not None:
        reach = np.full(n, -np.inf)
        reach[node[last]] = ee[last]
        lo = np.maximum(np.maximum(ss, prev_e), floor[node])
        busy = np.bincount(node, weights=np.maximum(ee - lo, 0.0), minlength=n)
    built = np.empty(k, dtype=bool)
    built[by_node] = clean
    return Resolution(node, tx, clean, None, rank, m, busy, built, offset, reach)


class ByReceiver:
    """``Pairs`` turned around, for one round's frames (each node at most one, all of one
    airtime): entry ``q`` of receiver ``row[q]``'s row is the sender ``snd[q]`` whose signal
    counts there. ``base[q] = row[q] << (RB + CB) | column`` leaves ``RB`` bits between the row and
    the entry's column in it: one sort of ``base | rank << CB`` (``rank``: the sender's frame's
    rank by start) orders every row by start and still says where each entry came from.
    ``edge_entry``: the entry of each reception edge ``recv ← send`` of the graph. Built once per
    graph; ``ok`` is False when the keys would not fit in 63 bits."""

    def __init__(self, pairs: Pairs, recv: np.ndarray, send: np.ndarray, edge_col: np.ndarray) -> None:
        n = pairs.n
        cnt = np.diff(pairs.indptr)
        ps = np.repeat(np.arange(n, dtype=np.int64), cnt)
        pr = pairs.indices.astype(np.int64)
        # by receiver, then sender: the pairs are in sender order, so a stable sort by receiver
        # (one radix pass) gives the order of the distinct keys ``pr * n + ps``
        perm = stable_argsort(pr, n)
        self.snd = ps[perm]
        self.row = pr[perm]
        indptr = np.searchsorted(self.row, np.arange(n + 1))
        self.first, self.last = indptr[:-1], indptr[1:] - 1  # every row holds its node: none is empty
        rowstart = indptr[self.row]
        col = np.arange(len(perm), dtype=np.int64) - rowstart
        self.cb = max(int(np.diff(indptr).max(initial=1)) - 1, 1).bit_length()  # columns of the receiver rows
        self.rb = n.bit_length()  # ranks 0..n (0: no frame)
        bits = max(n - 1, 1).bit_length() + self.rb + self.cb
        self.ok = bits <= 62
        self.dtype = np.int32 if bits <= 31 else np.int64  # half the bytes to sort and decode
        self.base = ((self.row << (self.rb + self.cb)) | col).astype(self.dtype)
        self.rowstart = rowstart.astype(np.int32 if len(perm) < 2**31 else np.int64)
        inv = np.empty(len(perm), dtype=np.int64)
        inv[perm] = np.arange(len(perm))
        self.edge_entry = inv[pairs.indptr[send] + edge_col]


def resolve_round(by: ByReceiver, n: int, snd: np.ndarray, s: np.ndarray, e: np.ndarray, floor: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``resolve(s, e, snd, pairs, floor=floor, equal=True)`` (protocol model) for frames of
    distinct senders: one sort of packed integer keys, no per-pair index arrays. Returns
    ``(clean, busy, reach)``: per reception edge of the graph whether its sender's frame is heard
    clean (meaningless for the edges of senders without a frame), and ``busy`` and ``reach`` per
    node as ``resolve`` gives them (the same bits: the same sums in the same order)."""
    m = len(snd)
    order = np.argsort(s, kind="stable")
    rank = np.zeros(n, dtype=by.dtype)  # 0: no frame, first in its row; the frames 1..m by start
    rank[snd[order]] = np.arange(1, m + 1, dtype=by.dtype)
    key = rank[by.snd]
    key <<= by.cb
    key |= by.base
    key.sort()
    key = key.astype(np.intp, copy=False)  # native indices: faster gathers and scatters below
    col = key & ((1 << by.cb) - 1)
    key >>= by.cb
    key &= (1 << by.rb) - 1  # the rank of each entry's frame, rows in start order
    S = np.empty(m + 1)
    S[0] = -np.inf  # entries without a frame: first in their row, ending at -inf, neutral
    S[1:] = s[order]
    ss = S.take(key)
    A = float(e[0] - s[0]) if m else 0.0
    if np.array_equal(s + A, e):  # one airtime, and every end is its start plus it in floats
        ee = ss + A  # the same bits as e's (-inf + A = -inf)
    else:
        E = np.empty(m + 1)
        E[0] = -np.inf
        E[1:] = e[order]
        ee = E.take(key)
    k = len(ss)
    # gap[j]: entry j starts no earlier than the previous entry of its row ends (True at a row's
    # first entry and past the end): clean = no overlap with the previous or the next frame
    gap = np.empty(k + 1, dtype=bool)
    np.less_equal(ee[:-1], ss[1:], out=gap[1:k])
    gap[by.first] = True
    gap[k] = True
    clean = np.empty(k, dtype=bool)
    col += by.rowstart
    clean[col] = gap[:-1] & gap[1:]
    lo = np.empty(k)  # max(start, the previous entry's end), the previous at a row's first entry -inf
    np.maximum(ss[1:], ee[:-1], out=lo[1:])
    lo[by.first] = ss[by.first]
    if m and floor.max() > s.min():  # else no frame starts before the floor: max(lo, floor) is lo,
        np.maximum(lo, floor[by.row], out=lo)  # or 0 below for entries without a frame either way
    with np.errstate(invalid="ignore"):
        np.subtract(ee, lo, out=lo)
    np.fmax(lo, 0.0, out=lo)  # 0 for entries without a frame (-inf - -inf is nan, -inf - x is -inf)
    busy = np.bincount(by.row, weights=lo, minlength=n)
    reach = np.maximum.reduceat(ee, by.first)
    return clean[by.edge_entry], busy, reach


def stable_argsort(a: np.ndarray, n: int) -> np.ndarray:
    """``np.argsort(a, kind="stable")`` of integers in ``[0, n)``, by numpy's radix sort of 16-bit
    keys (one pass below 32768, else two: low 15 bits, then the rest)."""
    if n <= 32767:
        return np.argsort(a.astype(np.int16), kind="stable")
    if n <= 2**30:
        o1 = np.argsort((a & 0x7FFF).astype(np.int16), kind="stable")
        o2 = np.argsort((a[o1] >> 15).astype(np.int16), kind="stable")
        return o1[o2]
    return np.argsort(a, kind="stable")


def _sinr_clean(rs, re_, base, power, group, first, threshold: float, noise: float) -> np.ndarray:
    """SINR of each pair against the other intervals of its group that overlap it, at least the
    threshold; a pair whose node is transmitting (infinite power of its own signal) is never
    clean. Overlapping = starting before its end, less those ending at or before its start."""
    finite = np.isfinite(power)
    p = np.where(finite, power, 0.0)
    own = ~finite  # the node's own transmissions
    c = np.concatenate([[0.0], np.cumsum(p)])
    co = np.concatenate([[0], np.cumsum(own)])
    n = len(rs)
    start_key = base + rs  # sorted (groups in order, starts sorted within a group)
    gstart = np.flatnonzero(first)[group]
    upto = np.searchsorted(start_key, base + re_, side="left")  # pairs starting before my end
    began = c[upto] - c[gstart]
    began_own = co[upto] - co[gstart]
    # pairs of the group ending at or before my start: sort the ends within groups
    end_key = base + re_
    eo = np.argsort(end_key, kind="stable")
    ce = np.concatenate([[0.0], np.cumsum(p[eo])])
    coe = np.concatenate([[0], np.cumsum(own[eo])])
    sorted_end = end_key[eo]
    gs = np.searchsorted(sorted_end, base, side="left")
    done = np.searchsorted(sorted_end, base + rs, side="right")
    ended = ce[done] - ce[gs]
    ended_own = coe[done] - coe[gs]
    interference = began - ended - p
    own_busy = (began_own - ended_own - own) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = p >= threshold * (noise + np.maximum(interference, 0.0))
    del n
    return ok & finite & ~own_busy
