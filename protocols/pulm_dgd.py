"""PULM-DGD: parameters gossiped, gradients averaged exactly by Pull-with-Memory.

Paper: "Decentralized Optimization over Time-Varying Row-Stochastic Digraphs" (PULM),
Algorithm 3. Outer step ``k``, uniform pull weights ``W_ij = 1/|R_i|``:

    g_i = ∇f_i(x_i);  z_i = x_i − α_k g_i;  d_i = e_i
    repeat R_k inner rounds (broadcast (z_i, d_i)):
        d̃_i = Σ_j W_ij d_j
        z_i ← Σ_j W_ij z_j + α_k (d̃_ii − 1/n) g_i
        d_i ← d̃_i with entry i set to 1/n
    x_i ← z_i

That is ``x⁺ = (Π_r W_r) x − α · PULM_R(g)``: the gradient part converges to the exact average
using row-stochastic weights only, so packet loss (which the sender never learns of) does no
harm. Messages carry ``n`` memory entries besides ``z``. Theorem 2's schedules: ``inner_rounds =
{ schedule = "log", c, min }`` gives ``R_k = max(min, ⌈c ln(k + 1)⌉)``, and ``lr`` takes
``inv_sqrt``, ``inv`` or ``horizon`` (``a/√K``) tables (``netemu.schedules``). A straggler
(gradient not done by the step's first broadcast) contributes ``g_i = 0`` this step.
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.optim import OptProtocol
from netemu.protocol import Accumulator, Batch
from netemu.schedules import inner_rounds_key


class PULMDGD(OptProtocol):
    name = "pulm-dgd"
    paper = "Decentralized Optimization over Time-Varying Row-Stochastic Digraphs (PULM), Alg. 3"
    params = {**OptProtocol.params,
              "inner_rounds": inner_rounds_key(1, "R: PULM rounds per step")}

    def start(self, x0: np.ndarray) -> None:
        self.x = self.ctx.xp.asarray(x0)
        self.z = self.x
        self.r = self.k = 0
        self.acc = Accumulator(self.ctx.n, ("z", "d"))
        self.bind_schedules()
        self._g = self.ctx.compute.grad(None, self.x)

    def message(self) -> dict:
        if self.r == 0:
            self.g = self.ctx.xp.where(self.ctx.compute.late, 0.0, self._g.result())
            self.alpha = self.lr(self.k)
            self.z = self.x - self.alpha * self.g
            self.d = self.ctx.xp.eye(self.ctx.n)
        return {"z": self.z, "d": self.d}

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)

    def end_round(self) -> None:
        sums, count = self.acc.take({"z": self.z, "d": self.d})
        d_t = mixing.pull_average(self.d, sums["d"], count)
        gap = mixing.memory_step(d_t)
        self.z = mixing.pull_average(self.z, sums["z"], count) + self.alpha * gap[:, None] * self.g
        self.d = d_t
        self.r += 1
        if self.r == self.inner_rounds(self.k):
            self.x, self.r, self.k = self.z, 0, self.k + 1
            self._g = self.ctx.compute.grad(None, self.x)

    def estimate(self) -> np.ndarray:
        return self.z
