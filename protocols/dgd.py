"""DGD / D-PSGD with ``R`` gossip rounds per step.

Papers: Nedić & Ozdaglar, "Distributed subgradient methods for multi-agent optimization",
IEEE TAC 2009 (DGD); Lian et al., "Can decentralized algorithms outperform centralized
algorithms?", NeurIPS 2017 (D-PSGD, stochastic gradients). As in docs/algorithms.md, outer step ``k``:

    z_i = x_i − α_k ∇f_i(x_i)
    R_k gossip rounds on z (uniform pull weights W_ij = 1/|R_i|):  z_i ← Σ_j W_ij z_j
    x_i ← z_i

With row-stochastic weights only (a broadcast graph under loss) the fixed point is a *weighted*
optimum, not the minimiser of ``F``. Engine rounds are communication rounds: step ``k`` spans
``R_k`` of them (``inner_rounds``: a number, or the PULM paper's Theorem 2 schedule
``{ schedule = "log", … }``; ``lr`` schedules likewise, see ``netemu.schedules``). A node whose
gradient misses the step's first broadcast (a straggler) takes no gradient step (``z_i = x_i``)
and still mixes.
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.optim import OptProtocol
from netemu.protocol import Accumulator, Batch
from netemu.schedules import inner_rounds_key


class DGD(OptProtocol):
    name = "dgd"
    paper = "Nedić & Ozdaglar 2009 (DGD); Lian et al. 2017 (D-PSGD), R gossip rounds"
    params = {**OptProtocol.params,
              "inner_rounds": inner_rounds_key(1, "R: gossip rounds per step")}

    def start(self, x0: np.ndarray) -> None:
        self.x = self.ctx.xp.asarray(x0)
        self.z = self.x
        self.r = self.k = 0
        self.acc = Accumulator(self.ctx.n, ("z",))
        self.bind_schedules()
        self._g = self.ctx.compute.grad(None, self.x)

    def message(self) -> dict:
        if self.r == 0:
            g = self.ctx.xp.where(self.ctx.compute.late, 0.0, self._g.result())
            self.z = self.x - self.lr(self.k) * g
        return {"z": self.z}

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)

    def end_round(self) -> None:
        sums, count = self.acc.take({"z": self.z})
        self.z = mixing.pull_average(self.z, sums["z"], count)
        self.r += 1
        if self.r == self.inner_rounds(self.k):
            self.x, self.r, self.k = self.z, 0, self.k + 1
            self._g = self.ctx.compute.grad(None, self.x)

    def estimate(self) -> np.ndarray:
        return self.z
