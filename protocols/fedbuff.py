"""FedBuff: buffered asynchronous aggregation with bounded concurrency.

Paper: Nguyen, Malik, Zhan, Yousefpour, Rabbat, Malek, Huba, "Federated Learning with Buffered
Asynchronous Aggregation", AISTATS 2022 (ALGORITHMS.md). At most ``M`` clients train at once; a
client returns ``Δ_i = x_start − x_end`` after ``Q`` local steps and the server adds
``s(τ_i) Δ_i`` to its buffer, ``s(τ) = 1/√(1 + τ)`` (``τ``: versions since the client's model was
sent); after ``K`` arrivals ``x ← x − η_g (Σ s Δ) / K``, the buffer empties and the version
advances. Each arrival frees a slot for another client (``selection``).
"""

from __future__ import annotations

import numpy as np

from netemu.errors import ScenarioError
from netemu.fl import aggregate as agg
from netemu.fl.server import COMMON, FLServer
from netemu.params import Key


class FedBuff(FLServer):
    name = "fedbuff"
    paper = "Nguyen et al. 2022, FedBuff (buffer of K updates, concurrency M, weights 1/sqrt(1 + staleness))"
    params = {**COMMON,
              "K": Key("int", 10, lo=1, hi=10**8, example="10", doc="updates buffered per aggregation"),
              "M": Key("int", None, lo=1, hi=10**8, nullable=True, example="20",
                       doc="clients training at once, at most; default: all"),
              "server_lr": Key("float", 1.0, lo=0, lo_open=True, hi=1e6, example="1.0", doc="η_g: server step size")}

    @classmethod
    def check_params(cls, p, clients, where) -> None:
        if p["K"] > clients:
            raise ScenarioError(f"{where} K = {p['K']} is more than the {clients} clients; the buffer would "
                                f"never fill: set K <= {clients}")
        if p["M"] is not None and p["M"] > clients:
            raise ScenarioError(f"{where} M = {p['M']} is more than the {clients} clients; set M <= {clients} "
                                f"(or remove M: all clients)")

    def on_begin(self) -> None:
        self.M = self.p["M"] or len(self.clients)
        self.buf, self.taus = [], []
        self.fill(self.M)

    def on_update(self, c, delta, v) -> None:
        self.base.pop(c, None)
        self.buf.append(-delta)  # Δ = x_start − x_end
        self.taus.append(self.version - v)
        if len(self.buf) == self.p["K"]:
            self.x = agg.fedbuff_step(self.x, np.stack(self.buf), self.taus, self.p["K"], self.p["server_lr"])
            self.applied(self.taus)
            self.version += 1
            self.buf, self.taus = [], []

    def after_updates(self) -> None:
        self.fill(self.M - self.busy())
