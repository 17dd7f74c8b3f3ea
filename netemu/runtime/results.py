"""What a run produces, and the observer hook both runtimes call (Trio's ``Instrument``).

An ``Observer`` gets every transmission, reception and drop, and a ``sample`` at each point where
metrics are taken. Metrics themselves are an observer (``MetricsRecorder``): the runtime has no
metric code of its own, and anyone can record more by passing another observer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class Observer:
    """No-op hooks; subclass and override what you need. ``t`` is simulated seconds (live runs:
    the planned instant), ``k`` the round (round protocols) or the sample index (event ones)."""

    def transmit(self, label: str, k: int, t: float, senders: np.ndarray, nbytes) -> None: ...

    def deliver(self, label: str, k: int, t: float, recv: np.ndarray, send: np.ndarray) -> None: ...

    def drop(self, label: str, k: int, t: float, recv: np.ndarray, send: np.ndarray, why: str) -> None: ...

    def sample(self, run: "RunResult", k: int, t: float, proto, extra: dict | None = None) -> None: ...


@dataclass
class RunResult:
    label: str
    name: str
    rows: list = field(default_factory=list)  # (round, time, {metric: value})
    counters: dict = field(default_factory=lambda: dict(
        messages_sent=0, deliveries=0, drops=0, late=0, bytes_sent=0, events=0))
    wall_seconds: float = 0.0
    diverged: bool = False
    diverged_at_round: int | None = None
    extra: dict = field(default_factory=dict)  # summary.json additions

    def final(self) -> dict:
        return dict(self.rows[-1][2]) if self.rows else {}


class MetricsRecorder(Observer):
    """Records a run's metrics at every ``sample``; flags the run diverged at the first non-finite
    value, or once the state's magnitude exceeds ``limit`` (the runtime then stops that protocol)."""

    def __init__(self, metrics, limit: float | None = None) -> None:
        self.metrics = metrics  # (proto, k) -> {name: value}
        self.limit = limit

    def sample(self, run, k, t, proto, extra=None):
        m = self.metrics(proto, k)
        if extra:
            m.update(extra)
        run.rows.append((k, t, m))
        if run.diverged:
            return
        if not all(np.isfinite(v) for v in m.values()):
            run.diverged, run.diverged_at_round = True, k
        elif self.limit is not None:
            mag = magnitude(proto.estimate())
            if not mag <= self.limit:  # NaN included
                run.diverged, run.diverged_at_round = True, k
                run.extra["diverged_magnitude"] = mag
        if run.diverged:  # the run's last row: every metric, even between evaluations
            run.rows[-1] = (k, t, {**self.metrics(proto, k, True), **m})


def magnitude(x) -> float:
    """``max |x|`` of an array or tensor (``inf``/``nan`` when not finite)."""
    if type(x).__module__.startswith("torch"):
        return float(x.detach().abs().max()) if x.numel() else 0.0
    x = np.asarray(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return float(np.max(np.abs(x))) if x.size else 0.0
