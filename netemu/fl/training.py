"""Local training of FL clients and the helpers the server needs around it.

- ``LocalTraining``: ``Q`` SGD steps per client job, their durations from the straggler model,
  computed lazily and batched across the jobs of concurrent clients.
- ``model_shapes``: the tensor shapes of a task's flat parameter vector (for the codecs).
- ``one_blas_thread``: numpy's BLAS on one thread around the codecs.
"""

from __future__ import annotations

import math

import numpy as np

from netemu.arrays import host

_BLAS = None


def one_blas_thread():
    """A context in which numpy's BLAS runs on one thread: the codecs' small products and SVDs
    cost 1–10 ms each instead of microseconds when a multi-threaded BLAS meets a busy machine, and
    one thread gives the same bits whatever the machine."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def model_shapes(task) -> list[tuple]:
    """The tensor shapes of ``task``'s flat parameter vector, in order (one flat tensor when the
    model does not say)."""
    shapes = getattr(task, "shapes", None) or getattr(task.model, "shapes", None)
    if shapes:
        return [tuple(s) for s in shapes]
    slices = getattr(task.model, "slices", None)  # netemu.compute.models.MLP
    if slices:
        return [s for _, _, o, i in slices for s in ((o, i), (o,))]
    return [(int(task.dim),)]


class LocalTraining:
    """``Q`` SGD steps per client job, computed lazily: a job is only a start model and a finish
    time until its result is asked for; then every job not yet computed (``batched``) or only that
    one advances, one batched ``ctx.compute`` gradient call per step for all of them. A job's
    result is a pure function of its start model and its minibatches, so computing it early gives
    what computing it on time would; with full-batch tasks the two modes agree to rounding (a
    batched matrix product may sum in another order), with minibatches they draw other samples."""

    def __init__(self, ctx, steps: int, lr: float, batched: bool) -> None:
        self.comp, self.steps, self.lr, self.batched = ctx.compute, steps, lr, batched
        self.x: dict[int, np.ndarray] = {}  # client -> start model, then its result
        self.todo: dict[int, None] = {}  # clients whose jobs are not computed yet, in start order

    def start(self, clients: np.ndarray, x_start: np.ndarray, now: float) -> np.ndarray:
        """Start the jobs; returns their finish times."""
        comp, times, Q = self.comp, self.comp.times, self.steps
        if len(clients) == 1:  # one client (the common case): its rows, no grouping, plain floats
            c = int(clients[0])
            j = int(comp.step_index[c])
            total = math.fsum([times._row(j + q)[c] for q in range(Q)])
            comp.step_index[c] = j + Q
            comp.busy_until[c] = finish = max(float(comp.busy_until[c]), now) + total
            self.x[c] = x_start[0]
            self.todo[c] = None
            return np.array([finish])
        idx = comp.step_index[clients]
        total = np.zeros(len(clients))
        for q in range(Q):
            total += times.draw(clients, idx + q)
        comp.step_index[clients] = idx + Q
        finish = np.maximum(comp.busy_until[clients], now) + total
        comp.busy_until[clients] = finish
        for c, x in zip(clients.tolist(), x_start):
            self.x[c] = x
            self.todo[c] = None
        return finish

    def result(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """``(x_start, x_end)`` of client ``c``'s job (which ends)."""
        if c in self.todo:
            self._compute(list(self.todo) if self.batched else [c])
        return self.x.pop(c)

    def cancel(self, c: int) -> None:
        self.todo.pop(c, None)
        self.x.pop(c, None)

    def _compute(self, clients: list[int]) -> None:
        x0 = np.stack([self.x[c] for c in clients])
        nodes = np.asarray(clients, dtype=np.int64)
        x = x0
        for _ in range(self.steps):
            x = x - self.lr * host(self.comp.handle.grad(nodes, x).result())
        for m, c in enumerate(clients):
            self.x[c] = (x0[m], x[m])
            self.todo.pop(c, None)
