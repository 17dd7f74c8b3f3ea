"""The compressor kinds of ``netemu.fl.compress``: pca, qrcp, cur (``004_…`` section 3), topk, quantize.

Each ``encode`` returns the payload a client sends (numpy arrays, in the update's dtype except
integer indices and codes) and each ``decode`` rebuilds the flat vector from the payload alone.
Payload keys are ``"<tensor>.<factor>"`` for the per-tensor kinds.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from netemu import rng as rngs
from netemu.errors import ScenarioError
from netemu.params import show


# --- compressors: encode(S-views) -> payload; decode(payload) -> flat vector -------------------

class Compressor:
    """Base class: ``encode(flat, client, count) -> payload`` and ``decode(payload) -> flat``;
    ``keys`` are the table keys this kind takes besides ``kind`` and ``feedback``."""

    keys: tuple = ()

    def __init__(self, cfg: dict, layout: "Layout", where: str, seed: int) -> None:
        self.cfg, self.layout, self.where, self.seed = cfg, layout, where, seed

    def encode(self, flat: np.ndarray, client: int, count: int) -> dict:
        raise NotImplementedError

    def decode(self, payload: dict) -> np.ndarray:
        raise NotImplementedError


class NoCompression(Compressor):
    """``none``: the update as it is."""

    def encode(self, flat, client, count):
        return {"x": flat.copy()}

    def decode(self, payload):
        return np.array(payload["x"], copy=True)


class Layout:
    """The tensors of a flat vector: shapes, offsets, and each tensor's 2-D view ``(rows, cols)``."""

    def __init__(self, shapes, where: str) -> None:
        self.shapes = [tuple(int(d) for d in s) for s in shapes]
        sizes = [math.prod(s) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.P = int(self.offsets[-1])
        if self.P <= 0:
            raise ScenarioError(f"{where}: the model has no parameters to compress")
        self.views = [(s[0], math.prod(s[1:])) if len(s) >= 2 else (1, math.prod(s)) for s in self.shapes]

    def mats(self, flat: np.ndarray):
        """Each tensor of ``flat`` as its 2-D view (numpy views, no copies)."""
        o = self.offsets
        return [flat[o[i]:o[i + 1]].reshape(self.views[i]) for i in range(len(self.shapes))]


class LowRank(Compressor):
    """Shared plan of the rank-k kinds: per tensor ``k_t = min(k, rows, cols)``, or the tensor
    whole where its factors (``factor_size``) would not be smaller than it."""

    keys = ("rank",)

    def __init__(self, cfg, layout, where, seed):
        super().__init__(cfg, layout, where, seed)
        k = cfg["rank"]
        if k is None:
            raise ScenarioError(f"{where}.rank is missing: kind = {show(cfg['kind'])} needs it, e.g. rank = 10")
        most = max(min(m, n) for m, n in layout.views)
        if k > most:
            m, n = max(layout.views, key=lambda v: min(v))
            raise ScenarioError(f"{where}.rank = {k} is larger than any tensor allows: the widest "
                                f"tensor here is {m}×{n} as a matrix, so rank must be <= {most}")
        self.k = k
        self.ranks = []  # per tensor: k_t, or 0 for "sent whole"
        for m, n in layout.views:
            kt = min(k, m, n)
            self.ranks.append(kt if self.factor_size(m, n, kt) < m * n else 0)

    def factor_size(self, m: int, n: int, k: int) -> int:
        raise NotImplementedError

    def encode(self, flat, client, count):
        out = {}
        for i, (S, kt) in enumerate(zip(self.layout.mats(flat), self.ranks)):
            if kt == 0:
                out[f"{i}.x"] = S.reshape(-1).copy()
            else:
                out.update({f"{i}.{name}": a for name, a in self.factor(S, kt, client, count, i).items()})
        return out

    def decode(self, payload):
        parts = []
        for i, kt in enumerate(self.ranks):
            parts.append(payload[f"{i}.x"] if kt == 0 else self.rebuild(payload, i).reshape(-1))
        return np.concatenate(parts)

    def factor(self, S, k, client, count, i) -> dict:
        raise NotImplementedError

    def rebuild(self, payload, i) -> np.ndarray:
        raise NotImplementedError


class PCA(LowRank):
    """Centre the columns, truncated SVD: sends mean [n], U_k Σ_k [m, k], V_k [n, k]."""

    def factor_size(self, m, n, k):
        return n + m * k + n * k

    def factor(self, S, k, client, count, i):
        mu = S.mean(axis=0)
        U, s, Vt = np.linalg.svd(S - mu, full_matrices=False)
        return {"mean": mu, "us": np.ascontiguousarray(U[:, :k] * s[:k]), "v": np.ascontiguousarray(Vt[:k].T)}

    def rebuild(self, payload, i):
        return payload[f"{i}.mean"] + payload[f"{i}.us"] @ payload[f"{i}.v"].T


class QRCP(LowRank):
    """``Sᵀ P = Q R`` (scipy.linalg.qr, pivoting): sends Q_k [n, k] and R_k Pᵀ [k, m]."""

    def factor_size(self, m, n, k):
        return n * k + k * m

    def factor(self, S, k, client, count, i):
        Q, R, piv = scipy.linalg.qr(S.T, mode="economic", pivoting=True)
        Rk = np.empty((k, S.shape[0]), dtype=R.dtype)
        Rk[:, piv] = R[:k]  # undo the column pivoting: Sᵀ ≈ Q_k (R_k Pᵀ)
        return {"q": np.ascontiguousarray(Q[:, :k]), "r": Rk}

    def rebuild(self, payload, i):
        return payload[f"{i}.r"].T @ payload[f"{i}.q"].T


class CUR(LowRank):
    """Row ID: k rows R sampled without replacement, Z = S R⁺: sends Z [m, k] and R [k, n]."""

    def factor_size(self, m, n, k):
        return m * k + k * n

    def factor(self, S, k, client, count, i):
        g = rngs.stream(self.seed, "compress", client, count, i)
        rows = np.sort(g.choice(S.shape[0], size=k, replace=False))
        R = np.ascontiguousarray(S[rows])
        Z = S @ np.linalg.pinv(R)
        return {"z": Z.astype(S.dtype, copy=False), "r": R}

    def rebuild(self, payload, i):
        return payload[f"{i}.z"] @ payload[f"{i}.r"]


class TopK(Compressor):
    """The k largest magnitudes of the whole flat update: sends indices and values."""

    keys = ("k", "fraction")

    def __init__(self, cfg, layout, where, seed):
        super().__init__(cfg, layout, where, seed)
        k, frac = cfg["k"], cfg["fraction"]
        if (k is None) == (frac is None):
            raise ScenarioError(f"{where}: kind = \"topk\" takes one of k (entries) or fraction "
                                f"(of the {layout.P} entries), e.g. fraction = 0.01")
        if k is not None and k > layout.P:
            raise ScenarioError(f"{where}.k = {k} is larger than the model's {layout.P} parameters; "
                                f"use k <= {layout.P}")
        self.k = k if k is not None else max(1, int(np.ceil(frac * layout.P)))
        self.itype = np.int32 if layout.P < 2**31 else np.int64

    def encode(self, flat, client, count):
        idx = np.argpartition(-np.abs(flat), self.k - 1)[:self.k] if self.k < flat.size else np.arange(flat.size)
        idx = np.sort(idx)
        return {"idx": idx.astype(self.itype), "val": flat[idx]}

    def decode(self, payload):
        val = payload["val"]
        out = np.zeros(self.layout.P, dtype=val.dtype)
        out[payload["idx"]] = val
        return out


class Quantize(Compressor):
    """Per-tensor affine quantization to ``bits`` bits, codes bit-packed: sends codes, lo, scale."""

    keys = ("bits",)

    def __init__(self, cfg, layout, where, seed):
        super().__init__(cfg, layout, where, seed)
        self.bits = int(cfg["bits"])
        self.levels = 2 ** self.bits - 1

    def encode(self, flat, client, count):
        T = len(self.layout.shapes)
        lo, scale = np.empty(T, dtype=flat.dtype), np.empty(T, dtype=flat.dtype)
        codes = np.empty(flat.size, dtype=np.uint8)
        o = self.layout.offsets
        for i in range(T):
            x = flat[o[i]:o[i + 1]]
            lo[i] = x.min()
            scale[i] = (x.max() - lo[i]) / self.levels
            s = scale[i] if scale[i] > 0 else 1
            codes[o[i]:o[i + 1]] = np.clip(np.rint((x - lo[i]) / s), 0, self.levels)
        return {"codes": self._pack(codes), "lo": lo, "scale": scale}

    def decode(self, payload):
        codes = self._unpack(payload["codes"], self.layout.P)
        lo, scale = payload["lo"], payload["scale"]
        counts = np.diff(self.layout.offsets)
        return np.repeat(lo, counts) + codes.astype(lo.dtype) * np.repeat(scale, counts)

    def _pack(self, codes):
        """Codes at ``bits`` bits each, most significant first, the last byte zero-padded."""
        b = self.bits
        if b == 8:
            return codes
        if 8 % b == 0:  # 1, 2, 4 bits: whole codes per byte, by shifts
            per = 8 // b
            c = np.zeros(-(-codes.size // per) * per, dtype=np.uint8)
            c[:codes.size] = codes
            c = c.reshape(-1, per)
            shifts = (b * np.arange(per - 1, -1, -1)).astype(np.uint8)
            return np.bitwise_or.reduce(c << shifts, axis=1).astype(np.uint8)
        bits = np.unpackbits(codes[:, None], axis=1)[:, 8 - b:]
        return np.packbits(bits.reshape(-1))

    def _unpack(self, packed, n):
        b = self.bits
        if b == 8:
            return packed
        if 8 % b == 0:
            per = 8 // b
            shifts = (b * np.arange(per - 1, -1, -1)).astype(np.uint8)
            return ((packed[:, None] >> shifts) & np.uint8(2 ** b - 1)).reshape(-1)[:n]
        bits = np.unpackbits(packed)[:n * self.bits].reshape(n, self.bits)
        full = np.zeros((n, 8), dtype=np.uint8)
        full[:, 8 - self.bits:] = bits
        return np.packbits(full, axis=1).reshape(-1)


KINDS: dict[str, type] = {"none": NoCompression, "pca": PCA, "qrcp": QRCP, "cur": CUR,
                         "topk": TopK, "quantize": Quantize}
