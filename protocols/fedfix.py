"""FedFix: the server aggregates at fixed time intervals whatever has arrived.

Paper: Fraboni, Vidal, Kameni, Lorenzi, "A General Theory for Federated Optimization with
Asynchronous and Heterogeneous Clients Updates", JMLR 2023 (arXiv 2206.10189), FedFix. Every
client trains from the last model it received; every ``interval`` seconds (``Δt``) the server
applies ``x ← x + η_g Σ_{i arrived} p_i Δ_i`` with ``Δ_i = x_end − x_start`` and the data-size
weights ``p_i = n_i / Σ_j n_j`` of all clients (their sum over one interval is below 1 when some
clients have not arrived; the paper's aggregation weights for a fixed ``Δt``), the version
advances, and the clients that arrived (and the idle ones) restart from the new model; the
others keep training on their older one and count as stale when they arrive.
"""

from __future__ import annotations

import numpy as np

from netemu.fl import aggregate as agg
from netemu.fl.server import COMMON, DONE, IDLE, FLServer
from netemu.params import Key


class FedFix(FLServer):
    name = "fedfix"
    paper = "Fraboni, Vidal, Kameni & Lorenzi 2023, FedFix (aggregation every Δt of what has arrived)"
    params = {**COMMON,
              "interval": Key("float", 1.0, lo=0, lo_open=True, hi=1e9, example="2.0",
                              doc="Δt: seconds between aggregations"),
              "server_lr": Key("float", 1.0, lo=0, lo_open=True, hi=1e6, example="1.0", doc="η_g: server step size")}

    def on_begin(self) -> None:
        self.p_i = agg.data_weights(self.sizes[self.clients])
        self.weight = np.zeros(self.n)
        self.weight[self.clients] = self.p_i
        self.arrived: list = []
        self.fill(len(self.clients))
        self.ctx.set_timer([self.server], self.p["interval"], "aggregate")

    def on_update(self, c, delta, v) -> None:
        self.base.pop(c, None)
        self.status[c] = DONE  # waits for the next model
        self.arrived.append((c, delta, self.version - v))

    def after_updates(self) -> None:
        pass  # arrived clients restart at the next aggregation; lost ones then too

    def on_server_timer(self, tag) -> None:
        if self.arrived:
            cs = np.array([c for c, _, _ in self.arrived])
            self.x = agg.fedfix_step(self.x, np.stack([d for _, d, _ in self.arrived]), self.weight[cs],
                                     self.p["server_lr"])
            self.applied([t for _, _, t in self.arrived])
            self.status[cs] = IDLE
            self.arrived = []
        self.version += 1
        self.fill(len(self.clients) - self.busy())
        self.ctx.set_timer([self.server], self.p["interval"], "aggregate")
