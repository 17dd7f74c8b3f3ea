"""Models evaluated for many nodes at once on flat parameters ``[m, P]``.

Every model here maps a stack of parameter vectors (one row per node) and a stack of per-node
minibatches to per-node losses and gradients in *one* call:

    loss, grad = model.loss_grad(flat [m, P], x [m, B, …], y [m, B], w [m, B])

with ``loss[i] = Σ_b w[i, b] · ℓ(model(flat[i], x[i, b]), y[i, b])`` (plus a per-node regularizer
where the model has one) and ``grad[i] = ∇ loss[i]`` with respect to ``flat[i]``. Rows are
independent, so the result for a node never depends on which other nodes share the call.

- ``MLP``: ReLU multilayer perceptron; forward with ``baddbmm`` on views of the flat tensor and a
  hand-written backward (exact, and about 1.5× faster than autograd on the digits network).
- ``FunctionalModel``: any ``torch.nn.Module``, through ``torch.func`` (``functional_call`` +
  ``vmap`` + ``grad``).
- ``Logistic``: the logistic loss with the non-convex regularizer of docs/algorithms.md (closed form).

The flat layout of a module is ``torch.nn.utils.parameters_to_vector(module.parameters())``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def init_vector(module_factory, seed: int) -> torch.Tensor:
    """The flat default initialization of a fresh module, a pure function of ``seed``
    (torch's global generator is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        module = module_factory()
    return nn.utils.parameters_to_vector(module.parameters()).detach().to(torch.float64)


class MLP:
    """``Linear → ReLU → … → Linear`` with layer sizes ``sizes`` (inputs first), cross-entropy."""

    classifier = True

    def __init__(self, sizes: list[int]) -> None:
        if len(sizes) < 2:
            raise ValueError("an MLP needs at least input and output sizes")
        self.sizes = [int(s) for s in sizes]
        self.slices = []  # (weight slice, bias slice, out, in) per layer
        a = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            w = slice(a, a + fan_out * fan_in)
            a += fan_out * fan_in
            b = slice(a, a + fan_out)
            a += fan_out
            self.slices.append((w, b, fan_out, fan_in))
        self.P = a
        self.shapes = [s for _, _, o, i in self.slices for s in ((o, i), (o,))]  # flat order

    def module(self) -> nn.Sequential:
        layers: list[nn.Module] = []
        for i, (_, _, fan_out, fan_in) in enumerate(self.slices):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(self.slices) - 1:
                layers.append(nn.ReLU())
        return nn.Sequential(*layers)

    def init(self, seed: int) -> torch.Tensor:
        return init_vector(self.module, seed)

    def _views(self, flat: torch.Tensor):
        m = flat.shape[0]
        return [(flat[:, w].view(m, o, i), flat[:, b]) for w, b, o, i in self.slices]

    def _forward(self, flat: torch.Tensor, x: torch.Tensor):
        h = x.reshape(x.shape[0], x.shape[1], -1)
        acts, pres = [h], []
        views = self._views(flat)
        for li, (W, b) in enumerate(views):
            z = torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2))
            pres.append(z)
            h = torch.relu(z) if li < len(views) - 1 else z
            acts.append(h)
        return acts, pres, views

    def logits(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._forward(flat, x)[0][-1]

    def loss_grad(self, flat, x, y, w):
        acts, pres, views = self._forward(flat, x)
        z = acts[-1]
        logp = torch.log_softmax(z, dim=-1)
        nll = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
        loss = (nll * w).sum(dim=1)
        dz = torch.exp(logp)
        dz.scatter_add_(-1, y.unsqueeze(-1), -torch.ones_like(y, dtype=dz.dtype).unsqueeze(-1))
        dz.mul_(w.unsqueeze(-1))
        grad = torch.empty_like(flat)
        m = flat.shape[0]
        for li in range(len(views) - 1, -1, -1):
            wsl, bsl, o, i = self.slices[li]
            grad[:, wsl] = torch.bmm(dz.transpose(1, 2), acts[li]).reshape(m, o * i)
            grad[:, bsl] = dz.sum(dim=1)
            if li > 0:
                dz = torch.bmm(dz, views[li][0]) * (pres[li - 1] > 0)
        return loss, grad

    def predict(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.logits(flat, x).argmax(dim=-1)


class FunctionalModel:
    """Any ``nn.Module`` (parameters only; buffers are kept fixed) through ``torch.func``.

    ``loss`` maps ``(outputs [B, …], targets [B])`` to per-sample losses ``[B]`` (default:
    cross-entropy, which makes it a classifier). Modules with batch-norm in training mode or dropout are not supported.
    """

    def __init__(self, module: nn.Module, loss=None) -> None:
        from torch.func import functional_call, grad_and_value, vmap

        self.template = module
        self.names = [n for n, _ in module.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in module.named_parameters()]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.P = sum(self.sizes)
        self.classifier = loss is None
        self.buffers = dict(module.named_buffers())
        per_sample = loss or (lambda out, y: nn.functional.cross_entropy(out, y, reduction="none"))

        def unflat(v):
            out, a = {}, 0
            for name, shape, k in zip(self.names, self.shapes, self.sizes):
                out[name] = v[a:a + k].view(shape)
                a += k
            return out

        def one_loss(v, xb, yb, wb):
            out = functional_call(self.template, ({**unflat(v), **self._bufs(v)},), (xb,))
            return (per_sample(out, yb) * wb).sum()

        def one_out(v, xb):
            return functional_call(self.template, ({**unflat(v), **self._bufs(v)},), (xb,))

        self._loss1, self._out1 = one_loss, one_out
        self._grad = vmap(grad_and_value(one_loss))
        self._out = vmap(one_out)

    def _bufs(self, v):
        return {k: b.to(v.device) for k, b in self.buffers.items()}

    def module(self) -> nn.Module:
        import copy

        return copy.deepcopy(self.template)

    def init(self, seed: int) -> torch.Tensor:
        return nn.utils.parameters_to_vector(self.template.parameters()).detach().to(torch.float64)

    def to(self, dtype) -> "FunctionalModel":
        """Cast the template's buffers (and parameters) to ``dtype``, once."""
        self.template.to(dtype=dtype)
        self.buffers = dict(self.template.named_buffers())
        return self

    def loss_grad(self, flat, x, y, w):
        if flat.shape[0] == 1:  # one model (the metrics at x̄): plain autograd, no transforms
            v = flat[0].detach().requires_grad_(True)
            with torch.enable_grad():
                loss = self._loss1(v, x[0], y[0], w[0])
                (g,) = torch.autograd.grad(loss, v)
            return loss.detach()[None], g[None]
        g, loss = self._grad(flat, x, y, w)
        return loss, g

    def logits(self, flat, x):
        if flat.shape[0] == 1:
            return self._out1(flat[0], x[0])[None]
        return self._out(flat, x)

    def predict(self, flat, x):
        return self.logits(flat, x).argmax(dim=-1)


class Logistic:
    """``f(x) = Σ_b w_b log(1 + exp(−y_b h_b·x)) + ρ Σ_k x_k² / (1 + x_k²)``, labels ±1."""

    classifier = True

    def __init__(self, P: int, rho: float) -> None:
        self.P, self.rho = int(P), float(rho)
        self.shapes = [(self.P,)]

    def loss_grad(self, flat, x, y, w):
        margin = y * torch.einsum("mbf,mf->mb", x, flat)
        loss = (nn.functional.softplus(-margin) * w).sum(dim=1)
        coef = -(w * y * torch.sigmoid(-margin))
        grad = torch.einsum("mb,mbf->mf", coef, x)
        sq = flat * flat
        loss = loss + self.rho * (sq / (1 + sq)).sum(dim=1)
        grad = grad + self.rho * 2 * flat / (1 + sq) ** 2
        return loss, grad

    def logits(self, flat, x):
        return torch.einsum("mbf,mf->mb", x, flat)

    def predict(self, flat, x):
        return torch.where(self.logits(flat, x) >= 0, 1.0, -1.0).to(flat.dtype)


def small_cnn() -> nn.Module:
    """A small CNN for 8×8 digit images: two 3×3 conv layers (8 and 16 channels), linear head."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 10),
    )


def as_mlp(module: nn.Module) -> MLP | None:
    """The fast ``MLP`` equivalent of ``module`` if it is a plain ``Linear``/``ReLU`` stack."""
    if not isinstance(module, nn.Sequential) or len(module) == 0:
        return None
    layers = list(module)
    lin = layers[0::2]
    acts = layers[1::2]
    if (len(layers) % 2 != 1 or not all(type(m) is nn.Linear and m.bias is not None for m in lin)
            or not all(type(a) is nn.ReLU for a in acts)):
        return None
    sizes = [lin[0].in_features] + [m.out_features for m in lin]
    if any(a.out_features != b.in_features for a, b in zip(lin[:-1], lin[1:])):
        return None
    return MLP(sizes)
