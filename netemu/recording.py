"""Recording a run for ``netemu view``: frames of node positions, per-node errors and links.

``FrameRecorder`` is an observer (``netemu.runtime.results.Observer``): it reads what the runtime
hands every observer and changes nothing, so a run's metrics are the same with or without it.
Every ``[output] frames_every`` rounds (event protocols: periods; default about 300 frames per
run), and at a run's last sample, it takes a frame:

- ``pos``: the nodes' ``x, y`` at the frame's time (``Network.positions``). Topologies without
  positions get a fixed layout, computed once: a spring layout (``networkx.spring_layout``, seeded)
  of the latent graph, or the nodes on a circle for ``random`` and ``schedule`` topologies; a
  protocol with a ``server`` node (FL, ``netemu.fl.server``) has it at the centre and the other
  nodes on the circle around it.
- ``err``: each node's error. Consensus: ``‖x_i − mean(x⁰)‖_∞`` (its maximum over the nodes is the
  ``consensus_error`` metric of that round). Optimization: the loss ``F(x_i)`` at the node's own
  iterate on all training data when that costs at most ``NODE_LOSS_BUDGET`` sample-parameters
  per frame (the budget under which a run evaluates its loss every round), else ``‖x_i − x̄‖₂``
  (the distance to the nodes' mean); the recording says which (``meta["error"]``, and per protocol).
  A protocol whose ``estimate()`` is not one model per node (FL: the server's model only) may
  offer ``node_models()`` → ``[n, P]``, each node's own model now (FL: the server's global model,
  each client's last received one); its rows take the place of the iterates, and their losses
  are evaluated once per distinct row when ``n × samples × parameters ≤ MODEL_LOSS_BUDGET``.
- ``state``: where a protocol offers ``node_states()`` → ``[n]`` (FL), each node's state, a code
  into ``NODE_STATES`` (0 idle, 1 training, 2 offline, 3 server).
- the links ``(receiver, sender)`` that delivered and that lost a message (any drop: loss, late,
  out of range) since the previous frame; beyond ``LINK_CAP`` per frame and kind, the ``LINK_CAP``
  links of smallest ``keyed_uniform(seed, "recording", protocol, frame, kind, receiver, sender)``
  are kept, in key order (a deterministic sample, the same when taken in pieces between frames far
  apart), and ``n_ok``/``n_lost`` keep the full counts.

The file is ``recording.npz`` (``np.load`` reads it; uncompressed, members dated 1980 so that a
run writes the same bytes every time): ``meta`` (JSON as bytes) and, per protocol ``i`` in the
run's order, ``p{i}_k``, ``p{i}_t``, ``p{i}_pos`` ``[F, n, 2]`` and ``p{i}_err`` ``[F, n]``
(float32), ``p{i}_ok``/``p{i}_lost`` (links ``[L, 2]``, uint16 up to 65536 nodes, else int32;
the frames' links one after another, split by ``p{i}_ok_off``/``p{i}_lost_off`` ``[F + 1]``),
``p{i}_n_ok``/``p{i}_n_lost`` ``[F]``, ``p{i}_state`` ``[F, n]`` (uint8; protocols with
``node_states`` only), and the run's curve at every sample ``p{i}_curve_k``,
``p{i}_curve_t``, ``p{i}_curve`` (``consensus_error``, or ``loss``: NaN between evaluations).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from netemu.arrays import host
from netemu.errors import NetemuError
from netemu.metrics import EVAL_BUDGET
from netemu.rng import keyed_uniform
from netemu.runtime.results import Observer

FORMAT, VERSION = "netemu-recording", 1
FILE = "recording.npz"
TARGET_FRAMES = 300  # default frames per run
AUTO_MAX_NODES = 2000  # [output] record = "auto": on up to this many nodes
LINK_CAP = 2000  # links kept per frame and kind (delivered, lost)
NODE_LOSS_BUDGET = EVAL_BUDGET  # sample-parameters of one frame's per-node losses; above: distance to mean
# node_models(): at most this many sample-parameters if every row were distinct (FL clients share
# versions, so a frame evaluates far fewer); digits' 51 models about 20 ms, charlm's (37M each) left out
MODEL_LOSS_BUDGET = 100 * EVAL_BUDGET
COMPACT = 4096  # pending pieces of links (one per arrival instant) joined between frames beyond this
LOSS_CHUNK = 2 * 10**7  # sample-parameters of one batched evaluation
NODE_STATES = ("idle", "training", "offline", "server")  # the codes of node_states()


def frames_every(sc) -> int:
    """Rounds between frames: ``[output] frames_every``, or about ``TARGET_FRAMES`` per run."""
    given = sc.output.get("frames_every")
    return int(given) if given is not None else max(1, round(sc.run["rounds"] / TARGET_FRAMES))


def enabled(sc) -> bool:
    """Whether a run of ``sc`` records: ``[output] record`` (``"auto"``: up to ``AUTO_MAX_NODES``)."""
    rec = sc.output.get("record", "auto")
    return sc.network["nodes"] <= AUTO_MAX_NODES if rec == "auto" else bool(rec)


def layout(topology, n: int, seed: int) -> tuple[np.ndarray | None, str]:
    """Fixed ``[n, 2]`` positions for a topology without positions (None for radio ones) and what
    they are."""
    if getattr(topology, "needs_positions", False):
        return None, "positions"
    if hasattr(topology, "recv") and hasattr(topology, "send"):  # a latent graph
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(zip(topology.send.tolist(), topology.recv.tolist()))
        pos = nx.spring_layout(g, seed=seed % 2**32)
        return np.array([pos[i] for i in range(n)], dtype=np.float64), "spring layout of the latent graph"
    a = 2 * np.pi * np.arange(n) / max(n, 1)
    return np.stack([np.cos(a), np.sin(a)], axis=1), "nodes on a circle (links change every round)"


def hub_layout(n: int, hub: int) -> np.ndarray:
    """``[n, 2]`` positions with node ``hub`` at the centre and the others on the unit circle, in
    id order."""
    others = np.array([i for i in range(n) if i != hub], dtype=np.int64)
    a = 2 * np.pi * np.arange(len(others)) / max(len(others), 1)
    pos = np.zeros((n, 2))
    pos[others] = np.stack([np.cos(a), np.sin(a)], axis=1)
    return pos


def ranges_of(topology, n: int) -> list | None:
    """Each node's radio range in metres (log-distance: the largest reach), or None."""
    if not getattr(topology, "needs_positions", False):
        return None
    r = topology.ranges if getattr(topology, "ranges", None) is not None else np.full(n, topology.reach)
    return [float(v) for v in r]


