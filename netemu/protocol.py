"""The protocol API: what a protocol sees and what it implements.

A protocol object holds the state of *all* nodes as arrays with the node dimension first and
handles deliveries in batches. It never sees SimPy, asyncio or sockets: one runtime
(``netemu.runtime``) drives the same class in simulated time and live over UDP.

**Event protocols** (``EventProtocol``) react to events, each over a set of nodes:

- ``on_start()``: once, at time 0, after ``start(x0)``;
- ``on_message(batch)``: every delivery arriving at one instant;
- ``on_timer(nodes, tag)``: timers set with ``ctx.set_timer`` fire;
- ``on_compute_done(nodes, result)``: gradients asked with ``ctx.compute.grad`` are ready, at
  each node's completion time from the straggler model;

and act through the context: ``ctx.broadcast(nodes, fields)`` (a radio broadcast whose size is
its own encoded bytes), ``ctx.send(src, dst, fields)`` (unicast over the radio, when in range),
``ctx.set_timer(nodes, delay, tag)``, ``ctx.out_degree_now()`` (nominal out-degrees at ``ctx.now``)
and ``ctx.compute.grad(nodes, params)``.

**Round protocols** (``Protocol``) are driven by a thin round driver on the same events
(``netemu.runtime.rounds``). Life of a round-based protocol, per round ``k`` (``ctx.round``):

1. ``message()`` returns the fields every node broadcasts (arrays ``[n, …]``). ``ctx.out_degree``
   holds each sender's nominal out-degree ``δ_j`` (known from neighbour discovery, before
   transmission) and ``ctx.active`` which nodes transmit at all.
2. ``receive(batch)`` is called once per instant at which deliveries arrive, with every delivery
   of that instant (zero or more times per round). Losses and late messages never arrive.
3. ``end_round()`` applies the update. ``estimate()`` gives each node's current value ``[n, dim]``
   for the metrics.

Parameters are declared in ``params`` (name → ``netemu.params.Key``) and validated before
any run starts. ``Protocol.round_based`` tells the two kinds apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from netemu import mixing
from netemu.arrays import NUMPY, is_tensor
from netemu.rng import stream


@dataclass
class Context:
    """The narrow view of the world a protocol gets."""

    n: int
    seed: int
    period: float = 1.0
    round: int = 0
    now: float = 0.0
    out_degree: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    local: np.ndarray | None = None  # nodes run by this process (live mode); None: all
    compute: object | None = None  # optimization tasks: netemu.compute.handle.ComputeHandle
    rounds: int | None = None  # the run's length in rounds (event runs: samples of ``period``)
    speed: np.ndarray | None = None  # per-node clock speed factors (1: nominal), from [compute]
    xp: object = NUMPY  # where the state lives: netemu.arrays (numpy, or torch on the device)
    runtime: object | None = field(default=None, repr=False)  # netemu.runtime.core.Runtime

    def rng(self, *keys: int) -> np.random.Generator:
        """A protocol-owned random stream, a pure function of the seed and ``keys``."""
        return stream(self.seed, "protocol", *keys)

    # -- actions of event protocols (see the module docstring) ----------------------------------

    def broadcast(self, nodes, fields: dict) -> None:
        """Each of ``nodes`` broadcasts its row of ``fields`` (arrays ``[len(nodes), …]``) now."""
        self.runtime.broadcast(nodes, fields)

    def send(self, src, dst, fields: dict) -> None:
        """Unicasts ``src[m] → dst[m]`` of row ``m`` of ``fields``, over the radio (when in range)."""
        self.runtime.send(src, dst, fields)

    def set_timer(self, nodes, delay, tag=None) -> None:
        """``on_timer(nodes, tag)`` after ``delay`` seconds (one number, or one per node)."""
        self.runtime.set_timer(nodes, delay, tag)

    def set_timer_at(self, nodes, t, tag=None) -> None:
        """``on_timer(nodes, tag)`` at time ``t`` ``>= now`` (one number, or one per node)."""
        self.runtime.set_timer(nodes, t, tag, absolute=True)

    def out_degree_now(self) -> np.ndarray:
        """Every node's nominal out-degree in the graph of the current period, ``[n]``."""
        return self.runtime.net.out_degree(self.now)


