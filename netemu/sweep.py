"""Sweeps: one scenario run per combination of its ``sweep`` table, side by side.

Each combination writes its own outputs into ``OUT/<key=value,…>/``; the sweep adds one figure
``OUT/<metric>.png`` with a panel per combination (same y-axis), so the effect of the swept value
is visible at a glance. Every combination sees its own network realization from the same seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_panels(path: Path, runs: list, metric: str, title: str) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(label, res) for label, res in runs if any(metric in m for r in res for _, _, m in r.rows)]
    if not runs:
        return False
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), dpi=120, sharey=True,
                             squeeze=False)
    for ax, (label, results) in zip(axes[0], runs):
        for r in results:
            pts = [(k, m[metric]) for k, _, m in r.rows if metric in m]
            xs, ys = zip(*pts)
            ys = np.asarray(ys, dtype=float)
            ax.plot(xs, np.where(ys > 0, ys, np.nan), label=r.label, lw=1.5)
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("round")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(metric.replace("_", " "))
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
