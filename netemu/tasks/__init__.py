"""Tasks: what the nodes start with (and, for optimization, what they minimise).

``consensus`` (``netemu.tasks.consensus``) gives initial values only. The optimization tasks
(``logistic``, ``digits``, or a user's ``ModuleTask``) are ``netemu.tasks.data.DataTask`` objects:
per-node data, a batched model, and the metrics ``loss``, ``grad_norm_sq``, ``accuracy``.
"""

OPTIMIZATION = ("logistic", "digits")


def build_task(cfg: dict, n: int, seed: int, device, dtype):
    """The optimization task of a scenario's ``[task]`` table (torch is imported only here)."""
    if cfg["kind"] == "logistic":
        from netemu.tasks import logistic

        return logistic.build(cfg, n, seed, device, dtype)
    if cfg["kind"] == "digits":
        from netemu.tasks import digits

        return digits.build(cfg, n, seed, device, dtype)
    raise ValueError(f"not an optimization task: {cfg['kind']!r}")
