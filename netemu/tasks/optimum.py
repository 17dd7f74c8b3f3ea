"""The optimum of a convex task, from one centralized solve, and the distances to it.

A convex task carries an ``Objective``: ``F(x) = Σ_s w_s φ(a_s·x, y_s) + (l2/2)‖x‖²`` over all
nodes' full local datasets (``w_s = 1/(n |D_i|)`` for a sample of node ``i``), in float64 numpy
on the host, from the task's float64 data whatever the ``[compute] dtype``. ``Objective.optimum``
is computed once, on first use: ``scipy.optimize.minimize`` L-BFGS-B from ``x = 0`` until every
entry of ``∇F`` is at most ``1e-10`` in absolute value. Near the optimum ``F`` itself stops
resolving progress (a decrease of ``‖∇F‖²/L`` ≈ 1e-18 is below the rounding of ``F``), so
L-BFGS-B often ends at ``|∇F|`` ≈ 1e-9; up to three Newton steps on ``∇F`` (whose Hessian
``Aᵀ diag(w φ'') A + l2 I`` is small, ``P × P``) then finish the solve, to about 1e-15. The
metrics of docs/algorithms.md:

- ``opt_gap = F(x̄) − F*``, both terms evaluated by this same float64 function (so it is exactly
  0 at ``x*`` and resolves gaps far below a float32 ``loss``; below about ``1e-16 |F*|`` it is
  rounding and may be slightly negative);
- ``dist_opt = ‖x̄ − x*‖₂`` and ``dist_opt_worst = max_i ‖x_i − x*‖₂``.

Which tasks are convex is decided by ``netemu.tasks.is_convex``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netemu.errors import ScenarioError

GTOL = 1e-10  # the solve stops when max_k |∂F/∂x_k| <= GTOL
ACCEPT = 1e-8  # a solve that ends (line search) above GTOL but below this is still accepted


@dataclass(frozen=True)
class Optimum:
    x: np.ndarray  # x*, float64 [P]
    value: float  # F* = F(x*)
    grad_max: float  # max_k |∂F/∂x_k(x*)|, the solve's precision
    iterations: int


def squared(z: np.ndarray, y: np.ndarray, curvature: bool = False):
    """``φ(z, y) = (z − y)² / 2``, ``∂φ/∂z`` (and ``∂²φ/∂z²`` with ``curvature``)."""
    r = z - y
    return (0.5 * r * r, r) + ((np.ones_like(r),) if curvature else ())


def logistic(z: np.ndarray, y: np.ndarray, curvature: bool = False):
    """``φ(z, y) = log(1 + exp(−y z))`` (labels ±1), ``∂φ/∂z`` (and ``∂²φ/∂z²``)."""
    from scipy.special import expit

    m = y * z
    s = expit(-m)
    return (np.logaddexp(0.0, -m), -y * s) + ((s * (1.0 - s),) if curvature else ())


class Objective:
    """``F`` and ``∇F`` of a convex task in float64 numpy, and its minimiser (computed once).

    ``A``: ``[N, P]`` inputs of all samples; ``y``: ``[N]`` targets; ``w``: ``[N]`` weights that
    sum to 1; ``loss``: ``squared`` or ``logistic``; ``l2``: ridge weight. ``check``: called with
    the optimum, raises if it is not one (a logistic task with separable data has none).
    """

    def __init__(self, A, y, w, loss, l2: float = 0.0, check=None) -> None:
        self.A = np.ascontiguousarray(A, dtype=np.float64)
        self.y = np.asarray(y, dtype=np.float64)
        self.w = np.asarray(w, dtype=np.float64)
        self.loss, self.l2, self.check = loss, float(l2), check
        self.dim = self.A.shape[1]
        self._optimum: Optimum | None = None

    def value(self, x: np.ndarray) -> float:
        f = self.loss(self.A @ x, self.y)[0]
        out = float(self.w @ f)
        if self.l2:
            out += 0.5 * self.l2 * float(x @ x)
        return out

    def value_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        f, d = self.loss(self.A @ x, self.y)
        val, g = float(self.w @ f), self.A.T @ (self.w * d)
        if self.l2:
            val += 0.5 * self.l2 * float(x @ x)
            g = g + self.l2 * x
        return val, g

    def newton_step(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``H⁻¹ ∇F`` (least-norm where ``H`` is singular)."""
        _, _, c = self.loss(self.A @ x, self.y, curvature=True)
        H = self.A.T @ ((self.w * c)[:, None] * self.A) + self.l2 * np.eye(self.dim)
        return np.linalg.lstsq(H, g, rcond=None)[0]

    @property
    def optimum(self) -> Optimum:
        if self._optimum is None:
            self._optimum = self.solve()
        return self._optimum

    def solve(self) -> Optimum:
        from scipy.optimize import minimize

        res = minimize(self.value_grad, np.zeros(self.dim), jac=True, method="L-BFGS-B",
                       options={"gtol": GTOL, "ftol": 0.0, "maxiter": 20000, "maxcor": 30})
        x = np.asarray(res.x, dtype=np.float64)
        value, g = self.value_grad(x)
        gmax = float(np.max(np.abs(g))) if self.dim else 0.0
        for _ in range(3):  # Newton polish (see the module docs); kept only while |∇F| shrinks
            if not (np.isfinite(gmax) and gmax > 1e-15):
                break
            x1 = x - self.newton_step(x, g)
            v1, g1 = self.value_grad(x1)
            g1max = float(np.max(np.abs(g1)))
            if not g1max < gmax:
                break
            x, value, g, gmax = x1, v1, g1, g1max
        opt = Optimum(x, value, gmax, int(res.nit))
        if self.check is not None:
            self.check(self, opt)
        if not (np.isfinite(value) and gmax <= ACCEPT):
            raise ScenarioError(f"[task]: the centralized solve for x* (opt_gap, dist_opt) stopped at "
                                f"max |∇F| = {gmax:.3g} > {ACCEPT:g} after {res.nit} iterations "
                                f"({res.message}); a ridge term ([task] l2 > 0) makes F strongly convex")
        return opt

    def gap(self, x: np.ndarray) -> float:
        """``F(x) − F*``."""
        return self.value(x) - self.optimum.value

    def dist(self, x: np.ndarray) -> np.ndarray | float:
        """``‖x − x*‖₂`` of a vector ``[P]``, or of each row of ``[n, P]``."""
        d = np.linalg.norm(np.asarray(x, dtype=np.float64) - self.optimum.x, axis=-1)
        return float(d) if np.ndim(d) == 0 else d
