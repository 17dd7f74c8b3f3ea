"""Logistic regression with a non-convex regularizer (PULM paper, appendix B.3; docs/algorithms.md).

A global model ``w* ~ N(0, I_features)``, ``b* ~ N(0, 1)``; node ``i`` has its own
``w_i = w* + σ_h N(0, I)``, ``b_i = b* + σ_h N(0, 1)`` (``sigma_h`` sets the heterogeneity).
Features ``h ~ N(0, I)``; the label is ``+1`` with probability ``sigmoid(h·w_i + b_i)``, else
``−1``. Node ``i`` minimises

    f_i(x) = mean_s log(1 + exp(−y_s h_s·x)) + ρ Σ_k x_k² / (1 + x_k²) + (l2/2) ‖x‖²

over its ``samples``. Each ``h`` is augmented with a constant 1, so ``x = (w, b)`` has
``features + 1`` entries; both regularizers act on all of them, the bias included. ``l2``
(``[task] l2``, default 0) is a ridge term: with ``rho = 0`` the task is convex (strongly convex
when ``l2 > 0``), and ``x*``, ``opt_gap`` and ``dist_opt`` are computed (``netemu.tasks.optimum``);
with ``rho = 0, l2 = 0`` and linearly separable data there is no minimiser, which the solve
reports as an error. With ``l2 = 0`` the arithmetic is exactly that of ``Logistic``. A held-out
set of ``samples // 4`` (at least 1) more draws per node, from the same per-node distributions,
gives ``accuracy``. All draws come from the ``task`` stream.
Gradients are the full local ones unless ``[task] batch`` > 0. Every node starts at ``x = 0``.
"""

from __future__ import annotations

import numpy as np

from netemu.compute.models import Logistic
from netemu.errors import ScenarioError
from netemu.rng import stream
from netemu.tasks.data import DataTask
from netemu.tasks import is_convex, optimum


class RidgeLogistic(Logistic):
    """``Logistic`` plus ``(l2/2)‖x‖²`` (used only when ``l2 > 0``)."""

    def __init__(self, P: int, rho: float, l2: float) -> None:
        super().__init__(P, rho)
        self.l2 = float(l2)

    def loss_grad(self, flat, x, y, w):
        loss, grad = super().loss_grad(flat, x, y, w)
        return loss + 0.5 * self.l2 * (flat * flat).sum(dim=1), grad + self.l2 * flat


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
    l2 = cfg.get("l2", 0.0)
    model = RidgeLogistic(P, cfg["rho"], l2) if l2 > 0 else Logistic(P, cfg["rho"])
    h, y = h.reshape(-1, P), y.reshape(-1)
    objective = None
    if is_convex(cfg):  # rho = 0
        objective = optimum.Objective(h, y, np.full(len(y), 1.0 / len(y)), optimum.logistic, l2=l2,
                                      check=None if l2 > 0 else _not_separable)
    return DataTask(model, h, y, [cfg["samples"]] * n, test=(ht.reshape(-1, P), yt.reshape(-1)),
                    batch=cfg["batch"] or 0, init=np.zeros(P), device=device, dtype=dtype,
                    kind="logistic", objective=objective)


def _not_separable(objective, opt) -> None:
    """Without a ridge term, a stationary point has some margin ``y h·x ≤ 0`` (else scaling ``x``
    up lowers every loss term); all margins positive means separable data and no minimiser."""
    if np.all(objective.y * (objective.A @ opt.x) > 0):
        raise ScenarioError("[task] kind = \"logistic\", rho = 0, l2 = 0: the nodes' data are linearly "
                            "separable, so F has no minimiser and opt_gap/dist_opt are undefined; set "
                            "[task] l2 > 0 (e.g. l2 = 0.001) or use more samples")
