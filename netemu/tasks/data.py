"""An optimization task: one dataset per node and a model, evaluated for many nodes at once.

Node ``i`` minimises ``f_i(x) = Σ_{s ∈ D_i} ℓ(x; s) / |D_i|`` (plus the model's regularizer);
the network minimises ``F = (1/n) Σ_i f_i``. This class is also the Python API for a user's own
``torch.nn.Module`` and data (see ``ModuleTask`` and ``examples/custom_model.py``).

- ``sample(nodes, rng)``: the minibatch of each requested node, as indices into the training data
  and per-sample weights (``batch`` samples drawn uniformly with replacement from the node's own
  data, weight ``1/batch``; ``batch = 0``: the node's whole dataset, weight ``1/|D_i|``).
- ``grads(params [m, P], sample)``: the gradients of all requested nodes in one batched call
  (numpy, in the compute dtype).
- ``evaluate(x̄)``: ``loss = F(x̄)``, ``grad_norm_sq = ‖∇F(x̄)‖²`` (full local datasets) and, for
  classifiers with held-out data, ``accuracy`` of ``x̄`` on it; for a convex task (one built with
  an ``objective``, see ``netemu.tasks.optimum``) also ``opt_gap = F(x̄) − F*`` and
  ``dist_opt = ‖x̄ − x*‖₂``, with ``x*`` solved for once, on first use (``task.optimum``).
"""

from __future__ import annotations

import numpy as np
import torch

from netemu.errors import ScenarioError


