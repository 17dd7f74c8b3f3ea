"""Metrics (names as they appear in metrics.csv), see docs/algorithms.md."""

from __future__ import annotations

import numpy as np


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
    at the average iterate ``x̄``, and ``disagreement`` of the nodes' iterates ``x`` ``[n, P]``."""
    with np.errstate(invalid="ignore", over="ignore"):
        m = task.evaluate(x.mean(axis=0))
        m["disagreement"] = disagreement(x)
    return m
