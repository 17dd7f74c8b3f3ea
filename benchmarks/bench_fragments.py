"""What fragments (live wire format version 2) cost a receiver and a sender per byte, against
handling the same message whole, measured in the same process.

    python benchmarks/bench_fragments.py [--sizes 0.4 4 16] [--repeat 5] [--key]

For a model message of each size (MB; a float32 vector in a ``tx`` as ``wire.encode_event`` makes
it), **whole** is what any receiver pays for a message of that size (``msgpack`` decode, plus with
``--key`` one BLAKE2b tag over it); **fragmented** is the sender's ``fragments.split`` into
65000-byte datagrams (and a tag per fragment with ``--key``) plus the receiver's per-fragment
decode (and tag check), ``Reassembler.feed`` and the decode of the joined message. Printed:
MB/s of each (medians of ``--repeat`` runs, alternated) and their ratio, and the datagrams per
message. UDP itself is not in it (loopback costs the same bytes either way).
"""

from __future__ import annotations

import argparse
import statistics
import time

import msgpack
import numpy as np

from netemu import wire
from netemu.live import auth, fragments

KEY = b"0123456789abcdef0123456789abcdef"


def whole(msg: bytes, ring) -> None:
    if ring is not None:
        ring.open(ring.seal(msg, 1, 1), 1)
    msgpack.unpackb(msg, raw=False)


def fragmented(msg: bytes, ring, room: int) -> None:
    r = fragments.Reassembler(64 << 20, 256 << 20, 60.0)
    out = None
    for s, piece in enumerate(fragments.split(msg, 0, room), 1):
        if ring is not None:
            piece, _, _ = ring.open(ring.seal(piece, 1, s), 1)
        out = r.feed("a", msgpack.unpackb(piece, raw=False), 0.0) or out
    msgpack.unpackb(out, raw=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=float, nargs="*", default=[0.4, 4.0, 16.0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--key", action="store_true")
    a = ap.parse_args()
    ring = auth.Keyring(KEY, bytes(16)) if a.key else None
    room = 65000 - (auth.TRAILER if a.key else 0)
    print(f"{'MB':>6} {'datagrams':>9} {'whole MB/s':>11} {'fragmented MB/s':>16} {'ratio':>6}")
    for mb in a.sizes:
        msg = wire.encode_event(0, 0, 0.0, {"x": np.zeros(int(mb * 1e6 / 4), np.float32)}, 1)
        tw, tf = [], []
        for _ in range(a.repeat):
            t = time.perf_counter()
            whole(msg, ring)
            tw.append(time.perf_counter() - t)
            t = time.perf_counter()
            fragmented(msg, ring, room)
            tf.append(time.perf_counter() - t)
        w, f = statistics.median(tw), statistics.median(tf)
        k = len(fragments.split(msg, 0, room))
        print(f"{len(msg) / 1e6:6.2f} {k:9d} {len(msg) / 1e6 / w:11.0f} {len(msg) / 1e6 / f:16.0f} {w / f:6.2f}")


if __name__ == "__main__":
    main()