@dataclass
class Batch:
    """Deliveries arriving at one instant: delivery ``m`` brings ``fields[·][rows[m]]`` from
    ``senders[m]`` to ``receivers[m]``."""

    n: int
    receivers: np.ndarray
    senders: np.ndarray
    rows: np.ndarray
    fields: dict
    _matrix: sp.csr_matrix | None = None

    def __len__(self) -> int:
        return len(self.receivers)

    def count(self) -> np.ndarray:
        """Number of deliveries per receiver, ``[n]``."""
        return np.bincount(self.receivers, minlength=self.n)

    def sum(self, name: str) -> np.ndarray:
        """Per-receiver sum of field ``name`` over this batch, ``[n, …]``."""
        values = self.fields[name]
        if values.ndim > 1 and self._matrix is None and len(self.receivers):
            if is_tensor(values):  # state on the compute device: a sparse tensor there
                self._matrix = mixing.incidence_tensor(self.receivers, self.rows, self.n, values.shape[0], values)
            else:
                self._matrix = mixing.incidence(self.receivers, self.rows, self.n, values.shape[0])
        return mixing.receiver_sum(self.receivers, self.rows, values, self.n, self._matrix)


class _Base:
    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    params: ClassVar[dict] = {}
    round_based: ClassVar[bool] = True

    def __init__(self, ctx: Context, **params) -> None:
        self.ctx = ctx
        self.p = params

    def start(self, x0: np.ndarray) -> None:
        """Set the initial state from the task's values ``x0`` ``[n, dim]`` (float64)."""

    def estimate(self) -> np.ndarray:
        """Each node's current value ``[n, dim]``."""
        raise NotImplementedError


class EventProtocol(_Base):
    """Base class of event-driven protocols: no-op handlers; override what you need."""

    round_based: ClassVar[bool] = False

    def on_start(self) -> None:
        """Time 0: set the first timers, send the first messages."""

    def on_message(self, batch: "Batch") -> None:
        """Every delivery arriving at ``ctx.now``."""

    def on_timer(self, nodes: np.ndarray, tag) -> None:
        """Timers of ``nodes`` set with ``tag`` fire at ``ctx.now``."""

    def on_compute_done(self, nodes: np.ndarray, result: np.ndarray) -> None:
        """Gradients of ``nodes`` (rows of ``result``) are ready at ``ctx.now``."""


class Protocol(_Base):
    """Base class of round-based protocols: no-op defaults; subclasses override what they need."""

    def message(self) -> dict:
        """Fields every node broadcasts this round, each an array with the node dimension first."""
        return {}

    def receive(self, batch: Batch) -> None:
        """Take in the deliveries of one instant."""

    def end_round(self) -> None:
        """Apply the round's update."""


class Accumulator:
    """Per-round sums of received fields and the count of deliveries, per receiver.

    Protocols that aggregate at the end of a round use it: ``add(batch)`` on every delivery
    instant, ``take()`` at round end returns ``(sums, count)`` and resets. ``add`` only records
    which rows reached whom; the sums are formed once, in ``take``, with one sparse product per
    message set — with continuous jitter a round has hundreds of tiny batches, and summing them
    one by one would cost a sparse matrix each. ``counts=False``: ``take`` returns ``(sums, None)``,
    for protocols that never read the counts (one pass over the deliveries less per round).
    """

    def __init__(self, n: int, names: tuple[str, ...], counts: bool = True) -> None:
        self.n, self.names, self.counts = n, names, counts
        self._reset()

    def _reset(self) -> None:
        self._parts: list = []  # (fields, [batches]) per message set, in arrival order

    def add(self, batch: Batch) -> None:
        if len(batch) == 0:
            return
        if not self._parts or self._parts[-1][0] is not batch.fields:
            self._parts.append((batch.fields, [batch]))
        else:
            self._parts[-1][1].append(batch)

    def _merged(self, fields: dict, batches: list) -> Batch:
        """One batch of a message set's deliveries: the only one as it is (a round batch keeps its
        own fast sums), else all of them concatenated in arrival order."""
        if len(batches) == 1:
            return batches[0]
        r = np.concatenate([b.receivers for b in batches])
        return Batch(self.n, r, r, np.concatenate([b.rows for b in batches]), fields)  # senders unused

    def take(self, like: dict) -> tuple[dict, np.ndarray | None]:
        tensors = any(is_tensor(like[k]) for k in self.names)
        if tensors and len(self._parts) == 1:  # one message set: its sums are the result (no zeros + sum)
            batch = self._merged(*self._parts[0])
            self._reset()
            return {k: batch.sum(k) for k in self.names}, batch.count() if self.counts else None
        sums = {k: (like[k].new_zeros(like[k].shape) if is_tensor(like[k])
                    else np.zeros_like(like[k], dtype=np.float64)) for k in self.names}
        count = np.zeros(self.n, dtype=np.int64) if self.counts else None
        for part in self._parts:
            batch = self._merged(*part)
            if count is not None:
                count += batch.count()
            for k in self.names:
                sums[k] += batch.sum(k)
        self._reset()
        return sums, count
