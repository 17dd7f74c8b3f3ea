"""``Geometry.sender_rows`` (the round driver's count of senders with a collided reception in one
pass when the edges are grouped by sender) against the per-sender count it replaces."""

import numpy as np

from netemu.world.medium import Geometry, MacConfig


def _edges(rng, n):
    a = rng.integers(0, n, 4 * n)
    b = rng.integers(0, n, 4 * n)
    key = np.unique(a[a != b] * n + b[a != b])
    return key % n, key // n  # recv, send: grouped by sender, in sender order


def _hit(geo, n, send, collided):
    hit = np.zeros(n, dtype=bool)
    rows = geo.sender_rows
    if rows is not None:
        hit[rows[0]] = np.logical_or.reduceat(collided, rows[1])
    else:
        hit[send[collided]] = True
    return hit


def test_sender_rows_match_the_per_sender_count():
    rng = np.random.default_rng(3)
    n = 60
    recv, send = _edges(rng, n)
    for shuffle in (False, True):
        if shuffle:
            p = rng.permutation(len(recv))
            recv, send = recv[p], send[p]
        geo = Geometry(MacConfig(model="aloha"), n, recv, send, None, 1.0)
        assert (geo.sender_rows is None) == shuffle
        for _ in range(20):
            collided = rng.random(len(recv)) < rng.uniform(0.0, 0.2)
            want = np.bincount(send[collided], minlength=n) > 0
            assert np.array_equal(_hit(geo, n, send, collided), want)
    assert want.any() and not want.all()  # neither answer is trivial


def test_geometry_of_sorted_edges_equals_the_sorted_keys():
    """Sorted distinct edges without self pairs take the merge by counting; the same edges in
    another order take the sort of the keys: the same pairs, and each edge's same column."""
    rng = np.random.default_rng(5)
    for n in (2, 7, 60, 300):
        recv, send = _edges(rng, n)
        p = rng.permutation(len(recv))
        for model in ("aloha", "csma"):
            a = Geometry(MacConfig(model=model), n, recv, send, None, 1.0)
            b = Geometry(MacConfig(model=model), n, recv[p], send[p], None, 1.0)
            assert a.pairs.indptr.tobytes() == b.pairs.indptr.tobytes()
            assert a.pairs.indices.dtype == b.pairs.indices.dtype
            assert a.pairs.indices.tobytes() == b.pairs.indices.tobytes()
            assert np.array_equal(a.edge_col[p], b.edge_col)
            assert np.array_equal(a.pairs.indices[a.pairs.indptr[send] + a.edge_col], recv)  # each edge's column
            assert np.array_equal(a.cs_indptr, b.cs_indptr) and np.array_equal(a.cs_indices, b.cs_indices)
