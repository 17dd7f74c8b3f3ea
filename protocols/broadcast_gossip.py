"""Broadcast gossip: asynchronous, each node on its own Poisson clock.

Paper: Aysal, Yildiz, Sarwate, Scaglione, "Broadcast gossip algorithms for consensus", IEEE
Trans. Signal Processing 57(7), 2009. When node ``i`` wakes it broadcasts ``x_i``; every node
``j`` that receives it sets ``x_j ← γ x_j + (1 − γ) x_i``; ``x_i`` is unchanged. Nodes reach
consensus almost surely; the limit equals the initial mean only in expectation. Messages that
reach a node at the same instant are mixed in one after another, in sender order
(``mixing.sequential_convex``). Wake-ups: ``netemu.protocols.clocks.PoissonClock``.
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.params import Key
from netemu.protocol import Batch, EventProtocol
from netemu.protocols.clocks import RATE, SLOT, PoissonClock


class BroadcastGossip(EventProtocol):
    name = "broadcast-gossip"
    paper = "Aysal, Yildiz, Sarwate & Scaglione 2009, broadcast gossip"
    params = {"gamma": Key("float", 0.5, lo=0, hi=1, lo_open=True, example="0.5",
                           doc="mixing weight γ kept by a receiver, in (0, 1)"),
              "rate": RATE, "slot": SLOT}

    def start(self, x0: np.ndarray) -> None:
        self.x = np.array(x0, dtype=np.float64)
        self.clock = PoissonClock(self.ctx, self.p.get("rate", RATE.default), self.p.get("slot", 0.0))

    def on_start(self) -> None:
        self.clock.start()

    def on_timer(self, nodes: np.ndarray, tag) -> None:
        self.ctx.broadcast(nodes, {"x": self.x[nodes]})
        self.clock.next(nodes)

    def on_message(self, batch: Batch) -> None:
        values = batch.fields["x"][batch.rows]
        mixing.sequential_convex(self.x, batch.receivers, batch.senders, values, self.p.get("gamma", 0.5),
                                 out=self.x)  # in place: only the receivers' rows change

    def estimate(self) -> np.ndarray:
        return self.x
