"""The event core: one protocol's run, whatever the clock.

The ``Runtime`` schedules transmissions, deliveries, timers and compute completions on an injected
clock (``clock.SimClock`` or ``clock.WallClock``) and moves messages through an injected transport
(``transport.SimTransport`` in virtual time; the live UDP medium in ``netemu.live``). Protocols
reach it only through their ``Context`` (``broadcast``, ``send``, ``set_timer``, ``compute``).

Every handler call goes through ``_call``: a handler that raises ends the run with a
``ProtocolError`` naming the protocol, the event, the time and the nodes.
"""

from __future__ import annotations

import math

import numpy as np

from netemu import wire
from netemu.arrays import is_tensor
from netemu.errors import NetemuError, ProtocolError
from netemu.protocol import Batch, Context
from netemu.runtime.results import Observer, RunResult


def _watching(observers: tuple, hook: str) -> tuple:
    """The observers whose ``hook`` does something (not ``Observer``'s no-op): only they are
    called, so a run without them never builds the per-reception arrays they would get."""
    return tuple(o for o in observers if getattr(type(o), hook, None) is not getattr(Observer, hook))


def _snapshot(fields: dict) -> dict:
    """A copy of a message's fields as they are when sent (tensors stay on their device)."""
    return {k: np.array(v, copy=True) if type(v) is np.ndarray or not is_tensor(v) else v.detach().clone()
            for k, v in fields.items()}


def _scalar(v) -> float | None:
    """``v`` as a float when it is one number (a float, an int, a one-element array), else None."""
    t = type(v)
    if t is float or t is int or t is np.float64:
        return float(v)
    if t is np.ndarray and v.size == 1 and v.ndim <= 1:
        return float(v.reshape(-1)[0])
    return None


def _show(nodes) -> str:
    a = np.asarray(nodes).reshape(-1)
    head = ", ".join(map(str, a[:5].tolist()))
    return f"node {head}" if len(a) == 1 else f"nodes [{head}{', …' if len(a) > 5 else ''}]"


