"""Step-size and inner-round schedules of the optimization protocols (one place for their math).

Paper: "Decentralized Optimization over Time-Varying Row-Stochastic Digraphs" (PULM), Theorem 2
and its corollary: outer step ``k = 0, 1, …`` runs ``R_k`` communication rounds with step ``α_k``.

``inner_rounds`` is a whole number ``R`` (every step), or a table

- ``{ schedule = "log", c = 1.0, min = 1 }``: ``R_k = max(min, ⌈c · ln(k + 1)⌉)``.

``lr`` is a number (then the protocol keys ``schedule = "constant" | "inv-sqrt" | "step"``,
``decay`` and ``decay_every`` apply, with the arithmetic they always had), or a table

- ``{ schedule = "const", a = 0.05 }``: ``α_k = a``;
- ``{ schedule = "inv_sqrt", a = … }``: ``α_k = a / √(k + 1)``;
- ``{ schedule = "inv", a = … }``: ``α_k = a / (k + 1)``;
- ``{ schedule = "horizon", a = … }``: ``α_k = a / √K`` for a run of ``K`` outer steps: the
  largest ``K`` with ``Σ_{k<K} R_k ≤`` the run's communication rounds (at least 1). Protocols whose
  step counter counts local steps (local SGD, EASGD: ``τ`` per period) use ``K = τ ·`` periods.

A protocol binds its schedules to the run in ``start`` (``bind(p, ctx.rounds, …)``); ``horizon``
needs the run's rounds and is refused when the run has no fixed number of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from netemu.errors import ProtocolError
from netemu.params import REQUIRED, Key

_A = Key("float", REQUIRED, lo=0, lo_open=True, example="0.05", doc="base step size a, > 0")
LR_FORMS = {name: {"a": _A} for name in ("const", "inv_sqrt", "inv", "horizon")}
INNER_FORMS = {"log": {"c": Key("float", 1.0, lo=0, lo_open=True, example="1.0", doc="c, > 0"),
                       "min": Key("int", 1, lo=1, example="1", doc="fewest rounds per step, >= 1")}}
LEGACY = ("constant", "inv-sqrt", "step")

LR_KEY = Key("schedule", 0.05, lo=0, lo_open=True, example="0.05",
             doc="step size α > 0, or a schedule table { schedule = \"const\" | \"inv_sqrt\" | \"inv\" "
                 "| \"horizon\", a = … }",
             extra={"number": "float", "forms": LR_FORMS,
                    "table_example": '{ schedule = "inv_sqrt", a = 0.5 }'})


def inner_rounds_key(default: int, doc: str) -> Key:
    """The ``inner_rounds`` declaration: a whole number >= 1 or ``{ schedule = "log", … }``."""
    return Key("schedule", default, lo=1, example=str(default),
               doc=f"{doc}: a whole number, or {{ schedule = \"log\", c = 1.0, min = 1 }}",
               extra={"number": "int", "forms": INNER_FORMS,
                      "table_example": '{ schedule = "log", c = 1.0, min = 1 }'})


@dataclass(frozen=True)
class StepSize:
    """``α_k`` as a function of the step index ``k``; ``rule`` is a table schedule name or a legacy
    one (``constant``, ``inv-sqrt``, ``step``); ``K``: the bound horizon (``horizon`` only)."""

    rule: str
    a: float
    decay: float = 1.0
    every: int = 1
    K: int | None = None

    def __call__(self, k: int) -> float:
        r = self.rule
        if r in ("inv_sqrt", "inv-sqrt"):
            return self.a / math.sqrt(k + 1)
        if r == "inv":
            return self.a / (k + 1)
        if r == "step":
            return self.a * self.decay ** (k // self.every)
        if r == "horizon":
            if self.K is None:
                raise ProtocolError("lr.schedule = \"horizon\" is not bound to a run: call "
                                    "netemu.schedules.bind(p, rounds) first")
            return self.a / math.sqrt(self.K)
        return self.a


@dataclass(frozen=True)
class InnerRounds:
    """``R_k``: ``fixed`` every step, or ``max(min, ⌈c · ln(k + 1)⌉)`` when ``fixed`` is None."""

    fixed: int | None = 1
    c: float = 1.0
    min: int = 1

    def __call__(self, k: int) -> int:
        if self.fixed is not None:
            return self.fixed
        return max(self.min, math.ceil(self.c * math.log(k + 1)))

    def total(self, steps: int) -> int:
        """Communication rounds of ``steps`` outer steps: ``Σ_{k<steps} R_k``."""
        if self.fixed is not None:
            return self.fixed * steps
        return sum(self(k) for k in range(steps))

    def outer_steps(self, rounds: int) -> int:
        """The largest ``K`` with ``Σ_{k<K} R_k ≤ rounds``: outer steps completed in ``rounds``."""
        if self.fixed is not None:
            return rounds // self.fixed
        k, used = 0, self(0)
        while used <= rounds:
            k += 1
            used += self(k)
        return k


def step_size_of(p: dict) -> StepSize:
    """The (unbound) step-size schedule of checked protocol parameters ``p``."""
    lr = p["lr"]
    if isinstance(lr, dict):
        legacy = p.get("schedule", "constant")
        if legacy != "constant":
            raise ProtocolError(f"schedule = {legacy!r} applies to a number lr, but lr is a table "
                                f"(lr.schedule = {lr['schedule']!r}); remove schedule, or give lr "
                                f"as a number")
        return StepSize(lr["schedule"], lr["a"])
    return StepSize(p.get("schedule", "constant"), lr, p.get("decay", 1.0), p.get("decay_every", 1))


def inner_rounds_of(p: dict) -> InnerRounds:
    """The inner-round schedule of ``p`` (one round per step when it has no ``inner_rounds``)."""
    r = p.get("inner_rounds", 1)
    if isinstance(r, dict):
        return InnerRounds(None, r["c"], r["min"])
    return InnerRounds(int(r))


@dataclass(frozen=True)
class Bound:
    """A protocol's schedules bound to one run: ``lr(k)``, ``inner(k)`` and ``K`` (outer steps
    that fit in the run, None when the run's rounds are not fixed)."""

    lr: StepSize
    inner: InnerRounds
    K: int | None


def bind(p: dict, rounds: int | None, local_steps: int = 1, who: str = "") -> Bound:
    """Bind ``p``'s schedules to a run of ``rounds`` communication rounds (None: unbounded).

    ``local_steps``: step-counter increments per outer step (``τ`` for local SGD and EASGD), so
    ``horizon`` uses ``K = local_steps · outer_steps(rounds)``."""
    lr, inner = step_size_of(p), inner_rounds_of(p)
    K = None if rounds is None else inner.outer_steps(int(rounds))
    if lr.rule == "horizon":
        if K is None:
            head = f"protocol {who!r}: " if who else ""
            raise ProtocolError(f"{head}lr.schedule = \"horizon\" needs a fixed number of outer steps, "
                                f"but this run has no fixed number of communication rounds "
                                f"(ctx.rounds is None; [run] rounds sets it); use "
                                f"lr = {{ schedule = \"inv_sqrt\", a = {lr.a} }} instead")
        lr = StepSize("horizon", lr.a, K=max(1, local_steps * K))
    return Bound(lr, inner, K)


def step_size(p: dict, k: int) -> float:
    """``α_k`` of checked parameters ``p`` (``horizon`` needs ``bind``)."""
    return step_size_of(p)(k)
