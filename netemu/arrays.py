"""Where protocol state lives: numpy on the host, or torch tensors on the compute device.

An optimization run keeps its protocol state in the compute backend's dtype and on its device
(``[compute] device``, ``dtype``), so a round never copies ``[n, P]`` between host and device:
gradients, mixing and metrics all happen there. The exception is float64 on the CPU, which keeps
numpy state (bit-identical to the reference implementations). Consensus runs are numpy float64.

A protocol reaches the namespace as ``ctx.xp`` and writes its array code once:

    self.x = xp.asarray(x0)                     # state, in the run's dtype and place
    g = xp.where(ctx.compute.late, 0.0, g)      # a host bool mask [n] selects rows
    d = xp.eye(n)

Arithmetic (``+ - * /``), indexing and ``reshape`` are the arrays' own. ``netemu.mixing`` works
on both kinds.
"""

from __future__ import annotations

import numpy as np


class Numpy:
    """Host state, float64."""

    name = "numpy"
    torch = False

    def asarray(self, a) -> np.ndarray:
        return np.array(a, dtype=np.float64)

    def where(self, mask: np.ndarray, a, b):
        return np.where(_rows(mask, a, b), a, b)

    def eye(self, n: int) -> np.ndarray:
        return np.eye(n)

    def zeros(self, shape) -> np.ndarray:
        return np.zeros(shape)

    def ones(self, n: int) -> np.ndarray:
        return np.ones(n)

    def zeros_like(self, a) -> np.ndarray:
        return np.zeros_like(a, dtype=np.float64)

    def copy(self, a) -> np.ndarray:
        return a.copy()

    def host(self, a) -> np.ndarray:
        return np.asarray(a)


def _rows(mask: np.ndarray, a, b) -> np.ndarray:
    """A row mask ``[n]`` shaped to broadcast against ``a``/``b`` (``[n, …]``)."""
    nd = max(np.ndim(a), np.ndim(b))
    return np.asarray(mask).reshape((-1,) + (1,) * (nd - 1))


class Torch:
    """State as torch tensors of ``dtype`` on ``device``."""

    name = "torch"
    torch = True

    def __init__(self, device, dtype) -> None:
        import torch

        self.t, self.device, self.dtype = torch, device, dtype

    def asarray(self, a):
        t = self.t
        if isinstance(a, t.Tensor):
            return a.detach().to(device=self.device, dtype=self.dtype).clone()
        return t.as_tensor(np.asarray(a), device=self.device).to(self.dtype).clone()

    def like(self, a):
        """``a`` (numpy or tensor) as a tensor of the state's dtype on its device, no copy if it
        already is one."""
        t = self.t
        if isinstance(a, t.Tensor) and a.device == self.device and a.dtype == self.dtype:
            return a
        return t.as_tensor(np.asarray(a) if not isinstance(a, t.Tensor) else a,
                           device=self.device).to(self.dtype)

    def where(self, mask: np.ndarray, a, b):
        t = self.t
        mask = np.asarray(mask)
        if not mask.any() and isinstance(b, t.Tensor) and (not isinstance(a, t.Tensor) or a.shape == b.shape):
            return b  # no row selected (no straggler): nothing to copy to the device
        m = t.as_tensor(_rows(mask, a, b), device=self.device)
        a = a if isinstance(a, t.Tensor) else t.as_tensor(a, dtype=self.dtype, device=self.device)
        b = b if isinstance(b, t.Tensor) else t.as_tensor(b, dtype=self.dtype, device=self.device)
        return t.where(m, a, b)

    def eye(self, n: int):
        return self.t.eye(n, dtype=self.dtype, device=self.device)

    def zeros(self, shape):
        return self.t.zeros(shape, dtype=self.dtype, device=self.device)

    def ones(self, n: int):
        return self.t.ones(n, dtype=self.dtype, device=self.device)

    def zeros_like(self, a):
        return self.t.zeros_like(a)

    def copy(self, a):
        return a.clone()

    def host(self, a) -> np.ndarray:
        return a.detach().cpu().numpy()


NUMPY = Numpy()


def namespace(device=None, dtype=None):
    """The namespace for state computed on ``device`` in ``dtype`` (torch objects or names):
    numpy for float64 on the CPU (and for no compute backend), torch tensors otherwise."""
    if device is None:
        return NUMPY
    import torch

    device, dtype = torch.device(device), dtype if isinstance(dtype, torch.dtype) else getattr(torch, dtype)
    if device.type == "cpu" and dtype == torch.float64:
        return NUMPY
    return Torch(device, dtype)


def is_tensor(a) -> bool:
    """Whether ``a`` is a torch tensor, without importing torch when it is not loaded."""
    return type(a).__module__.startswith("torch")


def host(a) -> np.ndarray:
    """``a`` as a numpy array (a tensor is copied to the host)."""
    return a.detach().cpu().numpy() if is_tensor(a) else np.asarray(a)
