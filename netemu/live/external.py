"""External nodes: node ids reserved for outside processes (``[live] external = [ids]``).

An outside process joins by sending ``hello`` to the medium before round 0; it may ask for a
given id (``"id": 7``) or take the lowest free one (``"id": null``), and may bring its own initial
value (``"x0"``); without one it is told the scenario's value for that id in the ``welcome`` and
should start from it. The target of the metrics is the mean of the initial values *in use*:
the scenario's for local nodes, the hello's (or the scenario's) for external ones.

The runtime's protocol object keeps a row for every node, but an external node's row is not its
state: that lives in the outside process. What the other nodes receive from it are the fields
of its own datagrams, and what the metrics show for it is the estimate read from its latest
transmission (``estimator``): field ``x`` (PULM, gossip) or ``s / w`` (push-sum). Before its first
transmission that is its initial value; after it leaves (``bye``, or silence for ``[live]
timeout`` seconds: *departed*) it is its last one.
"""

from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np

from netemu.live import messages as M

log = logging.getLogger("netemu.live")
MAX_LISTED = 100  # refused claims listed in summary.json (all are counted)


def estimator(field_names) -> Callable[[dict], np.ndarray] | None:
    """A function from one node's message fields (arrays) to its estimate ``[dim]``, or ``None``.

    A node's estimate must be readable from what it transmits, since an external node's state is
    known only through its datagrams.
    """
    names = set(field_names)
    if "x" in names:
        return lambda f: np.array(f["x"], dtype=np.float64).reshape(-1)
    if {"s", "w"} <= names:
        return lambda f: np.array(f["s"], dtype=np.float64).reshape(-1) / float(np.reshape(f["w"], -1)[0])
    return None


class Externals:
    """Who holds each external id, with which initial value, and what it last reported."""

    def __init__(self, ids, x0: np.ndarray, protocol: str, welcome_info: dict, estimate=None,
                 max_abs: float = math.inf) -> None:
        self.ids = sorted(int(i) for i in ids)
        self.protocol = protocol
        self.info = welcome_info  # n, fields, period, time_scale, max_datagram (, run) for ``welcome``
        self.dim = x0.shape[1]
        self.max_abs = max_abs
        self.x0 = {i: [float(v) for v in x0[i]] for i in self.ids}
        self.addr: dict[int, tuple] = {}
        self.left: set[int] = set()
        self.departed: dict[int, dict] = {}  # id -> {"round", "t", "silent"}: stopped sending
        self.refused_claims: list[dict] = []  # hellos for an id another address holds
        self.claims_refused = 0
        self.reported: dict[int, np.ndarray] = {}
        self.report_round: dict[int, int] = {}
        self.transmissions = {i: 0 for i in self.ids}
        self.started = False
        self.estimate = estimate

    def all_joined(self) -> bool:
        return len(self.addr) == len(self.ids)

    def missing(self) -> list[int]:
        return [i for i in self.ids if i not in self.addr]

    def present(self, i: int) -> bool:
        return i in self.addr and i not in self.left

    def hello(self, msg: dict, addr: tuple) -> tuple[bytes, int | None]:
        """The reply to a ``hello`` from ``addr`` and the id granted (``None``: refused)."""
        reply, node, _ = self.claim(msg, addr)
        return reply, node

    def claim(self, msg: dict, addr: tuple) -> tuple[bytes, int | None, str]:
        """The reply to a ``hello`` from ``addr``, the id granted (``None``: refused) and, for a
        refusal, the reason it is counted under (``id_taken`` or ``hello``).

        An id is granted once: to the first address that claims it (with a key, the first that
        proves it holds the key), for the whole run; a claim from another address is refused,
        logged and listed (``refused_claims``), and so is a claim after its holder has left.
        """
        nonce = msg.get("nonce") if isinstance(msg.get("nonce"), bytes) else None

        def no(why: str, reason: str = "hello"):
            return M.refuse(why, nonce), None, reason

        for i, a in self.addr.items():
            if a == addr and i not in self.left:  # a repeated hello (lost welcome): same answer
                return self._welcome(i, nonce), i, ""
        want = msg.get("id")
        if type(want) is int and want in self.addr:
            held = self.addr[want]
            why = (f"node id {want} has left this run (ids are granted once)" if held == addr
                   else f"node id {want} is taken by another process")
            self._refused_claim(want, addr, held, why)
            return no(why, "id_taken")
        if self.started:
            return no("the run has started; external nodes join before round 0")
        proto = msg.get("protocol")
        if proto is not None and proto != self.protocol:
            return no(f"this run speaks protocol {self.protocol!r}, not {proto!r}")
        free = [i for i in self.ids if i not in self.addr]
        if want is None:
            if not free:
                return no(f"no free external node id: all of {self.ids} are taken")
            want = free[0]
        elif type(want) is not int or want not in self.ids:
            return no(f"node id {want!r} is not external; this run reserves {self.ids}")
        if "x0" in msg:
            x0 = M.check_x0(msg["x0"], self.dim, self.max_abs)
            if x0 is None:
                bound = (f" within {self.max_abs:g} in magnitude ([live] max_abs)"
                         if math.isfinite(self.max_abs) else "")
                return no(f"x0 must be a list of {self.dim} finite numbers{bound}")
            self.x0[want] = x0
        self.addr[want] = addr
        return self._welcome(want, nonce), want, ""

    def _refused_claim(self, i: int, addr: tuple, held: tuple, why: str) -> None:
        self.claims_refused += 1
        if len(self.refused_claims) < MAX_LISTED:
            self.refused_claims.append({"id": i, "address": "%s:%d" % addr[:2], "held_by": "%s:%d" % held[:2],
                                        "why": why})
        if self.claims_refused <= 10:  # log the first ones; all are counted
            log.warning("netemu live: refused a hello from %s:%d for node %d: %s", addr[0], addr[1], i, why)

    def _welcome(self, i: int, nonce: bytes | None = None) -> bytes:
        inf = self.info
        return M.welcome(i, inf["n"], self.x0[i], self.protocol, inf["fields"], inf["period"],
                         inf["time_scale"], inf["max_datagram"], inf.get("round", -1), nonce, inf.get("run"),
                         inf.get("extra"))

    def record(self, src: int, f: dict, r: int) -> None:
        """Note an accepted transmission of external node ``src`` in round ``r`` (``"f"`` checked).

        A late transmission of an earlier round never replaces a newer report.
        """
        self.transmissions[src] += 1
        if self.estimate is not None and r > self.report_round.get(src, -1):
            self.reported[src] = self.estimate(M.unpack_fields(f))
            self.report_round[src] = r

    def apply(self, est: np.ndarray) -> np.ndarray:
        """``est`` with each external node's row replaced by what it reported (or its x0)."""
        if not self.ids:
            return est
        est = np.array(est, dtype=np.float64, copy=True)
        for i in self.ids:
            est[i] = self.reported.get(i, self.x0[i])
        return est

    def initial(self, x0: np.ndarray) -> np.ndarray:
        """The initial values in use: ``x0`` with external rows from the hellos."""
        x = np.array(x0, dtype=np.float64, copy=True)
        for i in self.ids:
            x[i] = self.x0[i]
        return x

    def summary(self) -> dict:
        return {str(i): {"joined": i in self.addr, "left": i in self.left,
                         "departed": self.departed.get(i),
                         "address": "%s:%d" % self.addr[i][:2] if i in self.addr else None,
                         "x0": self.x0[i], "transmissions": self.transmissions[i]}
                for i in self.ids}