class DataTask:
    def __init__(self, model, X, y, sizes, test=None, batch: int = 0, init=None,
                 device="cpu", dtype=torch.float64, kind: str = "custom", where: str = "[task]",
                 objective=None) -> None:
        sizes = np.asarray(sizes, dtype=np.int64)
        empty = np.flatnonzero(sizes <= 0)
        if len(empty):
            raise ScenarioError(f"{where}: node {int(empty[0])} gets no training samples "
                                f"({len(empty)} of {len(sizes)} nodes are empty); use fewer nodes "
                                f"or another split")
        if int(sizes.sum()) != len(X):
            raise ValueError(f"sizes sum to {int(sizes.sum())} but there are {len(X)} samples")
        self.kind, self.model = kind, model
        if hasattr(model, "to"):
            model.to(dtype)
        self.n, self.dim = len(sizes), int(model.P)
        self.device, self.dtype = torch.device(device), dtype
        self.sizes = sizes
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.batch = int(batch)
        self.X = torch.as_tensor(np.asarray(X), dtype=dtype, device=self.device)
        y = np.asarray(y)
        ydt = torch.int64 if y.dtype.kind in "iub" else dtype
        self.y = torch.as_tensor(y, device=self.device).to(ydt)
        self.test = None
        if test is not None:
            self.test = (torch.as_tensor(np.asarray(test[0]), dtype=dtype, device=self.device),
                         torch.as_tensor(np.asarray(test[1]), device=self.device).to(ydt))
        node = np.repeat(np.arange(self.n), sizes)
        self.eval_w = torch.as_tensor(1.0 / (self.n * sizes[node]), dtype=dtype, device=self.device)
        init = np.zeros(self.dim) if init is None else np.asarray(init, dtype=np.float64).reshape(-1)
        if len(init) != self.dim:
            raise ValueError(f"initial vector has {len(init)} entries, the model has {self.dim}")
        self.init = init
        self.classification = bool(getattr(model, "classifier", False))
        self.objective = objective

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """The model's tensor shapes in flat order (their sizes sum to ``dim``); one vector when the
        model does not say (compressed FL updates view each tensor as a matrix)."""
        shapes = getattr(self.model, "shapes", None)
        return [tuple(s) for s in shapes] if shapes else [(self.dim,)]

    @property
    def samples(self) -> int:
        """Training samples of all nodes (the size of one full evaluation, with ``dim``)."""
        return int(self.sizes.sum())

    @property
    def convex(self) -> bool:
        """Whether ``x*`` is known (computed on first use): the task has an ``objective``."""
        return self.objective is not None

    @property
    def optimum(self):
        """``netemu.tasks.optimum.Optimum`` (``x``, ``value`` = ``F*``), solved once; None when not
        convex."""
        return None if self.objective is None else self.objective.optimum

    def x0(self) -> np.ndarray:
        """Every node starts from the same initial parameters, ``[n, P]`` float64."""
        return np.tile(self.init, (self.n, 1))

    def sample(self, nodes: np.ndarray, rng: np.random.Generator):
        size, off = self.sizes[nodes][:, None], self.offsets[nodes][:, None]
        if self.batch > 0:
            idx = off + (rng.random((len(nodes), self.batch)) * size).astype(np.int64)
            return idx, np.full(idx.shape, 1.0 / self.batch)
        width = np.arange(int(self.sizes.max()))[None, :]
        idx = off + np.minimum(width, size - 1)
        return idx, np.where(width < size, 1.0 / size, 0.0)

    @staticmethod
    def concat_samples(samples: list):
        if len(samples) == 1:
            return samples[0]
        return np.concatenate([s[0] for s in samples]), np.concatenate([s[1] for s in samples])

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, device=self.device).to(self.dtype)

    def capture(self, params) -> torch.Tensor:
        """A copy of ``params`` ``[m, P]`` (numpy, or a tensor) on the device, in the compute dtype."""
        if isinstance(params, torch.Tensor):
            return params.detach().to(device=self.device, dtype=self.dtype).clone()
        return torch.tensor(params, dtype=self.dtype, device=self.device)

    @staticmethod
    def concat_params(params: list) -> torch.Tensor:
        return params[0] if len(params) == 1 else torch.cat(params)

    def grads(self, params, sample, as_tensor: bool = False):
        """Gradients ``[m, P]`` (numpy, compute dtype; or the device tensor with ``as_tensor``)
        at ``params`` (captured, or an array)."""
        idx, w = sample
        it = torch.as_tensor(idx, device=self.device)
        p = params if isinstance(params, torch.Tensor) else self.capture(np.asarray(params))
        with torch.no_grad():  # torch.func transforms ignore an outer no_grad
            _, g = self.model.loss_grad(p, self.X[it], self.y[it], self._t(w))
        g = g.detach()
        return g if as_tensor else g.cpu().numpy()

    def evaluate(self, xbar: np.ndarray) -> dict:
        out = {"loss": float("nan"), "grad_norm_sq": float("nan")}
        if self.classification and self.test is not None:
            out["accuracy"] = float("nan")
        if self.objective is not None:
            out["opt_gap"] = out["dist_opt"] = float("nan")
        if isinstance(xbar, torch.Tensor):
            if not bool(torch.isfinite(xbar).all()):
                return out
            p = xbar.detach().to(device=self.device, dtype=self.dtype)[None, :]
        else:
            if not np.all(np.isfinite(xbar)):
                return out
            p = self._t(xbar[None, :])
        if self.objective is not None:
            x = xbar.detach().cpu().numpy().astype(np.float64) if isinstance(xbar, torch.Tensor) \
                else np.asarray(xbar, dtype=np.float64)
            out["opt_gap"], out["dist_opt"] = self.objective.gap(x), self.objective.dist(x)
        with torch.no_grad():
            loss, g = self.model.loss_grad(p, self.X[None], self.y[None], self.eval_w[None])
            out["loss"] = float(loss[0])
            out["grad_norm_sq"] = float((g.to(torch.float64) ** 2).sum())
            if "accuracy" in out:
                pred = self.model.predict(p, self.test[0][None])[0]
                out["accuracy"] = float((pred == self.test[1]).to(torch.float64).mean())
        return out


def ModuleTask(module, node_data, test=None, batch: int = 32, loss=None, device="cpu",
               dtype=torch.float32) -> DataTask:
    """A task from a user's ``torch.nn.Module`` and per-node data.

    ``node_data``: a list with one ``(X_i, y_i)`` per node (arrays or tensors, the first axis is
    samples); ``test``: optional held-out ``(X, y)`` for ``accuracy``; ``loss``: per-sample loss
    ``(outputs, targets) -> [B]`` (default cross-entropy, which also makes it a classifier).
    The module's current parameters are every node's starting point. A plain ``Linear``/``ReLU``
    ``nn.Sequential`` with cross-entropy runs on the fast batched MLP path.
    """
    from netemu.compute.models import FunctionalModel, as_mlp

    X = np.concatenate([np.asarray(x) for x, _ in node_data]) if node_data else np.zeros((0,))
    y = np.concatenate([np.asarray(t) for _, t in node_data]) if node_data else np.zeros((0,))
    sizes = [len(x) for x, _ in node_data]
    model = as_mlp(module) if loss is None else None
    if model is None:
        model = FunctionalModel(module, loss=loss)
    init = torch.nn.utils.parameters_to_vector(module.parameters()).detach().double().numpy()
    return DataTask(model, X, y, sizes, test=test, batch=batch, init=init, device=device, dtype=dtype,
                    where="ModuleTask node_data")
