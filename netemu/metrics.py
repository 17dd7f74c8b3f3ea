"""Metrics (names as they appear in metrics.csv), see docs/algorithms.md."""

from __future__ import annotations

import numpy as np

# every metric a run can record (``[output] metrics`` names them)
CONSENSUS = ("consensus_error", "disagreement")
OPTIMIZATION = ("loss", "grad_norm_sq", "accuracy", "disagreement", "stragglers", "offline")
CONVEX = ("opt_gap", "dist_opt", "dist_opt_worst")  # only tasks with a known optimum x*
NAMES = tuple(dict.fromkeys(CONSENSUS + OPTIMIZATION + CONVEX))


def consensus_error(x: np.ndarray, target: np.ndarray) -> float:
    """``max_i ‖x_i − mean(x⁰)‖_∞``."""
    return float(np.max(np.abs(x - target[None, :])))


def disagreement(x: np.ndarray) -> float:
    """``max_i ‖x_i − mean_j x_j‖_∞``."""
    return float(np.max(np.abs(x - x.mean(axis=0, keepdims=True))))


def consensus_metrics(x: np.ndarray, target: np.ndarray) -> dict:
    with np.errstate(invalid="ignore", over="ignore"):
        return {"consensus_error": consensus_error(x, target), "disagreement": disagreement(x)}


def optimization_metrics(task, x: np.ndarray) -> dict:
    """``loss = F(x̄)``, ``grad_norm_sq = ‖∇F(x̄)‖²``, ``accuracy`` (classifiers with held-out data)
    at the average iterate ``x̄``, and ``disagreement`` of the nodes' iterates ``x`` ``[n, P]``.
    Convex tasks (``task.convex``) add ``opt_gap = F(x̄) − F*``, ``dist_opt = ‖x̄ − x*‖₂`` (from
    ``task.evaluate``) and ``dist_opt_worst = max_i ‖x_i − x*‖₂``."""
    with np.errstate(invalid="ignore", over="ignore"):
        m = task.evaluate(x.mean(axis=0))
        m["disagreement"] = disagreement(x)
        if getattr(task, "convex", False):
            m["dist_opt_worst"] = (float(np.max(task.objective.dist(x))) if np.all(np.isfinite(x))
                                   else float("nan"))
    return m
