"""Random streams, one per concern, all derived from the scenario seed.

Every random component of netemu draws from a stream named by its concern (``mobility``,
``topology``, ``loss``, ``delay``, ``compute``, ``task``) and, where draws happen per round, by the
round number too. A stream is a pure function of ``(seed, concern, keys…)``: changing one protocol,
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
}


def stream(seed: int, concern: str, *keys: int) -> np.random.Generator:
    """The generator for ``concern`` (and optional integer keys such as a round) under ``seed``."""
    try:
        cid = CONCERNS[concern]
    except KeyError:
        raise ValueError(f"unknown random stream {concern!r}; known: {', '.join(CONCERNS)}") from None
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), cid, *map(int, keys)])))
