"""The scale work's two shortcuts give what they replace, array for array."""

from __future__ import annotations

import numpy as np

from netemu.world.topology import _sorted
from netemu.world.trajectory import Trajectories


def test_edge_sort_by_one_key_equals_the_lexsort():
    rng = np.random.default_rng(5)
    for n, m in [(1, 3), (7, 0), (10, 60), (3000, 200_000)]:
        recv, send = rng.integers(0, n, m), rng.integers(0, n, m)  # duplicates and self-loops too
        keep = recv != send
        order = np.lexsort((recv[keep], send[keep]))
        got = _sorted(recv, send)
        assert got[0].dtype == np.int64 and got[1].dtype == np.int64
        assert np.array_equal(got[0], recv[keep][order]) and np.array_equal(got[1], send[keep][order])


def test_flat_trajectories_are_views_equal_to_the_split_arrays():
    rng = np.random.default_rng(6)
    lengths = rng.integers(1, 5, 40)
    times = np.concatenate([np.sort(rng.random(k)) for k in lengths])
    points = rng.random((len(times), 3))
    traj = Trajectories.from_flat(range(40), lengths, times, points)
    want_t = np.split(times, np.cumsum(lengths)[:-1])
    want_p = np.split(points, np.cumsum(lengths)[:-1])
    assert len(traj.times) == 40 and traj.n == 40
    for k in (0, 17, 39, -1):
        assert np.array_equal(traj.times[k], want_t[k]) and np.array_equal(traj.points[k], want_p[k])
    assert all(np.array_equal(a, b) for a, b in zip(traj.times, want_t))
    assert all(np.array_equal(a, b) for a, b in zip(traj.times[3:9], want_t[3:9]))
    assert len(traj.times + traj.points) == 80
    assert np.shares_memory(traj.points[5], points)  # views, not copies
    ref = Trajectories(want_t, want_p, list(range(40)))
    for t in (0.0, 0.3, 0.77, 2.0):
        assert np.array_equal(traj.positions(t), ref.positions(t))


def test_ray_resources_per_run():
    import netemu
    from netemu.sweeps.executors import resources

    opt = {"network": {"nodes": 4}, "task": {"kind": "quadratic"}, "protocols": [{"name": "dgd"}]}
    cuda = netemu.load({**opt, "compute": {"device": "cuda", "threads": 4}})
    auto = netemu.load({**opt, "compute": {"device": "auto", "threads": 0}})
    cpu = netemu.load({**opt, "compute": {"device": "cpu", "threads": 2}})
    consensus = netemu.load({"network": {"nodes": 4}, "protocols": [{"name": "push-sum"}]})
    assert resources(cuda, False) == (4, 1) and resources(cuda, True) == (4, 1)
    assert resources(auto, False) == (1, 0) and resources(auto, True) == (1, 1)
    assert resources(cpu, True) == (2, 0)
    assert resources(consensus, True) == (1, 0)


def test_still_means_one_breakpoint_per_node():
    one = Trajectories.from_flat(range(3), [1, 1, 1], [0.0, 0.0, 0.0], np.zeros((3, 3)))
    moving = Trajectories.from_flat(range(3), [1, 2, 1], [0.0, 0.0, 1.0, 0.0], np.zeros((4, 3)))
    listed = Trajectories([np.zeros(1), np.zeros(1)], [np.zeros((1, 3)), np.ones((1, 3))], [0, 1])
    assert one.still() and not moving.still() and listed.still()
    assert Trajectories([np.zeros(1), np.zeros(2)], [np.zeros((1, 3)), np.zeros((2, 3))], [0, 1]).still() is False