class Runtime:
    def __init__(self, label: str, name: str, n: int, seed: int, net, clock, transport,
                 observers=(), period: float = 1.0, rounds: int | None = None) -> None:
        self.label, self.name, self.n = label, name, n
        self.net, self.clock, self.transport = net, clock, transport
        self.observers = tuple(observers)
        self._on_transmit, self._on_deliver, self._on_drop = (
            _watching(self.observers, hook) for hook in ("transmit", "deliver", "drop"))
        self.res = RunResult(label, name)
        self.ctx = Context(n=n, seed=seed, period=period, active=np.ones(n, dtype=bool),
                           out_degree=np.zeros(n, dtype=np.int64), rounds=rounds, runtime=self)
        self.seq = np.zeros(n, dtype=np.int64)  # per-sender message numbers (event traffic)
        self._timers: dict = {}  # (time, tag) -> node arrays of the timers due then
        self._nbytes: dict = {}  # message layout -> encoded bytes
        self.proto = None
        self.compute_clock = None  # the compute clock of an optimization run (set by its builder)
        self.k = 0  # the current round / sample index, for the trace
        self._event = "on_start"
        transport.attach(self)

    # -- scheduling ----------------------------------------------------------------------------

    def at(self, t: float, fn, *args) -> None:
        self.clock.call_at(t, fn, *args)

    @property
    def now(self) -> float:
        return self.clock.now

    def stop(self) -> None:
        self.clock.stop()

    def _call(self, event: str, nodes, fn, *args, now: float | None = None):
        """Run a protocol handler with ``ctx.now`` set; wrap its failure in a clear error naming
        ``nodes`` (node ids, or the ``Batch`` being delivered)."""
        self.ctx.now = self.clock.now if now is None else now
        self._event = event
        try:
            return fn(*args)
        except NetemuError:
            raise
        except Exception as e:
            if isinstance(nodes, Batch):  # a delivery: its receivers, cut out only now
                nodes = nodes.receivers
            who = f" for {_show(nodes)}" if nodes is not None else ""
            raise ProtocolError(f"protocol {self.label!r} ({self.name}): {event}{who} at t = "
                                f"{self.clock.now:g} s raised {type(e).__name__}: {e}") from e

    def _nodes(self, nodes, what: str) -> np.ndarray:
        if type(nodes) is np.ndarray and nodes.dtype == np.int64 and nodes.ndim == 1:  # fast path
            if len(nodes) == 1:
                if 0 <= nodes[0] < self.n:
                    return nodes
            elif not len(nodes) or (nodes.min() >= 0 and nodes.max() < self.n):
                return nodes
        a = np.arange(self.n) if nodes is None else np.asarray(nodes).reshape(-1)
        if a.dtype.kind not in "iu" or (len(a) and (a.min() < 0 or a.max() >= self.n)):
            bad = a[(a < 0) | (a >= self.n)][:1].tolist() if a.dtype.kind in "iu" else a[:1].tolist()
            raise ProtocolError(f"protocol {self.label!r} ({self.name}): {what} in {self._event} at "
                                f"t = {self.clock.now:g} s names node {bad[0] if bad else '?'}, but node "
                                f"ids are 0..{self.n - 1}; address existing nodes only")
        return a.astype(np.int64, copy=False)

    # -- actions (through the context) ---------------------------------------------------------

    def broadcast(self, nodes, fields: dict) -> None:
        nodes = self._nodes(nodes, "broadcast")
        if not len(nodes):
            return
        fields = _snapshot(fields)
        for k, v in fields.items():
            if v.shape[:1] != (len(nodes),):
                raise ProtocolError(f"protocol {self.label!r} ({self.name}): broadcast in {self._event}: "
                                    f"field {k!r} has shape {v.shape}; give one row per node "
                                    f"([{len(nodes)}, …])")
        nbytes = self._message_bytes(fields) if fields else 0
        seqs = self.seq[nodes].copy()
        self.seq[nodes] += 1
        self._count_tx(nodes, nbytes)
        self.transport.broadcast(nodes, seqs, fields, nbytes, self.clock.now)

    def send(self, src, dst, fields: dict) -> None:
        src, dst = self._nodes(src, "send (source)"), self._nodes(dst, "send (destination)")
        one = len(src) == 1  # one sender
        if one and len(dst) > 1:
            src = np.repeat(src, len(dst))
        if len(src) != len(dst):
            raise ProtocolError(f"protocol {self.label!r} ({self.name}): send in {self._event}: "
                                f"{len(src)} sources for {len(dst)} destinations; give one each")
        if not len(src):
            return
        fields = _snapshot(fields)
        nbytes = self._message_bytes(fields) if fields else 0
        if one:  # its unicasts: consecutive numbers
            j = int(src[0])
            seqs = self.seq[j] + np.arange(len(src), dtype=np.int64)
            self.seq[j] += len(src)
        else:
            seqs = np.empty(len(src), dtype=np.int64)
            for m, j in enumerate(src.tolist()):  # several unicasts of one sender: consecutive numbers
                seqs[m] = self.seq[j]
                self.seq[j] += 1
        self._count_tx(src, nbytes)
        self.transport.unicast(src, dst, seqs, fields, nbytes, self.clock.now)

    def _message_bytes(self, fields: dict) -> int:
        """``wire.message_bytes`` of ``fields``, remembered per layout (names, dtypes, row shapes)."""
        try:
            key = tuple([(k, v.dtype, v.shape[1:]) for k, v in fields.items()])
            nb = self._nbytes.get(key)
        except (AttributeError, TypeError):
            key = nb = None
        if nb is None:
            nb = wire.message_bytes(fields, self.n)
            if key is not None:
                self._nbytes[key] = nb
        return nb

    def set_timer(self, nodes, delay, tag=None, absolute: bool = False) -> None:
        """Timers after ``delay`` seconds, or at time ``delay`` when ``absolute``."""
        nodes = self._nodes(nodes, "set_timer")
        d1 = _scalar(delay)
        if d1 is not None and len(nodes):  # one instant for all (a Poisson clock's wake-up, a client's
            dv = d1 - self.clock.now if absolute else d1  # end of training): plain floats, same sums
            if math.isfinite(dv) and dv >= 0:
                self._timer_at(d1 if absolute else self.clock.now + dv, nodes, tag)
                return
        if absolute:
            at = np.broadcast_to(np.asarray(delay, dtype=np.float64), nodes.shape)
            delay = at - self.clock.now
        d = np.broadcast_to(np.asarray(delay, dtype=np.float64), nodes.shape)
        bad = ~np.isfinite(d) | (d < 0)
        if bad.any():
            m = int(np.flatnonzero(bad)[0])
            raise ProtocolError(f"protocol {self.label!r} ({self.name}): set_timer in {self._event} at "
                                f"t = {self.clock.now:g} s for node {int(nodes[m])} has delay {float(d[m])}; "
                                f"a delay must be a finite number of seconds >= 0")
        if not len(nodes):
            return
        t = self.clock.now + d if not absolute else at
        if t.ndim == 0 or np.all(t == t[0]):
            self._timer_at(float(t[0]), nodes, tag)
            return
        order = np.argsort(t, kind="stable")
        t, nodes = t[order], nodes[order]
        cuts = np.flatnonzero(np.diff(t)) + 1
        for a, b in zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(t)]]).tolist()):
            self._timer_at(float(t[a]), nodes[a:b], tag)

    def _timer_at(self, t: float, nodes: np.ndarray, tag) -> None:
        """Timers with one tag due at one instant fire together, as one ``on_timer`` call at the
        place of the first one set (as deliveries of one instant form one batch)."""
        try:
            key = (t, tag)
            bucket = self._timers.get(key)
        except TypeError:  # an unhashable tag: its own event
            self.at(t, self._timer, nodes, tag)
            return
        if bucket is not None:
            bucket.append(nodes)
            return
        self._timers[key] = [nodes]
        self.at(t, self._fire_timers, key)

    def _fire_timers(self, key) -> None:
        bucket = self._timers.pop(key)
        self._timer(bucket[0] if len(bucket) == 1 else np.concatenate(bucket), key[1])

    def _count_tx(self, senders: np.ndarray, nbytes: int) -> None:
        c = self.res.counters
        c["messages_sent"] += len(senders)
        c["bytes_sent"] += len(senders) * int(nbytes)
        for o in self._on_transmit:
            o.transmit(self.label, self.k, self.clock.now, senders, nbytes)

    # -- events into the protocol -------------------------------------------------------------

    def _timer(self, nodes, tag) -> None:
        self._call("on_timer", nodes, self.proto.on_timer, nodes, tag)

    def deliver(self, t: float, batch: Batch, k: int | None = None) -> None:
        """Hand ``batch`` (arrivals at ``t``) to the protocol."""
        self.res.counters["events"] += 1
        k = self.k if k is None else k
        for o in self._on_deliver:
            o.deliver(self.label, k, t, batch.receivers, batch.senders)
        self._call("on_message", batch, self.proto.on_message, batch, now=t)

    def watch(self, observer) -> None:
        """Add ``observer`` to the hooks after the start (a protocol that learns of its own lost
        messages, as acknowledgements would tell it: the FL server)."""
        self.observers = (*self.observers, observer)
        self._on_transmit, self._on_deliver, self._on_drop = (
            _watching(self.observers, hook) for hook in ("transmit", "deliver", "drop"))

    def retried(self, recv: np.ndarray, send: np.ndarray, extra: np.ndarray) -> None:
        """Messages ``send[m] → recv[m]`` that took ``extra[m]`` more attempts (uplink retries)."""
        c = self.res.counters
        c["retries"] = c.get("retries", 0) + int(extra.sum())
        for o in self.observers:
            if hasattr(o, "retry"):
                o.retry(recv, send, extra)

    def dropped(self, k: int, t: float, recv: np.ndarray, send: np.ndarray, why: str) -> None:
        key = "late" if why == "late" else "drops"
        self.res.counters[key] += len(recv)
        for o in self._on_drop:
            o.drop(self.label, k, t, recv, send, why)

    def dropped_where(self, k: int, t: float, recv: np.ndarray, send: np.ndarray, where, count: int,
                      why: str) -> None:
        """``dropped`` of the ``count`` receptions ``recv[where]`` ← ``send[where]``, cut out only
        when an observer watches drops."""
        if self._on_drop:
            self.dropped(k, t, recv[where], send[where], why)
        else:
            self.res.counters["late" if why == "late" else "drops"] += count

    def compute_done(self, nodes: np.ndarray, future, rows: np.ndarray) -> None:
        result = future.result()[rows]
        self._call("on_compute_done", nodes, self.proto.on_compute_done, nodes, result)

    def sample(self, k: int, t: float, extra: dict | None = None) -> bool:
        """Metrics point ``k`` at time ``t`` (observers); ``False`` once the run diverged."""
        medium = getattr(self.net, "medium", None)
        if medium is not None:  # the shared medium's collision share and utilisation since the last point
            extra = {**(extra or {}), **medium.sample(t)}
            self.res.extra["mac"] = medium.summary(t)
        for o in self.observers:
            o.sample(self.res, k, t, self.proto, extra)
        return not self.res.diverged

    # -- running ------------------------------------------------------------------------------

    def start(self, proto, x0: np.ndarray) -> None:
        self.proto = proto
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self._call("start", None, proto.start, x0)
        self.at(0.0, self._call, "on_start", None, proto.on_start)


