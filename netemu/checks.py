"""``check_protocol``: a conformance check for protocol classes, built-in or third-party.

It runs the protocol twice on a tiny lossy random network, through the real runtime, and asserts
what every protocol must satisfy: ``estimate()`` has shape ``[n, dim]`` (consensus) or ``[n, P]``
(optimization protocols, run on a small logistic task), round protocols' ``message()`` fields
have the node dimension first, and the same seed gives bit-identical results. Estimates are read
through the public observer hook (``Observer.sample``).
"""

from __future__ import annotations

import numpy as np

from netemu import registry
from netemu.runtime.results import Observer


class _Shapes(Observer):
    def __init__(self, cls, n: int, optimizes: bool) -> None:
        self.cls, self.n, self.optimizes = cls, n, optimizes
        self.states: list = []

    def sample(self, run, k, t, proto, extra=None):
        est = proto.estimate()
        name = self.cls.__name__
        want = (self.n,) + np.shape(est)[1:] if self.optimizes else (self.n, 2)
        assert np.ndim(est) == 2 and np.shape(est) == want, \
            f"{name}.estimate() has shape {np.shape(est)}, expected {want}"
        inner = getattr(proto, "inner", None)  # a round protocol under its driver
        if k == 0 and inner is not None:
            inner.message = _checked_message(inner.message, name, self.n)
        self.states.append(np.array(est, copy=True))


def _checked_message(message, cls_name: str, n: int):
    def wrapper():
        fields = message()
        for key, v in fields.items():
            assert np.shape(v)[:1] == (n,), f"{cls_name}.message()[{key!r}] must have the node dimension first"
        return fields
    return wrapper


def check_protocol(cls: type, params: dict | None = None, n: int = 6, rounds: int = 8) -> None:
    """Raise ``AssertionError`` naming what ``cls`` does wrong; return ``None`` when it conforms."""
    from netemu.engine import SimEngine
    from netemu.runner import make_task, prepare
    from netemu.scenario.load import from_dict

    name = f"_check_{cls.__name__}"
    registry.register(name, cls)
    try:
        params = params or {}
        optimizes = getattr(cls, "needs_compute", False)
        task = {"kind": "logistic", "features": 3, "samples": 20} if optimizes else {"dim": 2}
        sc = from_dict({"seed": 1, "network": {"nodes": n, "topology": "random", "p": 0.5, "loss": 0.2},
                        "run": {"rounds": rounds}, "task": task,
                        "protocols": [{"name": name, **params}]})
        runs = []
        for _ in range(2):
            traj, topo, x0 = prepare(sc)
            obs = _Shapes(cls, n, optimizes)
            SimEngine(sc, x0, traj, topo, observers=(obs,), task=make_task(sc)).run_protocol(sc.protocols[0])
            runs.append(obs.states)
        assert len(runs[0]) == rounds + 1, f"{cls.__name__}: expected {rounds + 1} recorded rounds"
        for a, b in zip(*runs):
            assert np.array_equal(a, b, equal_nan=True), f"{cls.__name__} is not deterministic for a fixed seed"
    finally:
        registry._extra.pop(name, None)
