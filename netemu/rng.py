"""Random streams, one per concern, all derived from the scenario seed.

Every random component of netemu draws from a stream named by its concern (``mobility``,
``topology``, ``loss``, ``delay``, ``compute``, ``task``; ``graph`` for latent graphs, ``radio`` for
per-node radio properties such as ranges) and, where draws happen per round, by the round number
too. A stream is a pure function of ``(seed, concern, keys…)``: changing one protocol,
or the order in which protocols run, never changes another's network realization (common random
numbers), and round ``k`` can be regenerated without replaying rounds ``0..k-1``.
"""

from __future__ import annotations

import numpy as np

CONCERNS = {
    "mobility": 1,
    "topology": 2,
    "loss": 3,
    "delay": 4,
    "compute": 5,
    "task": 6,
    "protocol": 7,
    "live": 8,
    "graph": 9,
    "radio": 10,
    "compress": 11,
    "recording": 12,
}


def stream(seed: int, concern: str, *keys: int) -> np.random.Generator:
    """The generator for ``concern`` (and optional integer keys such as a round) under ``seed``."""
    try:
        cid = CONCERNS[concern]
    except KeyError:
        raise ValueError(f"unknown random stream {concern!r}; known: {', '.join(CONCERNS)}") from None
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), cid, *map(int, keys)])))


_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer, elementwise on uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def keyed_uniform(seed: int, concern: str, *keys) -> np.ndarray:
    """Uniforms in ``[0, 1)``, one per element of the broadcast integer arrays ``keys``, each a pure
    function of ``(seed, concern, key values)``: a counter-based generator (SplitMix64 chained over
    the keys). Event-driven transmissions draw their losses and jitters this way, keyed by
    ``(sender, sequence number, receiver)``, so the same message meets the same channel in every
    protocol of a run, whatever else happened before it."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(int(seed) & 0xFFFFFFFFFFFFFFFF) * _GOLD + np.uint64(CONCERNS[concern]))
        for key in np.broadcast_arrays(*[np.asarray(k, dtype=np.int64) for k in keys]):
            h = _mix(h ^ (key.astype(np.uint64) + _GOLD))
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