def node_losses(task, x: np.ndarray) -> np.ndarray:
    """``F(x_i)`` for every row of ``x`` ``[n, P]``: the task's loss on all its training data,
    evaluated in batches of nodes."""
    import torch

    m = max(1, LOSS_CHUNK // max(1, task.samples * task.dim))
    out = np.empty(len(x))
    with torch.no_grad():
        for a in range(0, len(x), m):
            p = task.capture(x[a:a + m])
            b = len(p)
            loss, _ = task.model.loss_grad(p, task.X[None].expand(b, *task.X.shape),
                                           task.y[None].expand(b, *task.y.shape),
                                           task.eval_w[None].expand(b, *task.eval_w.shape))
            out[a:a + b] = loss.detach().to(torch.float64).cpu().numpy()
    return out


def _inner(proto):
    """The protocol itself: a round protocol is run by a ``RoundDriver`` (an event protocol)."""
    from netemu.runtime.rounds import RoundDriver

    return proto.inner if isinstance(proto, RoundDriver) else proto


class _Track:
    """The frames of one protocol."""

    def __init__(self) -> None:
        self.info = None  # what the meta says of this protocol (``FrameRecorder._describe``)
        self.fixed = None  # its own fixed layout (a server at the centre), else the run's
        self.losses: dict[bytes, float] = {}  # node_models: the loss of each distinct model of the last frame
        self.k, self.t, self.pos, self.err, self.state = [], [], [], [], []
        self.ok, self.lost, self.n_ok, self.n_lost = [], [], [], []
        self.curve = []  # (k, t, value) at every sample
        self.pending = ([], [])  # (receivers, senders) of deliveries, and of drops, since the last frame
        self.beyond = [0, 0]  # of these, links already left out by the cap (``FrameRecorder._join``)


class FrameRecorder(Observer):
    """Records frames of every protocol of a run (see the module docstring).

    ``target``: consensus runs, the mean of ``x⁰`` (errors are distances to it); ``task``:
    optimization runs; ``fixed``: ``[n, 2]`` positions for topologies without any (``layout``).
    """

    def __init__(self, sc, every: int, target=None, task=None, fixed=None, layout_kind: str = "positions",
                 ranges=None) -> None:
        self.every, self.rounds, self.n, self.seed = every, sc.run["rounds"], sc.network["nodes"], sc.seed
        self.name, self.period = sc.name, sc.run["period"]
        self.target = None if target is None else np.asarray(target, dtype=np.float64)
        self.task = task
        self.fixed = None if fixed is None else np.asarray(fixed, dtype=np.float32)
        self.layout_kind, self.ranges = layout_kind, ranges
        self.by_loss = task is not None and task.samples * task.dim * self.n <= NODE_LOSS_BUDGET
        self.models_by_loss = task is not None and task.samples * task.dim * self.n <= MODEL_LOSS_BUDGET
        self.tracks: dict[str, _Track] = {}
        self.names: dict[str, str] = {}
        self._label = None  # the protocol whose pending lists are at hand
        self._pos: dict[float, np.ndarray] = {}

    @classmethod
    def for_run(cls, sc, topology, x0=None, task=None) -> "FrameRecorder":
        fixed, kind = layout(topology, sc.network["nodes"], sc.seed)
        target = None if task is not None or x0 is None else np.asarray(x0, dtype=np.float64).mean(axis=0)
        return cls(sc, frames_every(sc), target, task, fixed, kind, ranges_of(topology, sc.network["nodes"]))

    def _track(self, label: str) -> _Track:
        tr = self.tracks.get(label)
        if tr is None:
            tr = self.tracks[label] = _Track()
        return tr

    # -- observer hooks ---------------------------------------------------------------------------

    # deliveries come one call per arrival instant (hundreds of thousands in a run): the arrays are
    # kept as given (the runtime's read-only slices) and joined once per frame
    def deliver(self, label, k, t, recv, send):
        if label is not self._label:
            self._switch(label)
        self._ok.append((recv, send))

    def drop(self, label, k, t, recv, send, why):
        if label is not self._label:
            self._switch(label)
        self._lost.append((recv, send))

    def _switch(self, label: str) -> None:
        tr = self._track(label)
        self._label = label
        self._ok, self._lost = tr.pending

    def sample(self, run, k, t, proto, extra=None):
        tr = self._track(run.label)
        self.names[run.label] = run.name
        if tr.info is None:
            self._describe(tr, proto)
        m = run.rows[-1][2] if run.rows else {}
        value = m.get("consensus_error", m.get("loss", float("nan")))
        tr.curve.append((k, t, float(value)))
        p = list(self.tracks).index(run.label)
        if k % self.every == 0 or k >= self.rounds or run.diverged:
            self._frame(tr, p, k, t, proto)
            return
        for kind in (0, 1):  # frames far apart: the links so far, capped, in place of many pieces
            if len(tr.pending[kind]) > COMPACT:
                links = self._join(tr, p, len(tr.k), kind)
                tr.pending[kind].append((links[:, 0], links[:, 1]))

    def _describe(self, tr: _Track, proto) -> None:
        """At a protocol's first sample: its clock, its layout and what its node errors are."""
        inner = _inner(proto)
        hub = getattr(inner, "server", None)
        hub = int(hub) if isinstance(hub, (int, np.integer)) and 0 <= hub < self.n else None
        layout_kind = self.layout_kind
        if self.fixed is not None and hub is not None:
            tr.fixed = hub_layout(self.n, hub).astype(np.float32)
            layout_kind = f"server (node {hub}) at the centre, the other nodes on a circle"
        models = callable(getattr(inner, "node_models", None))
        states = list(NODE_STATES) if callable(getattr(inner, "node_states", None)) else None
        tr.info = {"clock": "round" if inner is not proto else "time", "layout": layout_kind,
                   "models": models, "server": hub, "error": self._error_kind(models, hub), "states": states}

    def _error_kind(self, models: bool = False, hub: int | None = None) -> str:
        if self.task is None:
            return "distance to the mean of the initial values (max norm)"
        if not models:
            return "loss at the node's own iterate" if self.by_loss else "distance to the nodes' mean (2-norm)"
        own = ("each node's own model (the server: the global model; a client: the model it last received)"
               if hub is not None else "each node's own model")
        return f"loss at {own}" if self.models_by_loss else f"distance to the nodes' mean (2-norm) of {own}"

    # -- frames ------------------------------------------------------------------------------------

    def _frame(self, tr: _Track, p: int, k: int, t: float, proto) -> None:
        f = len(tr.k)
        tr.k.append(k)
        tr.t.append(t)
        tr.pos.append(tr.fixed if tr.fixed is not None else self._positions(proto, t))
        tr.err.append(self._errors(proto, tr if tr.info["models"] else None).astype(np.float32))
        if tr.info["states"]:
            tr.state.append(np.asarray(_inner(proto).node_states(), dtype=np.uint8))
        for kind, kept, count in ((0, tr.ok, tr.n_ok), (1, tr.lost, tr.n_lost)):
            links = self._join(tr, p, f, kind)
            count.append(len(links) + tr.beyond[kind])
            tr.beyond[kind] = 0
            kept.append(links)

    def _join(self, tr: _Track, p: int, f: int, kind: int) -> np.ndarray:
        """The pending links of ``kind`` as one ``[L, 2]`` array, emptied from ``tr.pending``;
        beyond ``LINK_CAP``, those of smallest key (the count left out goes to ``tr.beyond``).
        The key is a pure function of the link and the frame: capping in pieces keeps the same."""
        pending = tr.pending[kind]
        if not pending:
            return np.zeros((0, 2), dtype=np.int32)
        recv, send = zip(*pending)
        pending.clear()
        links = np.stack([np.concatenate(recv), np.concatenate(send)], axis=1).astype(np.int32)
        if len(links) <= LINK_CAP:
            return links
        key = keyed_uniform(self.seed, "recording", p, f, kind, links[:, 0], links[:, 1])
        keep = np.argpartition(key, LINK_CAP)[:LINK_CAP]
        keep = keep[np.argsort(key[keep], kind="stable")]  # in key order: equal keys are equal links
        tr.beyond[kind] += len(links) - LINK_CAP
        return links[keep]

    def _positions(self, proto, t: float) -> np.ndarray:
        if self.fixed is not None:
            return self.fixed
        pos = self._pos.get(t)  # the protocols of a run share the motion: once per time
        if pos is None:
            pos = self._pos[t] = np.asarray(proto.ctx.runtime.net.positions(t)[:, :2], dtype=np.float32)
        return pos

    def _errors(self, proto, tr: _Track | None = None) -> np.ndarray:
        """Each node's error; ``tr``: the protocol's ``node_models`` take the place of its estimate."""
        x = host(_inner(proto).node_models() if tr is not None else proto.estimate())
        x = x.astype(np.float64, copy=False)
        with np.errstate(invalid="ignore", over="ignore"):
            if tr is not None and self.task is not None and self.models_by_loss and np.all(np.isfinite(x)):
                return self._model_losses(tr, x)
            if self.task is None:
                return np.max(np.abs(x - self.target[None, :]), axis=1) if x.shape[1] else np.zeros(len(x))
            if self.by_loss and np.all(np.isfinite(x)):
                return node_losses(self.task, x)
            return np.linalg.norm(x - x.mean(axis=0, keepdims=True), axis=1)

    def _model_losses(self, tr: _Track, x: np.ndarray) -> np.ndarray:
        """``F`` at each row of ``x``, evaluated once per distinct row: rows of the previous frame
        keep their loss, the new ones are evaluated together."""
        keys = [row.tobytes() for row in x]
        first = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        new = [k for k in first if k not in tr.losses]
        known = {k: tr.losses[k] for k in first if k in tr.losses}
        if new:
            rows = x[[first[k] for k in new]]
            known.update(zip(new, node_losses(self.task, rows).tolist()))
        tr.losses = known
        return np.array([known[k] for k in keys], dtype=np.float64)

    def close(self) -> None:  # the file is written by ``write`` once the run succeeded
        pass

    # -- the file ----------------------------------------------------------------------------------

    def meta(self) -> dict:
        """The file's header; ``protocols`` also say, each, its ``clock`` (``"round"``, or
        ``"time"`` for event protocols, whose ``k`` counts periods), ``layout``, ``error``,
        ``server`` (the node drawn at the centre, or None) and ``states`` (``NODE_STATES``, or None)."""
        error, metric = self._error_kind(), "consensus_error" if self.task is None else "loss"
        return {"format": FORMAT, "version": VERSION, "name": self.name, "nodes": self.n,
                "rounds": self.rounds, "period": self.period, "frames_every": self.every,
                "link_cap": LINK_CAP, "error": error, "metric": metric, "layout": self.layout_kind,
                "ranges": self.ranges,
                "protocols": [{"label": lb, "name": self.names.get(lb, lb),
                               **{k: v for k, v in (tr.info or {}).items() if k != "models"}}
                              for lb, tr in self.tracks.items()]}

    def write(self, path: Path) -> None:
        arrays = {"meta": np.frombuffer(json.dumps(self.meta()).encode(), dtype=np.uint8)}
        for i, tr in enumerate(self.tracks.values()):
            p = f"p{i}_"
            arrays[p + "k"] = np.asarray(tr.k, dtype=np.int64)
            arrays[p + "t"] = np.asarray(tr.t, dtype=np.float64)
            arrays[p + "pos"] = np.stack(tr.pos) if tr.pos else np.zeros((0, self.n, 2), np.float32)
            arrays[p + "err"] = np.stack(tr.err) if tr.err else np.zeros((0, self.n), np.float32)
            if (tr.info or {}).get("states"):
                arrays[p + "state"] = np.stack(tr.state) if tr.state else np.zeros((0, self.n), np.uint8)
            for kind in ("ok", "lost"):
                kept = getattr(tr, kind)
                ids = np.concatenate(kept) if kept else np.zeros((0, 2), np.int32)
                arrays[p + kind] = ids.astype(np.uint16) if self.n <= 2**16 else ids
                arrays[p + kind + "_off"] = np.concatenate([[0], np.cumsum([len(a) for a in kept])]).astype(np.int64)
                arrays[p + "n_" + kind] = np.asarray(getattr(tr, "n_" + kind), dtype=np.int64)
            curve = np.asarray(tr.curve, dtype=np.float64).reshape(-1, 3)
            arrays[p + "curve_k"], arrays[p + "curve_t"] = curve[:, 0].astype(np.int64), curve[:, 1]
            arrays[p + "curve"] = curve[:, 2].astype(np.float32)
        write_npz(path, arrays)


def write_npz(path: Path, arrays: dict) -> None:
    """``np.savez``'s format (read by ``np.load``), with every member dated 1980-01-01, so that the
    same run writes the same bytes."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)


class Recording:
    """A ``recording.npz`` read back: ``meta`` and, per protocol label, its arrays (``frames``)."""

    def __init__(self, meta: dict, protocols: dict) -> None:
        self.meta, self.protocols = meta, protocols

    @property
    def labels(self) -> list[str]:
        return list(self.protocols)

    def links(self, label: str, kind: str, f: int) -> np.ndarray:
        """The links ``[L, 2]`` (receiver, sender) of ``kind`` (``ok``/``lost``) in frame ``f``."""
        a = self.protocols[label]
        off = a[kind + "_off"]
        return a[kind][off[f]:off[f + 1]]


def load(folder: Path) -> Recording:
    """The recording of the run in ``folder`` (``netemu run --out``), or a one-line error."""
    folder = Path(folder)
    path = folder / FILE
    if not folder.is_dir():
        raise NetemuError(f"{folder}: no such folder; give the output folder of a netemu run (netemu run "
                          f"SCENARIO --out {folder})")
    runs = sorted(p.parent.name for p in folder.glob(f"*/{FILE}"))
    if not path.is_file() and runs:
        raise NetemuError(f"{folder}: a sweep's folder; give one of its runs, e.g. {folder / runs[0]} "
                          f"({len(runs)} with a recording)")
    if not path.is_file():
        raise NetemuError(f"{folder}: no {FILE} in this folder; make one with netemu run SCENARIO --out "
                          f"{folder} (recording is on up to {AUTO_MAX_NODES} nodes; above, set [output] "
                          f"record = true)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(data.pop("meta").tobytes().decode())
    except Exception as exc:
        raise NetemuError(f"{path}: not a readable netemu recording ({type(exc).__name__}: {exc}); run the "
                          f"scenario again to write it") from None
    if meta.get("format") != FORMAT:
        raise NetemuError(f"{path}: not a netemu recording (no {FORMAT} header)")
    protocols = {}
    for i, p in enumerate(meta["protocols"]):
        pre = f"p{i}_"
        protocols[p["label"]] = {k[len(pre):]: v for k, v in data.items() if k.startswith(pre)}
    return Recording(meta, protocols)

