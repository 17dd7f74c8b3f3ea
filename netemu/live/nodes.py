"""The receiving ends of a live session: each local node's socket, and the metrics recorder that
waits for external nodes' transmissions."""

from __future__ import annotations

import time as _time

import numpy as np

from netemu.live import auth, fragments
from netemu.live import messages as M
from netemu.live.external import Externals
from netemu.runtime.results import MetricsRecorder


class LocalNode:
    """The socket of one local node: keeps what the medium sends it, rejects anything else;
    with a key, each copy must carry a valid tag for this node and a fresh sequence number.
    Fragments go to ``frags`` (shared by the process's local nodes); a message joins the inbox
    once whole."""

    def __init__(self, i: int, inbox: list, medium_addr, rejected: dict, wake,
                 keys: auth.Keyring | None = None, dropped: dict | None = None,
                 frags: fragments.Reassembler | None = None) -> None:
        self.i, self.inbox, self.medium_addr, self.rejected = i, inbox, medium_addr, rejected
        self.wake = wake
        self.keys, self.dropped = keys, dropped
        self.window = auth.Window() if keys is not None else None
        self.frags = frags

    def datagram_received(self, data: bytes, addr) -> None:
        if addr != self.medium_addr:
            self.rejected["not_medium"] += 1
            return
        if self.keys is not None:
            try:
                data, seq, _ = self.keys.open(data, self.i)
                gap = self.window.accept(seq)
            except M.Rejected as e:
                self.rejected[e.reason] += 1
                return
            if gap:
                self.dropped["seq_gap"] += gap
        if self.frags is not None and fragments.is_fragment(data):
            try:
                data = self.frags.feed(self.i, M.decode(data, len(data)), _time.monotonic())
            except M.Rejected as e:
                self.rejected[e.reason] += 1
                return
            if data is None:
                return
        self.inbox.append((self.i, data))
        self.wake()

    def error_received(self, exc) -> None:
        pass


class LiveRecorder(MetricsRecorder):
    """Metrics of a live run: with external nodes, a point waits until their transmissions of
    that round are in (``flush`` records the last one after their final reports)."""

    def __init__(self, metrics, ext: Externals, limit: float | None = None, reports: bool = True) -> None:
        super().__init__(metrics, limit)
        self.ext = ext
        self.reports = reports  # False: external nodes are FL clients, the server's model is the estimate
        self.pending = None

    def sample(self, run, k, t, proto, extra=None):
        if not self.ext.ids or not self.reports:
            return super().sample(run, k, t, proto, extra)
        self.flush(run)
        self.pending = (k, t, np.array(proto.estimate(), copy=True), extra)

    def flush(self, run) -> None:
        if self.pending is None:
            return
        k, t, est, extra = self.pending
        self.pending = None
        holder = type("Est", (), {"estimate": lambda _self: self.ext.apply(est)})()  # noqa: B023
        super().sample(run, k, t, holder, extra)
