"""Shared math of the protocols: sums over a batch of deliveries, per receiver.

A batch is a set of receptions ``(receiver, row)`` where ``row`` indexes the message fields the
receiver got. All sums are done with one sparse matrix product (or ``bincount`` for vectors), so a
protocol never loops over nodes or deliveries in Python. The same functions take torch tensors
(state on the compute device, ``netemu.arrays``): sums are then one ``index_add`` there.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from netemu.arrays import is_tensor


def incidence(receivers: np.ndarray, rows: np.ndarray, n: int, n_rows: int) -> sp.csr_matrix:
    """The ``[n, n_rows]`` 0/1 matrix with a one at every ``(receiver, row)`` delivery."""
    data = np.ones(len(receivers), dtype=np.float64)
    return sp.csr_matrix((data, (receivers, rows)), shape=(n, n_rows))


def receiver_sum(receivers: np.ndarray, rows: np.ndarray, values: np.ndarray, n: int,
                 matrix: sp.csr_matrix | None = None) -> np.ndarray:
    """``out[i] = Σ values[row]`` over the deliveries to ``i``; shape ``[n, *values.shape[1:]]``."""
    if is_tensor(values):
        return _tensor_sum(receivers, rows, values, n, matrix)
    values = np.asarray(values)
    if values.ndim == 1:
        return np.bincount(receivers, weights=values[rows], minlength=n).astype(values.dtype, copy=False)
    if matrix is None:
        matrix = incidence(receivers, rows, n, values.shape[0])
    flat = values.reshape(values.shape[0], -1)
    return np.asarray(matrix @ flat).reshape((n,) + values.shape[1:])


def incidence_tensor(receivers: np.ndarray, rows: np.ndarray, n: int, n_rows: int, like):
    """``incidence`` as a sparse CSR tensor of ``like``'s dtype on its device (a sparse product
    there is several times faster than gathering the rows and ``index_add``)."""
    import warnings

    import torch

    receivers, rows = np.asarray(receivers), np.asarray(rows)
    order = np.lexsort((rows, receivers))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(receivers, minlength=n), out=indptr[1:])
    dev = like.device
    with warnings.catch_warnings():  # torch calls sparse CSR support "beta"
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(torch.as_tensor(indptr, device=dev),
                                       torch.as_tensor(rows[order], device=dev),
                                       torch.ones(len(rows), dtype=like.dtype, device=dev),
                                       size=(n, n_rows), check_invariants=False)


def _tensor_sum(receivers, rows, values, n: int, matrix=None):
    if values.ndim == 1 or not len(receivers):
        import torch

        out = values.new_zeros((n,) + tuple(values.shape[1:]))
        if len(receivers):
            out.index_add_(0, torch.as_tensor(receivers, device=values.device),
                           values[torch.as_tensor(rows, device=values.device)])
        return out
    if matrix is None:
        matrix = incidence_tensor(receivers, rows, n, values.shape[0], values)
    flat = values.reshape(values.shape[0], -1)
    return (matrix @ flat).reshape((n,) + tuple(values.shape[1:]))


def _per_node(own, counts: np.ndarray):
    """``counts`` (host ``[n]``) shaped to broadcast over ``own``'s rows, of ``own``'s kind."""
    c = (1.0 + np.asarray(counts)).reshape((-1,) + (1,) * (own.ndim - 1))
    if is_tensor(own):
        import torch

        return torch.as_tensor(c, device=own.device).to(own.dtype)
    return c


def pull_average(own: np.ndarray, received_sum: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Uniform pull weights ``W_ij = 1/|R_i|`` (self included): ``(own + Σ received) / (1 + count)``."""
    denom = _per_node(own, count)
    return (own + received_sum) / denom


def push_share(values: np.ndarray, out_degree: np.ndarray) -> np.ndarray:
    """Column-stochastic push share: each sender keeps and sends ``value / (δ_j + 1)``."""
    denom = _per_node(values, out_degree)
    return values / denom


def memory_step(d_t: np.ndarray) -> np.ndarray:
    """PULM's memory update on the mixed memories ``d̃`` ``[n, n]`` (in place): returns
    ``d̃_ii − 1/n`` per node and sets every node's own entry ``d_ii`` to ``1/n``."""
    n = d_t.shape[0]
    idx = np.arange(n)
    gap = d_t[idx, idx] - 1.0 / n
    d_t[idx, idx] = 1.0 / n
    return gap


_ONE_VALUE: dict = {}  # gamma -> (γ**1, (1 − γ)·γ**0), as numpy computes them over count arrays


