"""The wire format of a transmission (msgpack), shared by the simulator and the live runtime.

A transmission is a msgpack map::

    {"v": 2, "t": "tx", "src": <node id>, "r": <round>, "f": {<field>: [<dtype>, <shape>, <bytes>]}}

Arrays travel as raw little-endian bytes with their dtype string and shape. The simulator uses the
encoded size of a node's message for ``bytes_sent`` and for serialization delay
(``bytes / bandwidth``); the live runtime sends exactly these bytes.
"""

from __future__ import annotations

import msgpack
import numpy as np

VERSION = 2  # version 2 adds fragments (docs/wire.md); its other messages are those of version 1


def pack_array(a: np.ndarray) -> list:
    a = np.asarray(a, order="C")  # keeps 0-d arrays 0-d (ascontiguousarray would make them [1])
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return [a.dtype.str, list(a.shape), a.tobytes()]


def unpack_array(v: list) -> np.ndarray:
    dtype, shape, raw = v
    dt = np.dtype(dtype)
    if dt.kind not in "biuf" or not isinstance(raw, bytes):
        raise ValueError(f"unsupported array dtype {dtype!r}")
    count = int(np.prod(shape)) if shape else 1
    if count * dt.itemsize != len(raw):
        raise ValueError("array bytes do not match dtype and shape")
    return np.frombuffer(raw, dtype=dt).reshape(shape)


def encode_transmission(src: int, rnd: int, fields: dict) -> bytes:
    """msgpack bytes of node ``src``'s message in round ``rnd`` (fields: this node's rows)."""
    return msgpack.packb({"v": VERSION, "t": "tx", "src": int(src), "r": int(rnd),
                          "f": {k: pack_array(np.asarray(v)) for k, v in fields.items()}},
                         use_bin_type=True)


def encode_event(src: int, seq: int, t: float, fields: dict, dst: int | None = None) -> bytes:
    """msgpack bytes of node ``src``'s ``seq``-th event-driven message, sent at simulated time
    ``t`` (``r`` is -1; ``dst`` for a unicast)."""
    msg = {"v": VERSION, "t": "tx", "src": int(src), "r": -1, "s": int(seq), "at": float(t),
           "f": {k: pack_array(np.asarray(v)) for k, v in fields.items()}}
    if dst is not None:
        msg["dst"] = int(dst)
    return msgpack.packb(msg, use_bin_type=True)


_size_cache: dict = {}


def _dtype(v) -> np.dtype:
    """The numpy dtype of an array or a torch tensor (without copying it to the host)."""
    dt = getattr(v, "dtype", None)
    if isinstance(dt, np.dtype):
        return dt
    if dt is not None and type(v).__module__.startswith("torch"):
        return np.dtype(str(dt).replace("torch.", ""))
    return np.asarray(v).dtype


def message_bytes(fields: dict, n: int) -> int:
    """Encoded size of one node's message (every node's message has the same shapes); fields may
    be numpy arrays or torch tensors on any device."""
    key = tuple((k, _dtype(v).str, tuple(np.shape(v) if not hasattr(v, "shape") else v.shape)[1:])
                for k, v in fields.items())
    size = _size_cache.get((key, n))
    if size is None:
        row = {k: np.zeros(shape, dtype=np.dtype(dt)) for k, dt, shape in key}
        # the largest node id and round numbers cost at most 9 bytes each in msgpack
        size = len(encode_transmission(max(n - 1, 0), 2**31, row))
        _size_cache[(key, n)] = size
    return size
