"""The live session: the runtime of ``netemu run`` on a wall clock, over real UDP datagrams.

Per protocol of the scenario, one *session*:

1. the medium (``medium.Medium``) binds ``[live] host:port_base`` (``127.0.0.1`` unless told;
   another interface needs a key or ``--insecure``: ``config.security``) and every local node
   gets its own UDP socket on loopback (``port_base + 1 + i``, or ephemeral ports with
   ``port_base = 0``); the session then waits up to ``join_timeout`` for every external node's
   ``hello``. With ``[live] key_file`` the session draws a run id and every datagram is tagged
   (``auth.py``);
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

A run can also *fail* (``failure``): an external node silent for ``[live] timeout`` seconds is
marked departed (event trace and summary) and, with ``on_departure = "fail"``, stops the run; a
run that lost more than ``[live] max_drop_share`` of its datagrams (kernel drops, rate limit,
sequence gaps) is marked failed at its end. The outputs are written either way; the CLI exits
with status 3 (dropped) or 4 (departed).
"""

from __future__ import annotations

import asyncio
import logging
import time as _time
from pathlib import Path

import numpy as np

from netemu import registry, wire
from netemu.engine import build_run, divergence_limit, finish, metrics_for
from netemu.errors import NetemuError
from netemu.live import auth, config, fragments
from netemu.live import messages as M
from netemu.live.external import Externals, FLClients, estimator, fl_messages, fl_server, is_fl
from netemu.live.medium import Medium, open_endpoint
from netemu.live.nodes import LiveRecorder, LocalNode
from netemu.live.transport import UdpTransport
from netemu.live.udp import Endpoint, RateLimit, open_socket, proc_drops
from netemu.metrics import eval_every
from netemu.outputs import staged
from netemu.runner import compute_threads, make_task, prepare, write_results
from netemu.runtime.clock import WallClock
from netemu.runtime.results import RunResult
from netemu.scenario import build

HOST = "127.0.0.1"
LEAD = 0.02  # seconds between the end of the join phase and time 0
EXIT_DROPPED, EXIT_DEPARTED = 3, 4  # exit statuses of ``netemu live`` for a failed run
log = logging.getLogger("netemu.live")