def sequential_convex(own: np.ndarray, receivers: np.ndarray, senders: np.ndarray, values: np.ndarray,
                      gamma: float, out: np.ndarray | None = None) -> np.ndarray:
    """``x_j ← γ x_j + (1 − γ) v`` applied at every receiver ``j`` for each value ``v`` it got, in
    sender order: with ``m`` values ``v_0 … v_{m−1}``, ``x_j ← γ^m x_j + (1 − γ) Σ_l γ^(m−1−l) v_l``.
    ``values[m]`` is the value delivered by ``senders[m]`` to ``receivers[m]``; returns the new
    ``own`` (a copy, or ``out`` when given: ``out=own`` updates in place), vectorized over all
    deliveries."""
    # Only the receivers' rows change: the work is O(deliveries), not O(n) (a node that got
    # nothing keeps ``own * γ**0``, i.e. its own value). Same operations, same bits, as the
    # whole-array form ``own * γ**count`` + ``np.add.at``.
    if out is None:
        out = own.astype(np.result_type(own.dtype, np.float64), copy=True)
    elif out is not own:
        out[...] = own
    if not len(receivers):
        return out
    shape = (-1,) + (1,) * (own.ndim - 1)
    if len(receivers) == 1 or (receivers[1:] > receivers[:-1]).all():  # one value per receiver
        w = _ONE_VALUE.get(gamma)
        if w is None:
            one = np.ones(1, dtype=np.int64)
            w = _ONE_VALUE[gamma] = ((gamma ** one)[0], ((1.0 - gamma) * gamma ** (one - 1))[0])
        out[receivers] = own[receivers] * w[0] + values * w[1]
        return out
    order = np.lexsort((senders, receivers))
    r, v = receivers[order], values[order]
    first = np.flatnonzero(np.concatenate([[True], r[1:] != r[:-1]]))
    count = np.diff(np.append(first, len(r)))  # deliveries per distinct receiver
    pos = np.arange(len(r)) - np.repeat(first, count)  # rank within the receiver's group
    weight = (1.0 - gamma) * gamma ** (np.repeat(count, count) - 1 - pos)
    u = r[first]
    out[u] = own[u] * (gamma ** count).reshape(shape)
    np.add.at(out, r, v * weight.reshape(shape))
    return out


def metropolis_weights(receivers: np.ndarray, senders: np.ndarray, degree: np.ndarray) -> np.ndarray:
    """Metropolis–Hastings weights ``W_ij = 1 / (1 + max(d_i, d_j))`` of the links
    ``i = receivers[m] ← j = senders[m]`` of an undirected graph with degrees ``d`` (self not
    counted). With self weights ``W_ii = 1 − Σ_j W_ij`` (``weighted_pull``) the matrix is symmetric
    and doubly stochastic (Xiao & Boyd, "Fast linear iterations for distributed averaging", 2004)."""
    degree = np.asarray(degree)
    return 1.0 / (1.0 + np.maximum(degree[receivers], degree[senders]))


def metropolis_matrix(receivers: np.ndarray, senders: np.ndarray, n: int) -> np.ndarray:
    """The dense ``[n, n]`` Metropolis matrix of the undirected graph whose links (both directions
    listed) are ``receivers[m] ← senders[m]``: off-diagonal ``metropolis_weights``, diagonal the rest."""
    receivers, senders = np.asarray(receivers), np.asarray(senders)
    W = np.zeros((n, n))
    W[receivers, senders] = metropolis_weights(receivers, senders, np.bincount(receivers, minlength=n))
    W[np.diag_indices(n)] = 1.0 - W.sum(axis=1)
    return W


def weighted_receiver_sum(receivers: np.ndarray, rows: np.ndarray, weights: np.ndarray, values: np.ndarray,
                          n: int) -> np.ndarray:
    """``out[i] = Σ weights[m] · values[rows[m]]`` over the deliveries ``m`` to ``i`` (one sparse product)."""
    if is_tensor(values):
        import torch

        out = values.new_zeros((n,) + tuple(values.shape[1:]))
        if len(receivers):
            w = torch.as_tensor(np.asarray(weights), device=values.device).to(values.dtype)
            picked = values[torch.as_tensor(rows, device=values.device)]
            out.index_add_(0, torch.as_tensor(receivers, device=values.device),
                           picked * w.reshape((-1,) + (1,) * (values.ndim - 1)))
        return out
    values = np.asarray(values)
    matrix = sp.csr_matrix((np.asarray(weights, dtype=np.float64), (receivers, rows)),
                           shape=(n, values.shape[0]))
    flat = values.reshape(values.shape[0], -1)
    return np.asarray(matrix @ flat).reshape((n,) + values.shape[1:])


def weighted_pull(own: np.ndarray, weighted_sum: np.ndarray, weight_sum: np.ndarray) -> np.ndarray:
    """``x_i ← (1 − Σ_j W_ij) x_i + Σ_j W_ij x_j`` over the ``j`` that ``i`` received: the self weight
    takes whatever was not received, so each row of ``W`` still sums to one."""
    keep = (1.0 - np.asarray(weight_sum, dtype=np.float64)).reshape((-1,) + (1,) * (own.ndim - 1))
    if is_tensor(own):
        import torch

        keep = torch.as_tensor(keep, device=own.device).to(own.dtype)
    return own * keep + weighted_sum
