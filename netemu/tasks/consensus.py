"""Consensus task: each node holds a vector ``x_i⁰``; the goal is the exact mean.

Values are drawn ``N(0, I_dim)`` from the scenario's ``task`` stream, or read from an ``[n, dim]``
``.npy`` file (``[task] x0``). Float64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netemu.errors import ScenarioError, require_file
from netemu.rng import stream


def initial_values(task: dict, n: int, seed: int, base_dir: Path) -> np.ndarray:
    if task.get("x0"):
        shown = task["x0"]
        path = base_dir / shown
        where = f"[task] x0 = {shown!r}"
        require_file(path, where)
        try:
            x0 = np.load(path, allow_pickle=False)
        except Exception as e:
            raise ScenarioError(f"{where}: cannot read it as .npy ({e}); save it with np.save") from None
        if x0.ndim == 1:
            x0 = x0[:, None]
        if x0.ndim != 2 or x0.shape[0] != n:
            raise ScenarioError(f"{where}: array has shape {tuple(x0.shape)}, expected [{n}, dim] "
                                f"for [network] nodes = {n}")
        if x0.dtype.kind not in "iuf":
            raise ScenarioError(f"{where}: array has dtype {x0.dtype}, expected numbers (float64)")
        x0 = x0.astype(np.float64)
        if not np.all(np.isfinite(x0)):
            raise ScenarioError(f"{where}: array holds NaN or infinite values; give finite numbers")
        return x0
    return stream(seed, "task").standard_normal((n, task["dim"]))