class Session:
    """One protocol's live run; ``address`` and ``medium`` are set once the medium is bound."""

    def __init__(self, sc, pcfg: dict, x0, fields: dict | None, trajectories=None,
                 topology=None, on_listen=None, task=None, observers=(), security: dict | None = None) -> None:
        self.sc, self.p, self.x0, self.fields = sc, pcfg, x0, fields
        self.live = sc.live
        self.trajectories, self.topology = trajectories, topology
        self.on_listen = on_listen
        self.task, self.observers = task, observers
        self.security = security or {"key": None, "bind": HOST, "nodes": HOST}
        self.address = None  # where local nodes (and the CLI's hint) reach the medium
        self.bound = None  # the medium's socket address
        self.medium: Medium | None = None
        self.inbox: list = []
        self.endpoints: list = []
        self.failure: dict | None = None

    async def run(self) -> RunResult:
        sc, live, loop = self.sc, self.live, asyncio.get_running_loop()
        n, rounds = sc.network["nodes"], sc.run["rounds"]
        scale = live["time_scale"]
        info = dict(interrupted=False, rounds_completed=0, max_start_lag=0.0)
        ext_ids = set(live["external"])
        local = np.array([i for i in range(n) if i not in ext_ids], dtype=np.int64)
        spec = M.FieldSpec(self.fields) if self.fields else None
        x0 = self.x0 if self.task is None else self.task.x0()
        key = self.security["key"]
        self.keys = keys = auth.Keyring(key, auth.new_run_id()) if key is not None else None
        welcome = dict(n=n, fields=spec.describe() if spec else {}, period=sc.run["period"],
                       time_scale=scale, max_datagram=live["max_datagram"],
                       run=keys.run if keys is not None else None)
        fl = bool(ext_ids) and is_fl(registry.get(self.p["name"]))  # external nodes are FL clients
        if fl:
            model, update = fl_messages(self.task, self.p, n, sc.seed)
            server = fl_server(self.p, sc.network)
            welcome.update(fields=model, extra={"server": server, "update": update, "timeout": live["timeout"]})
        ext = Externals(live["external"], np.zeros((n, 0)) if fl else x0, self.p["name"], welcome,
                        None if fl else estimator(self.fields or {}), live["max_abs"])
        net = build.network(sc, self.trajectories, self.topology)
        limit = RateLimit(live["rate_limit"]) if live["rate_limit"] > 0 else None
        limits = (live["max_message"], live["reassembly_bytes"], live["reassembly_timeout"])
        self.frags = fragments.Reassembler(*limits)  # the local nodes' partly received messages
        self.medium = medium = Medium(n, spec, ext, net.delay, scale, live["max_datagram"], keys,
                                      live["max_abs"], limit, fragments.Reassembler(*limits))
        medium.message_bytes = wire.message_bytes(self.fields, n) if self.fields else 0
        self.frags.on_lost = medium.lost_copy  # a copy that never came whole is a drop (incomplete)
        if fl:  # the checks of the clients' updates; a version-1 client could not take a model in fragments
            medium.clients, medium.server = FLClients(None, update), server
            medium.message_bytes = wire.message_bytes(
                {k: np.zeros([1, *shape], dtype=np.dtype(dt)) for k, (dt, shape) in model.items()}, n)
        transports: list = []
        rt, why, watch = None, "error", None
        wall = _time.perf_counter()
        kernel = None
        try:
            await self._bind(loop, medium, local, transports)
            if self.on_listen is not None:
                self.on_listen(self)
            await self._join(loop, ext)
            ext.started = True
            for i in ext.ids:  # silence is counted from the end of the join phase
                medium.heard[i] = loop.time()
            x0 = x0 if fl else ext.initial(x0)
            nodes = [(int(i), t) for i, t in zip(local, transports[1:])]
            seal = {i: keys.sealer(auth.MEDIUM) for i, _ in nodes} if keys is not None else None
            self.transport = transport = UdpTransport(medium, self.address, nodes, self.inbox, spec, n, seal,
                                                      medium.room, live["max_message"])
            clock = WallClock(scale, settle=transport.settle)
            target = x0.mean(axis=0)
            metrics = metrics_for(self.task, target, sc.run["rounds"],
                                  eval_every(self.task, sc.run["rounds"], sc.output.get("eval_every")))
            recorder = LiveRecorder(metrics, ext, divergence_limit(sc, x0), reports=not fl)
            self.recorder = recorder

            def counted():
                info["rounds_completed"] += 1

            rt = build_run(sc, self.p, x0, clock, transport, net, self.task, self.observers,
                           on_round=counted, recorder=recorder, local=local)
            if fl:
                medium.clients.proto = rt.proto
            if ext.ids:
                watch = loop.create_task(self._watch(loop, medium, ext, rt))
            await clock.run(loop.time() + LEAD)
            info["max_start_lag"] = clock.max_lag
            transport.take()
            if ext.ids and not fl and not rt.res.diverged and self.failure is None:
                await self._final_reports(loop, medium, ext, rounds, sc.run["period"] / scale)
            why = "end" if self.failure is None else "failed"
        except asyncio.CancelledError:
            info["interrupted"], why = True, "interrupted"
        finally:
            if watch is not None:
                watch.cancel()
            if rt is not None:
                self.recorder.flush(rt.res)
            medium.finish(why)
            self.frags.close()
            kernel = _kernel_drops(transports)
            for t in transports:
                t.close()
        res = finish(rt, self.task) if rt is not None else RunResult(self.p["label"], self.p["name"])
        if rt is not None and sc.run.get("target_loss") is not None:  # as netemu run reports it
            from netemu.fl.report import time_to_target

            res.extra["time_to_target"] = time_to_target(res.rows, sc.run["target_loss"])
        res.wall_seconds = _time.perf_counter() - wall
        self._counters(res, medium, ext, info, rt, kernel)
        return res

    async def _bind(self, loop, medium: Medium, local: np.ndarray, transports: list) -> None:
        base = self.live["port_base"]
        sec = self.security
        host = sec["bind"]
        try:
            mt, medium.sock = await open_endpoint(loop, medium, host, base)
            transports.append(mt)
            self.bound = mt.get_extra_info("sockname")[:2]
            self.address = (sec["nodes"], self.bound[1])
            host = sec["nodes"]
            self.inbox: list = []
            for i in local.tolist():
                port = base + 1 + i if base else 0
                node = LocalNode(i, self.inbox, self.address, medium.rejected, self._wake, self.keys,
                                 medium.dropped, self.frags)
                t = Endpoint(loop, open_socket(host, port), node)
                transports.append(t)
                medium.register_local(i, t.get_extra_info("sockname")[:2])
        except OSError as e:
            raise NetemuError(f"{self.sc.source}: [live] port_base = {base}: cannot bind a UDP socket on "
                              f"{host} ({e.strerror or e}); choose another port_base, or 0 for "
                              f"ephemeral ports") from None

    async def _watch(self, loop, medium: Medium, ext: Externals, rt) -> None:
        """Mark departed every external node silent for ``[live] timeout`` seconds."""
        timeout = self.live["timeout"]
        while True:
            await asyncio.sleep(min(0.05, timeout / 4))
            now = loop.time()
            for i in ext.ids:
                if not ext.present(i) or now - medium.heard.get(i, now) <= timeout:
                    continue
                silent = now - medium.heard[i]
                t = rt.clock.sim_now() if rt.clock.t0 is not None else 0.0
                medium.depart(i, {"round": int(rt.k), "t": float(t), "silent_s": round(silent, 4),
                                  "timeout_s": timeout})
                cl = medium.clients
                if cl is not None and i in rt.proto.base and cl.got.get(i, 0) < cl.sent.get(i, 0):
                    # an FL client gone with a model: its update is lost (the server frees its slot)
                    rt.dropped(rt.k, rt.clock.now, np.array([medium.server]), np.array([i]), "departed")
                _trace(self.observers, {"e": "departed", "p": self.p["label"], "r": int(rt.k), "t": float(t),
                                        "src": i, "why": "timeout"})
                log.warning("netemu live: external node %d sent nothing for %.2f s ([live] timeout = %g s): "
                            "departed in round %d", i, silent, timeout, rt.k)
                if self.live["on_departure"] == "fail" and self.failure is None:
                    self.failure = {"kind": "departed", "status": EXIT_DEPARTED, "message": (
                        f"{self.p['label']}: external node {i} sent nothing for {silent:.2f} s (more than [live] "
                        f"timeout = {timeout:g} s) and [live] on_departure = \"fail\": the run stopped in round "
                        f"{rt.k}; set on_departure = \"continue\" to go on without it")}
                    rt.stop()

    async def _join(self, loop, ext: Externals) -> None:
        timeout = self.live["join_timeout"]
        deadline = loop.time() + timeout
        while not ext.all_joined() and loop.time() < deadline:
            await asyncio.sleep(0.005)
        if not ext.all_joined():
            missing = ext.missing()
            port = self.address[1]
            raise NetemuError(f"{self.sc.source}: external node(s) {missing} did not say hello within "
                              f"[live] join_timeout = {timeout:g} s; start them (e.g. python "
                              f"examples/{'fl_client' if is_fl(registry.get(self.p['name'])) else 'live_client'}.py "
                              f"{port} --id {missing[0]}) or raise join_timeout")

    def _wake(self) -> None:
        if self.medium is not None and self.medium.rt is not None:
            self.medium.rt.transport.wake()

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

    def _counters(self, res: RunResult, medium: Medium, ext: Externals, info: dict, rt, kernel) -> None:
        """Counters as ``netemu run`` keeps them, plus what only a live run has (``live``), the
        datagrams received, rejected and dropped (``datagrams``), and a failure, if any."""
        st, c = medium.stats, res.counters
        tr = getattr(self, "transport", None)
        late_rx = tr.late_rx if tr is not None else 0
        local_rx = tr.received if tr is not None else 0
        c["deliveries"] += st["forwarded_external"]
        c["events"] = st["received"] + local_rx
        if rt is None:
            c.update(messages_sent=st["accepted"], bytes_sent=st["bytes_accepted"], drops=st["drops"],
                     late=st["late"])
        dropped = dict(medium.dropped, kernel=kernel or 0)
        lost = dropped["kernel"] + dropped["seq_gap"] + st["rate_limited_nodes"]
        total = st["from_nodes"] + local_rx + dropped["kernel"] + dropped["seq_gap"]
        share = lost / total if total else 0.0
        limit = self.live["max_drop_share"]
        if share > limit and self.failure is None and not info["interrupted"]:
            self.failure = {"kind": "dropped", "status": EXIT_DROPPED, "message": (
                f"{self.p['label']}: {share:.1%} of the run's datagrams were lost ({lost} of {total}: kernel "
                f"{dropped['kernel']}, rate limit {st['rate_limited_nodes']}, sequence gaps "
                f"{dropped['seq_gap']}), "
                f"more than [live] max_drop_share = {limit:g}: the run is not the scenario's; lower the load "
                f"(time_scale, nodes), raise [live] rate_limit, or raise max_drop_share")}
        if self.failure is not None:
            log.error("netemu live: %s", self.failure["message"])
        res.extra = {
            **res.extra,
            "rejected": dict(medium.rejected),
            "dropped": dropped,
            "datagrams": {"received": st["received"] + local_rx, "at_medium": st["received"],
                          "at_local_nodes": local_rx, "from_nodes": st["from_nodes"],
                          "rejected": sum(medium.rejected.values()), "dropped": sum(dropped.values()),
                          "lost": lost, "drop_share": share, "max_drop_share": limit,
                          "kernel_counted": kernel is not None,
                          "fragments": {"messages_lost": medium.frags.lost + self.frags.lost,
                                        "sent_by_local_nodes": tr.fragments_sent if tr is not None else 0,
                                        "sent_by_medium": st["fragments_sent"],
                                        "at_medium": dict(medium.frags.stats),
                                        "at_local_nodes": dict(self.frags.stats)}},
            "live": {**info, "time_scale": self.live["time_scale"],
                     "medium": "%s:%d" % self.bound if self.bound else None,
                     "authenticated": self.keys is not None,
                     "run_id": self.keys.run.hex() if self.keys is not None else None,
                     **{k: v for k, v in st.items() if k not in ("drops", "late")},
                     "late_receptions": late_rx, "not_taken": sum(1 for key in medium.planned if key[2] in medium.local),
                     "externals": ext.summary(),
                     "refused_claims": list(ext.refused_claims), "claims_refused": ext.claims_refused,
                     "departed": sorted(ext.departed), "failure": self.failure},
        }


