"""Logistic regression with a non-convex regularizer (PULM paper, appendix B.3; docs/algorithms.md).

A global model ``w* ~ N(0, I_features)``, ``b* ~ N(0, 1)``; node ``i`` has its own
``w_i = w* + σ_h N(0, I)``, ``b_i = b* + σ_h N(0, 1)`` (``sigma_h`` sets the heterogeneity).
Features ``h ~ N(0, I)``; the label is ``+1`` with probability ``sigmoid(h·w_i + b_i)``, else
``−1``. Node ``i`` minimises

    f_i(x) = mean_s log(1 + exp(−y_s h_s·x)) + ρ Σ_k x_k² / (1 + x_k²)

over its ``samples``. Each ``h`` is augmented with a constant 1, so ``x = (w, b)`` has
``features + 1`` entries. A held-out set of ``samples // 4`` (at least 1) more draws per node,
from the same per-node distributions, gives ``accuracy``. All draws come from the ``task`` stream.
Gradients are the full local ones unless ``[task] batch`` > 0. Every node starts at ``x = 0``.
"""

from __future__ import annotations

import numpy as np

from netemu.compute.models import Logistic
from netemu.rng import stream
from netemu.tasks.data import DataTask


def make_data(n: int, samples: int, features: int, sigma_h: float, rng: np.random.Generator):
    w_star, b_star = rng.standard_normal(features), rng.standard_normal()
    w = w_star[None, :] + sigma_h * rng.standard_normal((n, features))
    b = b_star + sigma_h * rng.standard_normal(n)

    def draw(m: int):
        h = rng.standard_normal((n, m, features))
        p = 1.0 / (1.0 + np.exp(-(np.einsum("nmf,nf->nm", h, w) + b[:, None])))
        y = np.where(rng.random((n, m)) < p, 1.0, -1.0)
        return np.concatenate([h, np.ones((n, m, 1))], axis=2), y

    return draw(samples), draw(max(1, samples // 4))


def build(cfg: dict, n: int, seed: int, device, dtype) -> DataTask:
    rng = stream(seed, "task")
    (h, y), (ht, yt) = make_data(n, cfg["samples"], cfg["features"], cfg["sigma_h"], rng)
    P = cfg["features"] + 1
    return DataTask(Logistic(P, cfg["rho"]), h.reshape(-1, P), y.reshape(-1), [cfg["samples"]] * n,
                    test=(ht.reshape(-1, P), yt.reshape(-1)), batch=cfg["batch"] or 0,
                    init=np.zeros(P), device=device, dtype=dtype, kind="logistic")
