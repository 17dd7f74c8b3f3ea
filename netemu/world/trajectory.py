"""Piecewise-linear node trajectories: what every mobility model and trace reader produces.

Each node has breakpoints ``(t_0, p_0), (t_1, p_1), …`` with non-decreasing times. Between two
breakpoints the node moves linearly; before the first and after the last it stands still. Two
breakpoints at the same time express a jump (a teleport): at exactly that time the later one
wins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trajectories:
    """Trajectories of ``n`` nodes.

    ``times[k]`` is a float64 array ``[m_k]`` (non-decreasing) and ``points[k]`` a float64 array
    ``[m_k, 3]`` for node ``k``; ``ids[k]`` is the node's id in its source (trace numbering).
    """

    times: list[np.ndarray]
    points: list[np.ndarray]
    ids: list[int]

    def __post_init__(self) -> None:
        self.times = [np.asarray(t, dtype=np.float64) for t in self.times]
        self.points = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in self.points]
        for t, p in zip(self.times, self.points):
            if len(t) == 0 or len(t) != len(p):
                raise ValueError("every node needs at least one breakpoint, times and points alike")

    @property
    def n(self) -> int:
        return len(self.times)

    def positions(self, t: float) -> np.ndarray:
        """Positions ``[n, 3]`` of all nodes at time ``t``."""
        out = np.empty((self.n, 3))
        for k, (ts, ps) in enumerate(zip(self.times, self.points)):
            i = int(np.searchsorted(ts, t, side="right")) - 1
            if i < 0:
                out[k] = ps[0]
            elif i >= len(ts) - 1:
                out[k] = ps[-1]
            else:
                t0, t1 = ts[i], ts[i + 1]
                if t1 <= t0:
                    out[k] = ps[i + 1]
                else:
                    f = (t - t0) / (t1 - t0)
                    out[k] = ps[i] + f * (ps[i + 1] - ps[i])
        return out

    def end_time(self) -> float:
        return max(float(t[-1]) for t in self.times)
