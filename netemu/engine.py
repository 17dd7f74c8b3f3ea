"""One protocol's run of a scenario, on either clock: the scenario-level face of ``netemu.runtime``.

``build_run`` makes the ``Runtime`` of one ``[[protocols]]`` entry (network, protocol, compute,
metrics observer) on a given clock and transport; ``SimEngine`` runs each protocol of a scenario
in virtual time on the same network realization. The live runtime (``netemu.live``) calls
``build_run`` with its wall clock and UDP transport: one code path for both.

Round protocols are driven by ``netemu.runtime.rounds.RoundDriver``; event protocols run for
``[run] rounds × period`` simulated seconds, their metrics sampled every ``period``.
"""

from __future__ import annotations

import time as _time

import numpy as np

from netemu import registry
from netemu.arrays import namespace
from netemu.metrics import consensus_metrics, eval_every, optimization_metrics
from netemu.runtime.clock import SimClock
from netemu.runtime.core import EventCompute, Runtime
from netemu.runtime.results import MetricsRecorder, Observer, RunResult  # noqa: F401 (public names)
from netemu.runtime.rounds import RoundDriver
from netemu.runtime.transport import SimTransport
from netemu.scenario import build


def params_of(pcfg: dict) -> dict:
    return {k: v for k, v in pcfg.items() if k not in ("name", "label")}


def construct(pcfg: dict, ctx):
    """The one way a protocol object is made: class from the registry, ``[[protocols]]`` params."""
    cls = registry.get(pcfg["name"])
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return cls(ctx, **params_of(pcfg))


def metrics_for(task, target, rounds: int = 0, every: int = 1):
    """The metric function ``(proto, k) -> {name: value}`` of a run: consensus error to ``target``,
    or the task's metrics, fully evaluated every ``every`` rounds and at the last (``rounds``)."""
    if task is None:
        return lambda proto, k, last=False: consensus_metrics(proto.estimate(), target)
    def metrics(proto, k, last=False):
        m = optimization_metrics(task, proto.estimate(), full=last or k % every == 0 or k >= rounds)
        if getattr(proto, "one_model", False):  # every node's estimate is one model (FL): no disagreement
            m.pop("disagreement", None)
        more = getattr(proto, "extra_metrics", None)  # the FL protocols' counters
        return m if more is None else {**m, **more()}

    return metrics


def divergence_limit(sc, x0) -> float:
    """``[run] diverge_at`` times the initial scale ``max(1, max |x⁰|)``."""
    scale = float(np.max(np.abs(x0))) if np.size(x0) else 1.0
    return sc.run.get("diverge_at", 1e12) * max(1.0, scale)


def build_run(sc, pcfg: dict, x0, clock, transport, net=None, task=None, observers=(), on_round=None,
              recorder=None, local=None) -> Runtime:
    """The runtime of protocol ``pcfg`` of ``sc``, started (``x0`` set, first events scheduled).

    ``recorder`` replaces the default ``MetricsRecorder`` (the live runtime's, which waits for
    external nodes' reports); ``local`` lists the nodes this process runs (live mode).
    """
    n, period, rounds = sc.network["nodes"], sc.run["period"], sc.run["rounds"]
    cls = registry.get(pcfg["name"])
    net = net or build.network(sc)
    if task is not None and x0 is None:
        x0 = task.x0()
    recorder = recorder or MetricsRecorder(metrics_for(task, x0.mean(axis=0), rounds,
                                                       eval_every(task, rounds, sc.output.get("eval_every"))),
                                           divergence_limit(sc, x0))
    rt = Runtime(pcfg["label"], pcfg["name"], n, sc.seed, net, clock, transport,
                 (recorder, *observers), period=period, rounds=rounds)
    ctx = rt.ctx
    ctx.local = local
    ctx.speed = build.speeds(sc)
    cclock = rt.compute_clock = None
    if task is not None:
        from netemu.compute.handle import ComputeHandle

        cclock = rt.compute_clock = build.clock(sc)
        ctx.xp = namespace(task.device, task.dtype)
        on_device = ctx.xp.torch
        if cls.round_based:
            ctx.compute = ComputeHandle(task, n, sc.seed, cclock, as_tensor=on_device)
        else:
            ctx.compute = EventCompute(ComputeHandle(task, n, sc.seed, as_tensor=on_device), cclock.times, rt)
    proto = construct(pcfg, ctx)
    if cls.round_based:
        driver = RoundDriver(rt, proto, rounds, period, cclock, on_round)
        rt.start(driver, x0)
        first = {"stragglers": 0} | ({"offline": 0} if cclock is not None and cclock.avail else {}) \
            if task is not None else None
        rt.sample(0, 0.0, first)
    else:
        rt.start(proto, x0)
        _sample_every(rt, rounds, period, on_round)
    return rt


def _sample_every(rt: Runtime, rounds: int, period: float, on_round) -> None:
    """Event runs: metrics at ``k · period``, ``k = 0..rounds``, then the run ends."""
    on_round = on_round or (lambda: None)

    def tick(k: int) -> None:
        rt.k = k
        if k > 0:
            on_round()
        if not rt.sample(k, k * period) or k == rounds:
            rt.stop()
            return
        rt.at((k + 1) * period, tick, k + 1)

    rt.at(0.0, tick, 0)


def finish(rt: Runtime, task) -> RunResult:
    """Counters and summary additions once a run is over."""
    res = rt.res
    res.counters["events"] = max(res.counters["events"], rt.clock.events)
    if task is not None:
        compute = rt.ctx.compute
        cclock = rt.compute_clock
        res.extra = {**res.extra, "node_steps": compute.node_steps, "model_calls": compute.calls,
                     "compute_seconds": cclock.compute_time() if cclock is not None else None,
                     "straggler_rounds": int(sum(m.get("stragglers", 0) for _, _, m in res.rows))}
    return res


class SimEngine:
    """Runs each protocol of a scenario in virtual time, same network realization."""

    def __init__(self, scenario, x0: np.ndarray, trajectories=None, topology=None,
                 observers: tuple = (), on_round=None, task=None) -> None:
        self.sc = scenario
        self.task = task  # an optimization task (netemu.tasks.data.DataTask) or None: consensus
        self.x0 = task.x0() if task is not None else x0
        self.trajectories = trajectories
        self.topology = topology
        self.observers = observers
        self.on_round = on_round

    def run_protocol(self, pcfg: dict) -> RunResult:
        net = build.network(self.sc, self.trajectories, self.topology)
        clock = SimClock()
        wall = _time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            rt = build_run(self.sc, pcfg, self.x0, clock, SimTransport(), net, self.task, self.observers,
                           self.on_round)
            clock.run()
        rt.res.wall_seconds = _time.perf_counter() - wall
        res = finish(rt, self.task)
        if self.sc.run.get("target_loss") is not None:
            from netemu.fl.report import time_to_target

            res.extra["time_to_target"] = time_to_target(res.rows, self.sc.run["target_loss"])
        return res
