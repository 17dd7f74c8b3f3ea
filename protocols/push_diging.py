"""Push-DIGing: gradient tracking with push-sum over time-varying directed graphs.

Paper: Nedić, Olshevsky, Shi, "Achieving geometric convergence for distributed optimization over
time-varying graphs", SIAM J. Optim. 2017. With the column-stochastic push shares
``C_ij = R_k[i, j] / (δ_j + 1)`` (docs/algorithms.md), init ``u = x(0)``, ``v = 1``,
``y = ∇f(x(0))``; per round:

    u ← C (u − α y),   v ← C v,   x_new = u / v,   y ← C y + ∇f(x_new) − ∇f(x_old)

``u``, ``v`` and ``y`` travel in one message. The gradient difference is added when the new
gradient is ready, i.e. just before the next broadcast (same iterates). Geometric convergence
without loss; shares lost after transmission vanish, so under loss the tracking breaks and the
iterates can stall or diverge (the PULM paper's Figure 4). A straggler keeps its last gradient
(``∇f(x_new)`` replaced by ``∇f(x_old)``: no correction this round). One step per round, so
``lr`` schedules (``netemu.schedules``) index rounds, and ``horizon`` uses ``K = [run] rounds``.
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.optim import OptProtocol
from netemu.protocol import Accumulator, Batch


class PushDIGing(OptProtocol):
    name = "push-diging"
    paper = "Nedić, Olshevsky & Shi 2017, Push-DIGing"

    def start(self, x0: np.ndarray) -> None:
        n = self.ctx.n
        self.u = self.ctx.xp.asarray(x0)
        xp = self.ctx.xp
        self.v = xp.ones(n)
        self.x = xp.copy(self.u)
        self.y = xp.zeros_like(self.u)
        self.g_old = xp.zeros_like(self.u)
        self.k = 0
        self.acc = Accumulator(n, ("u", "v", "y"))
        self.bind_schedules()
        self._g = self.ctx.compute.grad(None, self.x)

    def message(self) -> dict:
        late = self.ctx.compute.late
        if self._g is not None:
            g = self.ctx.xp.where(late, self.g_old, self._g.result())
            self.y = self.y + g - self.g_old
            self.g_old, self._g = g, None
        deg = self.ctx.out_degree
        self._kept = {"u": mixing.push_share(self.u - self.lr(self.k) * self.y, deg),
                      "v": mixing.push_share(self.v, deg),
                      "y": mixing.push_share(self.y, deg)}
        return self._kept

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)

    def end_round(self) -> None:
        sums, _ = self.acc.take(self._kept)
        self.u = self._kept["u"] + sums["u"]
        self.v = self._kept["v"] + sums["v"]
        self.y = self._kept["y"] + sums["y"]
        with np.errstate(divide="ignore", invalid="ignore"):
            self.x = self.u / self.v[:, None]
        self.k += 1
        self._g = self.ctx.compute.grad(None, self.x)

    def estimate(self) -> np.ndarray:
        return self.x
