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

``weights = "metropolis"``: every pull average above uses the static symmetric, doubly stochastic
Metropolis matrix ``W_ij = 1/(1 + max(d_i, d_j))`` of the run's fixed undirected graph (self
weight the rest; ``netemu.mixing.metropolis_weights``) instead of ``1/|R_i|``, the static
symmetric mixing matrix of Cooperative SGD's analysis, which "Cooperative SGD with dynamic mixing
matrices" (arXiv 2508.14565) relaxes to dynamic, asymmetric ones such as the radio's. It needs
``[network] topology = "latent"`` with an undirected graph, ``disconnect = 0``, no loss and no
jitter (refused otherwise). A silent straggler's weight stays with its receivers' self weights.

``fraction = f < 1``: client selection of that paper. Each period, ``max(1, round(f·n))`` nodes
``S_s`` are drawn uniformly without replacement from the protocol stream ``ctx.rng(1, s)``; only
they take the τ local steps and average, over the deliveries among themselves (PULM's memories
``d_i`` then have ``|S_s|`` entries and target ``1/|S_s|``); the other nodes keep their models.
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.optim import OptProtocol
from netemu.protocol import Accumulator, Batch
from netemu.params import Key
from netemu.schedules import inner_rounds_key

SELECT = 1  # ctx.rng(SELECT, s): the clients of period s


class LocalSGD(OptProtocol):
    name = "local-sgd"
    paper = ("Wang & Joshi, Cooperative SGD (local SGD); updates averaged by PULM or gossip; Metropolis W "
             "and client selection as in Cooperative SGD with dynamic mixing (arXiv 2508.14565)")
    params = {**OptProtocol.params,
              "tau": Key("int", 5, lo=1, example="5", doc="τ: local steps between averagings"),
              "inner_rounds": inner_rounds_key(5, "R: averaging rounds per period"),
              "averaging": Key("str", "pulm", choices=("pulm", "gossip"),
                               doc="pulm: gossip x, PULM-average the local updates; gossip: gossip x"),
              "weights": Key("str", "uniform", choices=("uniform", "metropolis"),
                             doc="uniform: W_ij = 1/|R_i| on what was received; metropolis: "
                                 "1/(1 + max(d_i, d_j)) on a static undirected latent graph without loss"),
              "fraction": Key("float", 1.0, lo=0, hi=1, lo_open=True, example="0.25",
                              doc="share of the nodes selected (uniformly, seeded) each period to train "
                                  "and average; the others keep their models")}

    def start(self, x0: np.ndarray) -> None:
        self.x = self.ctx.xp.asarray(x0)
        self.k = self.r = self.s = 0  # local steps, round of the period, periods done
        self.pulm = self.p["averaging"] == "pulm"
        # metropolis: a static undirected graph (checked when the scenario loads), so the nominal
        # out-degrees are the degrees
        self.degree = self.ctx.out_degree_now() if self.p["weights"] == "metropolis" else None
        self.sel = None  # the nodes selected this period (None: all, fraction = 1)
        self.bind_schedules(self.p["tau"])
        self.acc = Accumulator(self.ctx.n, ("x", "d") if self.pulm else ("x",))
        self.wacc: list = []  # metropolis: (receivers, rows, weights, fields) per batch
        self._local()

    def _local(self) -> None:
        n, tau = self.ctx.n, self.p["tau"]
        if self.p["fraction"] >= 1.0:
            self.local_steps(tau)
            return
        m = max(1, round(self.p["fraction"] * n))
        nodes = np.sort(self.ctx.rng(SELECT, self.s).choice(n, size=m, replace=False))
        self.sel = np.zeros(n, dtype=bool)
        self.sel[nodes] = True
        self.x_start, self.in_local = self.x, True
        x = self.ctx.xp.copy(self.x)
        for _ in range(tau):  # OptProtocol.local_steps on the selected rows only
            x[nodes] = x[nodes] - self.lr(self.k) * self.ctx.compute.grad(nodes, x[nodes]).result()
            self.k += 1
        self.x = x

    def message(self) -> dict:
        if self.r == 0:
            self.x = self.ctx.xp.where(self.ctx.compute.late, self.x_start, self.x)
            self.in_local = False
            self.delta = self.x - self.x_start
            if not self.pulm:
                self.d = None
            elif self.sel is None:
                self.d = self.ctx.xp.eye(self.ctx.n)
            else:  # memories over the selected nodes only: d_i = e_(position of i in S)
                nodes = np.flatnonzero(self.sel)
                self.d = self.ctx.xp.zeros((self.ctx.n, len(nodes)))
                self.d[nodes, np.arange(len(nodes))] = 1.0
        return {"x": self.x, "d": self.d} if self.pulm else {"x": self.x}

    def receive(self, batch: Batch) -> None:
        if self.sel is not None:  # only deliveries between selected nodes count
            keep = self.sel[batch.senders] & self.sel[batch.receivers]
            batch = Batch(batch.n, batch.receivers[keep], batch.senders[keep], batch.rows[keep], batch.fields)
        if self.degree is None:
            self.acc.add(batch)
        elif len(batch):
            w = mixing.metropolis_weights(batch.receivers, batch.senders, self.degree)
            self.wacc.append((batch.receivers, batch.rows, w, batch.fields))

    def _mixer(self):
        """``mix(own, name)``: one pull average of field ``name`` with this round's deliveries."""
        if self.degree is None:
            sums, count = self.acc.take({"x": self.x, "d": self.d})
            return lambda own, name: mixing.pull_average(own, sums[name], count)
        parts, self.wacc = self.wacc, []
        n = self.ctx.n
        wsum = np.zeros(n)
        for r, _, w, _ in parts:
            wsum += np.bincount(r, weights=w, minlength=n)

        def mix(own, name):
            s = sum((mixing.weighted_receiver_sum(r, rows, w, f[name], n) for r, rows, w, f in parts),
                    self.ctx.xp.zeros_like(own))
            return mixing.weighted_pull(own, s, wsum)
        return mix

    def _memory_gap(self, d_t: np.ndarray) -> np.ndarray:
        """PULM's memory step (``d̃_ii − 1/|S|``, own entries set to ``1/|S|``) on the selected rows."""
        if self.sel is None:
            return mixing.memory_step(d_t)
        nodes = np.flatnonzero(self.sel)
        sub = d_t[nodes]
        gap = self.ctx.xp.zeros(self.ctx.n)
        gap[nodes] = mixing.memory_step(sub)
        d_t[nodes] = sub
        return gap

    def end_round(self) -> None:
        mix = self._mixer()
        x_t = mix(self.x, "x")
        if self.pulm:
            d_t = mix(self.d, "d")
            x_t = x_t - self._memory_gap(d_t)[:, None] * self.delta
            self.d = d_t
        self.x = x_t if self.sel is None else self.ctx.xp.where(self.sel, x_t, self.x)
        self.r += 1
        if self.r == self.inner_rounds(self.s):
            self.r, self.s = 0, self.s + 1
            self._local()

    def estimate(self) -> np.ndarray:
        return self.x_start if self.in_local else self.x  # local steps count once the period's done
