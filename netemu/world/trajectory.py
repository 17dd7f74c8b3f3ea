"""Piecewise-linear node trajectories: what every mobility model and trace reader produces.

Each node has breakpoints ``(t_0, p_0), (t_1, p_1), …`` with non-decreasing times. Between two
breakpoints the node moves linearly; before the first and after the last it stands still. Two
breakpoints at the same time express a jump (a teleport): at exactly that time the later one
wins.

``positions(t)`` is vectorized over nodes: all breakpoints live in one flat array and every
node's segment is found by the same bisection, run on all nodes at once (about ``log2`` of the
longest trajectory numpy steps, whatever the number of nodes). It only compares times, so it
is exact: a query at a breakpoint's time returns that breakpoint (the later one of a jump).
Treat a ``Trajectories`` as immutable once built: the flat arrays are made on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


class NodeViews(Sequence):
    """Node ``k``'s slice ``flat[start[k]:end[k]]`` of a flat array, made when asked for: a list
    of ``n`` views that costs nothing per node until used (a million static nodes: seconds of
    ``np.split`` saved)."""

    __slots__ = ("flat", "start", "end")

    def __init__(self, flat: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        self.flat, self.start, self.end = flat, start, end

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        return self.flat[self.start[k]:self.end[k]]

    def __iter__(self):
        flat = self.flat
        for a, b in zip(self.start.tolist(), self.end.tolist()):
            yield flat[a:b]

    def __add__(self, other) -> list:
        return list(self) + list(other)


@dataclass
class Trajectories:
    """Trajectories of ``n`` nodes.

    ``times[k]`` is a float64 array ``[m_k]`` (non-decreasing) and ``points[k]`` a float64 array
    ``[m_k, 3]`` for node ``k``; ``ids[k]`` is the node's id in its source (trace numbering).
    """

    times: list[np.ndarray]
    points: list[np.ndarray]
    ids: list[int]
    _flat: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.times = [np.asarray(t, dtype=np.float64).reshape(-1) for t in self.times]
        self.points = [np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in self.points]
        self.ids = [int(i) for i in self.ids]
        if len(self.ids) != len(self.times) or len(self.points) != len(self.times):
            raise ValueError("times, points and ids need one entry per node")
        for t, p in zip(self.times, self.points):
            if len(t) == 0 or len(t) != len(p):
                raise ValueError("every node needs at least one breakpoint, times and points alike")
            if np.any(np.diff(t) < 0):
                raise ValueError("breakpoint times must be non-decreasing")

    @classmethod
    def from_flat(cls, ids, lengths, times, points) -> "Trajectories":
        """Trajectories from all nodes' breakpoints laid end to end, node by node.

        Node ``k`` has the next ``lengths[k]`` entries of ``times`` ``[m]`` and ``points``
        ``[m, 3]``. The same checks as the constructor, vectorized; the nodes' arrays are views.
        """
        lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
        times = np.ascontiguousarray(times, dtype=np.float64).reshape(-1)
        points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
        ids = [int(i) for i in ids]
        if not ids and not len(times):
            return cls([], [], [])
        if len(ids) != len(lengths) or (lengths < 1).any() or len(times) != lengths.sum() \
                or len(points) != len(times):
            raise ValueError("every node needs at least one breakpoint, times and points alike")
        end = np.cumsum(lengths)
        start = end - lengths
        falls = np.diff(times) < 0
        falls[end[:-1] - 1] = False  # from one node's last breakpoint to the next node's first
        if falls.any():
            raise ValueError("breakpoint times must be non-decreasing")
        self = cls.__new__(cls)
        self.times = NodeViews(times, start, end)  # np.split would make n arrays up front
        self.points = NodeViews(points, start, end)
        self.ids = ids
        steps = int(np.ceil(np.log2(lengths.max() + 1))) if len(ids) else 0
        self._flat = (start, end, times, points, steps)
        return self

    @property
    def n(self) -> int:
        return len(self.times)

    def still(self) -> bool:
        """Every node has one breakpoint (it stands there at every time)."""
        start, end = self._arrays()[:2]
        return bool(np.all(end - start == 1))

    def _arrays(self) -> tuple:
        if self._flat is None:
            lengths = np.array([len(t) for t in self.times], dtype=np.int64)
            end = np.cumsum(lengths)
            start = end - lengths
            flat_t = np.concatenate(self.times) if self.n else np.empty(0)
            flat_p = np.concatenate(self.points) if self.n else np.empty((0, 3))
            steps = int(np.ceil(np.log2(lengths.max() + 1))) if self.n else 0
            self._flat = (start, end, flat_t, flat_p, steps)
        return self._flat

    def positions(self, t: float) -> np.ndarray:
        """Positions ``[n, 3]`` of all nodes at time ``t``."""
        start, end, ft, fp, steps = self._arrays()
        t = float(t)
        # Bisection on every node at once: afterwards lo[k] is the first breakpoint of node k
        # whose time is > t, so lo - 1 is the last one at or before t (the later of a jump).
        lo, hi = start.copy(), end.copy()
        for _ in range(steps):
            active = lo < hi
            if not active.any():
                break
            mid = (lo + hi) // 2
            go_right = active & (ft[np.minimum(mid, len(ft) - 1)] <= t)
            lo = np.where(go_right, mid + 1, lo)
            hi = np.where(active & ~go_right, mid, hi)
        i = lo - 1
        before = i < start  # t precedes the first breakpoint: stand at it
        after = i >= end - 1  # at or after the last breakpoint: stand at it
        inner = ~(before | after)
        out = np.empty((self.n, 3))
        out[before] = fp[start[before]]
        out[after] = fp[end[after] - 1]
        j = i[inner]
        t0, t1 = ft[j], ft[j + 1]  # t0 <= t < t1, so t1 > t0
        f = (t - t0) / (t1 - t0)
        out[inner] = fp[j] + f[:, None] * (fp[j + 1] - fp[j])
        return out

    def end_time(self) -> float:
        return max(float(t[-1]) for t in self.times)
