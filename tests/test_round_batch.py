"""The round path without jitter: one ``RoundBatch`` per round, kept as a mask over the round's
edges, sums bit-identical to the generic ``Batch`` over the delivered edges."""

from __future__ import annotations

import numpy as np
import pytest

from netemu.protocol import Accumulator, Batch
from netemu.runtime.batches import RoundBatch
from netemu.world.channel import Delay, IndependentLoss
from netemu.world.network import Edges, Network
from netemu.world.topology import RadioTopology, RandomTopology
from netemu.world.trajectory import Trajectories


def _round(n: int = 300, p: float = 0.05, loss: float = 0.3, seed: int = 4):
    recv, send = RandomTopology(n, p, seed).edges(0)
    edges = Edges(recv, send, n)
    keep = np.random.default_rng(seed).random(len(recv)) >= loss
    return n, edges, keep


def _awkward(rng, shape) -> np.ndarray:
    """Values whose sums depend on the order of addition (most receivers' sums differ in their
    last bits when the terms come in another order), both signs, negative zeros."""
    v = rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 8, shape)
    v[rng.random(shape) < 0.05] = -0.0
    return v


def test_the_values_are_order_sensitive():
    n, edges, keep = _round()
    v = _awkward(np.random.default_rng(7), (n,))
    r, w = edges.recv[keep], v[edges.send[keep]]
    forward = np.bincount(r, weights=w, minlength=n)
    backward = np.bincount(r[::-1], weights=w[::-1], minlength=n)
    assert (_bits(forward) != _bits(backward)).mean() > 0.3


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.mark.parametrize("shape", [(), (1,), (3,)])
def test_sum_is_bit_identical_to_the_generic_batch(shape):
    n, edges, keep = _round()
    rng = np.random.default_rng(7)
    fields = {"v": _awkward(rng, (n,) + shape)}
    fast = RoundBatch(n, edges, keep, fields, int(keep.sum()))
    plain = Batch(n, edges.recv[keep], edges.send[keep], edges.send[keep], fields)
    assert np.array_equal(_bits(fast.sum("v")), _bits(plain.sum("v")))
    assert np.array_equal(fast.count(), plain.count())
    assert np.array_equal(fast.receivers, plain.receivers) and np.array_equal(fast.rows, plain.rows)
    assert len(fast) == len(plain)


def test_non_finite_values_take_the_general_path():
    n, edges, keep = _round()
    v = np.random.default_rng(1).standard_normal(n)
    dropped_sender = edges.send[~keep][0]
    v[dropped_sender] = np.inf  # 0 · inf would be NaN in the masked product
    fields = {"v": v}
    fast = RoundBatch(n, edges, keep, fields, int(keep.sum()))
    plain = Batch(n, edges.recv[keep], edges.send[keep], edges.send[keep], fields)
    assert np.array_equal(fast.sum("v"), plain.sum("v"), equal_nan=True)


def test_accumulator_over_round_batches_equals_plain_batches():
    n, edges, keep = _round()
    rng = np.random.default_rng(3)
    fields = {"s": _awkward(rng, (n, 1)), "w": _awkward(rng, (n,))}
    like = {k: np.zeros_like(v) for k, v in fields.items()}
    a, b = Accumulator(n, ("s", "w")), Accumulator(n, ("s", "w"))
    a.add(RoundBatch(n, edges, keep, fields, int(keep.sum())))
    b.add(Batch(n, edges.recv[keep], edges.send[keep], edges.send[keep], fields))
    (sa, ca), (sb, cb) = a.take(like), b.take(like)
    assert np.array_equal(ca, cb)
    for k in fields:
        assert np.array_equal(_bits(sa[k]), _bits(sb[k]))


def test_static_radio_rounds_share_one_graph():
    n = 200
    pos = np.zeros((n, 3))
    pos[:, :2] = np.random.default_rng(2).uniform(0, 300, (n, 2))
    traj = Trajectories([[0.0]] * n, list(pos[:, None, :]), list(range(n)))
    net = Network(n, RadioTopology(n, 40.0, 1), IndependentLoss(0.2, 1), Delay(), 1.0, traj)
    r0, r1 = net.round(0), net.round(1)
    assert r0.edges is r1.edges and r0.recv is r1.recv
    assert np.array_equal(r1.out_degree, np.bincount(r1.send, minlength=n))
    assert not np.array_equal(r0.lost, r1.lost)  # losses are still drawn per round


@pytest.mark.parametrize("kw", [{}, {"latency": 0.003}, {"latency": 0.001, "bandwidth": 1e5},
                                {"latency": 0.0007, "bandwidth": 3e4, "resolution": 0.001}])
def test_fixed_delay_is_the_per_reception_delay(kw):
    d = Delay(**kw)
    for nbytes in (0, 63, 1000, 123457):
        assert d.fixed(nbytes) == d.delays(nbytes, None, 5)[0]
