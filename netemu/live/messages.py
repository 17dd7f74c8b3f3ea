"""Live-mode datagrams: encoding, decoding and the reasons a datagram is rejected.

Every datagram is one msgpack map with a version ``"v"`` and a type ``"t"`` (``docs/wire.md`` is
the reference and lists every key)::

    hello    outside process → medium   ask for / claim an external node id
    welcome  medium → outside process   the id granted, n, dim, protocol, the initial value in use
    refuse   medium → outside process   why a hello was refused
    round    medium → external node     round r begins; the node's nominal out-degree "deg"
    tx       node → medium              a transmission (``netemu.wire.encode_transmission``)
    tx       medium → node              a reception: the transmission's bytes, copied verbatim
    bye      either way                 a node leaves, or the medium ends the run

``decode`` never raises anything but ``Rejected``, whose ``reason`` is one of ``REASONS``: the
medium counts rejected datagrams by reason and goes on (they appear in ``summary.json``).
"""

from __future__ import annotations

import math

import msgpack
import numpy as np

from netemu import wire

VERSION = wire.VERSION
UDP_MAX = 65507  # largest UDP payload over IPv4

REASONS = {
    "oversize": "longer than [live] max_datagram",
    "garbage": "not msgpack (invalid bytes, or bytes after one complete value)",
    "truncated": "msgpack cut short",
    "malformed": "msgpack but not a netemu message: not a map, missing or ill-typed keys, "
                 "unknown type, fields that do not match the protocol's message",
    "version": "a version other than the medium's",
    "unknown_sender": "src is not a node id, or names an external node that has not said hello",
    "spoofed": "src is registered to another address",
    "round": "a transmission for a round that is neither the current one nor the one just ended",
    "duplicate": "a second transmission from one node in one round",
    "hello": "a hello that was refused (the reply says why)",
    "not_medium": "a datagram at a local node's socket that did not come from the medium",
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
    if v != VERSION:
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

    def ok(self, f: object) -> bool:
        if not isinstance(f, dict) or len(f) != len(self.spec):
            return False
        for name, (dt, shape, nbytes) in self._items:
            a = f.get(name)
            if (not isinstance(a, list) or len(a) != 3 or a[0] != dt or a[1] != shape
                    or not isinstance(a[2], bytes) or len(a[2]) != nbytes):
                return False
        return True

    def describe(self) -> dict:
        """For ``welcome``: ``{name: [dtype, shape]}`` of each field."""
        return {name: [dt, shape] for name, (dt, shape, _) in self.spec.items()}


def unpack_fields(f: dict) -> dict:
    """A checked transmission's ``"f"`` map as arrays (read-only views of the datagram bytes)."""
    return {name: wire.unpack_array(v) for name, v in f.items()}


def hello(node: int | None = None, x0: list | None = None, protocol: str | None = None) -> bytes:
    msg: dict = {"t": "hello", "id": node}
    if x0 is not None:
        msg["x0"] = list(x0)
    if protocol is not None:
        msg["protocol"] = protocol
    return _pack(msg)


def welcome(node: int, n: int, x0: list, protocol: str, fields: dict, period: float,
            time_scale: float, max_datagram: int, round_: int) -> bytes:
    return _pack({"t": "welcome", "id": node, "n": n, "dim": len(x0), "x0": list(x0),
                  "protocol": protocol, "fields": fields, "period": period,
                  "time_scale": time_scale, "max_datagram": max_datagram, "round": round_})


def refuse(why: str) -> bytes:
    return _pack({"t": "refuse", "why": why})


def round_tick(r: int, deg: int, seconds_left: float) -> bytes:
    return _pack({"t": "round", "r": r, "deg": deg, "left": seconds_left})


def bye(src: int | None = None, why: str = "") -> bytes:
    msg: dict = {"t": "bye", "why": why}
    if src is not None:
        msg["src"] = src
    return _pack(msg)


def check_x0(value: object, dim: int) -> list | None:
    """A hello's ``x0`` as a list of ``dim`` finite floats, or ``None`` if it is not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or len(value) != dim:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value):
        return None
    return [float(v) for v in value]
