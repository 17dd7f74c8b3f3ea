"""EASGD: elastic averaging around an anchor variable held by one node.

Papers: Zhang, Choromanska, LeCun, "Deep learning with elastic averaging SGD", NeurIPS 2015;
in the Cooperative SGD form of Wang & Joshi: after ``τ`` local steps,
``[X, x̃] ← [X, x̃] W_α`` with ``W_α = [[(1−α)I, α1], [α1ᵀ, 1−mα]]`` (best ``α ≈ 2/(m+2)`` for
``m`` workers). Here every node is a worker and node ``anchor`` also holds the anchor ``x̃``,
which it broadcasts in place of its own worker value. On a broadcast graph, per period:

    τ times:  x_i ← x_i − η_k g_i(x_i)
    one round: every worker broadcasts x_i, the anchor node broadcasts x̃
        x_i ← x_i − α (x_i − x̃)         for workers that heard the anchor (and the anchor's own)
        x̃  ← x̃ + α Σ_j (x_j − x̃)        over the workers the anchor heard, plus its own

With every link up this is exactly ``W_α`` with ``m = n``. A straggler drops its τ local steps
(and, silent, is not heard by the anchor that round). ``lr`` schedules (``netemu.schedules``)
index local steps; ``horizon`` uses ``K = τ · [run] rounds``.
"""

from __future__ import annotations

import numpy as np

from netemu.errors import ProtocolError
from netemu.optim import OptProtocol
from netemu.protocol import Accumulator, Batch
from netemu.params import Key


class EASGD(OptProtocol):
    name = "easgd"
    paper = "Zhang, Choromanska & LeCun 2015 (EASGD); Wang & Joshi, Cooperative SGD"
    params = {**OptProtocol.params,
              "alpha": Key("float", 0.1, lo=0, hi=1, lo_open=True, example="0.1",
                           doc="elasticity α of the anchor coupling"),
              "tau": Key("int", 1, lo=1, example="4", doc="τ: local steps between elastic rounds"),
              "anchor": Key("int", 0, lo=0, example="0", doc="node holding the anchor variable")}

    def start(self, x0: np.ndarray) -> None:
        a = self.p["anchor"]
        if a >= self.ctx.n:
            raise ProtocolError(f"easgd: anchor = {a} is not a node (nodes are 0..{self.ctx.n - 1}); "
                                f"choose anchor < {self.ctx.n}")
        self.x = self.ctx.xp.asarray(x0)
        self.c = self.ctx.xp.copy(self.x[a])
        self.k = 0
        self.acc = Accumulator(self.ctx.n, ("x",))
        self.heard = np.zeros(self.ctx.n, dtype=bool)
        self.bind_schedules(self.p["tau"])
        self._local()

    def _local(self) -> None:
        self.local_steps(self.p["tau"])

    def message(self) -> dict:
        self.x = self.ctx.xp.where(self.ctx.compute.late, self.x_start, self.x)
        self.in_local = False
        msg = self.ctx.xp.copy(self.x)
        msg[self.p["anchor"]] = self.c
        self._msg = msg
        return {"x": msg}

    def receive(self, batch: Batch) -> None:
        self.acc.add(batch)
        self.heard[batch.receivers[batch.senders == self.p["anchor"]]] = True

    def end_round(self) -> None:
        a, alpha = self.p["anchor"], self.p["alpha"]
        sums, count = self.acc.take({"x": self._msg})
        heard = self.heard.copy()
        heard[a] = True
        self.heard[:] = False
        diff = self.x - self.c
        pulled = sums["x"][a] - int(count[a]) * self.c + diff[a]  # Σ (x_j − x̃) over heard workers + own
        self.x = self.ctx.xp.where(heard, self.x - alpha * diff, self.x)
        self.c = self.c + alpha * pulled
        self._local()

    def estimate(self) -> np.ndarray:
        return self.x_start if self.in_local else self.x  # local steps count once the period's done
