"""The channel: which receptions are lost after transmission, and how long each one takes.

Every draw is made for *every nominal edge* of a round, whether or not the sender transmits, and
from streams keyed by ``(seed, concern, round)``: all protocols of a scenario therefore see the
same losses and delays for the same reception (common random numbers).
"""

from __future__ import annotations

import numpy as np

from netemu.rng import stream


class IndependentLoss:
    """Each reception is lost independently with probability ``loss``."""

    def __init__(self, loss: float, seed: int) -> None:
        self.loss, self.seed = loss, seed

    def lost(self, k: int, recv: np.ndarray, send: np.ndarray, n: int) -> np.ndarray:
        if self.loss <= 0:
            return np.zeros(len(recv), dtype=bool)
        return stream(self.seed, "loss", k).random(len(recv)) < self.loss


class GilbertElliottLoss:
    """A two-state (good/bad) Markov chain per directed link, stepped each time the link is used.

    Every link starts good. On each use the state moves good→bad with ``p_good_bad`` and
    bad→good with ``p_bad_good``; then the reception is lost with ``loss_good`` or ``loss_bad``.
    """

    def __init__(self, cfg: dict, seed: int) -> None:
        self.c, self.seed = cfg, seed
        self._bad = np.empty(0, dtype=np.int64)  # sorted ids (recv·n + send) of links in the bad state

    def lost(self, k: int, recv: np.ndarray, send: np.ndarray, n: int) -> np.ndarray:
        rng = stream(self.seed, "loss", k)
        idx = recv * n + send
        u = rng.random(len(idx))
        prev = np.isin(idx, self._bad, assume_unique=False)
        bad = np.where(prev, u >= self.c["p_bad_good"], u < self.c["p_good_bad"])
        # links used this round take their new state; the others keep theirs
        self._bad = np.union1d(np.setdiff1d(self._bad, idx, assume_unique=True), idx[bad])
        p = np.where(bad, self.c["loss_bad"], self.c["loss_good"])
        return rng.random(len(idx)) < p


def loss_model(network: dict, seed: int):
    lm = network.get("loss_model")
    if lm and lm["kind"] == "gilbert-elliott":
        return GilbertElliottLoss(lm, seed)
    return IndependentLoss(network["loss"], seed)


class Delay:
    """``delay = latency + message bytes / bandwidth + jitter`` per reception."""

    def __init__(self, cfg: dict | None, seed: int) -> None:
        cfg = cfg or {}
        self.latency = cfg.get("latency", 0.0)
        self.bandwidth = cfg.get("bandwidth")
        self.jitter = cfg.get("jitter", "none")
        self.scale = cfg.get("jitter_scale", 0.0)
        self.sigma = cfg.get("jitter_sigma", 0.5)
        self.resolution = cfg.get("resolution", 0.0)
        self.seed = seed

    def jitter_draws(self, k: int, m: int) -> np.ndarray | None:
        if self.jitter == "none" or self.scale <= 0:
            return None
        rng = stream(self.seed, "delay", k)
        if self.jitter == "exponential":
            return rng.exponential(self.scale, m)
        if self.jitter == "uniform":
            return rng.uniform(0.0, self.scale, m)
        return self.scale * np.exp(self.sigma * rng.standard_normal(m))

    def delays(self, nbytes: int, jitter: np.ndarray | None, m: int) -> np.ndarray:
        """Per-reception delays; with ``resolution > 0`` rounded *up* to a multiple of it, so that
        receptions share arrival instants (fewer, larger batches; never earlier than exact)."""
        base = self.latency + (nbytes / self.bandwidth if self.bandwidth else 0.0)
        d = np.full(m, base) if jitter is None else base + jitter
        if self.resolution > 0:
            d = np.ceil(d / self.resolution) * self.resolution
        return d
