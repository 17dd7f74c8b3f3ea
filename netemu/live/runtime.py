"""The live runtime: round-based protocols in wall-clock time over real UDP datagrams.

Per protocol of the scenario, one *session*:

1. the medium (``medium.Medium``) binds ``127.0.0.1:port_base`` and every local node gets its own
   UDP socket (``port_base + 1 + i``, or ephemeral ports with ``port_base = 0``); the session then
   waits up to ``join_timeout`` for every external node's ``hello``;
2. round ``k`` runs from wall time ``T0 + k·period/time_scale`` to ``T0 + (k+1)·period/time_scale``
   (computed, never accumulated). At its start the network realizes the round exactly as for
   ``netemu run`` (``Network.round(k)``: same seed, same graph, losses and jitter), external nodes get
   a ``round`` datagram, and each local node sends its own row of the protocol's ``message()`` as one
   datagram from its own socket. The medium forwards copies after their scaled delays;
3. at the round's end the runtime stacks what each local node actually received in that round
   into one ``Batch`` (rows decoded from the datagrams, one row per distinct transmission) and
   calls ``receive`` then ``end_round``; copies of an earlier round are ``late``. Then the metrics
   of round ``k + 1`` are recorded, their ``time`` being wall-clock seconds since ``T0``.

One protocol object holds all local nodes' state, as in the simulator (``ctx.local`` lists them).
An external node's row in it is never sent or shown: the others receive its own datagrams, and
the metrics use the estimate from its latest transmission (``external.py``), one round behind the
local rows.

Cancelling the task that runs ``run_live_async`` (Ctrl-C in the CLI) stops at the next await,
keeps the rounds completed so far, writes the outputs and marks them ``interrupted``.
"""

from __future__ import annotations

import asyncio
import time as _time
from pathlib import Path

import msgpack
import numpy as np

from netemu import registry, wire
from netemu.engine import RunResult
from netemu.errors import NetemuError
from netemu.live import config
from netemu.live import messages as M
from netemu.live.external import Externals, estimator
from netemu.live.medium import Medium, enlarge_buffers, open_endpoint
from netemu.metrics import consensus_metrics
from netemu.outputs import plot_metric, staged, write_metrics, write_summary
from netemu.protocol import Batch, Context
from netemu.runner import prepare
from netemu.world.network import Network

HOST = "127.0.0.1"
LEAD = 0.02  # seconds between the end of the join phase and round 0


class LocalNode(asyncio.DatagramProtocol):
    """The socket of one local node: keeps what the medium sends it, rejects anything else."""

    def __init__(self, i: int, inbox: list, medium_addr, rejected: dict) -> None:
        self.i, self.inbox, self.medium_addr, self.rejected = i, inbox, medium_addr, rejected

    def connection_made(self, transport) -> None:
        enlarge_buffers(transport)

    def datagram_received(self, data: bytes, addr) -> None:
        if addr != self.medium_addr:
            self.rejected["not_medium"] += 1
            return
        self.inbox.append((self.i, data))

    def error_received(self, exc) -> None:
        pass


