"""The two clocks of the runtime (injected, as in Trio): virtual time on SimPy, wall-clock time on
asyncio. Both run callbacks at absolute simulated times, ties in the order they were scheduled,
and report ``now`` as the scheduled instant of the callback being run, so that everything the
runtime records is the same under both clocks.
"""

from __future__ import annotations

import heapq
import itertools

import simpy


class SimClock:
    """Virtual time: each distinct scheduled instant is one SimPy event."""

    live = False

    def __init__(self) -> None:
        self.env = simpy.Environment()
        self.now = 0.0
        self.events = 0
        self._stopped = False

    def call_at(self, t: float, fn, *args) -> None:
        ev = self.env.timeout(max(0.0, t - self.env.now))
        ev.callbacks.append(lambda _e: self._fire(t, fn, args))

    def _fire(self, t, fn, args) -> None:
        if self._stopped:
            return
        self.events += 1
        self.now = t
        fn(*args)

    def stop(self) -> None:
        self._stopped = True

    def run(self) -> None:
        self.env.run()


class WallClock:
    """Wall-clock time: simulated second ``t`` happens at loop time ``T0 + t / time_scale``.

    ``settle`` (an async callable, e.g. the live transport's drain) runs before every callback so
    datagrams already in the sockets are taken in first, as the simulator orders deliveries that
    arrive by an instant before that instant's other events. An event scheduled while the loop
    waits for a later one (a delivery the live transport took in) wakes it, so events run in the
    order of their simulated times whenever the wall clock keeps up.
    """

    live = True

    def __init__(self, time_scale: float = 1.0, settle=None) -> None:
        self.scale = time_scale
        self.settle = settle
        self.now = 0.0
        self.events = 0
        self.t0: float | None = None
        self.max_lag = 0.0
        self._heap: list = []
        self._seq = itertools.count()
        self._stopped = False
        self._waiting = None  # (time waited for, future) while the loop sleeps

    def call_at(self, t: float, fn, *args) -> None:
        heapq.heappush(self._heap, (t, next(self._seq), fn, args))
        waiting = self._waiting
        if waiting is not None and t < waiting[0] and not waiting[1].done():
            waiting[1].set_result(None)  # an earlier event than the one waited for: wake up

    def wall(self, t: float) -> float:
        """Loop time of simulated second ``t``."""
        return self.t0 + t / self.scale

    def sim_now(self) -> float:
        """The simulated time that corresponds to the loop's clock right now."""
        import asyncio  # the wall clock runs in a live process, which has imported it already

        return (asyncio.get_running_loop().time() - self.t0) * self.scale

    def stop(self) -> None:
        self._stopped = True

    async def run(self, t0: float) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        self.t0 = t0
        heap = self._heap
        while heap and not self._stopped:
            t, n, fn, args = heap[0]
            wait = self.wall(t) - loop.time()
            if wait > 0:  # sleep until then, or until an earlier event is scheduled (a live delivery)
                fut = loop.create_future()
                self._waiting = (t, fut)
                timer = loop.call_at(self.wall(t), lambda f=fut: f.done() or f.set_result(None))
                await fut
                timer.cancel()
                self._waiting = None
                continue
            self.max_lag = max(self.max_lag, loop.time() - self.wall(t))
            if self.settle is not None:
                await self.settle()
                if heap[0][1] != n:  # the sockets brought an earlier event: that one first
                    continue
            if self._stopped:
                break
            heapq.heappop(heap)
            self.events += 1
            self.now = t
            fn(*args)
