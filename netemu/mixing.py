"""Shared math of the protocols: sums over a batch of deliveries, per receiver.

A batch is a set of receptions ``(receiver, row)`` where ``row`` indexes the message fields the
receiver got. All sums are done with one sparse matrix product (or ``bincount`` for vectors), so a
protocol never loops over nodes or deliveries in Python.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def incidence(receivers: np.ndarray, rows: np.ndarray, n: int, n_rows: int) -> sp.csr_matrix:
    """The ``[n, n_rows]`` 0/1 matrix with a one at every ``(receiver, row)`` delivery."""
    data = np.ones(len(receivers), dtype=np.float64)
    return sp.csr_matrix((data, (receivers, rows)), shape=(n, n_rows))


def receiver_sum(receivers: np.ndarray, rows: np.ndarray, values: np.ndarray, n: int,
                 matrix: sp.csr_matrix | None = None) -> np.ndarray:
    """``out[i] = Σ values[row]`` over the deliveries to ``i``; shape ``[n, *values.shape[1:]]``."""
    values = np.asarray(values)
    if values.ndim == 1:
        return np.bincount(receivers, weights=values[rows], minlength=n).astype(values.dtype, copy=False)
    if matrix is None:
        matrix = incidence(receivers, rows, n, values.shape[0])
    flat = values.reshape(values.shape[0], -1)
    return np.asarray(matrix @ flat).reshape((n,) + values.shape[1:])


def pull_average(own: np.ndarray, received_sum: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Uniform pull weights ``W_ij = 1/|R_i|`` (self included): ``(own + Σ received) / (1 + count)``."""
    denom = (1.0 + count).reshape((-1,) + (1,) * (own.ndim - 1))
    return (own + received_sum) / denom


def push_share(values: np.ndarray, out_degree: np.ndarray) -> np.ndarray:
    """Column-stochastic push share: each sender keeps and sends ``value / (δ_j + 1)``."""
    denom = (1.0 + out_degree).reshape((-1,) + (1,) * (values.ndim - 1))
    return values / denom


def memory_step(d_t: np.ndarray) -> np.ndarray:
    """PULM's memory update on the mixed memories ``d̃`` ``[n, n]`` (in place): returns
    ``d̃_ii − 1/n`` per node and sets every node's own entry ``d_ii`` to ``1/n``."""
    n = d_t.shape[0]
    idx = np.arange(n)
    gap = d_t[idx, idx] - 1.0 / n
    d_t[idx, idx] = 1.0 / n
    return gap


def sequential_convex(own: np.ndarray, receivers: np.ndarray, senders: np.ndarray, values: np.ndarray,
                      gamma: float) -> np.ndarray:
    """``x_j ← γ x_j + (1 − γ) v`` applied at every receiver ``j`` for each value ``v`` it got, in
    sender order: with ``m`` values ``v_0 … v_{m−1}``, ``x_j ← γ^m x_j + (1 − γ) Σ_l γ^(m−1−l) v_l``.
    ``values[m]`` is the value delivered by ``senders[m]`` to ``receivers[m]``; returns the new
    ``own`` (a copy), vectorized over all deliveries."""
    n = own.shape[0]
    order = np.lexsort((senders, receivers))
    r, v = receivers[order], values[order]
    count = np.bincount(r, minlength=n)
    pos = np.arange(len(r)) - np.searchsorted(r, r)  # rank within the receiver's group
    weight = (1.0 - gamma) * gamma ** (count[r] - 1 - pos)
    shape = (-1,) + (1,) * (own.ndim - 1)
    out = own * (gamma ** count).reshape(shape)
    np.add.at(out, r, v * weight.reshape(shape))
    return out