class Session:
    """One protocol's live run; ``address`` and ``medium`` are set once the medium is bound."""

    def __init__(self, sc, pcfg: dict, x0: np.ndarray, fields: dict, trajectories=None,
                 topology=None, on_listen=None) -> None:
        self.sc, self.p, self.x0, self.fields = sc, pcfg, x0, fields
        self.live = sc.live
        self.trajectories, self.topology = trajectories, topology
        self.on_listen = on_listen
        self.address = None
        self.medium: Medium | None = None
        self.late_rx = self.delivered = self.local_received = 0

    async def run(self) -> RunResult:
        sc, live, loop = self.sc, self.live, asyncio.get_running_loop()
        n, period, rounds = sc.network["nodes"], sc.run["period"], sc.run["rounds"]
        scale = live["time_scale"]
        res = RunResult(self.p["label"], self.p["name"])
        res.extra = {}
        info = dict(interrupted=False, rounds_completed=0, max_start_lag=0.0)
        ext_ids = set(live["external"])
        local = np.array([i for i in range(n) if i not in ext_ids], dtype=np.int64)
        self.spec = spec = M.FieldSpec(self.fields)
        ext = Externals(live["external"], self.x0, self.p["name"],
                        dict(n=n, fields=spec.describe(), period=period, time_scale=scale,
                             max_datagram=live["max_datagram"]), estimator(self.fields))
        net = Network(sc, self.trajectories, self.topology)
        self.medium = medium = Medium(n, spec, ext, net.delay, scale, live["max_datagram"])
        transports: list = []
        pending, why = None, "error"
        wall = _time.perf_counter()
        try:
            await self._bind(loop, medium, local, transports)
            if self.on_listen is not None:
                self.on_listen(self)
            await self._join(loop, ext)
            ext.started = True
            x0 = ext.initial(self.x0)
            target = x0.mean(axis=0)
            params = {k: v for k, v in self.p.items() if k not in ("name", "label")}
            ctx = Context(n=n, seed=sc.seed, period=period, active=np.ones(n, dtype=bool), local=local)
            proto = registry.get(self.p["name"])(ctx, **params)
            proto.start(x0)
            # a row is finalized once the external nodes' transmissions of its round are in
            pending = (0, 0.0, np.array(proto.estimate(), copy=True))
            t0 = loop.time() + LEAD
            nodes = [(int(i), t) for i, t in zip(local, transports[1:])]
            for k in range(rounds):
                start, end = t0 + k * period / scale, t0 + (k + 1) * period / scale
                await asyncio.sleep(max(0.0, start - loop.time()))
                info["max_start_lag"] = max(info["max_start_lag"], loop.time() - start)
                self._begin(k, net, ctx, ext, proto, medium, nodes, end, loop)
                await asyncio.sleep(max(0.0, end - loop.time()))
                await self._drain()
                row, pending = pending, None
                if not self._record(res, ext, target, *row):
                    break
                batch = self._batch(k, n)
                if batch is not None:
                    proto.receive(batch)
                proto.end_round()
                info["rounds_completed"] = k + 1
                pending = (k + 1, loop.time() - t0, np.array(proto.estimate(), copy=True))
            else:
                if ext.ids:
                    await self._final_reports(loop, medium, ext, rounds, period / scale)
            why = "end"
        except asyncio.CancelledError:
            info["interrupted"], why = True, "interrupted"
        finally:
            if pending is not None:
                self._record(res, ext, target, *pending)
            medium.finish(why)
            for t in transports:
                t.close()
            res.wall_seconds = _time.perf_counter() - wall
            self._counters(res, medium, ext, info)
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
                    lambda i=i: LocalNode(i, self.inbox, self.address, medium.rejected),
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

    async def _drain(self) -> None:
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

    def _begin(self, k, net, ctx, ext, proto, medium, nodes, end, loop) -> None:
        rd = net.round(k)
        active = np.ones(ctx.n, dtype=bool)
        active[list(ext.left)] = False
        ctx.round, ctx.now, ctx.active = k, k * ctx.period, active
        ctx.out_degree = np.where(active, rd.out_degree, 0)
        fields = proto.message()
        medium.begin_round(k, rd, end)
        medium.tick(k, ctx.out_degree, max(0.0, end - loop.time()))
        for i, t in nodes:
            t.sendto(wire.encode_transmission(i, k, {f: v[i] for f, v in fields.items()}), self.address)

    def _batch(self, k: int, n: int) -> Batch | None:
        """What local nodes received in round ``k``, one row per distinct transmission."""
        items = self.inbox[:]
        del self.inbox[:]
        self.local_received += len(items)
        index: dict = {}
        srcs: list = []
        rowfields: list = []
        recv, rows, send = [], [], []
        for i, data in items:
            j = index.get(data)
            if j is None:
                j = index[data] = self._decode(data, k, srcs, rowfields)
            if j < 0:
                self.late_rx += 1
                continue
            recv.append(i)
            rows.append(j)
            send.append(srcs[j])
        self.delivered += len(recv)
        if not recv:
            return None
        fields = {name: np.stack([r[name] for r in rowfields]).reshape((len(rowfields),) + shape)
                  for name, shape in self.spec.rows.items()}
        return Batch(n, np.array(recv, dtype=np.int64), np.array(send, dtype=np.int64),
                     np.array(rows, dtype=np.int64), fields)

    def _decode(self, data: bytes, k: int, srcs: list, rowfields: list) -> int:
        msg = msgpack.unpackb(data, raw=False)
        if msg["r"] != k:
            return -1
        srcs.append(msg["src"])
        rowfields.append(M.unpack_fields(msg["f"]))
        return len(rowfields) - 1

    @staticmethod
    def _record(res: RunResult, ext: Externals, target, k: int, t: float, est: np.ndarray) -> bool:
        m = consensus_metrics(ext.apply(est), target)
        res.rows.append((k, t, m))
        if not all(np.isfinite(v) for v in m.values()):
            res.diverged, res.diverged_at_round = True, k
            return False
        return True

    def _counters(self, res: RunResult, medium: Medium, ext: Externals, info: dict) -> None:
        st, c = medium.stats, res.counters
        c.update(messages_sent=st["accepted"], bytes_sent=st["bytes_accepted"], drops=st["drops"],
                 late=st["late"] + self.late_rx, deliveries=self.delivered + st["forwarded_external"],
                 events=st["received"] + self.local_received)
        res.extra = {
            "rejected": dict(medium.rejected),
            "live": {**info, "time_scale": self.live["time_scale"],
                     "medium": "%s:%d" % self.address if self.address else None,
                     **{k: v for k, v in st.items() if k not in ("drops", "late")},
                     "late_receptions": self.late_rx, "externals": ext.summary()},
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
    fields = config.preflight(sc, sc.live, x0)
    results = []
    for p in sc.protocols:
        session = Session(sc, p, x0, fields[p["label"]], trajectories, topology, on_listen)
        res = await session.run()
        results.append(res)
        if log is not None:
            log(res)
        if res.extra["live"]["interrupted"]:
            break
    write_outputs(sc, Path(out), results)
    return results


def write_outputs(sc, out: Path, results: list) -> None:
    """The same files as ``netemu run``; ``metrics.csv``'s ``time`` is wall-clock seconds."""
    with staged(out) as stage:
        write_metrics(stage / "metrics.csv", results)
        write_summary(stage / "summary.json", sc, results)
        if sc.output["plot"]:
            title = (sc.name or Path(sc.source).stem) + " (live)"
            plot_metric(stage / "consensus_error.png", results, "consensus_error", title)


def run_live(sc, out: Path, on_listen=None, log=None) -> list[RunResult]:
    """Blocking form of ``run_live_async`` (Ctrl-C: partial outputs, see the module doc)."""
    return asyncio.run(run_live_async(sc, out, on_listen, log))


def interrupted(results: list) -> bool:
    return any(r.extra["live"]["interrupted"] for r in results)