class EventCompute:
    """``ctx.compute`` of an event protocol: ``grad(nodes, params)`` starts one local step per
    node when the node is free; ``on_compute_done(nodes, result)`` follows at each node's
    completion time (step durations from the straggler model, ``netemu.compute.timing``).
    Results are computed lazily, all pending requests in one batched call."""

    def __init__(self, handle, times, rt: Runtime) -> None:
        self.handle, self.times, self.rt = handle, times, rt
        n = handle.n
        self.busy_until = np.zeros(n)
        self.step_index = np.zeros(n, dtype=np.int64)
        self.late = np.zeros(n, dtype=bool)

    @property
    def dim(self) -> int:
        return self.handle.dim

    @property
    def node_steps(self) -> int:
        return self.handle.node_steps

    @property
    def calls(self) -> int:
        return self.handle.calls

    def grad(self, nodes, params):
        nodes = self.rt._nodes(nodes, "compute.grad")
        fut = self.handle.grad(nodes, params)
        now = self.rt.clock.now
        d = self.times.draw(nodes, self.step_index[nodes])
        np.add.at(self.step_index, nodes, 1)
        finish = np.maximum(self.busy_until[nodes], now) + d
        self.busy_until[nodes] = finish  # a node asked twice at once runs its steps back to back
        order = np.argsort(finish, kind="stable")
        f = finish[order]
        cuts = np.flatnonzero(np.diff(f)) + 1
        for a, b in zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(f)]]).tolist()):
            rows = order[a:b]
            self.rt.at(float(f[a]), self.rt.compute_done, nodes[rows], fut, rows)
        return fut
