"""FedAvg: synchronous rounds with a client fraction and an optional round deadline.

Paper: McMahan, Moore, Ramage, Hampson, Agüera y Arcas, "Communication-Efficient Learning of Deep
Networks from Decentralized Data", AISTATS 2017 (the synchronous baseline of ALGORITHMS.md).
Each round the server selects ``max(1, round(fraction · clients))`` idle online clients
(``selection``), sends them the model, and waits for their updates ``Δ_i = x_i − x``; then
``x ← Σ_i p_i x_i / Σ_i p_i`` (data-size weights ``p_i``) over the clients that made it
(``netemu.fl.aggregate.fedavg``). Without ``deadline`` it waits for every selected client
(wait-for-all; a lost message frees its client after ``timeout``); with one, the round closes
``deadline`` seconds after it began and late updates are dropped when they arrive.
"""

from __future__ import annotations

import numpy as np

from netemu.fl import aggregate as agg
from netemu.fl.server import COMMON, FLServer
from netemu.params import Key


class FedAvg(FLServer):
    name = "fedavg"
    paper = "McMahan et al. 2017, FedAvg (synchronous rounds; deadline drops late clients)"
    params = {**COMMON,
              "fraction": Key("float", 1.0, lo=0, lo_open=True, hi=1, example="0.2",
                              doc="share of the clients selected each round, in (0, 1]"),
              "deadline": Key("float", None, lo=0, lo_open=True, hi=1e9, nullable=True, example="5.0",
                              doc="seconds after a round's start when it closes, late updates dropped; "
                                  "default: wait for all")}

    def on_begin(self) -> None:
        self.round, self.open, self.waiting, self.got = 0, False, set(), []
        self.open_round()

    def open_round(self) -> None:
        m = max(1, round(self.p["fraction"] * len(self.clients)))
        chosen = self.select(m)
        if not len(chosen):  # nobody idle and online: try again a period later
            self.ctx.set_timer([self.server], self.ctx.period, ("open", self.round))
            return
        self.open, self.waiting, self.got = True, set(chosen.tolist()), []
        self.dispatch(chosen)
        if self.p["deadline"] is not None:
            self.ctx.set_timer([self.server], self.p["deadline"], ("close", self.round))

    def on_update(self, c, delta, v) -> None:
        base = self.base.pop(c)
        if v != self.version or c not in self.waiting:  # late: its round is over
            self.count["updates_dropped"] += 1
            return
        self.waiting.discard(c)
        self.got.append((c, base + delta))

    def on_free(self, c) -> None:
        self.waiting.discard(c)

    def after_updates(self) -> None:
        if self.open and not self.waiting:
            self.close()

    def close(self) -> None:
        if self.got:
            cs = np.array([c for c, _ in self.got])
            self.x = agg.fedavg(np.stack([x for _, x in self.got]), self.sizes[cs])
            self.applied(np.zeros(len(cs), dtype=np.int64))
        self.version += 1
        self.round += 1
        self.open, self.waiting, self.got = False, set(), []
        self.open_round()

    def on_server_timer(self, tag) -> None:
        kind, r = tag
        if r == self.round and (kind == "open" or self.open):
            self.open_round() if kind == "open" else self.close()
