"""Handwritten digits: scikit-learn's bundled ``load_digits`` (1797 8×8 images, 10 classes).

Pixels are scaled to ``[0, 1]``. A stratified ``test_fraction`` of the images is held out for
``accuracy``; the rest is split over the nodes:

- ``split = "iid"``: shuffled, then cut into ``n`` near-equal parts;
- ``split = "by-label"``: sorted by label, then cut into ``n`` contiguous parts, so each node holds
  one or two classes (the non-IID case of the papers).

Models: ``mlp`` (``64 → hidden → 10``, ReLU) or ``cnn`` (two 3×3 conv layers, see
``netemu.compute.models.small_cnn``); cross-entropy; minibatches of ``batch`` samples per local
step (0: the node's whole dataset). Every node starts from the same default PyTorch
initialization, drawn from the ``task`` stream.
"""

from __future__ import annotations

import numpy as np

from netemu.compute.models import MLP, FunctionalModel, init_vector, small_cnn
from netemu.errors import ScenarioError
from netemu.rng import stream
from netemu.tasks.data import DataTask


def _bundled_file():
    """scikit-learn's ``datasets/data/digits.csv.gz``, found without importing scikit-learn (its
    import costs more than reading the file)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def load():
    """Pixels ``[1797, 64]`` in ``[0, 1]`` and labels, as ``sklearn.datasets.load_digits`` gives
    them (the same file, read directly)."""
    path = _bundled_file()
    if path is None:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise ScenarioError("[task] kind = \"digits\" needs scikit-learn; install it with "
                                "pip install scikit-learn") from None
        d = load_digits()
        return d.data.astype(np.float64) / 16.0, d.target.astype(np.int64)
    data = np.loadtxt(path, delimiter=",")
    return data[:, :-1].astype(np.float64) / 16.0, data[:, -1].astype(np.int64)


def split(y: np.ndarray, n: int, how: str, rng: np.random.Generator, where: str) -> list[np.ndarray]:
    """Indices of ``y`` held by each node."""
    if n > len(y):
        raise ScenarioError(f"{where} split = {how!r}: {len(y)} training images for {n} nodes leaves "
                            f"{n - len(y)} nodes with no data; use at most {len(y)} nodes")
    order = rng.permutation(len(y))
    if how == "by-label":
        order = order[np.argsort(y[order], kind="stable")]
    return np.array_split(order, n)


def build(cfg: dict, n: int, seed: int, device, dtype) -> DataTask:
    rng = stream(seed, "task")
    X, y = load()
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):  # stratified hold-out
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[:int(round(cfg["test_fraction"] * len(idx)))]] = True
    Xtr, ytr = X[~test], y[~test]
    parts = split(ytr, n, cfg["split"], rng, "[task]")
    order = np.concatenate(parts)
    model_seed = int(rng.integers(2**31))
    if cfg["model"] == "mlp":
        model = MLP([64, cfg["hidden"], 10])
        init = model.init(model_seed).numpy()
    else:
        model = FunctionalModel(_seeded_cnn(model_seed))
        init = init_vector(small_cnn, model_seed).numpy()
    batch = 32 if cfg["batch"] is None else cfg["batch"]
    return DataTask(model, Xtr[order], ytr[order], [len(p) for p in parts], test=(X[test], y[test]),
                    batch=batch, init=init, device=device, dtype=dtype, kind="digits")


def _seeded_cnn(seed: int):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return small_cnn()
