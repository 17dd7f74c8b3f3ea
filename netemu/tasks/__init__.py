"""Tasks: what the nodes start with (and, for optimization, what they minimise).

``consensus`` (``netemu.tasks.consensus``) gives initial values only. The optimization tasks
(``logistic``, ``quadratic``, ``digits``, ``charlm``, or a user's ``ModuleTask``) are
``netemu.tasks.data.DataTask`` objects: per-node data, a batched model, and the metrics ``loss``,
``grad_norm_sq``, ``accuracy``; convex ones (``is_convex``) also carry an
``netemu.tasks.optimum.Objective`` for ``opt_gap``, ``dist_opt`` and ``dist_opt_worst``.
"""

OPTIMIZATION = ("logistic", "quadratic", "digits", "charlm")


def is_convex(cfg: dict) -> bool:
    """Whether the task of a ``[task]`` table is convex, so that ``x*`` and ``F*`` are computed:
    ``quadratic`` always; ``logistic`` when ``rho = 0`` (strongly convex with ``l2 > 0``; with
    ``l2 = 0`` too, and a run whose data turn out linearly separable, so that no minimiser exists,
    stops with an error asking for ``l2 > 0``)."""
    kind = cfg.get("kind")
    return kind == "quadratic" or (kind == "logistic" and cfg.get("rho", 0.01) == 0)


def build_task(cfg: dict, n: int, seed: int, device, dtype):
    """The optimization task of a scenario's ``[task]`` table (torch is imported only here)."""
    if cfg["kind"] == "logistic":
        from netemu.tasks import logistic

        return logistic.build(cfg, n, seed, device, dtype)
    if cfg["kind"] == "quadratic":
        from netemu.tasks import quadratic

        return quadratic.build(cfg, n, seed, device, dtype)
    if cfg["kind"] == "digits":
        from netemu.tasks import digits

        return digits.build(cfg, n, seed, device, dtype)
    if cfg["kind"] == "charlm":
        from netemu.tasks import charlm

        return charlm.build(cfg, n, seed, device, dtype)
    raise ValueError(f"not an optimization task: {cfg['kind']!r}")
