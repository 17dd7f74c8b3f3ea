"""Gossip with uniform pull weights.

Each round every node broadcasts ``x_j``; node ``i`` averages what it received with its own value,
``x_i ← Σ_j W_ij x_j`` with ``W_ij = 1/|R_i|`` over the received set ``R_i`` (self included).
Row-stochastic only, so it reaches consensus on a *weighted* average, not the mean.
(Boyd, Ghosh, Prabhakar, Shah, "Randomized gossip algorithms", IEEE Trans. Inf. Theory 2006;
pull form as in docs/algorithms.md.)
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.protocol import Accumulator, Batch, Protocol


class Gossip(Protocol):
    name = "gossip"
    paper = "Boyd et al. 2006, randomized gossip (uniform pull weights)"

    def start(self, x0: np.ndarray) -> None:
        self.x = np.array(x0, dtype=np.float64)
        self.acc = Accumulator(self.ctx.n, ("x",))

    def message(self) -> dict:
        return {"x": self.x}

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)

    def end_round(self) -> None:
        sums, count = self.acc.take({"x": self.x})
        self.x = mixing.pull_average(self.x, sums["x"], count)

    def estimate(self) -> np.ndarray:
        return self.x
