"""Heterogeneous least squares (docs/algorithms.md, Tasks): a convex task with a known optimum.

A global ``w* ~ N(0, I_features)``; node ``i`` has ``samples`` rows ``A_i ~ N(0, I)`` and targets
``b_i = A_i (w* + σ_h ξ_i) + 0.1 ε`` with ``ξ_i ~ N(0, I)``, ``ε ~ N(0, I)`` (``sigma_h`` sets how
far apart the nodes' own minimisers are). Node ``i`` minimises

    f_i(x) = ‖A_i x − b_i‖² / (2 · samples),      F = (1/n) Σ_i f_i,

so ``x* = (Σ_i A_iᵀ A_i)⁻¹ Σ_i A_iᵀ b_i`` (the runtime solves for it with L-BFGS, see
``netemu.tasks.optimum``; when ``n · samples < features`` the minimiser is not unique and ``x*`` is
the least-norm one). No bias term, no held-out data (no ``accuracy``). All draws come from the
``task`` stream. Gradients are the full local ones unless ``[task] batch`` > 0; every node starts
at ``x = 0``.
"""

from __future__ import annotations

import numpy as np
import torch

from netemu.rng import stream
from netemu.tasks.data import DataTask
from netemu.tasks.optimum import Objective, squared


class LeastSquares:
    """``f(x) = Σ_b w_b (a_b·x − y_b)² / 2`` on flat parameters ``[m, P]``, batched over nodes like
    ``netemu.compute.models.Logistic``."""

    classifier = False

    def __init__(self, P: int) -> None:
        self.P = int(P)

    def loss_grad(self, flat, x, y, w):
        r = torch.einsum("mbf,mf->mb", x, flat) - y
        wr = w * r
        return 0.5 * (wr * r).sum(dim=1), torch.einsum("mb,mbf->mf", wr, x)


def make_data(n: int, samples: int, features: int, sigma_h: float, rng: np.random.Generator):
    """``A`` ``[n, samples, features]`` and ``b`` ``[n, samples]``."""
    w_star = rng.standard_normal(features)
    w = w_star[None, :] + sigma_h * rng.standard_normal((n, features))
    A = rng.standard_normal((n, samples, features))
    b = np.einsum("nmf,nf->nm", A, w) + 0.1 * rng.standard_normal((n, samples))
    return A, b


def build(cfg: dict, n: int, seed: int, device, dtype) -> DataTask:
    m, P = cfg["samples"], cfg["features"]
    A, b = make_data(n, m, P, cfg["sigma_h"], stream(seed, "task"))
    A, b = A.reshape(-1, P), b.reshape(-1)
    objective = Objective(A, b, np.full(len(b), 1.0 / (n * m)), squared)
    return DataTask(LeastSquares(P), A, b, [m] * n, batch=cfg["batch"] or 0, init=np.zeros(P),
                    device=device, dtype=dtype, kind="quadratic", objective=objective)
