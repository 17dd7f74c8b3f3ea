"""The live session: the runtime of ``netemu run`` on a wall clock, over real UDP datagrams.

Per protocol of the scenario, one *session*:

1. the medium (``medium.Medium``) binds ``127.0.0.1:port_base`` and every local node gets its own
   UDP socket (``port_base + 1 + i``, or ephemeral ports with ``port_base = 0``); the session then
   waits up to ``join_timeout`` for every external node's ``hello``;
2. the same runtime as ``netemu run`` (``netemu.engine.build_run``) runs the protocol, with a
   ``WallClock`` (simulated second ``t`` at wall time ``T0 + t / time_scale``) and the
   ``UdpTransport`` (``transport.py``) instead of the simulated clock and transport: the round
   driver, event protocols, compute phases of optimization tasks (gradients computed by this
   process for its local nodes), metrics and the event trace are the same code. The network
   realization is the same (same seed, graph, losses and jitter: common random numbers);
3. metrics are recorded at the same simulated instants as in ``netemu run``; with external nodes,
   a round's row waits for their transmissions of that round (their state is known only from
   their datagrams), and after the last round they are asked for a final report.

One protocol object holds all local nodes' state, as in the simulator (``ctx.local`` lists them).
An external node's row in it is never sent or shown: the others receive its own datagrams, and
the metrics use the estimate from its latest transmission (``external.py``).

Cancelling the task that runs ``run_live_async`` (Ctrl-C in the CLI) stops at the next await,
keeps the rounds completed so far, writes the outputs and marks them ``interrupted``.
"""

from __future__ import annotations

import asyncio
import time as _time
from pathlib import Path

import numpy as np

from netemu.engine import build_run, divergence_limit, finish, metrics_for
from netemu.errors import NetemuError
from netemu.live import config
from netemu.live import messages as M
from netemu.live.external import Externals, estimator
from netemu.live.medium import Medium, enlarge_buffers, open_endpoint
from netemu.live.transport import UdpTransport
from netemu.metrics import eval_every
from netemu.outputs import staged
from netemu.runner import make_task, prepare, write_results
from netemu.runtime.clock import WallClock
from netemu.runtime.results import MetricsRecorder, RunResult
from netemu.scenario import build

HOST = "127.0.0.1"
LEAD = 0.02  # seconds between the end of the join phase and time 0


class LocalNode(asyncio.DatagramProtocol):
    """The socket of one local node: keeps what the medium sends it, rejects anything else."""

    def __init__(self, i: int, inbox: list, medium_addr, rejected: dict, wake) -> None:
        self.i, self.inbox, self.medium_addr, self.rejected = i, inbox, medium_addr, rejected
        self.wake = wake

    def connection_made(self, transport) -> None:
        enlarge_buffers(transport)

    def datagram_received(self, data: bytes, addr) -> None:
        if addr != self.medium_addr:
            self.rejected["not_medium"] += 1
            return
        self.inbox.append((self.i, data))
        self.wake()

    def error_received(self, exc) -> None:
        pass


class LiveRecorder(MetricsRecorder):
    """Metrics of a live run: with external nodes, a point waits until their transmissions of
    that round are in (``flush`` records the last one after their final reports)."""

    def __init__(self, metrics, ext: Externals, limit: float | None = None) -> None:
        super().__init__(metrics, limit)
        self.ext = ext
        self.pending = None

    def sample(self, run, k, t, proto, extra=None):
        if not self.ext.ids:
            return super().sample(run, k, t, proto, extra)
        self.flush(run)
        self.pending = (k, t, np.array(proto.estimate(), copy=True), extra)

    def flush(self, run) -> None:
        if self.pending is None:
            return
        k, t, est, extra = self.pending
        self.pending = None
        holder = type("Est", (), {"estimate": lambda _self: self.ext.apply(est)})()  # noqa: B023
        super().sample(run, k, t, holder, extra)


