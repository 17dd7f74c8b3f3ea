"""Push-sum over a time-varying directed graph.

State ``(s_i, w_i)`` with ``s_i(0) = x_i(0)`` and ``w_i(0) = 1``. Sender ``j`` splits its mass into
``δ_j + 1`` equal shares (``δ_j`` its *nominal* out-degree), keeps one and broadcasts one:
``s_i ← Σ_j C_ij s_j``, ``w_i ← Σ_j C_ij w_j`` with ``C_ij = R_k[i, j] / (δ_j + 1)``. The estimate is
``z_i = s_i / w_i``. Exact without loss; shares lost after transmission vanish, so under loss the
estimate is biased.
(Kempe, Dobra, Gehrke, "Gossip-based computation of aggregate information", FOCS 2003;
Nedić & Olshevsky, "Distributed optimization over time-varying directed graphs", IEEE TAC 2015.)
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.protocol import Accumulator, Batch, Protocol


class PushSum(Protocol):
    name = "push-sum"
    paper = "Kempe et al. 2003; Nedić & Olshevsky 2015"

    def start(self, x0: np.ndarray) -> None:
        self.s = np.array(x0, dtype=np.float64)
        self.w = np.ones(self.ctx.n, dtype=np.float64)
        self.acc = Accumulator(self.ctx.n, ("s", "w"), counts=False)  # push shares need no counts

    def message(self) -> dict:
        deg = self.ctx.out_degree
        self._kept = {"s": mixing.push_share(self.s, deg), "w": mixing.push_share(self.w, deg)}
        return self._kept

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)

    def end_round(self) -> None:
        sums, _ = self.acc.take(self._kept)
        self.s = self._kept["s"] + sums["s"]
        self.w = self._kept["w"] + sums["w"]

    def estimate(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.s / self.w[:, None]
