"""What the FL protocols share: one server node, its clients, their messages and bookkeeping.

Node ``server`` (``[network.uplink] server``, else the protocol's ``server`` key, else 0) holds the
global model ``x`` (float64 ``[P]``) and its version (the number of aggregations so far); every
other node is a client. A client is *idle* (may be selected), *busy* (its model is on the way,
it trains, or its update is on the way) or *offline* (``[compute.availability]`` says it is off).

1. The server sends a client the model: a unicast ``{"x": x, "v": version}`` (in the task's dtype;
   its size is its encoded bytes, so bandwidth sets its transfer time). It goes over
   ``[network.uplink]`` when there is one, else over the radio (the server has a position and a
   range like every node).
2. The client trains ``Q = local_steps`` SGD steps from it (``netemu.fl.training``): the
   durations of its steps come from the straggler model (``[compute]``), one after another,
   after any earlier work of that node.
3. It uploads ``Δ = x_end − x_start`` compressed by the protocol's codec
   (``netemu.fl.compress``): the message carries the codec's payload arrays, so its size is the
   compressed size; with the version ``v`` its model came from. A client that is offline when it
   finishes drops its update.
4. The server decodes the update and hands it to the protocol (``on_update``), which applies the
   rules of ``netemu.fl.aggregate`` and selects the next clients (``netemu.fl.aggregate`` again:
   uniform or power-of-choice).

A message lost on the way (after the uplink's retries) or sent out of radio range never arrives;
the sender notices the missing acknowledgement after ``timeout`` seconds, and the server counts
the client idle again (a lost upload counts in ``updates_dropped``). Staleness of an update is the
number of server versions applied since its model was sent.

Metrics (``extra_metrics``, one row per sample in metrics.csv): ``staleness`` (mean over the
updates applied so far), ``staleness_max``, ``bytes_up``, ``bytes_down`` (retries included),
``updates_applied``, ``updates_dropped``, ``updates_retried``, ``clients_idle``,
``clients_training``, ``clients_offline``, ``model_version``; no ``disagreement`` (``one_model``:
every node's estimate is the server model, so it would always be 0). summary.json gets the staleness
histogram and the mean reconstruction error and compression time of the updates.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from netemu import wire
from netemu.arrays import host
from netemu.errors import ScenarioError
from netemu.fl import aggregate as agg
from netemu.fl.training import LocalTraining, model_shapes, one_blas_thread
from netemu.params import Key
from netemu.protocol import EventProtocol
from netemu.runtime.results import Observer

IDLE, BUSY, DONE = 0, 1, 2  # DONE: an update arrived, the client waits for the next model (fedfix)
SERVER = -1  # the server's own entry of ``status``
SELECT = 11  # ctx.rng(SELECT): client selection

COMMON = {
    "local_steps": Key("int", 5, lo=1, hi=10**6, example="5", doc="Q: local SGD steps of a client per update"),
    "lr": Key("float", 0.05, lo=0, lo_open=True, hi=1e6, example="0.05", doc="clients' SGD step size"),
    "selection": Key("str", "uniform", choices=agg.SELECTION,
                     doc="which idle clients the server picks: uniformly, or power-of-choice (d candidates "
                         "drawn uniformly, those with the highest local loss kept)"),
    "d": Key("int", None, nullable=True, lo=1, hi=10**8, example="10",
             doc="power-of-choice: candidates drawn per selection (default: twice the clients needed)"),
    "compress": Key("table", None, nullable=True, example='{ kind = "pca", rank = 10 }',
                    doc="compressor of the updates (netemu.fl.compress); default none"),
    "server": Key("int", None, nullable=True, lo=0, hi=10**8, example="0",
                  doc="node id of the server; default: [network.uplink] server, or 0"),
    "timeout": Key("float", 1.0, lo=0, lo_open=True, hi=1e6, example="1.0",
                   doc="seconds after which a lost message (no acknowledgement) frees its client"),
    "slot": Key("float", 0.0, lo=0, hi=1e6, example="0.01",
                doc="local training ends at the next multiple of this (s), so clients finishing in one slot "
                    "upload together (one event, one batch); 0: continuous time"),
    "batched": Key("bool", True, doc="the local steps of clients training at the same time are computed "
                                     "in one batched call per step; false: one client at a time"),
}


class _Acks(Observer):
    """Tells the server of its lost messages and of uplink retries (what acknowledgements would)."""

    def __init__(self, proto: "FLServer") -> None:
        self.proto = proto

    def drop(self, label, k, t, recv, send, why):
        self.proto._lost(recv, send)

    def retry(self, recv, send, extra):
        self.proto._retried(recv, send, extra)


class FLServer(EventProtocol):
    """Base of the FL protocols: subclasses implement ``on_begin`` (time 0), ``on_update`` (an
    update arrived), optionally ``on_free`` (a client is idle again) and ``on_server_timer``."""

    needs_compute: ClassVar[bool] = True
    uses_availability: ClassVar[bool] = True  # [compute.availability] takes clients offline
    one_model: ClassVar[bool] = True  # every node's estimate is the server model: no disagreement metric
    params: ClassVar[dict] = COMMON

    def __init__(self, ctx, **params) -> None:
        defaults = {k: v.default for k, v in type(self).params.items()}
        super().__init__(ctx, **{**defaults, **params})

    # -- checks -------------------------------------------------------------------------------

    @classmethod
    def check_scenario(cls, p: dict, network: dict, where: str) -> None:
        """Scenario-level checks of ``[[protocols]]`` entry ``p`` (``where``: its place)."""
        from netemu.fl.compress import check_codec

        n, up = network["nodes"], network.get("uplink")
        if n < 2:
            raise ScenarioError(f"{where} name = {p['name']!r} needs a server and at least one client; "
                                f"set [network] nodes >= 2")
        if p.get("server") is not None:
            if p["server"] >= n:
                raise ScenarioError(f"{where} server = {p['server']} is not a node: ids are 0..{n - 1}; "
                                    f"pick one of them")
            if up and p["server"] != up["server"]:
                raise ScenarioError(f"{where} server = {p['server']} differs from [network.uplink] server = "
                                    f"{up['server']}; remove one of them")
        check_codec(p.get("compress"), f"{where} compress")
        cls.check_params(p, n - 1, where)

    @classmethod
    def check_task(cls, p: dict, task, where: str) -> None:
        """Checks against the task, before any run: the codec fits the model's tensors."""
        from netemu.fl.compress import build_codec

        build_codec(p.get("compress"), model_shapes(task), 1, f"{where} compress")

    @classmethod
    def check_params(cls, p: dict, clients: int, where: str) -> None:
        """Checks of a protocol's own keys against the number of ``clients``."""

    # -- life -----------------------------------------------------------------------------------

    def start(self, x0) -> None:
        from netemu.fl.compress import build_codec

        ctx, p = self.ctx, self.p
        rt = ctx.runtime
        self.n = n = ctx.n
        up = rt.net.uplink
        self.server = p["server"] if p["server"] is not None else (up.server if up is not None else 0)
        self.clients = np.array([i for i in range(n) if i != self.server], dtype=np.int64)
        self.task = ctx.compute.handle.task
        self.x = np.array(host(x0)[0], dtype=np.float64)
        self.P = len(self.x)
        self.wdt = np.float32 if "float32" in str(self.task.dtype) else np.float64
        self.version = 0
        self.status = np.zeros(n, dtype=np.int8)
        self.status[self.server] = SERVER  # never idle nor busy: whole-array counts need no gather
        self.base: dict[int, np.ndarray] = {}  # client -> the model the server sent it
        self.sizes = np.asarray(self.task.sizes, dtype=np.float64)
        label = getattr(rt, "label", self.name)
        self.codec = build_codec(p["compress"], model_shapes(self.task), n,
                                 f"[protocols] {label} compress", seed=ctx.seed)
        self.trainer = LocalTraining(ctx, p["local_steps"], p["lr"], p["batched"])
        self.avail = getattr(rt.compute_clock, "avail", None)
        self.rng = ctx.rng(SELECT)
        self.nbytes = np.zeros(n, dtype=np.int64)  # size of the last message to / from each client
        self.count = dict(bytes_up=0, bytes_down=0, updates_applied=0, updates_dropped=0, updates_retried=0)
        self.stale: dict[int, int] = {}
        self.stale_sum = 0
        self.err = [0.0, 0, 0.0]  # reconstruction errors summed, updates encoded, compression seconds
        self._fill_pending = False
        self.started_at = np.zeros(n, dtype=np.int64)  # the version each client's model came from (as it heard)
        self.plain = self.codec.kind == "none" and self.codec.feedback == "none"  # updates sent as they are
        self._wire: tuple = (None, None)  # (model, the model as sent)
        self._sizes: dict[str, int] = {}
        self._on = np.ones(n, dtype=bool)
        self._on.setflags(write=False)
        self._server1 = np.array([self.server], dtype=np.int64)  # the server as an array of one (sender, destination)
        self._server1.setflags(write=False)
        rt.watch(_Acks(self))
        self._check_link()

    def _check_link(self) -> None:
        net = self.ctx.runtime.net
        if net.uplink is not None and net.uplink.server == self.server:
            return
        recv, send, bounds = net.graph(0.0)
        s = self.server
        hears = bounds[s + 1] > bounds[s]  # someone hears the server
        heard = np.any(recv == s)
        if not (hears and heard):
            raise ScenarioError(f"[protocols] {self.name}: the server (node {s}) has no radio link to any client "
                                f"at t = 0 and there is no [network.uplink]; add [network.uplink] server = {s}, "
                                f"raise [network] range, or move the nodes closer")

    def on_start(self) -> None:
        self.on_begin()

    def estimate(self) -> np.ndarray:
        return self.x[None, :]

    # -- clients --------------------------------------------------------------------------------

    def online(self, nodes=None) -> np.ndarray:
        nodes = self.clients if nodes is None else nodes
        if self.avail is None:
            return self._on[:len(nodes)]
        return self.avail.online(self.ctx.now)[nodes]

    def idle(self) -> np.ndarray:
        """Clients that may be selected now: idle and online."""
        c = (self.status == IDLE).nonzero()[0]  # the server's entry is SERVER: clients only, in order
        return c if self.avail is None else c[self.online(c)]

    def select(self, m: int) -> np.ndarray:
        """``m`` of the idle clients, by ``selection``."""
        cand = self.idle()
        if m <= 0 or not len(cand):
            return cand[:0]
        if self.p["selection"] == "uniform" or m >= len(cand):
            return agg.select_uniform(self.rng, cand, m)
        d = self.p["d"] or 2 * m
        pool = agg.select_uniform(self.rng, cand, max(d, m))
        losses = np.zeros(self.n)
        losses[pool] = self.local_losses(pool)
        return agg.select_power_of_choice(self.rng, pool, losses, len(pool), m)

    def local_losses(self, clients: np.ndarray) -> np.ndarray:
        """Each client's loss on its own data at the server model (power-of-choice's query)."""
        import torch

        t = self.task
        size, off = t.sizes[clients][:, None], t.offsets[clients][:, None]
        width = np.arange(int(size.max()))[None, :]
        idx = torch.as_tensor(off + np.minimum(width, size - 1), device=t.device)
        w = t._t(np.where(width < size, 1.0 / size, 0.0))
        p = t.capture(np.repeat(self.x[None], len(clients), axis=0))
        with torch.no_grad():
            loss, _ = t.model.loss_grad(p, t.X[idx], t.y[idx], w)
        return host(loss).astype(np.float64)

    def dispatch(self, clients: np.ndarray) -> None:
        """Send the current model to ``clients``."""
        if not len(clients):
            return
        m = len(clients)
        if self._wire[0] is not self.x:  # the model in the message's dtype, once per version
            self._wire = (self.x, self.x.astype(self.wdt)[None])
        if m == 1:
            fields = {"x": self._wire[1], "v": np.array([[self.version]], dtype=np.int64)}
        else:
            fields = {"x": np.broadcast_to(self._wire[1], (m, self.P)),
                      "v": np.full((m, 1), self.version, dtype=np.int64)}
        nb = self._size("down", fields)
        self.count["bytes_down"] += nb * m
        self.nbytes[clients] = nb
        self.status[clients] = BUSY
        for c in clients.tolist():
            self.base[c] = self.x
        self.ctx.send(self._server1, clients, fields)

    def _size(self, kind: str, fields: dict) -> int:
        """The encoded size of a message of a fixed layout (a model download, a plain update)."""
        nb = self._sizes.get(kind)
        if nb is None:
            nb = self._sizes[kind] = wire.message_bytes(fields, self.n)
        return nb

    def fill(self, slots: int) -> None:
        """Start up to ``slots`` more clients; try again a period later when none is idle."""
        chosen = self.select(slots)
        self.dispatch(chosen)
        if len(chosen) < slots and not self._fill_pending:
            self._fill_pending = True
            self.ctx.set_timer([self.server], self.ctx.period, "fill")

    def busy(self) -> int:
        return int(np.count_nonzero(self.status == BUSY))  # the server's entry is SERVER

    # -- events ---------------------------------------------------------------------------------

    def on_message(self, batch) -> None:
        if batch.receivers[0] == self.server:
            self._uploads(batch)
        else:
            self._downloads(batch)

    def _downloads(self, batch) -> None:
        cl, rows = batch.receivers, batch.rows
        if self.avail is not None:
            on = self.online(cl)
            if not on.all():  # an off client hears nothing: the server times out
                self.ctx.set_timer(cl[~on], self.p["timeout"], "lost-down")
                cl, rows = cl[on], rows[on]
            if not len(cl):
                return
        x = np.asarray(batch.fields["x"][rows], dtype=np.float64)
        self.started_at[cl] = batch.fields["v"][rows, 0]
        finish = self.trainer.start(cl, x, self.ctx.now)
        if self.p["slot"] > 0:  # done at the next slot boundary: clients of one slot upload together
            finish = np.ceil(finish / self.p["slot"]) * self.p["slot"]
        self.ctx.set_timer_at(cl, finish, "trained")

    def _trained(self, nodes: np.ndarray) -> None:
        sends = np.sort(nodes)
        if self.avail is not None:
            on = self.online(sends)
            for c in sends[~on].tolist():  # off when done: the update is lost with it
                self.trainer.cancel(c)
                self.count["updates_dropped"] += 1
                self.ctx.set_timer([c], self.p["timeout"], "lost-up")
            sends = sends[on]
            if not len(sends):
                return
        if len(sends) == 1:
            x0, x1 = self.trainer.result(int(sends[0]))
            deltas = (x1 - x0)[None].astype(self.wdt)
        else:
            pairs = [self.trainer.result(c) for c in sends.tolist()]
            deltas = np.stack([x1 - x0 for x0, x1 in pairs]).astype(self.wdt)
        if self.plain:  # kind = "none": the updates as they are, one message each
            self.err[1] += len(sends)
            self._upload(sends, {"c_x": deltas})
            return
        payloads = []
        with one_blas_thread():
            for c, d in zip(sends.tolist(), deltas):
                enc = self.codec.encode(c, d)
                self.err[0] += enc.error
                self.err[1] += 1
                self.err[2] += enc.seconds
                payloads.append(enc.payload)
        keys = sorted(payloads[0])
        same = all(sorted(pl) == keys and all(pl[k].shape == payloads[0][k].shape for k in keys) for pl in payloads)
        if same:
            self._upload(sends, {"c_" + k: np.stack([np.asarray(pl[k]) for pl in payloads]) for k in keys})
        else:
            for c, pl in zip(sends.tolist(), payloads):
                self._upload(np.array([c]), {"c_" + k: np.asarray(v)[None] for k, v in pl.items()})

    def _upload(self, src: np.ndarray, fields: dict) -> None:
        fields["v"] = self.started_at[src][:, None]
        nb = self._size("up", fields) if self.plain else wire.message_bytes(fields, self.n)
        self.count["bytes_up"] += nb * len(src)
        self.nbytes[src] = nb
        self.ctx.send(src, self._server1 if len(src) == 1 else np.full(len(src), self.server, dtype=np.int64),
                      fields)

    def _uploads(self, batch) -> None:
        senders, rows = batch.senders, batch.rows
        self.status[senders] = IDLE
        versions = batch.fields["v"][rows, 0].tolist()
        if self.plain:
            deltas = np.asarray(batch.fields["c_x"][rows], dtype=np.float64)
        else:
            keys = [k for k in batch.fields if k.startswith("c_")]
            with one_blas_thread():
                deltas = [np.asarray(self.codec.decode({k[2:]: batch.fields[k][r] for k in keys}), dtype=np.float64)
                          for r in rows.tolist()]
        for c, delta, v in zip(senders.tolist(), deltas, versions):
            self.on_update(c, delta, v)
        self.after_updates()

    def on_timer(self, nodes: np.ndarray, tag) -> None:
        if tag == "trained":
            self._trained(nodes)
        elif tag in ("lost-up", "lost-down"):
            self.status[nodes] = IDLE
            for c in nodes.tolist():
                self.base.pop(c, None)
                self.on_free(c)
            self.after_updates()
        elif tag == "fill":
            self._fill_pending = False
            self.after_updates()
        else:
            self.on_server_timer(tag)

    def _lost(self, recv: np.ndarray, send: np.ndarray) -> None:
        up = recv == self.server
        if up.any():
            self.count["updates_dropped"] += int(np.count_nonzero(up))
            self.ctx.set_timer(send[up], self.p["timeout"], "lost-up")
        if (~up).any():
            self.ctx.set_timer(recv[~up], self.p["timeout"], "lost-down")

    def _retried(self, recv: np.ndarray, send: np.ndarray, extra: np.ndarray) -> None:
        up = recv == self.server
        self.count["updates_retried"] += int(extra[up].sum())
        self.count["bytes_up"] += int((extra[up] * self.nbytes[send[up]]).sum())
        self.count["bytes_down"] += int((extra[~up] * self.nbytes[recv[~up]]).sum())

    # -- what subclasses implement --------------------------------------------------------------

    def on_begin(self) -> None:
        raise NotImplementedError

    def on_update(self, c: int, delta: np.ndarray, v: int) -> None:
        """Client ``c``'s update ``Δ = x_end − x_start`` from the model of version ``v`` arrived."""
        raise NotImplementedError

    def after_updates(self) -> None:
        """After the updates (or lost messages) of one instant: e.g. start more clients."""

    def on_free(self, c: int) -> None:
        """Client ``c`` is idle again after a lost message."""

    def on_server_timer(self, tag) -> None:
        """A timer the protocol set on the server."""

    # -- bookkeeping ----------------------------------------------------------------------------

    def applied(self, taus) -> None:
        """Count updates applied with staleness ``taus``."""
        for t in np.atleast_1d(np.asarray(taus, dtype=np.int64)).tolist():
            self.stale[t] = self.stale.get(t, 0) + 1
            self.stale_sum += t
            self.count["updates_applied"] += 1

    def extra_metrics(self) -> dict:
        st = self.status[self.clients]
        on = self.online()
        applied = self.count["updates_applied"]
        m = {"staleness": self.stale_sum / applied if applied else 0.0,
             "staleness_max": float(max(self.stale, default=0)),
             **{k: float(v) for k, v in self.count.items()},
             "clients_idle": float(np.count_nonzero(on & (st != BUSY))),
             "clients_training": float(np.count_nonzero(on & (st == BUSY))),
             "clients_offline": float(np.count_nonzero(~on)),
             "model_version": float(self.version)}
        extra = self.ctx.runtime.res.extra
        extra["staleness_histogram"] = {str(k): v for k, v in sorted(self.stale.items())}
        e, k, sec = self.err
        extra["compress"] = {"kind": self.codec.kind, "updates": k, "mean_error": e / k if k else 0.0,
                             "mean_seconds": sec / k if k else 0.0}
        return m

    def node_states(self) -> np.ndarray:
        """Each node's state now, ``[n]`` int8 (read by ``netemu.recording``; changes nothing the run
        uses), as the ``clients_*`` metrics count them: 0 idle (online, not busy; fedfix's clients
        that sent their update count here), 1 training (busy: its model or update on the way, or it
        trains), 2 offline (``[compute.availability]``), 3 the server."""
        out = np.where(self.status == BUSY, 1, 0).astype(np.int8)
        out[self.clients[~self.online()]] = 2
        out[self.server] = 3
        return out

    def node_models(self) -> np.ndarray:
        """Each node's own model now, ``[n, P]`` (read by ``netemu.recording``; changes nothing the
        run uses): the server's is the global model; a client's the one it trains from, else the one
        it last received (version ``started_at``; the initial model before any). Past versions are
        remembered from earlier calls (the server's and those clients train from); a version that came
        and went between two calls shows as the newest one seen before it."""
        seen = self.__dict__.setdefault("_seen", {})
        seen.setdefault(self.version, self.x)
        jobs = {c: (j[0] if isinstance(j, tuple) else j) for c, j in self.trainer.x.items()}
        for c, x0 in jobs.items():
            seen.setdefault(int(self.started_at[c]), x0)
        vs = np.array(sorted(seen), dtype=np.int64)
        at = vs[np.maximum(np.searchsorted(vs, self.started_at, side="right") - 1, 0)]
        for v in set(seen) - set(at.tolist()) - {self.version}:  # versions no node holds now
            del seen[v]
        out = np.stack([jobs[c] if c in jobs else seen[v] for c, v in enumerate(at.tolist())]).astype(np.float64)
        out[self.server] = self.x
        return out
