"""Sweeps: one scenario run per combination of its ``sweep`` table, side by side.

Each combination writes its own outputs into ``OUT/<key=value,…>/``; the sweep adds one figure
``OUT/<metric>.png`` with a panel per combination (same y-axis), so the effect of the swept value
is visible at a glance. Every combination sees its own network realization from the same seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netemu.runner import run_scenario


def _target(out: Path, label: str | None) -> Path:
    return out / label if label else out


def _run_one(sc, target: Path):
    return run_scenario(sc, target, progress=False)


def run_all(runs: list, out: Path, jobs: int = 1, progress=None, announce=None, log=None) -> list:
    """Run every ``(label, scenario)`` of a sweep; ``jobs > 1`` runs combinations in parallel
    worker processes (each combination is independent and seeded, so outputs are the same
    bytes as a sequential run). Returns ``[(label, results)]`` in the sweep's order."""
    announce = announce or (lambda label, sc, target: None)
    done = []
    if jobs <= 1 or len(runs) == 1:
        for label, sc in runs:
            target = _target(out, label)
            announce(label, sc, target)
            done.append((label, run_scenario(sc, target, progress=progress, log=log)))
        return done
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(_run_one, sc, _target(out, label)) for label, sc in runs]
        for (label, sc), fut in zip(runs, futures):
            results = fut.result()
            announce(label, sc, _target(out, label))
            for r in results:
                if log:
                    log(r)
            done.append((label, results))
    return done


PANEL_METRICS = ("consensus_error", "loss", "grad_norm_sq")


def plot_panels(path: Path, runs: list, metric: str, title: str, cap: float = 1e3) -> bool:
    """One panel per combination; non-finite values (a diverged run) are left out and the y-axis
    ends at ``cap`` times the largest first value, so a blown-up run does not flatten the rest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [(label, res) for label, res in runs if any(metric in m for r in res for _, _, m in r.rows)]
    if not runs:
        return False
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), dpi=120, sharey=True,
                             squeeze=False)
    first = []
    for ax, (label, results) in zip(axes[0], runs):
        for r in results:
            pts = [(k, m[metric]) for k, _, m in r.rows if metric in m]
            if not pts:
                continue
            xs, ys = zip(*pts)
            ys = np.asarray(ys, dtype=float)
            ys = np.where(np.isfinite(ys) & (ys > 0), ys, np.nan)
            first.append(ys[0])
            ax.plot(xs, ys, label=r.label, lw=1.5)
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("round")
        ax.grid(True, which="both", alpha=0.3)
    if first and np.isfinite(first).any():
        top = float(np.nanmax(first)) * cap
        if top < axes[0][0].get_ylim()[1]:
            axes[0][0].set_ylim(top=top)
    axes[0][0].set_ylabel(metric.replace("_", " "))
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
