"""Compressed model updates for the FL protocols, with error feedback.

Interface (what a protocol calls)::

    codec = build_codec(cfg, shapes, n_clients, where, seed=0)
        # cfg: the protocol's `compress` table, e.g. {"kind": "pca", "rank": 10, "feedback": "ef"};
        #      None or {} means kind = "none". Keys and their checks: CODEC_PARAMS.
        # shapes: the model's tensor shapes in flat order (task.shapes); sum of sizes = P.
        # where: the place of the table in messages, e.g. "s.toml: [protocols.fedbuff] compress";
        #      a bad value raises ScenarioError naming f"{where}.rank" etc.
        # seed: the scenario seed (CUR samples its rows from netemu.rng.stream(seed, "compress", client, n)).
    enc = codec.encode(client, delta)     # delta: flat float vector [P] (numpy, float32 or float64)
        # enc.approx [P]: what the server applies (same dtype as delta)
        # enc.nbytes: bytes of the payload actually sent (sum of its arrays' nbytes, dtype-aware)
        # enc.error: ||S - S_approx||_F over all tensors (S = the compressor's input: delta, plus
        #            the client's residual under error feedback)
        # enc.seconds: wall-clock time of the compression (for logs only: it differs from run to
        #              run, so simulated time must not depend on it)
        # enc.payload: dict[str, np.ndarray], what live mode sends
    codec.decode(enc.payload)             # == enc.approx, bit for bit
    codec.residual(client)                # the client's error-feedback memory e (zeros before any update)

Compressors (``kind``), ALGORITHMS.md "Compressed updates" and ``004_…`` section 3: every tensor is
viewed as a 2-D matrix ``S`` (first dimension = rows, the rest flattened; 1-D tensors and scalars as
one row), and

- ``none``: ``S`` as it is;
- ``pca`` (``rank`` k): centre the columns, truncated SVD of rank k; sends the column mean
  ``μ`` [n], ``U_k Σ_k`` [m, k] and ``V_k`` [n, k]; ``S ≈ 1 μᵀ + U_k Σ_k V_kᵀ``;
- ``qrcp`` (``rank`` k): ``scipy.linalg.qr(Sᵀ, pivoting=True)``, ``Sᵀ P = Q R``, keep the first k
  columns of Q and rows of R; sends ``Q_k`` [n, k] and ``R_k Pᵀ`` [k, m]; ``S ≈ (R_k Pᵀ)ᵀ Q_kᵀ``;
- ``cur`` (``rank`` k rows, the row interpolative decomposition): k rows ``R`` of ``S`` sampled
  without replacement, ``Z = S R⁺``; sends ``Z`` [m, k] and ``R`` [k, n]; ``S ≈ Z R``;
- ``topk`` (``k`` entries, or a ``fraction`` of P): the largest magnitudes of the flat vector;
  sends their indices (int32, int64 beyond 2³¹ entries) and values;
- ``quantize`` (``bits``, default 8): per tensor ``lo = min``, ``scale = (max − lo) / (2^bits − 1)``,
  codes ``round((x − lo) / scale)`` packed at ``bits`` bits each; sends the packed codes and
  ``lo``, ``scale`` per tensor.

A low-rank kind uses ``k_t = min(k, rows, cols)`` on each tensor (``004_…``: ``k = min(10, rank)``) and
sends a tensor whole where its factors would not be smaller than it; a ``rank`` larger than every
tensor allows is an error. Error feedback (``feedback = "ef"``, ALGORITHMS.md): send
``m = C(e + Δ)``, keep ``e ← e + Δ − m`` per client. EControl (Gao, Islamov, Stich 2023) is not
implemented: its update rule was not available to take from the paper.
Byte formulas per compressor: docs/compression.md. A new kind is a ``Compressor`` subclass in
``netemu.fl.compressors``, listed by name in its ``KINDS``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from netemu.errors import ScenarioError, did_you_mean
from netemu.fl.compressors import KINDS, Compressor, Layout
from netemu.params import Key, check_value, show

FEEDBACK = ("none", "ef")


@dataclass
class Encoded:
    """One compressed update: what the server applies, what it costs, what it lost."""

    approx: np.ndarray
    nbytes: int
    error: float
    seconds: float
    payload: dict = field(default_factory=dict)


# The compressors themselves (with their base class and the tensor layout) are in
# netemu.fl.compressors; KINDS there lists them by name.

REGISTRY: dict[str, type] = KINDS

CODEC_PARAMS: dict[str, Key] = {
    "kind": Key("str", default="none", choices=tuple(REGISTRY),
                doc="compressor: none, pca, qrcp, cur, topk, quantize", example='"pca"'),
    "rank": Key("int", default=None, nullable=True, lo=1, hi=100_000,
                doc="rank k of pca/qrcp, number of sampled rows of cur", example="10"),
    "k": Key("int", default=None, nullable=True, lo=1, doc="topk: entries kept", example="1000"),
    "fraction": Key("float", default=None, nullable=True, lo=0.0, hi=1.0, lo_open=True,
                    doc="topk: fraction of the entries kept, in (0, 1]", example="0.01"),
    "bits": Key("int", default=8, lo=1, hi=8, doc="quantize: bits per entry", example="8"),
    "feedback": Key("str", default="none", choices=FEEDBACK,
                    doc='error feedback: "none" or "ef" (send C(e + Δ), keep e + Δ − C(e + Δ))',
                    example='"ef"'),
}


def check_codec(cfg: dict | None, where: str) -> dict:
    """Validate a ``compress`` table (kinds known at call time); return it with defaults filled in."""
    if cfg is None:
        cfg = {}
    if not isinstance(cfg, dict):
        raise ScenarioError(f"{where} = {show(cfg)} must be a table, e.g. {{ kind = \"pca\", rank = 10 }}")
    out = {}
    for name, value in cfg.items():
        if name not in CODEC_PARAMS:
            raise ScenarioError(f"{where}.{name}: unknown key{did_you_mean(name, CODEC_PARAMS)}")
        spec = CODEC_PARAMS[name]
        if name == "kind":
            spec = Key("str", choices=tuple(REGISTRY), example=spec.example)
        out[name] = check_value(value, spec, f"{where}.{name}")
    kind = out.get("kind", "none")
    takes = set(REGISTRY[kind].keys) | {"kind", "feedback"}
    for name in out:
        if name not in takes:
            allowed = ", ".join(sorted(takes - {"kind"}))
            raise ScenarioError(f"{where}.{name}: kind = {show(kind)} does not take {name} "
                                f"(its keys: {allowed}); remove it")
    for name, spec in CODEC_PARAMS.items():
        out.setdefault(name, spec.default)
    return out


class Codec:
    """A compressor with per-client error-feedback memory; see the module docstring."""

    def __init__(self, compressor: Compressor, layout: Layout, n_clients: int, feedback: str) -> None:
        self.compressor, self.layout, self.feedback = compressor, layout, feedback
        self.kind = next((k for k, c in REGISTRY.items() if type(compressor) is c), "?")
        self.n_clients = int(n_clients)
        self._e: dict[int, np.ndarray] = {}
        self._count = np.zeros(self.n_clients, dtype=np.int64)

    @property
    def P(self) -> int:
        return self.layout.P

    def residual(self, client: int) -> np.ndarray:
        e = self._e.get(int(client))
        return np.zeros(self.P) if e is None else e.copy()

    def encode(self, client: int, delta: np.ndarray) -> Encoded:
        client = int(client)
        delta = np.asarray(delta)
        if delta.shape != (self.P,):
            raise ValueError(f"compress: update of shape {delta.shape}, expected ({self.P},)")
        if not 0 <= client < self.n_clients:
            raise ValueError(f"compress: client {client} outside 0..{self.n_clients - 1}")
        t0 = time.perf_counter()
        target = delta
        if self.feedback == "ef" and client in self._e:
            target = (self._e[client] + delta).astype(delta.dtype, copy=False)
        finite = bool(np.isfinite(target).all())
        payload = self.compressor.encode(target if finite else np.zeros_like(target), client,
                                         int(self._count[client]))
        if not finite:  # a diverged update: the same message, every value NaN, so the server diverges too
            payload = {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v for k, v in payload.items()}
        approx = self.compressor.decode(payload).astype(delta.dtype, copy=False)
        if self.feedback == "ef":
            self._e[client] = target - approx
        seconds = time.perf_counter() - t0
        self._count[client] += 1
        nbytes = int(sum(np.asarray(a).nbytes for a in payload.values()))
        error = float(np.linalg.norm((target - approx).astype(np.float64)))
        return Encoded(approx, nbytes, error, seconds, payload)

    def decode(self, payload: dict) -> np.ndarray:
        return self.compressor.decode(payload)


def build_codec(cfg: dict | None, shapes, n_clients: int, where: str, seed: int = 0) -> Codec:
    """The codec of a protocol's ``compress`` table for a model of tensor ``shapes``; see the
    module docstring. Raises ScenarioError (one line naming ``where.key``) for bad values."""
    cfg = check_codec(cfg, where)
    layout = Layout(shapes, where)
    comp = REGISTRY[cfg["kind"]](cfg, layout, where, int(seed))
    return Codec(comp, layout, n_clients, cfg["feedback"])
