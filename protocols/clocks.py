"""Poisson wake-up clocks of the asynchronous protocols (shared by them, not a protocol).

Node ``i`` wakes at the ticks of a Poisson process of rate ``λ_i = rate · ctx.speed[i]`` (the
straggler settings make a slow node's clock slow). The gap before node ``i``'s ``c``-th wake-up is
``−ln(1 − u) / λ_i`` with ``u`` keyed by ``(seed, i, c)`` (``netemu.rng.keyed_uniform``): every
asynchronous protocol of a run sees the same wake-up times.
"""

from __future__ import annotations

import numpy as np

from netemu.params import Key
from netemu.rng import keyed_uniform

RATE = Key("float", 1.0, lo=0, lo_open=True, hi=1e6, example="1.0",
           doc="wake-ups per second of a node at nominal speed (Poisson clock)")


class PoissonClock:
    def __init__(self, ctx, rate: float) -> None:
        self.ctx = ctx
        speed = ctx.speed if ctx.speed is not None else np.ones(ctx.n)
        self.rate = rate * np.asarray(speed, dtype=np.float64)
        self.count = np.zeros(ctx.n, dtype=np.int64)

    def start(self) -> None:
        self.next(np.arange(self.ctx.n))

    def next(self, nodes: np.ndarray) -> None:
        """Set the next wake-up of ``nodes``."""
        u = keyed_uniform(self.ctx.seed, "protocol", nodes, self.count[nodes])
        self.count[nodes] += 1
        self.ctx.set_timer(nodes, -np.log1p(-u) / self.rate[nodes], "wake")