def _kernel_drops(endpoints) -> int | None:
    """Datagrams the kernel dropped at the run's sockets (``None``: the OS does not say)."""
    table = proc_drops()
    counts = [e.kernel_drops(table) for e in endpoints if isinstance(e, Endpoint)]
    known = [k for k in counts if k is not None]
    return sum(known) if known else None


def _trace(observers, record: dict) -> None:
    """Write a record that has no observer hook (a departure) into the event trace."""
    for o in observers:
        hook = getattr(o, "record", None)
        if hook is not None:
            hook(record)


async def run_live_async(sc, out: Path, on_listen=None, log=None, insecure: bool = False) -> list[RunResult]:
    """Run every protocol of ``sc`` live and write the outputs into ``out``.

    ``sc`` must carry its ``[live]`` table filled in (``config.with_overrides``). ``on_listen``
    is called with each ``Session`` once its medium is bound (``session.address``); ``log`` with
    each finished ``RunResult``. Cancelling the task writes partial outputs (see module doc).
    ``insecure``: bind a non-loopback ``[live] host`` without a key (``--insecure``). A failed
    run (``failure``) still returns its results, outputs written.
    """
    if not sc.live or "time_scale" not in sc.live:
        sc = config.with_overrides(sc)
    security = config.security(sc, sc.live, insecure)
    trajectories, topology, x0 = prepare(sc)
    task = make_task(sc)
    fields = config.preflight(sc, sc.live, x0, task)
    results = []
    out = Path(out)
    with staged(out) as stage, compute_threads(sc.compute.get("threads", 0) if task is not None else 0):
        observers = []
        if sc.output["trace"]:
            from netemu.tracefile import TraceWriter

            observers.append(TraceWriter(stage / "events.msgpack"))
        try:
            for p in sc.protocols:
                session = Session(sc, p, x0, fields[p["label"]], trajectories, topology, on_listen,
                                  task, tuple(observers), security)
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


def run_live(sc, out: Path, on_listen=None, log=None, insecure: bool = False) -> list[RunResult]:
    """Blocking form of ``run_live_async`` (Ctrl-C: partial outputs, see the module doc)."""
    return asyncio.run(run_live_async(sc, out, on_listen, log, insecure))


def interrupted(results: list) -> bool:
    return any(r.extra["live"]["interrupted"] for r in results)


def failure(results: list) -> dict | None:
    """The first failure of a live run (``{"kind", "status", "message"}``), or ``None``."""
    return next((r.extra["live"]["failure"] for r in results if r.extra["live"].get("failure")), None)

