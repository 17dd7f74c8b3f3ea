"""What the optimization protocols share: step-size schedules and their parameters.

A protocol subclassing ``OptProtocol`` needs an optimization task (``[task] kind = "logistic"``,
``"digits"`` or a ``ModuleTask``) and gets gradients only through ``ctx.compute``
(``netemu.compute.handle``). Step sizes (``lr`` = α, indexed by the protocol's step ``k``):

- ``constant``: ``α_k = lr``;
- ``inv-sqrt``: ``α_k = lr / sqrt(k + 1)``;
- ``step``: ``α_k = lr · decay^⌊k / decay_every⌋``.
"""

from __future__ import annotations

import math
from typing import ClassVar

from netemu.errors import ProtocolError
from netemu.protocol import Protocol
from netemu.params import Key

STEP_SIZE = {
    "lr": Key("float", 0.05, lo=0, lo_open=True, example="0.05", doc="step size α (learning rate), > 0"),
    "schedule": Key("str", "constant", choices=("constant", "inv-sqrt", "step"),
                    doc="step-size schedule: α, α/√(k+1), or α·decay^⌊k/decay_every⌋"),
    "decay": Key("float", 0.5, lo=0, hi=1, lo_open=True, example="0.5", doc="step schedule: factor"),
    "decay_every": Key("int", 100, lo=1, example="100", doc="step schedule: steps between decays"),
}


def step_size(p: dict, k: int) -> float:
    lr = p["lr"]
    if p["schedule"] == "inv-sqrt":
        return lr / math.sqrt(k + 1)
    if p["schedule"] == "step":
        return lr * p["decay"] ** (k // p["decay_every"])
    return lr


class OptProtocol(Protocol):
    """Base of the optimization protocols: checks that a compute handle is there."""

    needs_compute: ClassVar[bool] = True
    params: ClassVar[dict] = dict(STEP_SIZE)

    def __init__(self, ctx, **params) -> None:
        defaults = {k: v.default for k, v in type(self).params.items()}
        super().__init__(ctx, **{**defaults, **params})
        if getattr(ctx, "compute", None) is None:
            raise ProtocolError(f"protocol {self.name!r} optimizes: it needs [task] kind = \"logistic\" "
                                f"or \"digits\" (or a ModuleTask), not a consensus task")

    def lr(self, k: int) -> float:
        return step_size(self.p, k)

    def local_steps(self, tau: int) -> None:
        """``tau`` local gradient steps on ``self.x`` from ``self.x_start`` (kept, so a straggler's
        steps can be undone), advancing the step counter ``self.k``."""
        self.x_start, self.in_local = self.x, True
        x = self.x
        for _ in range(tau):
            x = x - self.lr(self.k) * self.ctx.compute.grad(None, x).result()
            self.k += 1
        self.x = x
