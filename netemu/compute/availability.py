"""Node availability (``[compute.availability]``): when a node is on at all.

- ``kind = "periods"``: each node alternates on and off periods with exponential durations of
  means ``on`` and ``off`` seconds, starting on with probability ``on / (on + off)``; drawn from
  the ``compute`` stream, so every protocol of a scenario sees the same periods.
- ``kind = "trace"``: a CSV file of ``node,start,end`` lines, each an interval ``[start, end)`` in
  which that node is on (an optional header line is skipped). Nodes the file never names are
  always on.

An off node neither computes, transmits nor receives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netemu.errors import ScenarioError, require_file
from netemu.rng import stream


class Periods:
    def __init__(self, n: int, on: float, off: float, seed: int) -> None:
        self.n, self.on, self.off = n, on, off
        self.rng = stream(seed, "compute", 7)
        self.start_on = self.rng.random(n) < on / (on + off)
        self.switch = np.zeros((n, 0))  # cumulative switch times per node

    def _extend(self, t: float) -> None:
        while self.switch.shape[1] == 0 or self.switch[:, -1].min() <= t:
            k = max(16, self.switch.shape[1])
            first_on = self.start_on if self.switch.shape[1] % 2 == 0 else ~self.start_on
            # alternate: a period that starts "on" lasts Exp(on), else Exp(off)
            parity = (np.arange(k)[None, :] % 2 == 0)
            is_on = np.where(first_on[:, None], parity, ~parity)
            d = self.rng.exponential(1.0, (self.n, k)) * np.where(is_on, self.on, self.off)
            last = self.switch[:, -1:] if self.switch.shape[1] else np.zeros((self.n, 1))
            self.switch = np.concatenate([self.switch, last + np.cumsum(d, axis=1)], axis=1)

    def online(self, t: float) -> np.ndarray:
        self._extend(t)
        passed = (self.switch <= t).sum(axis=1)
        return np.where(passed % 2 == 0, self.start_on, ~self.start_on)


class Trace:
    def __init__(self, n: int, path: Path, shown: str) -> None:
        where = f"[compute.availability] file = {shown!r}"
        require_file(path, where)
        rows = []
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = [p.strip() for p in text.split(",")]
            try:
                node, a, b = int(parts[0]), float(parts[1]), float(parts[2])
            except (ValueError, IndexError):
                if no == 1 or not rows and not any(c.isdigit() for c in text):
                    continue  # header
                raise ScenarioError(f"{where}, line {no}: {text!r} is not 'node,start,end'; "
                                    f"write one interval per line, e.g. 3,0.0,120.5") from None
            if len(parts) != 3 or not 0 <= node < n or not b > a or not np.isfinite([a, b]).all():
                raise ScenarioError(f"{where}, line {no}: {text!r} needs a node in 0..{n - 1} and "
                                    f"finite start < end")
            rows.append((node, a, b))
        self.n = n
        self.listed = np.zeros(n, dtype=bool)
        self.rows = np.array(rows, dtype=np.float64).reshape(-1, 3)
        self.listed[self.rows[:, 0].astype(np.int64)] = True

    def online(self, t: float) -> np.ndarray:
        inside = (self.rows[:, 1] <= t) & (t < self.rows[:, 2])
        on = np.zeros(self.n, dtype=bool)
        on[self.rows[inside, 0].astype(np.int64)] = True
        return on | ~self.listed


def build(cfg: dict | None, n: int, seed: int, base_dir: Path):
    if not cfg:
        return None
    if cfg["kind"] == "trace":
        return Trace(n, base_dir / cfg["file"], cfg["file"])
    return Periods(n, cfg["on"], cfg["off"], seed)
