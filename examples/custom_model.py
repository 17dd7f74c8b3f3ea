"""Decentralized training of your own ``torch.nn.Module`` on your own data with netemu.

Eight nodes on a lossy ring each hold a slice of scikit-learn's "two moons" (sorted by the first
coordinate, so the slices differ: non-IID) and train a small Tanh network together. The scenario
is a plain dict (the same keys as a TOML file) with ``[task] kind = "custom"``; the task itself
comes from Python as a ``ModuleTask``.

Run:  python examples/custom_model.py [--out results/custom_model]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.datasets import make_moons
from torch import nn

from netemu.runner import run_scenario
from netemu.scenario.load import from_dict
from netemu.tasks.data import ModuleTask

NODES = 8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/custom_model")
    args = ap.parse_args()

    X, y = make_moons(n_samples=1200, noise=0.15, random_state=0)
    X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
    order = np.argsort(X_train[:, 0])  # node i gets the i-th vertical strip of the data
    node_data = [(X_train[idx], y_train[idx]) for idx in np.array_split(order, NODES)]

    torch.manual_seed(0)  # the module's current parameters are every node's starting point
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 2))
    task = ModuleTask(model, node_data, test=(X_test, y_test), batch=16, dtype=torch.float64)
    # ModuleTask(..., loss=lambda out, target: per-sample losses [B]) for a non-classification loss

    scenario = from_dict({
        "name": "Custom module: two moons on a lossy ring",
        "seed": 1,
        "network": {"nodes": NODES, "topology": "latent", "graph": "ring", "loss": 0.2},
        "run": {"rounds": 400, "period": 0.1},
        "task": {"kind": "custom"},
        "compute": {"device": "cpu"},
        "protocols": [{"name": "pulm-dgd", "lr": 0.3, "inner_rounds": 2},
                      {"name": "dgd", "lr": 0.3, "inner_rounds": 2}],
    })
    for r in run_scenario(scenario, args.out, progress=False, task=task):
        f = r.final()
        print(f"{r.label:<9} loss {f['loss']:.4f}  accuracy {f['accuracy']:.3f}  "
              f"disagreement {f['disagreement']:.2e}")
    print(f"wrote {args.out}/ (metrics.csv, summary.json, loss.png, accuracy.png, …)")


if __name__ == "__main__":
    main()
