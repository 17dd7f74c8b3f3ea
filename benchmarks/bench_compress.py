"""Compression of one charlm-sized update: time per encode and bytes sent, per compressor.

The update is real: the default ``charlm`` model (context 32, d_model 64, 2 layers, 4 heads:
114,657 parameters in 30 tensors), client 0 of the ``stdlib`` corpus, ``--steps`` local SGD steps
(lr 0.5, 16 windows each) from the initial point; ``Δ = x_start − x_end`` in the compute dtype
(float32 by default, as charlm runs). Every compressor encodes the same ``Δ`` ``--repeats`` times
in this invocation (``netemu.fl.compress.build_codec``, no error feedback); the table gives the
median seconds per encode, the time against ``none`` in the same run, the bytes sent and their
ratio to ``none`` (the raw update), and the relative reconstruction error ``‖Δ − Δ̃‖ / ‖Δ‖``
(CUR: of the last encode, whose rows are the last draw). BLAS runs on one thread (set before numpy
loads, unless the environment says otherwise): on a shared machine its threads cost more than they
give on these small matrices.

Run:  python benchmarks/bench_compress.py [--steps 5] [--repeats 7] [--rank 10] [--dtype float32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from netemu.fl.compress import build_codec  # noqa: E402
from netemu.tasks import build_task  # noqa: E402

KINDS = [
    ("none", None),
    ("pca r={rank}", {"kind": "pca", "rank": "{rank}"}),
    ("qrcp r={rank}", {"kind": "qrcp", "rank": "{rank}"}),
    ("cur r={rank}", {"kind": "cur", "rank": "{rank}"}),
    ("topk 1%", {"kind": "topk", "fraction": 0.01}),
    ("topk 10%", {"kind": "topk", "fraction": 0.1}),
    ("quantize 8 bit", {"kind": "quantize", "bits": 8}),
    ("quantize 4 bit", {"kind": "quantize", "bits": 4}),
]


def update(steps: int, dtype) -> tuple[np.ndarray, list]:
    torch.set_num_threads(1)
    task = build_task({"kind": "charlm", "corpus": "stdlib", "chars_per_client": 2000, "context": 32,
                       "d_model": 64, "layers": 2, "heads": 4, "batch": 16}, 4, 0, "cpu", dtype)
    x = task.x0()[:1].copy()
    x0 = x.copy()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        x = x - 0.5 * task.grads(x, task.sample(np.array([0]), rng))
    return (x0 - x)[0].astype(np.float32 if dtype == torch.float32 else np.float64), task.shapes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    a = ap.parse_args()
    delta, shapes = update(a.steps, getattr(torch, a.dtype))
    norm = float(np.linalg.norm(delta.astype(np.float64)))
    print(f"update: {delta.size} parameters in {len(shapes)} tensors, {a.dtype}, {a.steps} local steps, "
          f"‖Δ‖ = {norm:.4g}; {a.repeats} encodes each")
    rows = []
    for label, cfg in KINDS:
        cfg = None if cfg is None else {k: (a.rank if v == "{rank}" else v) for k, v in cfg.items()}
        codec = build_codec(cfg, shapes, 1, "bench", seed=0)
        times, enc = [], None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            enc = codec.encode(0, delta)
            times.append(time.perf_counter() - t0)
        assert np.array_equal(codec.decode(enc.payload), enc.approx)
        rows.append((label.format(rank=a.rank), statistics.median(times), enc.nbytes, enc.error / norm))
    base_t, base_b = rows[0][1], rows[0][2]
    print(f"{'compressor':<16}{'ms/encode':>11}{'× none':>9}{'bytes':>10}{'bytes ratio':>13}{'rel. error':>12}")
    for label, t, b, err in rows:
        print(f"{label:<16}{t * 1e3:>11.2f}{t / base_t:>9.1f}{b:>10d}{b / base_b:>13.4f}{err:>12.4f}")


if __name__ == "__main__":
    main()
