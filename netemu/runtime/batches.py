"""A round's deliveries of one instant, kept as the round's nominal edges and a mask.

When every reception of a round arrives at the same instant (no jitter), the transport hands the
protocol a ``RoundBatch``: the graph's edges (``netemu.world.network.Edges``) and ``keep``, which
of them were delivered. It is a ``Batch`` like any other; what differs is the cost:

- ``receivers`` / ``senders`` / ``rows`` (the delivered edges) are only cut out when asked for;
- ``sum`` is one sparse product over *all* the round's edges with ``keep`` (1.0 or 0.0) as the
  entries, through a structure built once per graph, instead of a copy of the delivered edges and
  a sparse matrix built every round;
- ``count`` is the graph's in-degree less the undelivered receptions.

Why ``sum`` is bit-identical to ``Batch.sum`` (a ``bincount`` over the delivered edges for 1-D
fields, a CSR product for the others): the edges are strictly sorted by ``(sender, receiver)``,
so in compressed sparse column form (one column per sender) the product adds each receiver's
terms in ascending sender order, starting from 0.0 — the order in which ``bincount`` meets them
in the edge list and the CSR product in its sorted rows. A delivered edge adds ``1.0 · x = x``
exactly. An undelivered one adds ``0.0 · x = ±0.0``, which changes no partial sum: a sum that
starts at +0.0 is never −0.0 in round-to-nearest, and ``y + ±0.0 = y`` for every other ``y``
(with a fused multiply-add too). That last step needs finite ``x`` (``0 · inf`` is NaN), so fields
with a non-finite value, or not float64 on the host, take the general path.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import scipy.sparse as sp

from netemu.protocol import Batch


class RoundBatch(Batch):
    """Deliveries ``edges.recv[m] ← edges.send[m]`` for the ``m`` where ``keep[m]``; rows index
    the fields by sender (every node's message is its row)."""

    def __init__(self, n: int, edges, keep: np.ndarray, fields: dict, delivered: int) -> None:
        self.n, self.edges, self.keep, self.fields = n, edges, keep, fields
        self._len = delivered  # count_nonzero(keep), which the transport already has
        self._matrix = None
        self._by_sender = None  # the keep-weighted sparse matrix (receiver × sender), once

    @cached_property
    def receivers(self) -> np.ndarray:
        return self.edges.recv[self.keep]

    @cached_property
    def senders(self) -> np.ndarray:
        return self.edges.send[self.keep]

    @property
    def rows(self) -> np.ndarray:
        return self.senders

    def __len__(self) -> int:
        return self._len

    def count(self) -> np.ndarray:
        """Deliveries per receiver: its in-degree less its receptions not delivered (few, so
        their positions first: faster than a boolean mask over all edges)."""
        missed = self.edges.recv[np.flatnonzero(~self.keep)]
        return self.edges.in_degree - np.bincount(missed, minlength=self.n)

    def sum(self, name: str) -> np.ndarray:
        values = self.fields[name]
        structure = self.edges.by_sender
        if (structure is None or type(values) is not np.ndarray or values.dtype != np.float64
                or values.shape[:1] != (self.n,) or not np.isfinite(values).all()):
            return super().sum(name)  # the delivered edges, cut out
        if self._by_sender is None:
            indptr, indices = structure
            self._by_sender = sp.csc_matrix((self.keep.astype(np.float64), indices, indptr),
                                            shape=(self.n, self.n))
        out = self._by_sender @ (values if values.ndim <= 2 else values.reshape(self.n, -1))
        return np.asarray(out).reshape(values.shape)
