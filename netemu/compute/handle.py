"""The compute handle a protocol gets as ``ctx.compute``: gradients requested lazily, in batches.

    fut = ctx.compute.grad(nodes, params)    # nodes [m] (None: all), params [m, P]
    g = fut.result()                         # [m, P] numpy, ∇f_i at params[i] for i in nodes

A request captures its inputs (``params`` copied to the device in the compute dtype, and the
minibatch it draws) when it is made; results come back as numpy arrays in the compute dtype
(``[compute] dtype``: float64 unless float32 is asked for), which numpy upcasts on the fly when
a protocol combines them with its float64 state;
nothing is computed until some result is needed. Then every pending request is executed in *one*
batched call of the task's model. Results are pure functions of the captured inputs, so running
them together gives exactly what running them one by one would. Each requested row is
one local step of that node for the straggler model (``netemu.compute.timing``), and
``ctx.compute.late`` (bool ``[n]``, set by the runtime before ``message()``) marks the nodes whose
steps of the current phase missed the round's broadcast and must be dropped.

Protocols see only this handle: no torch, no device, no event loop.
"""

from __future__ import annotations

import numpy as np

from netemu.rng import stream


class Future:
    __slots__ = ("_handle", "_value")

    def __init__(self, handle: "ComputeHandle") -> None:
        self._handle = handle
        self._value: np.ndarray | None = None

    def done(self) -> bool:
        return self._value is not None

    def result(self) -> np.ndarray:
        if self._value is None:
            self._handle.flush()
        return self._value  # type: ignore[return-value]


class ComputeHandle:
    def __init__(self, task, n: int, seed: int, clock=None, as_tensor: bool = False) -> None:
        self.task, self.n, self.seed, self.clock = task, n, seed, clock
        self.as_tensor = as_tensor  # results stay on the device (state there: netemu.arrays)
        self.late = np.zeros(n, dtype=bool)
        self.node_steps = 0  # gradients computed, counted per node
        self.calls = 0  # batched model calls
        self._requests = 0
        self._pending: list = []

    @property
    def dim(self) -> int:
        return self.task.dim

    def grad(self, nodes, params) -> Future:
        """Request ``∇f_i(params[r])`` for ``i = nodes[r]`` (a stochastic gradient for tasks with
        minibatches); one local step per row."""
        nodes = np.arange(self.n) if nodes is None else np.asarray(nodes, dtype=np.int64).reshape(-1)
        params = self.task.capture(params.reshape(len(nodes), -1) if hasattr(params, "detach")
                                   else np.asarray(params).reshape(len(nodes), -1))
        sample = self.task.sample(nodes, stream(self.seed, "task", 1, self._requests))
        self._requests += 1
        if self.clock is not None:
            self.clock.request(nodes)
        fut = Future(self)
        self._pending.append((fut, params, sample))
        return fut

    def flush(self) -> None:
        """Execute every pending request in one batched call."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        params = self.task.concat_params([p for _, p, _ in pending])
        sample = self.task.concat_samples([s for _, _, s in pending])
        g = self.task.grads(params, sample, as_tensor=self.as_tensor)
        self.calls += 1
        self.node_steps += len(params)
        a = 0
        for fut, p, _ in pending:
            fut._value = g[a:a + len(p)]
            a += len(p)
