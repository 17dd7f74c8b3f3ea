"""``check_protocol``: a conformance check for protocol classes, built-in or third-party.

It runs the protocol twice on a tiny lossy random network, through the real engine, and asserts
what every protocol must satisfy: ``message()`` fields have the node dimension first,
``estimate()`` has shape ``[n, dim]`` (consensus) or ``[n, P]`` (optimization protocols, run on a
small logistic task), and the same seed gives bit-identical results.
"""

from __future__ import annotations

import numpy as np

from netemu import registry


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
            engine = SimEngine(sc, x0, traj, topo, task=make_task(sc))
            shapes = []
            orig = engine._record

            def record(res, proto, k, t, *args, _orig=orig, **kw):
                est = proto.estimate()
                want = (n,) + np.shape(est)[1:] if optimizes else (n, 2)
                assert np.ndim(est) == 2 and np.shape(est) == want, \
                    f"{cls.__name__}.estimate() has shape {np.shape(est)}, expected {want}"
                if k == 0:
                    proto.message = _checked_message(proto.message, cls.__name__, n)
                shapes.append(np.array(est, copy=True))
                return _orig(res, proto, k, t, *args, **kw)

            engine._record = record
            engine.run_protocol(sc.protocols[0])
            runs.append(shapes)
        assert len(runs[0]) == rounds + 1, f"{cls.__name__}: expected {rounds + 1} recorded rounds"
        for a, b in zip(*runs):
            assert np.array_equal(a, b, equal_nan=True), f"{cls.__name__} is not deterministic for a fixed seed"
    finally:
        registry._extra.pop(name, None)
