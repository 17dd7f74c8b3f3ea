"""Poisson wake-up clocks of the asynchronous protocols (shared by them, not a protocol).

Node ``i`` wakes at the ticks of a Poisson process of rate ``λ_i = rate · ctx.speed[i]`` (the
straggler settings make a slow node's clock slow). The gap before node ``i``'s ``c``-th wake-up is
``−ln(1 − u) / λ_i`` with ``u`` keyed by ``(seed, i, c)`` (``netemu.rng.keyed_uniform``): every
asynchronous protocol of a run sees the same wake-up times.

With ``slot > 0`` each wake-up is postponed to the next multiple of ``slot`` (the Poisson times
themselves are unchanged, so the clocks do not drift): nodes waking in one slot act together, one
event and one batch of broadcasts instead of one each. An approximation of continuous time, for
large swarms; ``slot = 0`` (the default) keeps continuous time.
"""

from __future__ import annotations

import numpy as np

from netemu.params import Key
from netemu.rng import keyed_uniform

RATE = Key("float", 1.0, lo=0, lo_open=True, hi=1e6, example="1.0",
           doc="wake-ups per second of a node at nominal speed (Poisson clock)")
SLOT = Key("float", 0.0, lo=0, hi=1e6, example="0.01",
           doc="wake-ups postponed to multiples of this (s), so nodes of one slot act together; 0: continuous")


class PoissonClock:
    """The gaps are computed ahead, ``block`` wake-ups per node at a time (one vectorized
    ``keyed_uniform`` call and one ``log1p`` instead of one each per wake-up; the values are the
    same bits, since each uniform is a pure function of ``(seed, i, c)`` and the rest is
    elementwise)."""

    BLOCK_FLOATS = 1 << 20  # at most this many gaps computed ahead (8 MiB)

    def __init__(self, ctx, rate: float, slot: float = 0.0) -> None:
        self.ctx = ctx
        self.slot = slot
        self.when = np.zeros(ctx.n)  # each node's Poisson time of its latest wake-up (slot > 0)
        speed = ctx.speed if ctx.speed is not None else np.ones(ctx.n)
        self.rate = rate * np.asarray(speed, dtype=np.float64)
        self.count = np.zeros(ctx.n, dtype=np.int64)
        self.block = int(min(64, max(1, self.BLOCK_FLOATS // max(ctx.n, 1))))
        self._gap = np.empty((ctx.n, self.block))  # _gap[i, m]: node i's gap before wake-up _first[i] + m + 1
        self._first = np.full(ctx.n, -self.block, dtype=np.int64)

    def start(self) -> None:
        self.next(np.arange(self.ctx.n))

    def _draw(self, i: np.ndarray, c: np.ndarray) -> None:
        """The next block of gaps of nodes ``i``, from their wake-up numbers ``c`` on."""
        u = keyed_uniform(self.ctx.seed, "protocol", i[:, None], c[:, None] + np.arange(self.block))
        self._gap[i] = -np.log1p(-u) / self.rate[i][:, None]
        self._first[i] = c

    def next(self, nodes: np.ndarray) -> None:
        """Set the next wake-up of ``nodes``."""
        if self.slot > 0:
            return self._next_slotted(nodes)
        if len(nodes) == 1:  # one node: scalar indexing
            j = nodes[0]
            c = self.count[j]
            m = c - self._first[j]
            if m >= self.block:
                self._draw(nodes, self.count[nodes])
                m = 0
            self.count[j] = c + 1
            self.ctx.set_timer(nodes, self._gap[j, m], "wake")
            return
        c = self.count[nodes]
        m = c - self._first[nodes]
        ahead = m >= self.block
        if ahead.any():
            self._draw(nodes[ahead], c[ahead])
            m[ahead] = 0
        gap = self._gap[nodes, m]
        self.count[nodes] += 1
        self.ctx.set_timer(nodes, gap, "wake")

    def _gaps(self, nodes: np.ndarray) -> np.ndarray:
        c = self.count[nodes]
        m = c - self._first[nodes]
        ahead = m >= self.block
        if ahead.any():
            self._draw(nodes[ahead], c[ahead])
            m[ahead] = 0
        self.count[nodes] += 1
        return self._gap[nodes, m]

    def _next_slotted(self, nodes: np.ndarray) -> None:
        when = self.when[nodes] + self._gaps(nodes)
        self.when[nodes] = when
        due = np.maximum(np.ceil(when / self.slot), round(self.ctx.now / self.slot)) * self.slot
        self.ctx.set_timer_at(nodes, due, "wake")
