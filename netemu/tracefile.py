"""The event trace (``events.msgpack``): one msgpack map per transmission, reception and drop.

Records, written one after another (read them with ``msgpack.Unpacker``)::

    {"e": "tx",   "p": label, "r": round, "t": time, "src": j, "bytes": size}
    {"e": "rx",   "p": label, "r": round, "t": time, "src": j, "dst": i}
    {"e": "drop", "p": label, "r": round, "t": time, "src": j, "dst": i, "why": "loss" | "late" | "range" | "collision" | "busy"}
    {"e": "departed", "p": label, "r": round, "t": time, …}   (live: an external node fell silent)

The first record is a header ``{"e": "header", "format": "netemu-events", "version": 1}``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import msgpack

from netemu.runtime.results import Observer
from netemu.errors import NetemuError


class TraceWriter(Observer):
    def __init__(self, path: Path) -> None:
        self.f = open(path, "wb")
        self.pk = msgpack.Packer(use_bin_type=True)
        self.f.write(self.pk.pack({"e": "header", "format": "netemu-events", "version": 1}))

    def transmit(self, label, k, t, senders, nbytes):
        w, pk = self.f.write, self.pk.pack
        for j in senders.tolist():
            w(pk({"e": "tx", "p": label, "r": k, "t": t, "src": j, "bytes": nbytes}))

    def deliver(self, label, k, t, recv, send):
        w, pk = self.f.write, self.pk.pack
        for i, j in zip(recv.tolist(), send.tolist()):
            w(pk({"e": "rx", "p": label, "r": k, "t": t, "src": j, "dst": i}))

    def drop(self, label, k, t, recv, send, why):
        w, pk = self.f.write, self.pk.pack
        for i, j in zip(recv.tolist(), send.tolist()):
            w(pk({"e": "drop", "p": label, "r": k, "t": t, "src": j, "dst": i, "why": why}))

    def record(self, record: dict) -> None:
        """Write one record that no observer hook carries (e.g. a live node's departure)."""
        self.f.write(self.pk.pack(record))

    def close(self) -> None:
        self.f.close()


def summarize(path: Path) -> str:
    """A readable table of the trace: per protocol, counts of each event kind and bytes."""
    if not Path(path).is_file():
        raise NetemuError(f"{path}: no such trace file; run with [output] trace = true to write events.msgpack")
    counts: dict = defaultdict(Counter)
    nbytes: Counter = Counter()
    rounds: dict = defaultdict(set)
    with open(path, "rb") as f:
        unpacker = msgpack.Unpacker(f, raw=False)
        try:
            head = next(unpacker)
        except StopIteration:
            raise NetemuError(f"{path}: empty file; not a netemu event trace") from None
        except Exception:
            raise NetemuError(f"{path}: not a netemu event trace (not msgpack)") from None
        if not isinstance(head, dict) or head.get("format") != "netemu-events":
            raise NetemuError(f"{path}: not a netemu event trace (no netemu-events header)")
        try:
            for rec in unpacker:
                p, e = rec["p"], rec["e"]
                key = e if e != "drop" else f"drop:{rec['why']}"
                counts[p][key] += 1
                rounds[p].add(rec["r"])
                if e == "tx":
                    nbytes[p] += rec["bytes"]
        except Exception as exc:
            raise NetemuError(f"{path}: trace is truncated or corrupt ({exc})") from None
    # a shared medium's drops ([network.mac]) get their own columns, when the trace has any
    mac = [k for k in ("drop:collision", "drop:busy") if any(c[k] for c in counts.values())]
    head = "".join(f"{k:>16}" for k in mac)
    lines = [f"{'protocol':<16}{'rounds':>8}{'tx':>10}{'rx':>10}{'drop:loss':>11}{'drop:late':>11}{head}{'bytes':>14}"]
    for p in counts:
        c = counts[p]
        cols = "".join(f"{c[k]:>16}" for k in mac)
        lines.append(f"{p:<16}{len(rounds[p]):>8}{c['tx']:>10}{c['rx']:>10}{c['drop:loss']:>11}"
                     f"{c['drop:late']:>11}{cols}{nbytes[p]:>14}")
    return "\n".join(lines)
