"""Local SGD (periodic averaging): ``τ`` local steps, then averaging over the broadcast graph.

Paper: Wang & Joshi, "Cooperative SGD: A unified framework for the design and analysis of
communication-efficient SGD algorithms": ``X_{k+1} = (X_k − η G_k) S_k`` with
``S_k = J`` (exact averaging) every ``τ``-th step and ``I`` otherwise. A broadcast graph has no
exact averaging in one round, so the averaging is ``R = inner_rounds`` communication rounds
(docs/algorithms.md). With ``averaging = "pulm"`` the parameters are gossiped and the local *updates*
``Δ_i = x_i − x_i^start`` are averaged by Pull-with-Memory, exactly as PULM-DGD averages its
gradient steps (PULM paper, Algorithm 3; with ``τ = 1`` the two coincide); per period:

    x_i^start = x_i;  τ times:  x_i ← x_i − η_k g_i(x_i)      (one stochastic gradient each)
    Δ_i = x_i − x_i^start;  z_i = x_i;  d_i = e_i
    repeat R_s rounds (broadcast (z_i, d_i)):
        d̃_i = Σ_j W_ij d_j
        z_i ← Σ_j W_ij z_j − (d̃_ii − 1/n) Δ_i
        d_i ← d̃_i with entry i set to 1/n
    x_i ← z_i

so ``x⁺ = (Π_r W_r) x^start + PULM_R(Δ)``, which tends to ``J (x^start + Δ)`` (local SGD's exact
averaging) as ``R`` grows, using row-stochastic weights only. Gossip keeps consensual parameters
consensual; PULM on the parameters themselves would not (the PULM paper, §4). With
``averaging = "gossip"`` the ``R`` rounds are plain gossip on ``x`` (``W_ij = 1/|R_i|``).
Schedules (``netemu.schedules``): period ``s`` has ``R_s`` rounds (``inner_rounds`` a number or
``{ schedule = "log", … }``); ``η_k`` is indexed by local step, so ``horizon`` uses
``K = τ ·`` (periods that fit in the run).

A node whose τ local steps are not all done by the first averaging broadcast (a straggler)
drops them (``Δ_i = 0``).
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.optim import OptProtocol
from netemu.protocol import Accumulator, Batch
from netemu.params import Key
from netemu.schedules import inner_rounds_key


class LocalSGD(OptProtocol):
    name = "local-sgd"
    paper = "Wang & Joshi, Cooperative SGD (local SGD); updates averaged by PULM or gossip"
    params = {**OptProtocol.params,
              "tau": Key("int", 5, lo=1, example="5", doc="τ: local steps between averagings"),
              "inner_rounds": inner_rounds_key(5, "R: averaging rounds per period"),
              "averaging": Key("str", "pulm", choices=("pulm", "gossip"),
                               doc="pulm: gossip x, PULM-average the local updates; gossip: gossip x")}

    def start(self, x0: np.ndarray) -> None:
        self.x = np.array(x0, dtype=np.float64)
        self.k = self.r = self.s = 0  # local steps, round of the period, periods done
        self.pulm = self.p["averaging"] == "pulm"
        self.bind_schedules(self.p["tau"])
        self.acc = Accumulator(self.ctx.n, ("x", "d") if self.pulm else ("x",))
        self._local()

    def _local(self) -> None:
        self.local_steps(self.p["tau"])

    def message(self) -> dict:
        if self.r == 0:
            self.x = np.where(self.ctx.compute.late[:, None], self.x_start, self.x)
            self.in_local = False
            self.delta = self.x - self.x_start
            self.d = np.eye(self.ctx.n) if self.pulm else None
        return {"x": self.x, "d": self.d} if self.pulm else {"x": self.x}

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)

    def end_round(self) -> None:
        sums, count = self.acc.take({"x": self.x, "d": self.d})
        x_t = mixing.pull_average(self.x, sums["x"], count)
        if self.pulm:
            d_t = mixing.pull_average(self.d, sums["d"], count)
            x_t = x_t - mixing.memory_step(d_t)[:, None] * self.delta
            self.d = d_t
        self.x = x_t
        self.r += 1
        if self.r == self.inner_rounds(self.s):
            self.r, self.s = 0, self.s + 1
            self._local()

    def estimate(self) -> np.ndarray:
        return self.x_start if self.in_local else self.x  # local steps count once the period's done
