"""The shared medium against the classical throughput curves, through the whole runtime.

A clique of 5 nodes runs the ``traffic`` protocol (Poisson broadcasts of one size per node, so the
aggregate is a Poisson process of rate ``G`` per airtime). A transmission succeeds when it has no
overlap; each success is ``n − 1`` deliveries at one instant, so an observer counts successes per
time batch. Throughput ``S`` = successes × airtime / time, against:

- pure ALOHA ``S = G e^{−2G}`` (Abramson 1970), maximum ``1/(2e)`` at ``G = 0.5``;
- slotted ALOHA (slot = airtime) ``S = G e^{−G}`` (Roberts 1975), maximum ``1/e`` at ``G = 1``;
- non-persistent CSMA with propagation delay ``a`` airtimes (Kleinrock & Tobagi 1975)
  ``S = G e^{−aG} / (G(1 + 2a) + e^{−aG})``, where ``G`` counts every sensing attempt: with
  ``attempts = 1`` a frame that finds the medium busy is dropped, which is the infinite-population
  model's "rescheduled as a new Poisson arrival" (its retries are part of the Poisson attempts).

Tolerance: the standard error of ``S`` from 16 batch means of the run (consecutive time windows,
practically independent), times 5 (Student's t with 15 degrees of freedom puts 5 SE at a two-sided
probability of about 1.6e-4). Run lengths are chosen so that every point has enough successes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from netemu.engine import SimEngine
from netemu.runtime.results import Observer
from netemu.scenario.load import Scenario

N, BYTES, BITRATE = 5, 125, 1e6
AIR = 8 * BYTES / BITRATE  # 1 ms
BATCHES = 16


class Successes(Observer):
    def __init__(self, horizon: float) -> None:
        self.horizon = horizon
        self.deliveries = np.zeros(BATCHES)

    def deliver(self, label, k, t, recv, send):
        b = min(int(t / self.horizon * BATCHES), BATCHES - 1)
        self.deliveries[b] += len(recv)


def throughput(mac: dict, G: float, attempts_wanted: int, seed: int = 1):
    """(S, its standard error, realized G, mac summary) of one run at offered load ``G``."""
    horizon = attempts_wanted * AIR / G
    data = {"seed": seed,
            "network": {"nodes": N, "topology": "latent", "graph": "erdos-renyi", "edge_prob": 1.0,
                        "mac": {"bitrate": BITRATE, **mac}},
            "run": {"rounds": 1, "period": horizon},
            "protocols": [{"name": "traffic", "rate": G / (N * AIR), "bytes": BYTES}]}
    sc = Scenario.from_dict(data)
    obs = Successes(horizon)
    res = SimEngine(sc, np.zeros((N, 1)), observers=(obs,)).run_protocol(sc.protocols[0])
    mac = res.extra["mac"]
    assert mac["transmissions"] > 0
    per_batch = obs.deliveries / (N - 1) * AIR / (horizon / BATCHES)
    s = per_batch.mean()
    se = per_batch.std(ddof=1) / math.sqrt(BATCHES)
    g = (mac["transmissions"] + mac["busy_drops"]) * AIR / horizon
    return s, se, g, mac


def check(s, se, G, curve):
    """|S − curve(G)| within 5 standard errors. The batch means carry every source of variation
    of the estimate (the attempts' Poisson counts included), and E[S] = curve(G) at the nominal G."""
    tol = 5 * se
    assert abs(s - curve(G)) <= tol, f"G={G}: S={s:.4f} vs {curve(G):.4f} (tolerance {tol:.4f})"


def pure(G):
    return G * math.exp(-2 * G)


def slotted(G):
    return G * math.exp(-G)


def kt(a):
    return lambda G: G * math.exp(-a * G) / (G * (1 + 2 * a) + math.exp(-a * G))


def attempts_for(p: float, cap: int = 30000) -> int:
    """Attempts so that about 1500 succeed (success probability ``p``), at most ``cap``."""
    return int(min(cap, max(2000, 1500 / p)))


@pytest.mark.parametrize("G", [0.1, 0.5, 1.0, 2.0, 3.0])
def test_pure_aloha(G):
    s, se, g, _ = throughput({"model": "aloha"}, G, attempts_for(math.exp(-2 * G)))
    check(s, se, G, pure)


@pytest.mark.parametrize("G", [0.1, 0.5, 1.0, 2.0, 3.0])
def test_slotted_aloha(G):
    s, se, g, _ = throughput({"model": "aloha", "slot": AIR}, G, attempts_for(math.exp(-G)))
    check(s, se, G, slotted)


@pytest.mark.parametrize("a,G", [(0.1, 0.1), (0.1, 0.5), (0.1, 1.0), (0.1, 3.0), (0.01, 1.0), (0.5, 2.0)])
def test_nonpersistent_csma(a, G):
    curve = kt(a)
    s, se, g, mac = throughput({"model": "csma", "propagation": a * AIR, "attempts": 1}, G,
                               attempts_for(curve(G) / G))
    check(s, se, G, curve)
    assert mac["busy_drops"] > 0


def test_maxima():
    """The curves peak where the theory says: 1/(2e) at G = 0.5 (pure), 1/e at G = 1 (slotted),
    and each measured peak value is above the measured values on both sides."""
    for mac, peak, value, p in (({"model": "aloha"}, 0.5, 1 / (2 * math.e), math.exp(-1)),
                                ({"model": "aloha", "slot": AIR}, 1.0, 1 / math.e, math.exp(-1))):
        s, se, g, _ = throughput(mac, peak, attempts_for(p), seed=7)
        assert abs(s - value) <= 5 * se + 0.002, (mac, s, value)
        for G in (peak / 3, peak * 3):
            s2, se2, _, _ = throughput(mac, G, attempts_for(p * 0.3), seed=7)
            assert s2 < s, (mac, G, s2, s)


@pytest.mark.parametrize("slotted", [False, True])
def test_resolution_alone_on_a_million_attempts(slotted):
    """The vectorized resolution by itself, on 10⁶ Poisson attempts per load in one call each (a
    clique: every signal counts everywhere), against the closed forms. Tolerance: 5 standard
    errors of the success share from 100 batch means of 10⁴ consecutive attempts (neighbouring
    frames' fates are dependent, which makes the variance up to about 1.4² times the binomial
    one; the batches carry it)."""
    from netemu.world.medium.resolve import Pairs, resolve

    n, attempts = 3, 1_000_000
    rng = np.random.default_rng(5 + slotted)
    pairs = Pairs(np.arange(0, n * n + 1, n), np.tile(np.arange(n), n), n)
    for G in (0.1, 0.5, 1.0, 2.0, 3.0):
        t = np.cumsum(rng.exponential(1.0 / G, attempts))  # airtime 1
        s = np.ceil(t) if slotted else t
        res = resolve(s, s + 1.0, rng.integers(0, n, attempts), pairs)
        ok = np.bincount(res.tx[~res.clean], minlength=attempts) == 0  # clean everywhere
        batches = ok.reshape(100, -1).mean(axis=1)
        p, se = batches.mean(), batches.std(ddof=1) / 10
        q = math.exp(-G) if slotted else math.exp(-2 * G)
        assert abs(p - q) <= 5 * se, (G, p, q, se)
