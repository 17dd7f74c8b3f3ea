"""What the optimization protocols share: step-size and inner-round schedules, local steps.

A protocol subclassing ``OptProtocol`` needs an optimization task (``[task] kind = "logistic"``,
``"digits"`` or a ``ModuleTask``) and gets gradients only through ``ctx.compute``
(``netemu.compute.handle``). Step sizes (``lr`` = α, indexed by the protocol's step ``k``), for a
number ``lr``:

- ``constant``: ``α_k = lr``;
- ``inv-sqrt``: ``α_k = lr / sqrt(k + 1)``;
- ``step``: ``α_k = lr · decay^⌊k / decay_every⌋``.

``lr`` and ``inner_rounds`` also take schedule tables (PULM paper, Theorem 2): see
``netemu.schedules``. A protocol binds them to the run in ``start`` (``bind_schedules``).
"""

from __future__ import annotations

from typing import ClassVar

from netemu import schedules
from netemu.errors import ProtocolError
from netemu.params import Key
from netemu.protocol import Protocol
from netemu.schedules import step_size  # noqa: F401  (the number-lr arithmetic, for callers)

STEP_SIZE = {
    "lr": schedules.LR_KEY,
    "schedule": Key("str", "constant", choices=schedules.LEGACY,
                    doc="schedule of a number lr: α, α/√(k+1), or α·decay^⌊k/decay_every⌋"),
    "decay": Key("float", 0.5, lo=0, hi=1, lo_open=True, example="0.5", doc="step schedule: factor"),
    "decay_every": Key("int", 100, lo=1, example="100", doc="step schedule: steps between decays"),
}


class OptProtocol(Protocol):
    """Base of the optimization protocols: checks that a compute handle is there."""

    needs_compute: ClassVar[bool] = True
    params: ClassVar[dict] = dict(STEP_SIZE)

    def __init__(self, ctx, **params) -> None:
        defaults = {k: v.default for k, v in type(self).params.items()}
        super().__init__(ctx, **{**defaults, **params})
        self.sched: schedules.Bound | None = None
        if getattr(ctx, "compute", None) is None:
            raise ProtocolError(f"protocol {self.name!r} optimizes: it needs [task] kind = \"logistic\" "
                                f"or \"digits\" (or a ModuleTask), not a consensus task")

    def bind_schedules(self, local_steps: int = 1) -> schedules.Bound:
        """Bind ``lr`` and ``inner_rounds`` to this run (``ctx.rounds`` communication rounds; None
        or absent: unbounded); ``local_steps``: step-counter increments per outer step. Called in
        ``start``; ``lr``/``inner_rounds`` bind with ``local_steps = 1`` if it was not."""
        self.sched = schedules.bind(self.p, getattr(self.ctx, "rounds", None), local_steps, self.name)
        return self.sched

    def lr(self, k: int) -> float:
        """``α_k``."""
        return (self.sched or self.bind_schedules()).lr(k)

    def inner_rounds(self, k: int) -> int:
        """``R_k``: communication rounds of outer step ``k``."""
        return (self.sched or self.bind_schedules()).inner(k)

    def local_steps(self, tau: int) -> None:
        """``tau`` local gradient steps on ``self.x`` from ``self.x_start`` (kept, so a straggler's
        steps can be undone), advancing the step counter ``self.k``."""
        self.x_start, self.in_local = self.x, True
        x = self.x
        for _ in range(tau):
            x = x - self.lr(self.k) * self.ctx.compute.grad(None, x).result()
            self.k += 1
        self.x = x
