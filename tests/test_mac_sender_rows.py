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
