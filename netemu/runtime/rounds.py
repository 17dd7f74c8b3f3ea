"""The round driver: round-based protocols (``message`` / ``receive`` / ``end_round``) as an event
protocol on the runtime.

Per round ``k`` (starting at ``t_k = k · period``, computed, never accumulated):

1. the network realizes the round (``Network.round``: nominal edges, losses, jitter), the same
   for every protocol;
2. every active node broadcasts the protocol's ``message()`` (one transmission, whatever the
   number of receivers); each reception takes ``latency + bytes / bandwidth + jitter``;
3. receptions not lost and arriving by the round's end reach ``receive`` as one batch per arrival
   instant; later ones are dropped and counted ``late``;
4. at ``t_k + period`` the protocol's ``end_round()`` runs, then the metrics of round ``k + 1``.

Optimization tasks add a *compute phase* before each broadcast (``netemu.compute.timing``): the
local steps a protocol requested through ``ctx.compute`` at the round boundary run first, so the
broadcast of round ``k`` is at ``t_k = k · period + (sum of the compute windows so far)``. Nodes
still busy then (stragglers) or off (availability) do not transmit; off nodes do not receive
either.

Deliveries of an instant are scheduled before the round-end event, so a message arriving exactly
at the round's end is on time (the clocks run equal times in scheduling order).
"""

from __future__ import annotations

import numpy as np

from netemu import wire
from netemu.protocol import EventProtocol


class RoundDriver(EventProtocol):
    """Drives ``proto`` (a round protocol) for ``rounds`` rounds of ``period`` seconds.

    ``clock``: the compute clock of an optimization run (None: consensus, no compute phases).
    ``on_round``: called after every round (progress bars). ``begin``: the transport's start of
    a round (the live transport tells external nodes); defaults to the runtime's transport.
    """

    def __init__(self, rt, proto, rounds: int, period: float, clock=None, on_round=None) -> None:
        super().__init__(proto.ctx)
        self.rt, self.inner = rt, proto
        self.rounds, self.period = rounds, period
        self.clock = clock
        self.on_round = on_round or (lambda: None)
        self.phase_start = 0.0
        self.listen = None
        self.extra = None

    def start(self, x0: np.ndarray) -> None:
        self.inner.start(x0)

    def estimate(self) -> np.ndarray:
        return self.inner.estimate()

    def on_start(self) -> None:
        if self.rounds > 0:
            self._begin(0)

    def on_message(self, batch) -> None:
        self.inner.receive(batch)

    def _begin(self, k: int) -> None:
        rt, ctx, period = self.rt, self.ctx, self.period
        t_k = k * period
        if self.clock is not None:  # the compute phase of round k, from ``phase_start`` to the broadcast
            clock = self.clock
            _, late = clock.phase(self.phase_start)
            t_k = k * period + clock.compute_time()
            online = clock.online(t_k)
            ctx.compute.late = late | ~online  # off at the broadcast: the step is dropped too
            ctx.active = online & clock.free(t_k)
            self.listen = online if clock.avail is not None else None
            self.extra = {"stragglers": int((online & ~ctx.active).sum())}
            if clock.avail is not None:
                self.extra["offline"] = int((~online).sum())
        if rt.now < t_k:
            rt.at(t_k, self._transmit, k, t_k)
        else:
            self._transmit(k, t_k)

    def _transmit(self, k: int, t_k: float) -> None:
        rt, ctx = self.rt, self.ctx
        rt.k = k
        rd = rt.net.round(k, t_k)
        ctx.round, ctx.now = k, t_k
        ctx.out_degree = np.where(ctx.active, rd.out_degree, 0)
        rt.transport.begin_round(k, rd, t_k, self.period, ctx.out_degree)
        fields = rt._call("message", None, self.inner.message, now=t_k)
        nbytes = wire.message_bytes(fields, ctx.n) if fields else 0
        rt._count_tx(np.flatnonzero(ctx.active), nbytes)
        rt.transport.round(rd, fields, nbytes, ctx.active, self.period, self.listen)
        rt.at(t_k + self.period, self._end, k, t_k)

    def _end(self, k: int, t_k: float) -> None:
        rt = self.rt
        rt.res.counters["events"] += 1
        rt._call("end_round", None, self.inner.end_round, now=t_k + self.period)
        self.on_round()
        self.phase_start = t_k + self.period
        rt.transport.end_round(k)
        if not rt.sample(k + 1, t_k + self.period, self.extra):
            rt.stop()
            return
        if k + 1 < self.rounds:
            self._begin(k + 1)
