"""Metrics (names as they appear in metrics.csv), see docs/algorithms.md."""

from __future__ import annotations

import numpy as np

from netemu.arrays import host, is_tensor

# every metric a run can record (``[output] metrics`` names them)
CONSENSUS = ("consensus_error", "disagreement")
OPTIMIZATION = ("loss", "grad_norm_sq", "accuracy", "perplexity", "disagreement", "stragglers", "offline")
CONVEX = ("opt_gap", "dist_opt", "dist_opt_worst")  # only tasks with a known optimum x*
NAMES = tuple(dict.fromkeys(CONSENSUS + OPTIMIZATION + CONVEX))


def consensus_error(x: np.ndarray, target: np.ndarray) -> float:
    """``max_i ‖x_i − mean(x⁰)‖_∞``."""
    return float(np.max(np.abs(x - target[None, :])))


def disagreement(x: np.ndarray) -> float:
    """``max_i ‖x_i − mean_j x_j‖_∞`` (on the device for tensor state: one number comes back)."""
    if is_tensor(x):  # max |x_ij − m_j| = max(max_i x_ij − m_j, m_j − min_i x_ij): rounding is monotone
        import torch

        lo, hi = x.amin(dim=0), x.amax(dim=0)  # (two reductions beat one aminmax over dim 0 on a CPU)
        m = x.mean(dim=0)
        return float(torch.maximum(hi - m, m - lo).max())
    return float(np.max(np.abs(x - x.mean(axis=0, keepdims=True))))


def consensus_metrics(x: np.ndarray, target: np.ndarray) -> dict:
    with np.errstate(invalid="ignore", over="ignore"):
        return {"consensus_error": consensus_error(x, target), "disagreement": disagreement(x)}


def optimization_metrics(task, x: np.ndarray, full: bool = True) -> dict:
    """``loss = F(x̄)``, ``grad_norm_sq = ‖∇F(x̄)‖²``, ``accuracy`` (classifiers with held-out data)
    at the average iterate ``x̄``, and ``disagreement`` of the nodes' iterates ``x`` ``[n, P]``.
    Convex tasks (``task.convex``) add ``opt_gap = F(x̄) − F*``, ``dist_opt = ‖x̄ − x*‖₂`` (from
    ``task.evaluate``) and ``dist_opt_worst = max_i ‖x_i − x*‖₂``. ``full = False``: the cheap
    metrics only (``disagreement``), for the rounds between evaluations."""
    with np.errstate(invalid="ignore", over="ignore"):
        if not full:
            return {"disagreement": disagreement(x)}
        m = task.evaluate(x.mean(dim=0) if is_tensor(x) else x.mean(axis=0))
        m["disagreement"] = disagreement(x)
        if getattr(task, "convex", False):
            xh = host(x)
            m["dist_opt_worst"] = (float(np.max(task.objective.dist(xh))) if np.all(np.isfinite(xh))
                                   else float("nan"))
    return m


EVAL_BUDGET = 2_000_000  # sample-parameters of one evaluation below which every round is evaluated


def eval_every(task, rounds: int, given: int | None) -> int:
    """Rounds between full evaluations: ``given``, or every round for a cheap evaluation (under
    ``EVAL_BUDGET`` training samples × parameters), else about 100 evaluations per run."""
    if given is not None:
        return given
    cost = int(getattr(task, "samples", 0)) * int(getattr(task, "dim", 0))
    return 1 if cost <= EVAL_BUDGET else max(1, -(-rounds // 100))