# -- FL clients run by outside processes -------------------------------------------------------

def is_fl(cls) -> bool:
    """Whether protocol class ``cls`` is an FL protocol (a server and its clients)."""
    from netemu.fl.server import FLServer

    return isinstance(cls, type) and issubclass(cls, FLServer)


def fl_server(pcfg: dict, network: dict) -> int:
    """The server node of FL protocol entry ``pcfg`` (as ``FLServer.start`` picks it)."""
    if pcfg.get("server") is not None:
        return int(pcfg["server"])
    up = network.get("uplink")
    return int(up["server"]) if up else 0


def fl_messages(task, pcfg: dict, n: int, seed: int) -> tuple[dict, dict]:
    """``({name: [dtype, shape]} of the server's model message, the same of a client's update)``:
    the model ``x`` in the task's dtype and its version ``v``; the update is the codec's payload
    (``c_<name>``) of a zero update, on a codec of its own (the protocol's keeps its state), and
    the version ``v`` its model came from."""
    from netemu.fl.compress import build_codec
    from netemu.fl.server import model_shapes

    P = int(task.dim)
    dt = np.float32 if "float32" in str(task.dtype) else np.float64
    codec = build_codec(pcfg.get("compress"), model_shapes(task), n, "compress", seed=seed)
    payload = codec.encode(0, np.zeros(P, dtype=dt)).payload
    v = ["<i8", [1]]
    model = {"x": [np.dtype(dt).str, [P]], "v": v}
    update = {"c_" + k: [np.asarray(a).dtype.str, list(np.shape(a))] for k, a in sorted(payload.items())}
    update["v"] = v
    return model, update


class FLClients:
    """What the medium checks in an external FL client's transmissions, before any reaches the
    server: a unicast to the server, an update the server waits for (a model was sent to that
    client and not answered yet; the version it names is one the server had), fields with exactly
    the names, dtypes and shapes of ``update`` that the protocol's codec decodes to ``P`` finite
    values. Anything else is rejected (``unexpected`` or ``malformed``), so no datagram can make
    the protocol's handler fail."""

    def __init__(self, proto, update: dict) -> None:
        self.proto, self.update = proto, update  # proto: the server's protocol, once the run is built
        self.sizes = {k: int(np.dtype(dt).itemsize * int(np.prod(shape))) for k, (dt, shape) in update.items()}
        self.sent: dict[int, int] = {}  # external client -> models forwarded to it
        self.got: dict[int, int] = {}  # external client -> updates accepted from it

    def model_sent(self, i: int) -> None:
        self.sent[i] = self.sent.get(i, 0) + 1

    def check(self, src: int, dst, f: dict) -> str | None:
        """``None`` for an update the server can take, else the reason it is rejected."""
        p = self.proto
        if p is None or dst != p.server or self.got.get(src, 0) >= self.sent.get(src, 0) or src not in p.base:
            return "unexpected"
        if set(f) != set(self.update):
            return "malformed"
        for k, (dt, shape) in self.update.items():
            a = f[k]
            if (not isinstance(a, list) or len(a) != 3 or a[0] != dt or a[1] != shape
                    or not isinstance(a[2], bytes) or len(a[2]) != self.sizes[k]):
                return "malformed"
        v = int(np.frombuffer(f["v"][2], dtype="<i8")[0])
        if not 0 <= v <= p.version:
            return "unexpected"
        try:
            x = np.asarray(p.codec.decode({k[2:]: M.unpack_fields({k: f[k]})[k] for k in f if k.startswith("c_")}))
        except Exception:  # a payload the codec cannot take (e.g. an index out of range)
            return "malformed"
        if x.shape != (p.P,) or not np.isfinite(x).all():
            return "malformed"
        self.got[src] = self.got.get(src, 0) + 1
        return None
