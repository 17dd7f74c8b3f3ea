"""The simulated runtime: round-based protocols on a SimPy event core, in virtual time.

Per round ``k`` (starting at ``t_k = k · period``, computed, never accumulated):

1. the network realizes the round (nominal edges, losses, jitter) — the same for every protocol;
2. every active node broadcasts the protocol's ``message()`` (one transmission, whatever the
   number of receivers); each reception takes ``latency + bytes / bandwidth + jitter``;
3. receptions not lost and arriving by the round's end are grouped by arrival instant, and each
   group is *one* SimPy event that hands the protocol *one* batch (batches over the node dimension are what
   make this fast); later ones are dropped and counted ``late``;
4. at ``t_k + period`` the protocol's ``end_round()`` runs, then the metrics of round ``k + 1``.

Optimization tasks add a *compute phase* before each broadcast (``netemu.compute.timing``): the
local steps a protocol requested through ``ctx.compute`` at the round boundary run first, so the
broadcast of round ``k`` is at ``t_k = k · period + (sum of the compute windows so far)``. Nodes
still busy then (stragglers) or off (availability) do not transmit; off nodes do not receive
either. The metrics are ``loss``, ``grad_norm_sq``, ``accuracy``, ``disagreement`` and
``stragglers``. Consensus runs have no compute phase and take exactly the path described above.

Delivery events of an instant are scheduled before the round-end event, so a message arriving
exactly at the round's end is on time (SimPy orders equal times by scheduling order).
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field

import numpy as np
import simpy

from netemu import registry, wire
from netemu.metrics import consensus_metrics, optimization_metrics
from netemu.protocol import Batch, Context
from netemu.world.network import Network


class Observer:
    """No-op hooks for tracing; subclass and override what you need."""

    def transmit(self, label: str, k: int, t: float, senders: np.ndarray, nbytes: int) -> None: ...

    def deliver(self, label: str, k: int, t: float, recv: np.ndarray, send: np.ndarray) -> None: ...

    def drop(self, label: str, k: int, t: float, recv: np.ndarray, send: np.ndarray, why: str) -> None: ...


@dataclass
class RunResult:
    label: str
    name: str
    rows: list = field(default_factory=list)  # (round, time, {metric: value})
    counters: dict = field(default_factory=lambda: dict(
        messages_sent=0, deliveries=0, drops=0, late=0, bytes_sent=0, events=0))
    wall_seconds: float = 0.0
    diverged: bool = False
    diverged_at_round: int | None = None
    extra: dict = field(default_factory=dict)  # summary.json additions (optimization runs)

    def final(self) -> dict:
        return dict(self.rows[-1][2]) if self.rows else {}


class SimEngine:
    """Runs each protocol of a scenario on its own SimPy environment, same network realization."""

    def __init__(self, scenario, x0: np.ndarray, trajectories=None, topology=None,
                 observers: tuple = (), on_round=None, task=None) -> None:
        self.sc = scenario
        self.task = task  # an optimization task (netemu.tasks.data.DataTask) or None: consensus
        if task is not None:
            x0 = task.x0()
        self.x0 = x0
        self.target = x0.mean(axis=0)
        self.trajectories = trajectories
        self.topology = topology
        self.observers = observers
        self.on_round = on_round or (lambda: None)

    def run_protocol(self, pcfg: dict) -> RunResult:
        sc = self.sc
        n, period, rounds = sc.network["nodes"], sc.run["period"], sc.run["rounds"]
        cls = registry.get(pcfg["name"])
        params = {k: v for k, v in pcfg.items() if k not in ("name", "label")}
        ctx = Context(n=n, seed=sc.seed, period=period, active=np.ones(n, dtype=bool))
        if self.task is not None:
            return self._run_optimization(cls, params, pcfg, ctx)
        proto = cls(ctx, **params)
        res = RunResult(pcfg["label"], pcfg["name"])
        net = Network(sc, self.trajectories, self.topology)
        env = simpy.Environment()
        wall = _time.perf_counter()
        proto.start(self.x0)
        self._record(res, proto, 0, 0.0)
        env.process(self._rounds(env, net, proto, ctx, res, rounds, period))
        env.run()
        res.wall_seconds = _time.perf_counter() - wall
        return res

    def _run_optimization(self, cls, params: dict, pcfg: dict, ctx: Context) -> RunResult:
        from netemu.compute.handle import ComputeHandle
        from netemu.compute.timing import Clock

        sc = self.sc
        clock = Clock(sc.compute or {}, ctx.n, sc.seed, sc.base_dir)
        ctx.compute = ComputeHandle(self.task, ctx.n, sc.seed, clock)
        res = RunResult(pcfg["label"], pcfg["name"])
        net = Network(sc, self.trajectories, self.topology)
        env = simpy.Environment()
        wall = _time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            proto = cls(ctx, **params)
            proto.start(self.x0)
            self._record(res, proto, 0, 0.0, {"stragglers": 0} | ({"offline": 0} if clock.avail else {}))
            env.process(self._rounds(env, net, proto, ctx, res, sc.run["rounds"], sc.run["period"], clock))
            env.run()
        res.wall_seconds = _time.perf_counter() - wall
        res.extra = {"node_steps": ctx.compute.node_steps, "model_calls": ctx.compute.calls,
                     "compute_seconds": clock.compute_time(),
                     "straggler_rounds": int(sum(m.get("stragglers", 0) for _, _, m in res.rows))}
        return res

    def _record(self, res: RunResult, proto, k: int, t: float, extra: dict | None = None) -> bool:
        if self.task is None:
            m = consensus_metrics(proto.estimate(), self.target)
        else:
            m = optimization_metrics(self.task, proto.estimate())
            m.update(extra or {})
        res.rows.append((k, t, m))
        if not all(np.isfinite(v) for v in m.values()):
            res.diverged, res.diverged_at_round = True, k
            return False
        return True

    def _rounds(self, env, net: Network, proto, ctx: Context, res: RunResult, rounds: int, period: float,
                clock=None):
        c = res.counters
        start, listen, extra = 0.0, None, None
        for k in range(rounds):
            t_k = k * period
            if clock is not None:  # the compute phase of round k, from ``start`` to the broadcast
                _, late = clock.phase(start)
                t_k = k * period + clock.compute_time()
                online = clock.online(t_k)
                ctx.compute.late = late | ~online  # off at the broadcast: the step is dropped too
                ctx.active = online & clock.free(t_k)
                listen = online if clock.avail is not None else None
                extra = {"stragglers": int((online & ~ctx.active).sum())}
                if clock.avail is not None:
                    extra["offline"] = int((~online).sum())
            if env.now < t_k:
                yield env.timeout(t_k - env.now)
                c["events"] += 1
            rd = net.round(k, t_k)
            ctx.round, ctx.now = k, t_k
            ctx.out_degree = np.where(ctx.active, rd.out_degree, 0)
            fields = proto.message()
            nbytes = wire.message_bytes(fields, ctx.n) if fields else 0
            senders = np.flatnonzero(ctx.active)
            c["messages_sent"] += len(senders)
            c["bytes_sent"] += len(senders) * nbytes
            for o in self.observers:
                o.transmit(res.label, k, t_k, senders, nbytes)
            self._schedule(env, net, proto, ctx, res, rd, fields, nbytes, period, listen)
            yield env.timeout(period)
            c["events"] += 1
            proto.end_round()
            self.on_round()
            start = t_k + period
            if not self._record(res, proto, k + 1, t_k + period, extra):
                return

    def _schedule(self, env, net, proto, ctx, res, rd, fields, nbytes, period, listen=None) -> None:
        c = res.counters
        tx = ctx.active[rd.send]
        if listen is not None:  # receivers that are off hear nothing
            tx &= listen[rd.recv]
        recv, send = rd.recv[tx], rd.send[tx]
        lost = rd.lost[tx]
        jitter = rd.jitter[tx] if rd.jitter is not None else None
        delay = net.delay.delays(nbytes, jitter, len(recv))
        late = ~lost & (delay > period)
        ok = ~lost & ~late
        c["drops"] += int(lost.sum())
        c["late"] += int(late.sum())
        c["deliveries"] += int(ok.sum())
        for o in self.observers:
            o.drop(res.label, rd.k, rd.time, recv[lost], send[lost], "loss")
            o.drop(res.label, rd.k, rd.time + period, recv[late], send[late], "late")
        recv, send, delay = recv[ok], send[ok], delay[ok]
        if len(recv) == 0:
            return
        if jitter is None:  # one arrival instant for every reception
            groups = [(delay[0], slice(None))]
        else:
            order = np.argsort(delay, kind="stable")
            recv, send, delay = recv[order], send[order], delay[order]
            cuts = np.flatnonzero(np.diff(delay)) + 1
            starts = np.concatenate([[0], cuts])
            ends = np.concatenate([cuts, [len(delay)]])
            groups = [(delay[a], slice(a, b)) for a, b in zip(starts, ends)]
        for d, sl in groups:
            batch = Batch(ctx.n, recv[sl], send[sl], send[sl], fields)
            ev = env.timeout(d)
            ev.callbacks.append(self._deliverer(proto, batch, res, rd.k, rd.time + d))

    def _deliverer(self, proto, batch, res, k, t):
        def deliver(_event):
            res.counters["events"] += 1
            for o in self.observers:
                o.deliver(res.label, k, t, batch.receivers, batch.senders)
            proto.receive(batch)
        return deliver

