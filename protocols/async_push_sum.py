"""Asynchronous push-sum: each node on its own Poisson clock, receivers add on arrival.

When node ``i`` wakes it splits ``(s_i, w_i)`` into ``δ_i + 1`` equal shares by its nominal
out-degree ``δ_i`` (the graph of the current period), keeps one and broadcasts one; a receiver
adds the shares it gets when they arrive. The estimate is ``s_i / w_i``. Mass is conserved without
loss (the estimates reach the exact mean); shares lost after transmission vanish, so under loss
the estimate is biased. (Kempe, Dobra, Gehrke, "Gossip-based computation of aggregate
information", FOCS 2003, in its asynchronous form; docs/algorithms.md.)
"""

from __future__ import annotations

import numpy as np

from netemu import mixing
from netemu.protocol import Batch, EventProtocol
from netemu.protocols.clocks import RATE, SLOT, PoissonClock


class AsyncPushSum(EventProtocol):
    name = "async-push-sum"
    paper = "Kempe, Dobra & Gehrke 2003, push-sum (asynchronous, Poisson clocks)"
    params = {"rate": RATE, "slot": SLOT}

    def start(self, x0: np.ndarray) -> None:
        self.s = np.array(x0, dtype=np.float64)
        self.w = np.ones(self.ctx.n)
        self.clock = PoissonClock(self.ctx, self.p.get("rate", RATE.default), self.p.get("slot", 0.0))

    def on_start(self) -> None:
        self.clock.start()

    def on_timer(self, nodes: np.ndarray, tag) -> None:
        deg = self.ctx.out_degree_now()[nodes]
        s, w = mixing.push_share(self.s[nodes], deg), mixing.push_share(self.w[nodes], deg)
        self.s[nodes], self.w[nodes] = s, w
        self.ctx.broadcast(nodes, {"s": s, "w": w})
        self.clock.next(nodes)

    def on_message(self, batch: Batch) -> None:
        self.s += batch.sum("s")
        self.w += batch.sum("w")

    def estimate(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.s / self.w[:, None]