class Session:
    """One protocol's live run; ``address`` and ``medium`` are set once the medium is bound."""

    def __init__(self, sc, pcfg: dict, x0, fields: dict | None, trajectories=None,
                 topology=None, on_listen=None, task=None, observers=()) -> None:
        self.sc, self.p, self.x0, self.fields = sc, pcfg, x0, fields
        self.live = sc.live
        self.trajectories, self.topology = trajectories, topology
        self.on_listen = on_listen
        self.task, self.observers = task, observers
        self.address = None
        self.medium: Medium | None = None
        self.inbox: list = []

    async def run(self) -> RunResult:
        sc, live, loop = self.sc, self.live, asyncio.get_running_loop()
        n, rounds = sc.network["nodes"], sc.run["rounds"]
        scale = live["time_scale"]
        info = dict(interrupted=False, rounds_completed=0, max_start_lag=0.0)
        ext_ids = set(live["external"])
        local = np.array([i for i in range(n) if i not in ext_ids], dtype=np.int64)
        spec = M.FieldSpec(self.fields) if self.fields else None
        x0 = self.x0 if self.task is None else self.task.x0()
        ext = Externals(live["external"], x0, self.p["name"],
                        dict(n=n, fields=spec.describe() if spec else {}, period=sc.run["period"],
                             time_scale=scale, max_datagram=live["max_datagram"]),
                        estimator(self.fields or {}))
        net = build.network(sc, self.trajectories, self.topology)
        self.medium = medium = Medium(n, spec, ext, net.delay, scale, live["max_datagram"])
        transports: list = []
        rt, why = None, "error"
        wall = _time.perf_counter()
        try:
            await self._bind(loop, medium, local, transports)
            if self.on_listen is not None:
                self.on_listen(self)
            await self._join(loop, ext)
            ext.started = True
            x0 = ext.initial(x0)
            nodes = [(int(i), t) for i, t in zip(local, transports[1:])]
            self.transport = transport = UdpTransport(medium, self.address, nodes, self.inbox, spec, n)
            clock = WallClock(scale, settle=transport.settle)
            target = x0.mean(axis=0)
            metrics = metrics_for(self.task, target, sc.run["rounds"],
                                  eval_every(self.task, sc.run["rounds"], sc.output.get("eval_every")))
            recorder = LiveRecorder(metrics, ext, divergence_limit(sc, x0))
            self.recorder = recorder

            def counted():
                info["rounds_completed"] += 1

            rt = build_run(sc, self.p, x0, clock, transport, net, self.task, self.observers,
                           on_round=counted, recorder=recorder, local=local)
            await clock.run(loop.time() + LEAD)
            info["max_start_lag"] = clock.max_lag
            transport.take()
            if ext.ids and not rt.res.diverged:
                await self._final_reports(loop, medium, ext, rounds, sc.run["period"] / scale)
            why = "end"
        except asyncio.CancelledError:
            info["interrupted"], why = True, "interrupted"
        finally:
            if rt is not None:
                self.recorder.flush(rt.res)
            medium.finish(why)
            for t in transports:
                t.close()
        res = finish(rt, self.task) if rt is not None else RunResult(self.p["label"], self.p["name"])
        res.wall_seconds = _time.perf_counter() - wall
        self._counters(res, medium, ext, info, rt)
        return res

    async def _bind(self, loop, medium: Medium, local: np.ndarray, transports: list) -> None:
        base = self.live["port_base"]
        try:
            mt, medium.sock = await open_endpoint(loop, medium, HOST, base)
            transports.append(mt)
            self.address = mt.get_extra_info("sockname")[:2]
            self.inbox: list = []
            for i in local.tolist():
                port = base + 1 + i if base else 0
                t, _ = await loop.create_datagram_endpoint(
                    lambda i=i: LocalNode(i, self.inbox, self.address, medium.rejected, self._wake),
                    local_addr=(HOST, port))
                transports.append(t)
                medium.register_local(i, t.get_extra_info("sockname")[:2])
        except OSError as e:
            raise NetemuError(f"{self.sc.source}: [live] port_base = {base}: cannot bind a UDP socket on "
                              f"{HOST} ({e.strerror or e}); choose another port_base, or 0 for "
                              f"ephemeral ports") from None

    async def _join(self, loop, ext: Externals) -> None:
        timeout = self.live["join_timeout"]
        deadline = loop.time() + timeout
        while not ext.all_joined() and loop.time() < deadline:
            await asyncio.sleep(0.005)
        if not ext.all_joined():
            missing = ext.missing()
            host, port = self.address
            raise NetemuError(f"{self.sc.source}: external node(s) {missing} did not say hello within "
                              f"[live] join_timeout = {timeout:g} s; start them (e.g. python "
                              f"examples/live_client.py {port} --id {missing[0]}) or raise join_timeout")

    def _wake(self) -> None:
        if self.medium is not None and self.medium.rt is not None:
            self.medium.rt.transport.wake()

    async def _drain_unused(self) -> None:
        """Let every copy already queued in the local sockets be read (one per socket per pass).

        Two ``sleep(0)`` make one pass of the loop's selector run before the check; a pass that
        reads nothing means no socket had anything left.
        """
        for _ in range(10_000):
            before = len(self.inbox)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if len(self.inbox) == before:
                return

    async def _final_reports(self, loop, medium: Medium, ext: Externals, k: int, wait: float) -> None:
        """After the last round, ask external nodes for their final state: a ``round`` datagram
        with ``deg`` 0 whose transmissions are recorded, not forwarded."""
        wait = max(wait, 0.05)
        medium.begin_report(k, loop.time() + wait)
        medium.tick(k, np.zeros(self.sc.network["nodes"], dtype=np.int64), wait)
        deadline = loop.time() + wait
        while loop.time() < deadline and any(ext.present(i) and ext.report_round.get(i, -1) < k
                                             for i in ext.ids):
            await asyncio.sleep(0.001)

    def _counters(self, res: RunResult, medium: Medium, ext: Externals, info: dict, rt) -> None:
        """Counters as ``netemu run`` keeps them, plus what only a live run has (``live``)."""
        st, c = medium.stats, res.counters
        tr = getattr(self, "transport", None)
        late_rx = tr.late_rx if tr is not None else 0
        c["deliveries"] += st["forwarded_external"]
        c["events"] = st["received"] + (tr.received if tr is not None else 0)
        if rt is None:
            c.update(messages_sent=st["accepted"], bytes_sent=st["bytes_accepted"], drops=st["drops"],
                     late=st["late"])
        res.extra = {
            **res.extra,
            "rejected": dict(medium.rejected),
            "live": {**info, "time_scale": self.live["time_scale"],
                     "medium": "%s:%d" % self.address if self.address else None,
                     **{k: v for k, v in st.items() if k not in ("drops", "late")},
                     "late_receptions": late_rx, "externals": ext.summary()},
        }


