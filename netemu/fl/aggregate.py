"""The shared math of the federated-learning protocols (ALGORITHMS.md, "Asynchronous federated
learning"): staleness weights, the aggregation rules and client selection. Pure functions of
numpy arrays; the protocols (``protocols/fedavg.py`` … ``fedfix.py``) only decide *when* to call
them.

Staleness ``τ = t − τ_start`` counts the server versions applied since the client's model was sent:

- ``constant``: ``s(τ) = 1``;
- ``polynomial``: ``s(τ) = (τ + 1)^(−a)``;
- ``hinge``: ``s(τ) = 1`` if ``τ ≤ b`` else ``1 / (a (τ − b) + 1)`` (FedAsync, Xie et al. 2019);
- FedBuff's ``s(τ) = 1 / √(1 + τ)`` (Nguyen et al. 2022).

Rules (``x`` the server model, float64 ``[P]``):

- FedAvg: ``x ← Σ_i p_i x_i / Σ_i p_i`` over the clients that made the round (``p_i`` data sizes);
- FedAsync: ``α_t = α s(t − τ)``, ``x ← (1 − α_t) x + α_t x_new``;
- FedBuff: ``Δ_i = x_start − x_end``; after ``K`` arrivals ``x ← x − η_g Σ_i s(τ_i) Δ_i / K``;
- FedFix (Fraboni et al. 2022): ``Δ_i = x_end − x_start``; every ``Δt``
  ``x ← x + η_g Σ_{i arrived} p_i Δ_i`` with ``p_i = n_i / Σ_j n_j`` over all clients.
"""

from __future__ import annotations

import numpy as np

STALENESS = ("constant", "polynomial", "hinge")


def staleness_weight(kind: str, tau, a: float = 0.5, b: float = 4.0):
    """``s(τ)`` of FedAsync (``kind`` in ``STALENESS``), for a number or an array ``tau >= 0``."""
    t = np.asarray(tau, dtype=np.float64)
    if kind == "constant":
        w = np.ones_like(t)
    elif kind == "polynomial":
        w = (t + 1.0) ** (-a)
    elif kind == "hinge":
        w = np.where(t <= b, 1.0, 1.0 / (a * np.maximum(t - b, 0.0) + 1.0))  # no 1/0 in the unused branch
    else:
        raise ValueError(f"staleness {kind!r} is not one of {', '.join(STALENESS)}")
    return float(w) if w.ndim == 0 else w


def fedbuff_weight(tau):
    """FedBuff's ``s(τ) = 1 / √(1 + τ)``."""
    w = 1.0 / np.sqrt(1.0 + np.asarray(tau, dtype=np.float64))
    return float(w) if w.ndim == 0 else w


def fedasync_mix(x: np.ndarray, x_new: np.ndarray, alpha: float, weight: float) -> np.ndarray:
    """``(1 − α_t) x + α_t x_new`` with ``α_t = alpha · weight``."""
    at = alpha * weight
    return (1.0 - at) * x + at * x_new


def fedavg(models: np.ndarray, weights) -> np.ndarray:
    """``Σ_i p_i x_i / Σ_i p_i`` of the rows of ``models`` ``[m, P]``."""
    p = np.asarray(weights, dtype=np.float64)
    return (p[:, None] * np.asarray(models, dtype=np.float64)).sum(axis=0) / p.sum()


def fedbuff_step(x: np.ndarray, deltas: np.ndarray, taus, K: int, server_lr: float) -> np.ndarray:
    """``x − η_g Σ_i s(τ_i) Δ_i / K`` for the ``K`` buffered ``Δ_i = x_start − x_end`` (rows)."""
    s = np.asarray(fedbuff_weight(np.asarray(taus)), dtype=np.float64).reshape(-1)
    return x - server_lr * (s[:, None] * np.asarray(deltas, dtype=np.float64)).sum(axis=0) / K


def fedfix_step(x: np.ndarray, deltas: np.ndarray, p, server_lr: float) -> np.ndarray:
    """``x + η_g Σ_i p_i Δ_i`` for the arrived ``Δ_i = x_end − x_start`` (rows) and weights ``p``."""
    if len(deltas) == 0:
        return x
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    return x + server_lr * (p[:, None] * np.asarray(deltas, dtype=np.float64)).sum(axis=0)


def data_weights(sizes) -> np.ndarray:
    """``p_i = n_i / Σ_j n_j``."""
    s = np.asarray(sizes, dtype=np.float64)
    return s / s.sum()


# -- client selection ------------------------------------------------------------------------------

SELECTION = ("uniform", "power-of-choice")


def select_uniform(rng: np.random.Generator, candidates: np.ndarray, m: int) -> np.ndarray:
    """``m`` of ``candidates`` uniformly without replacement (all of them when ``m`` is larger),
    sorted."""
    candidates = np.asarray(candidates, dtype=np.int64)
    if m >= len(candidates):
        return candidates.copy()
    return np.sort(rng.choice(candidates, size=m, replace=False))


def select_power_of_choice(rng: np.random.Generator, candidates: np.ndarray, losses: np.ndarray,
                           d: int, m: int) -> np.ndarray:
    """Power-of-choice (Cho, Wang, Joshi 2022): ``d`` candidates uniformly without replacement,
    the ``m`` of them with the highest local loss (``losses`` indexed by client id; ties by id),
    sorted."""
    pool = select_uniform(rng, candidates, d)
    if m >= len(pool):
        return pool
    order = np.lexsort((pool, -np.asarray(losses, dtype=np.float64)[pool]))
    return np.sort(pool[order[:m]])
