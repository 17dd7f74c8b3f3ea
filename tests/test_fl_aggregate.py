"""The FL aggregation rules against hand-computed references (ALGORITHMS.md, "Asynchronous
federated learning"): three clients, server model x = (1, 2), client models x_1 = (2, 0),
x_2 = (0, 4), x_3 = (4, 4) trained from x, data sizes 1, 2, 1, arriving in the order 1, 2, 3 with
staleness 0, 1, 2."""

import math

import numpy as np
import pytest

from netemu.fl import aggregate as agg

X = np.array([1.0, 2.0])
MODELS = np.array([[2.0, 0.0], [0.0, 4.0], [4.0, 4.0]])
SIZES = np.array([1.0, 2.0, 1.0])
TAUS = [0, 1, 2]


def test_fedavg_weighted_mean():
    # (1·(2, 0) + 2·(0, 4) + 1·(4, 4)) / 4
    assert agg.fedavg(MODELS, SIZES) == pytest.approx([1.5, 3.0], abs=1e-12)


@pytest.mark.parametrize("kind, a, b, expected", [
    # α = 0.5: x ← (1 − α_t) x + α_t x_i, α_t = α s(τ_i), in arrival order
    ("constant", 0.5, 4.0, [2.375, 3.25]),  # (1.5, 1), (0.75, 2.5), (2.375, 3.25)
    ("polynomial", 0.5, 4.0, [1.84445085952107, 2.620499357716363]),  # s = 1, 1/√2, 1/√3
    ("hinge", 1.0, 1.0, [1.5625, 2.875]),  # s = 1, 1, 1/(1·(2 − 1) + 1) = 1/2
])
def test_fedasync_in_arrival_order(kind, a, b, expected):
    x = X
    for m, tau in zip(MODELS, TAUS):
        x = agg.fedasync_mix(x, m, 0.5, agg.staleness_weight(kind, tau, a, b))
    assert x == pytest.approx(expected, abs=1e-12)


def test_staleness_functions():
    assert agg.staleness_weight("constant", 7) == 1.0
    assert agg.staleness_weight("polynomial", 3, a=0.5) == pytest.approx(0.5)  # (3 + 1)^(−1/2)
    assert agg.staleness_weight("hinge", 4, a=2.0, b=4.0) == 1.0
    assert agg.staleness_weight("hinge", 6, a=2.0, b=4.0) == pytest.approx(0.2)  # 1 / (2·2 + 1)
    assert agg.fedbuff_weight(3) == pytest.approx(0.5)  # 1/√4
    assert list(agg.staleness_weight("hinge", np.array([0, 5]), a=1.0, b=4.0)) == pytest.approx([1.0, 0.5])
    with pytest.raises(ValueError, match="staleness 'linear'"):
        agg.staleness_weight("linear", 1)


def test_fedbuff_step():
    # Δ_i = x_start − x_end = (−1, 2), (1, −2), (−3, −2); s = 1, 1/√2, 1/√3; K = 3, η_g = 1
    deltas = X - MODELS
    x = agg.fedbuff_step(X, deltas, TAUS, 3, 1.0)
    assert x == pytest.approx([1.674981342127443, 2.1896380335841155], abs=1e-12)
    # η_g scales the step
    half = agg.fedbuff_step(X, deltas, TAUS, 3, 0.5)
    assert half == pytest.approx(X + 0.5 * (x - X), abs=1e-12)


def test_fedfix_step():
    # p = (1/4, 1/2, 1/4); clients 1 and 3 arrived in the interval: Δ = x_end − x_start = (1, −2), (3, 2)
    p = agg.data_weights(SIZES)
    assert p == pytest.approx([0.25, 0.5, 0.25])
    arrived = [0, 2]
    x = agg.fedfix_step(X, MODELS[arrived] - X, p[arrived], 1.0)
    assert x == pytest.approx([2.0, 2.0], abs=1e-12)
    assert agg.fedfix_step(X, np.zeros((0, 2)), [], 1.0) is X  # nothing arrived: unchanged


def test_selection():
    rng = np.random.default_rng(0)
    cand = np.array([3, 5, 8, 9, 12])
    pick = agg.select_uniform(rng, cand, 3)
    assert len(set(pick.tolist())) == 3 and set(pick.tolist()) <= set(cand.tolist())
    assert list(pick) == sorted(pick)
    assert list(agg.select_uniform(rng, cand, 9)) == list(cand)
    losses = np.zeros(13)
    losses[cand] = [0.1, 0.9, 0.5, 0.7, 0.2]
    # d = all candidates: the two highest losses, 5 (0.9) and 9 (0.7)
    assert list(agg.select_power_of_choice(rng, cand, losses, 5, 2)) == [5, 9]
    # d = 3: the best 2 of whichever 3 were drawn
    for _ in range(20):
        got = agg.select_power_of_choice(rng, cand, losses, 3, 2)
        assert len(got) == 2 and set(got.tolist()) <= set(cand.tolist())
    # uniform draws cover every candidate over repeats
    seen = set()
    for _ in range(200):
        seen |= set(agg.select_uniform(rng, cand, 1).tolist())
    assert seen == set(cand.tolist())
    assert math.isclose(agg.fedbuff_weight(0), 1.0)
