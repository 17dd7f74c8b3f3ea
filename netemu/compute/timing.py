"""How long local steps take, and which nodes miss their round's broadcast (stragglers).

**Step times** (``[compute]``): the duration of node ``i``'s ``j``-th local step is

    base(i, j) × slowdown(i, j) / speed_i

with ``base`` from ``[compute.step_time]`` (``fixed``: ``value``; ``lognormal``: ``median`` and
``sigma``; ``exponential``: ``mean``; ``none``: zero), ``speed_i`` from ``[compute.speeds]``
(``uniform`` in ``[low, high]``, ``lognormal`` with median 1 and ``sigma``, or one number per node
from a file) and ``slowdown = [compute.stragglers] slowdown`` for a ``fraction`` of the steps
(each step independently, or a fixed set of nodes when ``persistent = true``), else 1. Every draw
comes from the ``compute`` stream keyed by ``(i, j)``: all protocols see the same durations for a
node's ``j``-th step (common random numbers).

**Rounds** (``Clock``): the local steps a protocol requests at a round boundary form that round's
*compute phase*; a node starts when it is free (it may still be busy with an earlier step) and
runs its steps back to back. The round's broadcast happens when every online node of the phase
is done, but no later than ``deadline × steps`` after the phase starts (``[compute] deadline``,
seconds per local step; none: wait for all). A node whose steps are not done by the broadcast
does not broadcast that round, nor in later rounds while it is still busy (its neighbours see it
as silent; it is counted in ``stragglers``), and its late steps are dropped: ``compute.late``
tells the protocol which nodes' steps of this phase to ignore. Off nodes (see ``availability``)
start no steps, and neither transmit nor receive.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from netemu.compute import availability
from netemu.errors import ScenarioError, require_file
from netemu.rng import stream

_EPS = 1e-9  # relative: times are sums of many step durations
MAX_STEP = 1e15  # seconds: a nominal step × slowdown / slowest speed beyond this is refused


def _speeds(cfg: dict | None, n: int, seed: int, base_dir: Path) -> np.ndarray:
    if not cfg or cfg["dist"] == "none":
        return np.ones(n)
    rng = stream(seed, "compute", 1)
    if cfg["dist"] == "uniform":
        return rng.uniform(cfg["low"], cfg["high"], n)
    if cfg["dist"] == "lognormal":
        with np.errstate(over="ignore", under="ignore"):
            v = np.exp(cfg["sigma"] * rng.standard_normal(n))
        if not (np.all(np.isfinite(v)) and np.all(v > 0)):
            raise ScenarioError(f"[compute.speeds] sigma = {cfg['sigma']:g} draws speed factors that overflow "
                                f"or vanish; lower sigma")
        return v
    shown = cfg["file"]
    path = base_dir / shown
    where = f"[compute.speeds] file = {shown!r}"
    require_file(path, where)
    try:
        v = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=1)
    except Exception as e:
        raise ScenarioError(f"{where}: cannot read it ({e}); give a .npy or one number per line") from None
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if len(v) != n or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ScenarioError(f"{where}: needs {n} positive finite speed factors (one per node), "
                            f"got {len(v)} values")
    return v


class StepTimes:
    def __init__(self, cfg: dict, n: int, seed: int, base_dir: Path) -> None:
        self.n, self.seed = n, seed
        st = cfg.get("step_time") or {"dist": "none"}
        self.dist = st["dist"]
        self.st = st
        self.speed = _speeds(cfg.get("speeds"), n, seed, base_dir)
        sg = cfg.get("stragglers") or {"fraction": 0.0, "slowdown": 1.0, "persistent": False}
        self.fraction, self.slowdown, self.persistent = sg["fraction"], sg["slowdown"], sg["persistent"]
        self.slow_nodes = stream(seed, "compute", 2).random(n) < self.fraction
        self._cache: dict[int, np.ndarray] = {}
        worst = 5.0 * self.nominal() * max(self.slowdown, 1.0) / float(self.speed.min()) if n else 0.0
        if not worst <= 5 * MAX_STEP:  # NaN and inf too
            raise ScenarioError(f"[compute] a step of {self.nominal():g} s × slowdown {self.slowdown:g} / the "
                                f"slowest speed {float(self.speed.min()):g} is beyond {MAX_STEP:g} s; lower "
                                f"[compute.step_time] or [compute.stragglers] slowdown, or raise [compute.speeds]")

    def nominal(self) -> float:
        """The typical step time (fixed value, median or mean) before speeds and slowdowns."""
        return {"none": 0.0, "fixed": self.st.get("value") or 0.0, "lognormal": self.st.get("median") or 0.0,
                "exponential": self.st.get("mean") or 0.0}[self.dist]

    def _row(self, j: int) -> np.ndarray:
        row = self._cache.get(j)
        if row is None:
            rng = stream(self.seed, "compute", 3, j)
            if self.dist == "none":
                base = np.zeros(self.n)
            elif self.dist == "fixed":
                base = np.full(self.n, self.st["value"])
            elif self.dist == "lognormal":
                with np.errstate(over="ignore"):  # an infinite step is refused below
                    base = self.st["median"] * np.exp(self.st["sigma"] * rng.standard_normal(self.n))
            else:
                base = rng.exponential(self.st["mean"], self.n)
            slow = self.slow_nodes if self.persistent else rng.random(self.n) < self.fraction
            with np.errstate(over="ignore"):
                row = base * np.where(slow, self.slowdown, 1.0) / self.speed
            if not np.all(np.isfinite(row)):
                i = int(np.flatnonzero(~np.isfinite(row))[0])
                raise ScenarioError(f"[compute.step_time] node {i}'s step {j} takes {row[i]:g} s (dist = "
                                    f"{self.dist!r}: {self._how()} × slowdown / speed overflows); lower "
                                    f"{self._keys()}")
            self._cache[j] = row
        return row

    def _how(self) -> str:
        return {"fixed": f"value = {self.st.get('value')}", "lognormal": f"median = {self.st.get('median')} "
                f"× exp(sigma = {self.st.get('sigma')} × z)", "exponential": f"mean = {self.st.get('mean')}",
                "none": "0"}[self.dist]

    def _keys(self) -> str:
        return {"lognormal": "[compute.step_time] sigma or median", "fixed": "[compute.step_time] value",
                "exponential": "[compute.step_time] mean"}.get(self.dist, "[compute.step_time]") + \
            " or [compute.stragglers] slowdown"

    def draw(self, nodes: np.ndarray, steps: np.ndarray) -> np.ndarray:
        out = np.empty(len(nodes))
        for j in np.unique(steps):
            sel = steps == j
            out[sel] = self._row(int(j))[nodes[sel]]
        return out


class Clock:
    """Per-node busy times and the compute phase of each round (see the module docstring)."""

    def __init__(self, cfg: dict, n: int, seed: int, base_dir: Path) -> None:
        self.n = n
        self.times = StepTimes(cfg, n, seed, base_dir)
        self.avail = availability.build(cfg.get("availability"), n, seed, base_dir)
        self.deadline = cfg.get("deadline")
        self.step_index = np.zeros(n, dtype=np.int64)
        self.busy_until = np.zeros(n)
        self.windows: list[float] = []
        self._reset()

    def _reset(self) -> None:
        self.phase_time = np.zeros(self.n)
        self.phase_steps = np.zeros(self.n, dtype=np.int64)

    def request(self, nodes: np.ndarray) -> None:
        """One local step for each of ``nodes`` in the current phase."""
        d = self.times.draw(nodes, self.step_index[nodes])
        np.add.at(self.step_index, nodes, 1)
        np.add.at(self.phase_time, nodes, d)
        np.add.at(self.phase_steps, nodes, 1)

    def online(self, t: float) -> np.ndarray:
        return np.ones(self.n, dtype=bool) if self.avail is None else self.avail.online(t)

    def compute_time(self) -> float:
        """Total length of all compute phases so far (exactly summed)."""
        return math.fsum(self.windows)

    def phase(self, s: float) -> tuple[float, np.ndarray]:
        """Close the phase starting at ``s``: its window (seconds until the broadcast) and which
        nodes' steps are late (dropped)."""
        has = self.phase_steps > 0
        late = np.zeros(self.n, dtype=bool)
        window = 0.0
        if has.any():
            on = self.online(s)
            run = has & on
            start = np.maximum(self.busy_until - s, 0.0)
            finish = start + self.phase_time
            window = float(finish[run].max()) if run.any() else 0.0
            if self.deadline is not None:
                window = min(window, self.deadline * int(self.phase_steps.max()))
            if not math.isfinite(s + window):
                raise ScenarioError(f"[compute] the compute phase at t = {s:g} s lasts {window:g} s and time "
                                    f"overflows; lower [compute.step_time] or [compute.stragglers] slowdown, "
                                    f"or set [compute] deadline")
            late = has & ~(on & (finish <= window + _EPS * max(1.0, window)))
            self.busy_until[run] = s + finish[run]
        self.windows.append(window)
        self._reset()
        return window, late

    def free(self, t: float) -> np.ndarray:
        """Nodes done with every step by time ``t`` (up to rounding of the summed times)."""
        return self.busy_until <= t + _EPS * max(1.0, abs(t))
