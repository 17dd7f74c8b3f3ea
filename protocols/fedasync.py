"""FedAsync: the server mixes in every update as it arrives, weighted by its staleness.

Paper: Xie, Koyejo, Gupta, "Asynchronous Federated Optimization", 2019 (ALGORITHMS.md). Every
client trains continuously: when client ``i``'s model ``x_new = x_start + Δ_i``, trained from
server version ``τ``, arrives at version ``t``, ``α_t = α · s(t − τ)`` and
``x ← (1 − α_t) x + α_t x_new``, the version becomes ``t + 1``, and the server sends the new model
to an idle client (``selection``; the one that just reported is idle again). Staleness ``s``:
``constant`` 1, ``polynomial`` ``(t − τ + 1)^(−a)``, ``hinge`` 1 if ``t − τ ≤ b`` else
``1 / (a (t − τ − b) + 1)`` (``netemu.fl.aggregate``).
"""

from __future__ import annotations

from netemu.fl import aggregate as agg
from netemu.fl.server import COMMON, FLServer
from netemu.params import Key


class FedAsync(FLServer):
    name = "fedasync"
    paper = "Xie, Koyejo & Gupta 2019, FedAsync (staleness-weighted mixing on arrival)"
    params = {**COMMON,
              "alpha": Key("float", 0.6, lo=0, lo_open=True, hi=1, example="0.6", doc="α: mixing weight, in (0, 1]"),
              "staleness": Key("str", "polynomial", choices=agg.STALENESS,
                               doc="s(t − τ): constant, polynomial (t − τ + 1)^(−a), or hinge (1 up to b, "
                                   "then 1 / (a (t − τ − b) + 1))"),
              "a": Key("float", 0.5, lo=0, hi=1e3, example="0.5", doc="polynomial: exponent; hinge: slope"),
              "b": Key("float", 4.0, lo=0, hi=1e9, example="4", doc="hinge: staleness up to which s = 1")}

    def on_begin(self) -> None:
        self.fill(len(self.clients))

    def on_update(self, c, delta, v) -> None:
        tau = self.version - v
        w = agg.staleness_weight(self.p["staleness"], tau, self.p["a"], self.p["b"])
        self.x = agg.fedasync_mix(self.x, self.base.pop(c) + delta, self.p["alpha"], w)
        self.version += 1
        self.applied(tau)

    def after_updates(self) -> None:
        self.fill(len(self.clients) - self.busy())
