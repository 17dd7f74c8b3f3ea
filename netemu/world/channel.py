"""The channel: which receptions are lost after transmission, and how long each one takes.

Two ways to draw, both common random numbers across the protocols of a run:

- **per round** (round-based protocols): every draw is made for *every nominal edge* of round
  ``k``, whether or not the sender transmits, from streams keyed by ``(seed, concern, k)``;
- **per message** (event-driven protocols): each reception's draws are keyed by
  ``(seed, concern, sender, sequence number, receiver)`` (``netemu.rng.keyed_uniform``), so the
  ``s``-th message of node ``j`` meets the same channel in every protocol, whenever it is sent.
"""

from __future__ import annotations

import numpy as np

from netemu.rng import keyed_uniform, stream


class IndependentLoss:
    """Each reception is lost independently with probability ``loss``."""

    def __init__(self, loss: float, seed: int) -> None:
        self.loss, self.seed = loss, seed

    def lost(self, k: int, recv: np.ndarray, send: np.ndarray, n: int) -> np.ndarray:
        if self.loss <= 0:
            return np.zeros(len(recv), dtype=bool)
        return stream(self.seed, "loss", k).random(len(recv)) < self.loss

    def lost_keyed(self, send: np.ndarray, seq: np.ndarray, recv: np.ndarray, n: int) -> np.ndarray:
        if self.loss <= 0:
            return np.zeros(len(recv), dtype=bool)
        return keyed_uniform(self.seed, "loss", send, seq, recv) < self.loss


class GilbertElliottLoss:
    """A two-state (good/bad) Markov chain per directed link, stepped each time the link is used.

    Every link starts good. On each use the state moves good→bad with ``p_good_bad`` and
    bad→good with ``p_bad_good``; then the reception is lost with ``loss_good`` or ``loss_bad``.
    Per-message draws are keyed like ``IndependentLoss``'s; the chain's state follows the order in
    which the links are used, so it is shared across protocols only as far as their traffic is.
    """

    def __init__(self, p_good_bad: float, p_bad_good: float, loss_good: float, loss_bad: float,
                 seed: int) -> None:
        self.p_good_bad, self.p_bad_good = p_good_bad, p_bad_good
        self.loss_good, self.loss_bad = loss_good, loss_bad
        self.seed = seed
        self._bad = np.empty(0, dtype=np.int64)  # sorted ids (recv·n + send) of links in the bad state

    def _step(self, idx: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        prev = np.isin(idx, self._bad, assume_unique=False)
        bad = np.where(prev, u >= self.p_bad_good, u < self.p_good_bad)
        # links used now take their new state; the others keep theirs
        self._bad = np.union1d(np.setdiff1d(self._bad, idx, assume_unique=True), idx[bad])
        return v < np.where(bad, self.loss_bad, self.loss_good)

    def lost(self, k: int, recv: np.ndarray, send: np.ndarray, n: int) -> np.ndarray:
        rng = stream(self.seed, "loss", k)
        idx = recv * n + send
        u = rng.random(len(idx))
        prev = np.isin(idx, self._bad, assume_unique=False)
        bad = np.where(prev, u >= self.p_bad_good, u < self.p_good_bad)
        self._bad = np.union1d(np.setdiff1d(self._bad, idx, assume_unique=True), idx[bad])
        p = np.where(bad, self.loss_bad, self.loss_good)
        return rng.random(len(idx)) < p

    def lost_keyed(self, send: np.ndarray, seq: np.ndarray, recv: np.ndarray, n: int) -> np.ndarray:
        u = keyed_uniform(self.seed, "loss", send, seq, recv, 0)
        v = keyed_uniform(self.seed, "loss", send, seq, recv, 1)
        return self._step(recv * n + send, u, v)


class Delay:
    """``delay = latency + message bytes / bandwidth + jitter`` per reception."""

    def __init__(self, latency: float = 0.0, bandwidth: float | None = None, jitter: str = "none",
                 scale: float = 0.0, sigma: float = 0.5, resolution: float = 0.0, seed: int = 0) -> None:
        self.latency, self.bandwidth = latency, bandwidth
        self.jitter, self.scale, self.sigma = jitter, scale, sigma
        self.resolution = resolution
        self.seed = seed

    @property
    def has_jitter(self) -> bool:
        return self.jitter != "none" and self.scale > 0

    def jitter_draws(self, k: int, m: int) -> np.ndarray | None:
        if not self.has_jitter:
            return None
        rng = stream(self.seed, "delay", k)
        if self.jitter == "exponential":
            return rng.exponential(self.scale, m)
        if self.jitter == "uniform":
            return rng.uniform(0.0, self.scale, m)
        return self.scale * np.exp(self.sigma * rng.standard_normal(m))

    def jitter_keyed(self, send: np.ndarray, seq: np.ndarray, recv: np.ndarray) -> np.ndarray | None:
        """Per-message jitter (inverse transform of a keyed uniform)."""
        if not self.has_jitter:
            return None
        u = keyed_uniform(self.seed, "delay", send, seq, recv)
        if self.jitter == "exponential":
            return -self.scale * np.log1p(-u)
        if self.jitter == "uniform":
            return self.scale * u
        from scipy.special import ndtri  # imported by the one jitter that needs it

        return self.scale * np.exp(self.sigma * ndtri(np.clip(u, 1e-300, None)))

    def arrivals(self, t: float, nbytes, jitter: np.ndarray | None, m: int) -> np.ndarray:
        """Arrival times of receptions sent at ``t``: ``t + delay``, with ``resolution > 0``
        rounded *up* to a multiple of it (never earlier than exact)."""
        base = self.latency + (np.asarray(nbytes) / self.bandwidth if self.bandwidth else 0.0)
        d = np.full(m, base, dtype=np.float64) if jitter is None else base + jitter
        a = t + d
        if self.resolution > 0:
            a = np.ceil(a / self.resolution) * self.resolution
        return a

    def fixed(self, nbytes: int) -> float:
        """The delay of every reception of ``nbytes`` without jitter: ``delays(nbytes, None, m)[0]``
        (the same float64 operations on one number)."""
        return float(self.delays(nbytes, None, 1)[0])

    def delays(self, nbytes, jitter: np.ndarray | None, m: int) -> np.ndarray:
        """Per-reception delays; with ``resolution > 0`` rounded *up* to a multiple of it, so that
        receptions share arrival instants (fewer, larger batches; never earlier than exact).
        ``nbytes`` is one size for all, or one per reception."""
        base = self.latency + (np.asarray(nbytes) / self.bandwidth if self.bandwidth else 0.0)
        if jitter is not None:
            d = base + jitter
        elif isinstance(base, float):  # one size (np.float64 is a float): np.full's values, without its overhead
            d = np.empty(m, dtype=np.float64)
            d.fill(base)
        else:
            d = np.full(m, base, dtype=np.float64)
        if self.resolution > 0:
            d = np.ceil(d / self.resolution) * self.resolution
        return d
