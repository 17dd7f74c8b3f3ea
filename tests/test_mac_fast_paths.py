"""The medium's two fast paths, held exact against the general code and against brute force.

- ``resolve.resolve_round``: a round's own frames alone on the air (distinct senders, one airtime,
  protocol model), against ``resolve.resolve(..., equal=True)`` bit for bit and against a
  brute-force overlap check, over random geometries: interference range beyond the reception
  range, a receiver that hears every node (the longest receiver row), packed keys of 32 and 64 bits.
- ``access._csma_pushed``: a CSMA round with one airtime, no propagation delay, no earlier frame on
  the air and a symmetric carrier-sense relation, against ``test_mac._reference_csma`` (one decision
  at a time); a relation that is not symmetric takes the sweeps and gives the same start times.

Each test checks that the path it means was taken (a spy, or the condition the dispatcher reads),
so a change that routes around a fast path fails here instead of passing on the general code.
"""

from __future__ import annotations

import numpy as np
import pytest

import netemu.world.medium.access as access
from netemu.engine import SimEngine
from netemu.scenario import build
from netemu.scenario.load import Scenario
from netemu.world.medium import Geometry, MacConfig
from netemu.world.medium.access import TAG_ROUND, backoff, csma_round
from netemu.world.medium.resolve import Pairs, resolve, resolve_round
from test_mac import _reference_csma