async def run_live_async(sc, out: Path, on_listen=None, log=None) -> list[RunResult]:
    """Run every protocol of ``sc`` live and write the outputs into ``out``.

    ``sc`` must carry its ``[live]`` table filled in (``config.with_overrides``). ``on_listen``
    is called with each ``Session`` once its medium is bound (``session.address``); ``log`` with
    each finished ``RunResult``. Cancelling the task writes partial outputs (see module doc).
    """
    if not sc.live or "time_scale" not in sc.live:
        sc = config.with_overrides(sc)
    trajectories, topology, x0 = prepare(sc)
    task = make_task(sc)
    fields = config.preflight(sc, sc.live, x0, task)
    results = []
    out = Path(out)
    with staged(out) as stage:
        observers = []
        if sc.output["trace"]:
            from netemu.tracefile import TraceWriter

            observers.append(TraceWriter(stage / "events.msgpack"))
        try:
            for p in sc.protocols:
                session = Session(sc, p, x0, fields[p["label"]], trajectories, topology, on_listen,
                                  task, tuple(observers))
                res = await session.run()
                results.append(res)
                if log is not None:
                    log(res)
                if res.extra["live"]["interrupted"]:
                    break
        finally:
            for o in observers:
                o.close()
        write_results(stage, sc, results, task, " (live)")
    return results


def run_live(sc, out: Path, on_listen=None, log=None) -> list[RunResult]:
    """Blocking form of ``run_live_async`` (Ctrl-C: partial outputs, see the module doc)."""
    return asyncio.run(run_live_async(sc, out, on_listen, log))


def interrupted(results: list) -> bool:
    return any(r.extra["live"]["interrupted"] for r in results)

