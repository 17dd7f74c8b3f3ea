"""Live-mode datagrams: encoding, decoding and the reasons a datagram is rejected.

Every datagram is one msgpack map with a version ``"v"`` and a type ``"t"`` (``docs/wire.md`` is
the reference and lists every key)::

    hello    outside process → medium   ask for / claim an external node id
    challenge medium → outside process  with a key: the run id to tag the second hello with
    welcome  medium → outside process   the id granted, n, dim, protocol, the initial value in use
    refuse   medium → outside process   why a hello was refused
    round    medium → external node     round r begins; the node's nominal out-degree "deg"
    tx       node → medium              a transmission (``netemu.wire.encode_transmission``)
    tx       medium → node              a reception: the transmission's bytes, copied verbatim
    bye      either way                 a node leaves, or the medium ends the run
    frag     either way                 (version 2) one piece of a message longer than a datagram

``decode`` never raises anything but ``Rejected``, whose ``reason`` is one of ``REASONS``: the
medium counts rejected datagrams by reason and goes on (they appear in ``summary.json``).
"""

from __future__ import annotations

import math
import sys

import msgpack
import numpy as np

from netemu import wire

VERSION = wire.VERSION  # what this side sends
ACCEPTED = (1, 2)  # what it reads: version 2 is version 1 plus fragments (``fragments.py``)
UDP_MAX = 65507  # largest UDP payload over IPv4

REASONS = {
    "oversize": "longer than [live] max_datagram",
    "garbage": "not msgpack (invalid bytes, or bytes after one complete value)",
    "truncated": "msgpack cut short",
    "malformed": "msgpack but not a netemu message: not a map, missing or ill-typed keys, "
                 "unknown type, fields that do not match the protocol's message",
    "version": "a version the medium does not read (it reads 1 and 2)",
    "unknown_sender": "src is not a node id, or names an external node that has not said hello",
    "spoofed": "src is registered to another address",
    "round": "a transmission for a round that is neither the current one nor the one just ended",
    "duplicate": "a second transmission from one node in one round",
    "hello": "a hello that was refused (the reply says why)",
    "id_taken": "a hello for an external id that another address holds (logged, listed in summary.json)",
    "gone": "a datagram from an external node that has left (bye) or was marked departed",
    "unexpected": "an external FL client's update the server is not waiting for (no model outstanding, "
                  "one answered already, a version the server never had, or another receiver than the server)",
    "non_finite": "a transmission carrying a NaN or an infinite value",
    "too_large": "a transmission carrying a value beyond [live] max_abs in magnitude",
    "unauthenticated": "with [live] key_file: a datagram without a tag (a plain message, or too short)",
    "bad_tag": "with [live] key_file: a tag that does not verify (forged, altered, another key or run)",
    "replayed": "with [live] key_file: a sequence number already seen from that sender, or too old",
    "not_medium": "a datagram at a local node's socket that did not come from the medium",
    "frag_oversize": "a fragment of a message longer than [live] max_message",
    "frag_count": "a fragment whose index, count or message size is impossible or disagrees with its "
                  "message's other fragments, or fragments that do not cover the message (discarded)",
    "frag_overlap": "a fragment whose bytes overlap another fragment of its message or run past the "
                    "message's end (the message is discarded)",
    "frag_duplicate": "a fragment received already, or of a message already reassembled or given up",
    "error": "handling the datagram raised an unexpected exception (a netemu bug; logged once)",
}


class Rejected(Exception):
    """A datagram the medium drops; ``reason`` is a key of ``REASONS``."""

    def __init__(self, reason: str, detail: str = "", msg: dict | None = None) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.msg = msg  # the decoded map, when there is one (a wrong-version hello gets a reply)


def _pack(msg: dict) -> bytes:
    return msgpack.packb({"v": VERSION, **msg}, use_bin_type=True)


def decode(data: bytes, max_datagram: int) -> dict:
    """The message map in ``data``, or ``Rejected`` with the reason it is unusable."""
    if len(data) > max_datagram:
        raise Rejected("oversize")
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:  # slow path only for bad input: tell truncation from garbage
        raise Rejected(_classify(data)) from None
    if not isinstance(msg, dict):
        raise Rejected("malformed", "not a map")
    v = msg.get("v")
    if type(v) is not int:
        raise Rejected("malformed", "no integer 'v'")
    if v not in ACCEPTED:
        raise Rejected("version", f"version {v}", msg)
    if type(msg.get("t")) is not str:
        raise Rejected("malformed", "no string 't'")
    return msg


def _classify(data: bytes) -> str:
    up = msgpack.Unpacker(raw=False, strict_map_key=False)
    up.feed(data)
    try:
        up.unpack()
    except msgpack.OutOfData:
        return "truncated"
    except Exception:
        return "garbage"
    return "garbage"  # one whole value followed by extra bytes