def _disk(pos: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every pair within ``r`` (recv, send), sorted by sender then receiver."""
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    a, b = np.nonzero((d <= r) & ~np.eye(len(pos), dtype=bool))
    o = np.lexsort((a, b))
    return a[o], b[o]


def _geometry(rng, n: int, hub: bool, interference: bool):
    """A random radio geometry: reception edges of a unit disk, optionally an interference range
    1.2-2 times the reception range and a node that receives every other node."""
    side = 100.0
    pos = rng.uniform(0, side, (n, 2))
    r = float(rng.uniform(10, 40))
    recv, send = _disk(pos, r)
    if hub:
        h = int(rng.integers(n))
        others = np.setdiff1d(np.arange(n), [h])
        recv, send = np.concatenate([recv, np.full(len(others), h)]), np.concatenate([send, others])
        key = np.unique(send * n + recv)  # no duplicate edges
        recv, send = key % n, key // n
    cfg = MacConfig(model="csma", interference_range=float(r * rng.uniform(1.2, 2.0)) if interference else None)
    return Geometry(cfg, n, recv, send, pos, 1.0), recv, send


def _frames(rng, n: int):
    """Frames of distinct senders (in no particular order) on a dyadic grid, one airtime: ties and
    frames that touch (end = another's start) compare exactly."""
    snd = rng.permutation(n)[: int(rng.integers(1, n + 1))]
    grid = float(rng.choice([0.125, 0.25]))
    s = rng.integers(0, 40, len(snd)) * grid
    A = float(rng.choice([0.375, 0.5, 1.0]))
    floor = np.where(rng.random(n) < 0.3, float(rng.integers(0, 20)) * grid, -np.inf)
    return snd, s, s + A, floor


def _check(geo: Geometry, recv, send, n, snd, s, e, floor, brute: bool) -> None:
    by = geo.by_receiver
    assert by.ok  # the dispatcher (medium_rounds.broadcast_round) takes resolve_round only then
    clean, busy, reach = resolve_round(by, n, snd, s, e, floor)
    res = resolve(s, e, snd, geo.pairs, floor=floor, equal=True)
    txpos = np.full(n, -1)
    txpos[snd] = np.arange(len(snd))
    q = np.flatnonzero(txpos[send] >= 0)  # edges whose sender has a frame
    want = res.at(txpos[send[q]], geo.edge_col[q])
    np.testing.assert_array_equal(clean[q], want)
    assert np.array_equal(busy, res.busy) and np.array_equal(reach, res.reach)  # bit for bit
    if not brute:
        return
    heard = np.zeros((n, n), dtype=bool)  # heard[j, i]: j's signal counts at i (itself included)
    cnt = np.diff(geo.pairs.indptr)
    heard[np.repeat(np.arange(n), cnt), geo.pairs.indices] = True
    assert heard[send, recv].all() and heard[np.arange(n), np.arange(n)].all()
    for qq in q:
        i, k = recv[qq], txpos[send[qq]]
        others = [j for j in range(len(snd)) if j != k and heard[snd[j], i] and s[j] < e[k] and s[k] < e[j]]
        assert clean[qq] == (not others)
    for i in range(n):
        iv = sorted((max(s[j], floor[i]), e[j]) for j in range(len(snd)) if heard[snd[j], i])
        total, top = 0.0, -np.inf
        for a, b in iv:
            if b > max(a, top):
                total += b - max(a, top)
            top = max(top, b)
        assert busy[i] == pytest.approx(total, abs=1e-9)
        assert reach[i] == (max((e[j] for j in range(len(snd)) if heard[snd[j], i]), default=-np.inf))


@pytest.mark.parametrize("seed", range(8))
def test_resolve_round_matches_resolve_and_brute_force(seed):
    rng = np.random.default_rng(700 + seed)
    n = int(rng.integers(3, 45))
    geo, recv, send = _geometry(rng, n, hub=seed % 2 == 1, interference=seed % 4 >= 2)
    collided = 0
    for _ in range(5):
        snd, s, e, floor = _frames(rng, n)
        _check(geo, recv, send, n, snd, s, e, floor, brute=True)
        collided += int((~resolve_round(geo.by_receiver, n, snd, s, e, floor)[0]).sum())
    assert collided > 0  # the geometries are dense enough for collisions: the check is not vacuous


def test_resolve_round_wide_keys():
    """3000 nodes with one receiving every other: the packed keys need 64 bits (the other tests
    fit 32), and the receiver rows are as long as the network."""
    rng = np.random.default_rng(9)
    n = 3000
    pos = rng.uniform(0, 1000, (n, 2))
    recv, send = _kd(pos, 30.0)
    h = 17
    recv, send = np.concatenate([recv, np.full(n - 1, h)]), np.concatenate([send, np.delete(np.arange(n), h)])
    key = np.unique(send * n + recv)
    recv, send = key % n, key // n
    geo = Geometry(MacConfig(model="csma", interference_range=45.0), n, recv, send, pos, 1.0)
    assert geo.by_receiver.dtype == np.int64
    for _ in range(3):
        snd = rng.permutation(n)[: int(rng.integers(n // 2, n))]
        s = rng.integers(0, 2000, len(snd)) * 2.0**-10
        _check(geo, recv, send, n, snd, s, s + 0.25, np.where(rng.random(n) < 0.5, 0.5, -np.inf), brute=False)


def _kd(pos, r):
    from scipy.spatial import cKDTree

    p = cKDTree(pos).query_pairs(r, output_type="ndarray")
    return np.concatenate([p[:, 0], p[:, 1]]), np.concatenate([p[:, 1], p[:, 0]])


# ------------------------------------------------------------------ CSMA access


class Spy:
    """Counts the calls of ``access._csma_pushed`` (csma_round looks it up at each call)."""

    def __init__(self, monkeypatch) -> None:
        self.calls, self._f = 0, access._csma_pushed

        def call(*a, **k):
            self.calls += 1
            return self._f(*a, **k)

        monkeypatch.setattr(access, "_csma_pushed", call)


def _relation(hears: np.ndarray):
    n = len(hears)
    indptr = np.concatenate([[0], np.cumsum(hears.sum(axis=1))])
    indices = np.concatenate([np.flatnonzero(hears[i]) for i in range(n)])
    return indptr, indices, [np.flatnonzero(hears[i]) for i in range(n)]


def _round(rng, n: int, hears: np.ndarray, seed: int, k: int):
    indptr, indices, cs_in = _relation(hears | np.eye(n, dtype=bool))
    # a dyadic slot and airtime make every time exact: a node often resumes exactly when another starts
    slot = float(rng.choice([2e-5, 2.0**-15]))
    A = slot * int(rng.choice([4, 15, 20, 50]))
    cw = int(rng.choice([3, 7, 15]))
    attempts = int(rng.choice([0, 0, 1, 2, 3]))
    t_end = float(rng.choice([2e-3, 0.02, 1.0, 1.0]))
    nodes = np.sort(rng.permutation(n)[: int(rng.integers(1, n + 1))])
    ready = np.full(n, np.inf)
    ready[nodes] = backoff(seed, TAG_ROUND, nodes, k, 0, cw) * slot  # ties: few slots, many nodes
    air = np.full(n, A)
    no_old = (np.full(n, np.nan), np.full(n, np.nan))
    start, busy, _ = csma_round(ready, nodes, air, t_end, indptr, indices, 0.0, slot, cw, attempts, no_old,
                                seed, k)
    ref = _reference_csma(ready, nodes, air, t_end, cs_in, 0.0, slot, cw, attempts, seed, k)
    np.testing.assert_array_equal(start, ref)
    if attempts == 0:
        assert not busy.any()
    return start, ready, busy


@pytest.mark.parametrize("seed", range(6))
def test_csma_pushed_matches_sequential(seed, monkeypatch):
    """Symmetric unit-disk relations (varied density, one node sensing everyone in some): every
    round goes through ``_csma_pushed`` and gives the sequential start times."""
    spy = Spy(monkeypatch)
    rng = np.random.default_rng(900 + seed)
    deferred = dropped = fast = 0
    rounds = 20
    for k in range(rounds):
        n = int(rng.integers(2, 70))
        pos = rng.uniform(0, 100, (n, 2))
        d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
        hears = d <= rng.uniform(15, 80)
        if rng.random() < 0.3:  # a hub, both ways: symmetric still
            h = int(rng.integers(n))
            hears[h, :] = hears[:, h] = True
        # a hub in a sparse relation pads to more than twice the rows: the sweeps (checked too)
        fast += access.padded_rows(*_relation(hears | np.eye(n, dtype=bool))[:2]) is not None
        start, ready, busy = _round(rng, n, hears, seed, k)
        sent = np.isfinite(start)
        deferred += int((start[sent] > ready[sent]).sum())
        dropped += int(busy.sum())
    assert spy.calls == fast >= rounds - 3
    assert deferred > 20 and dropped > 0  # nodes deferred and gave up: the cases are not trivial


@pytest.mark.parametrize("seed", range(3))
def test_csma_not_symmetric_takes_the_sweeps(seed, monkeypatch):
    """A relation that is not symmetric (A senses B, B does not sense A) has no padded rows; the
    round takes the sweeps and still gives the sequential start times."""
    spy = Spy(monkeypatch)
    rng = np.random.default_rng(950 + seed)
    deferred = 0
    for k in range(6):
        n = int(rng.integers(5, 60))
        hears = rng.random((n, n)) < rng.uniform(0.1, 0.5)
        hears[0, 1], hears[1, 0] = True, False  # certainly not symmetric
        assert access.padded_rows(*_relation(hears | np.eye(n, dtype=bool))[:2]) is None
        start, ready, _ = _round(rng, n, hears, seed, k)
        sent = np.isfinite(start)
        deferred += int((start[sent] > ready[sent]).sum())
    assert spy.calls == 0
    assert deferred > 5


def test_csma_pushed_hypothesis(monkeypatch):
    """Small relations and ready times chosen by hypothesis (ties, equal times, every node ready at
    once), symmetric: the fast path, the sequential start times."""
    import hypothesis as hyp
    import hypothesis.strategies as st

    spy = Spy(monkeypatch)

    @hyp.settings(max_examples=60, deadline=None, derandomize=True)
    @hyp.given(st.integers(2, 12).flatmap(lambda n: st.tuples(
        st.lists(st.booleans(), min_size=n * n, max_size=n * n),
        st.lists(st.integers(0, 4), min_size=n, max_size=n),
        st.integers(0, 3), st.sampled_from([5e-4, 1e-3, 0.05]), st.integers(0, 2**16))))
    def check(args):
        flat, slots, attempts, t_end, seed = args
        n = len(slots)
        m = np.array(flat).reshape(n, n)
        hears = m | m.T | np.eye(n, dtype=bool)
        indptr, indices, cs_in = _relation(hears)
        ready = np.array(slots) * 2e-5
        nodes = np.arange(n)
        air = np.full(n, 3e-4)
        no_old = (np.full(n, np.nan), np.full(n, np.nan))
        start, _, _ = csma_round(ready, nodes, air, t_end, indptr, indices, 0.0, 2e-5, 7, attempts, no_old, seed, 1)
        ref = _reference_csma(ready, nodes, air, t_end, cs_in, 0.0, 2e-5, 7, attempts, seed, 1)
        np.testing.assert_array_equal(start, ref)

    check()
    assert spy.calls == 60


# ------------------------------------------------------------------ end to end


def test_a_csma_run_takes_both_fast_paths(monkeypatch):
    """A static radio run under CSMA (rounds shorter than the airtimes' tails never overlap): every
    round's access goes through ``_csma_pushed`` and every round's resolution through
    ``resolve_round``, whose answer equals ``resolve``'s on the same frames."""
    import importlib

    rounds_mod = importlib.import_module(build_round_module())
    spy = Spy(monkeypatch)
    seen = {"resolve_round": 0}
    orig = rounds_mod.resolve_round

    def checked(by, n, snd, s, e, floor):
        seen["resolve_round"] += 1
        assert by.ok
        clean, busy, reach = out = orig(by, n, snd, s, e, floor)
        o = np.lexsort((by.row, by.snd))  # the pairs by sender again
        pairs = Pairs(np.searchsorted(by.snd[o], np.arange(n + 1)), by.row[o], n)
        res = resolve(s, e, snd, pairs, floor=floor, equal=True)
        txpos = np.full(n, -1)
        txpos[snd] = np.arange(len(snd))
        r, j = by.row[by.edge_entry], by.snd[by.edge_entry]  # each reception edge
        q = np.flatnonzero(txpos[j] >= 0)
        np.testing.assert_array_equal(clean[q], res.lookup(r[q], txpos[j[q]]))
        assert np.array_equal(busy, res.busy) and np.array_equal(reach, res.reach)
        checked.edges += len(q)
        checked.clean += int(clean[q].sum())
        return out

    checked.edges = checked.clean = 0

    monkeypatch.setattr(rounds_mod, "resolve_round", checked)
    n, rounds = 80, 6
    data = {"seed": 5, "network": {"nodes": n, "topology": "radio", "range": 30.0,
                                   "mac": {"model": "csma", "bitrate": 2e5, "cw": 7, "interference_range": 45.0}},
            "mobility": {"model": "static", "area": [150, 150]},
            "run": {"rounds": rounds, "period": 1.0}, "protocols": [{"name": "push-sum"}]}
    sc = Scenario.from_dict(data)
    res = SimEngine(sc, np.random.default_rng(0).normal(size=(n, 1)),
                    trajectories=build.trajectories(sc)).run_protocol(sc.protocols[0])
    mac = res.extra["mac"]
    assert mac["transmissions"] >= n * (rounds - 1) and mac["collisions"] > 0
    assert spy.calls >= rounds - 1 and seen["resolve_round"] >= rounds - 1
    assert 0 < checked.clean < checked.edges  # the comparison saw clean and collided receptions


def build_round_module() -> str:
    """The module that drives a round protocol's broadcasts through the medium."""
    import importlib.util

    for name in ("netemu.runtime.medium_rounds", "netemu.world.medium.rounds"):
        if importlib.util.find_spec(name) is not None:
            return name
    raise AssertionError("no module drives round broadcasts through the medium")


def test_csma_pushed_resumes_as_another_starts(monkeypatch):
    """Every node of a unit disk ready in the first slots, a short contention window (backoff 0
    often) and no round end: a blocked node often resumes exactly when a node it senses has just
    started, which ``_csma_pushed`` settles from the row (its ``tie`` case); the sequential start
    times still."""
    spy = Spy(monkeypatch)
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(5, 60))
        pos = rng.uniform(0, 100, (n, 2))
        hears = (np.linalg.norm(pos[:, None] - pos[None], axis=2) <= rng.uniform(15, 80)) | np.eye(n, dtype=bool)
        indptr, indices, cs_in = _relation(hears)
        cw, slot = (3, 7)[seed % 2], 2e-5
        nodes = np.arange(n)
        ready = backoff(seed, TAG_ROUND, nodes, 1, 0, cw) * slot
        air = np.full(n, 15 * slot)
        no_old = (np.full(n, np.nan), np.full(n, np.nan))
        start, _, _ = csma_round(ready, nodes, air, 1.0, indptr, indices, 0.0, slot, cw, 0, no_old, seed, 1)
        np.testing.assert_array_equal(start, _reference_csma(ready, nodes, air, 1.0, cs_in, 0.0, slot, cw, 0, seed, 1))
    assert spy.calls == 40
