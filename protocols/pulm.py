"""PULM: Pull-with-Memory exact average consensus over time-varying broadcast graphs.

Paper: "Decentralized Optimization over Time-Varying Row-Stochastic Digraphs" (PULM),
Algorithms 1–2. Node ``i`` keeps ``x_i``, its initial ``x_i⁰`` and a memory
``d_i ∈ R^n`` (initially ``e_i``) and broadcasts ``(x_i, d_i)``. With uniform pull weights
``W_ij = 1/|R_i|``::

    x̃_i = Σ_j W_ij x_j        d̃_i = Σ_j W_ij d_j
    x_i ← x̃_i + (1/n − d̃_ii) · x_i⁰
    d_i ← d̃_i with entry i set to 1/n

Invariant ``x_i = Σ_l d_il x_l⁰``; ``D → (1/n) 1 1ᵀ``, so every ``x_i`` reaches the exact mean using
row-stochastic weights only. Messages carry the ``n`` memory entries too (counted in bytes).
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.protocol import Accumulator, Batch, Protocol


class PULM(Protocol):
    name = "pulm"
    paper = "Decentralized Optimization over Time-Varying Row-Stochastic Digraphs (PULM), Alg. 1-2"

    def start(self, x0: np.ndarray) -> None:
        n = self.ctx.n
        self.x0 = np.array(x0, dtype=np.float64)
        self.x = self.x0.copy()
        self.d = np.eye(n, dtype=np.float64)
        self.acc = Accumulator(n, ("x", "d"))

    def message(self) -> dict:
        return {"x": self.x, "d": self.d}

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)

    def end_round(self) -> None:
        sums, count = self.acc.take({"x": self.x, "d": self.d})
        x_t = mixing.pull_average(self.x, sums["x"], count)
        d_t = mixing.pull_average(self.d, sums["d"], count)
        gap = mixing.memory_step(d_t)  # d̃_ii − 1/n, and d_ii ← 1/n
        self.x = x_t - gap[:, None] * self.x0
        self.d = d_t

    def estimate(self) -> np.ndarray:
        return self.x