class FieldSpec:
    """The shape of one node's message: field name → (dtype string, wire shape, byte count).

    ``ok(f)`` checks a transmission's ``"f"`` map against it without building arrays, so the medium
    forwards only what every receiver can stack into a ``Batch``.
    """

    def __init__(self, fields: dict) -> None:
        self.spec, self.rows = {}, {}
        for name, values in fields.items():
            row = np.asarray(values)[0]
            dt, shape, raw = wire.pack_array(row)  # a per-node scalar travels with shape []
            self.spec[name] = (dt, shape, len(raw))
            self.rows[name] = row.shape  # the protocol's own row shape, for stacking
        self._items = tuple(self.spec.items())
        # value checks: small float fields are read as Python floats (a numpy call costs more)
        native = {"<f8": "d", "<f4": "f"} if sys.byteorder == "little" else {}
        self._checks = tuple((name, native.get(dt) if nbytes <= 512 else None, np.dtype(dt))
                             for name, (dt, _, nbytes) in self._items)

    def ok(self, f: object) -> bool:
        if not isinstance(f, dict) or len(f) != len(self.spec):
            return False
        for name, (dt, shape, nbytes) in self._items:
            a = f.get(name)
            if (not isinstance(a, list) or len(a) != 3 or a[0] != dt or a[1] != shape
                    or not isinstance(a[2], bytes) or len(a[2]) != nbytes):
                return False
        return True

    def bad_values(self, f: dict, max_abs: float) -> str | None:
        """``None`` if every value of a checked ``"f"`` map is finite and within ``max_abs`` in
        magnitude, else the reason (``non_finite`` or ``too_large``)."""
        lo = -max_abs
        for name, fmt, dt in self._checks:
            raw = f[name][2]
            if fmt is not None:
                for v in memoryview(raw).cast(fmt):
                    if not lo <= v <= max_abs:  # NaN too
                        return bad_array(np.frombuffer(raw, dtype=dt), max_abs)
                continue
            why = bad_array(np.frombuffer(raw, dtype=dt), max_abs)
            if why is not None:
                return why
        return None

    def describe(self) -> dict:
        """For ``welcome``: ``{name: [dtype, shape]}`` of each field."""
        return {name: [dt, shape] for name, (dt, shape, _) in self.spec.items()}


def bad_array(a: np.ndarray, max_abs: float) -> str | None:
    """``non_finite``, ``too_large`` or ``None`` (fine) for one array of a transmission."""
    if not a.size:
        return None
    if a.dtype.kind != "f":
        a = a.astype(np.float64)
    m = np.abs(a).max()
    if m <= max_abs:  # NaN compares false: one reduction decides the common case
        return None
    return "too_large" if np.isfinite(a).all() else "non_finite"


def unpack_fields(f: dict) -> dict:
    """A checked transmission's ``"f"`` map as arrays (read-only views of the datagram bytes)."""
    return {name: wire.unpack_array(v) for name, v in f.items()}


def hello(node: int | None = None, x0: list | None = None, protocol: str | None = None,
          nonce: bytes | None = None) -> bytes:
    msg: dict = {"t": "hello", "id": node}
    if x0 is not None:
        msg["x0"] = list(x0)
    if protocol is not None:
        msg["protocol"] = protocol
    if nonce is not None:
        msg["nonce"] = nonce
    return _pack(msg)


def _echo(msg: dict, nonce: bytes | None) -> dict:
    if nonce is not None:
        msg["nonce"] = nonce
    return msg


def challenge(run: bytes, nonce: bytes) -> bytes:
    """The reply to a hello tagged under the all-zero run id: the run id to tag the next one with."""
    return _pack({"t": "challenge", "run": run, "nonce": nonce})


def welcome(node: int, n: int, x0: list, protocol: str, fields: dict, period: float,
            time_scale: float, max_datagram: int, round_: int, nonce: bytes | None = None,
            run: bytes | None = None, extra: dict | None = None) -> bytes:
    msg = {"t": "welcome", "id": node, "n": n, "dim": len(x0), "x0": list(x0),
           "protocol": protocol, "fields": fields, "period": period,
           "time_scale": time_scale, "max_datagram": max_datagram, "round": round_, **(extra or {})}
    if run is not None:
        msg["run"] = run
    return _pack(_echo(msg, nonce))


def refuse(why: str, nonce: bytes | None = None) -> bytes:
    return _pack(_echo({"t": "refuse", "why": why}, nonce))


def round_tick(r: int, deg: int, seconds_left: float) -> bytes:
    return _pack({"t": "round", "r": r, "deg": deg, "left": seconds_left})


def bye(src: int | None = None, why: str = "") -> bytes:
    msg: dict = {"t": "bye", "why": why}
    if src is not None:
        msg["src"] = src
    return _pack(msg)


def check_x0(value: object, dim: int, max_abs: float = math.inf) -> list | None:
    """A hello's ``x0`` as a list of ``dim`` finite floats within ``max_abs`` in magnitude, or
    ``None`` if it is not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or len(value) != dim:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > max_abs
           for v in value):
        return None
    return [float(v) for v in value]
