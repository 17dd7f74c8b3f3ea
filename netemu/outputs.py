"""Writing a run's results: metrics.csv (long form), summary.json and plots.

Everything is first written into a hidden staging folder beside the outputs and moved into place
only when complete, so an interrupted or failed run never leaves half-written files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from netemu import __version__


@contextmanager
def staged(out: Path):
    """Yield a staging folder beside ``out``; on success move its files into ``out`` (replacing
    old ones). A run that fails leaves ``out`` as it was: not even created."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".netemu-{out.name}-", dir=out.parent))
    try:
        yield stage
        out.mkdir(exist_ok=True)
        for f in sorted(stage.iterdir()):
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def fmt(v: float) -> str:
    return repr(float(v))


def write_metrics(path: Path, results) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("protocol,round,time,metric,value\n")
        for r in results:
            for k, t, m in r.rows:
                for name, v in m.items():
                    f.write(f"{r.label},{k},{fmt(t)},{name},{fmt(v)}\n")


def _clean(v):
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def write_summary(path: Path, scenario, results) -> None:
    doc = {
        "netemu": __version__,
        "seed": scenario.seed,
        "name": scenario.name,
        "protocols": {
            r.label: {
                "name": r.name,
                **r.counters,
                "wall_seconds": round(r.wall_seconds, 6),
                "diverged": r.diverged,
                "diverged_at_round": r.diverged_at_round,
                "final": {k: _clean(v) for k, v in r.final().items()},
                **getattr(r, "extra", {}),
            }
            for r in results
        },
        "scenario": scenario.resolved(),
    }
    path.write_text(json.dumps(doc, indent=2, default=_clean) + "\n", encoding="utf-8")


def plot_metric(path: Path, results, metric: str, title: str, x: str = "round", log: bool = True,
                cap: float | None = None) -> bool:
    """A plot of ``metric`` (log scale unless ``log`` is false) against ``round`` or ``time``, one
    line per protocol; non-finite values (a diverged run) are left out. ``cap``: the y-axis ends
    at ``cap`` times the largest first value, so one blown-up run does not flatten the others."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    drawn = False
    first = []
    for r in results:
        pts = [((k if x == "round" else t), m[metric]) for k, t, m in r.rows if metric in m]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ys = np.asarray(ys, dtype=float)
        ys = np.where(np.isfinite(ys) & ((ys > 0) if log else True), ys, np.nan)
        ax.plot(xs, ys, label=r.label, lw=1.6)
        drawn = True
        first.append(ys[0])
    if not drawn:
        plt.close(fig)
        return False
    if log:
        ax.set_yscale("log")
    top = np.nanmax(first) * cap if cap and np.isfinite(first).any() else None
    if top is not None and top > 0 and top < ax.get_ylim()[1]:
        ax.set_ylim(top=top)
    ax.set_xlabel("round" if x == "round" else "simulated time (s)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


# plotted on a linear scale; every other metric on a log scale
LINEAR_METRICS = ("accuracy", "stragglers", "offline")


def opt_plots(task_cfg: dict, output_cfg: dict) -> list[tuple[str, bool]]:
    """The ``(metric, log scale)`` pairs to plot for an optimization run: ``loss``,
    ``grad_norm_sq``, ``accuracy`` (not for ``quadratic``, which has none), ``disagreement``; for a
    convex task (``netemu.tasks.is_convex``) ``opt_gap`` and ``dist_opt``; then the ``[output]
    metrics`` not already there, in their order."""
    from netemu.tasks import is_convex

    names = ["loss", "grad_norm_sq"] + ([] if task_cfg.get("kind") == "quadratic" else ["accuracy"])
    names.append("disagreement")
    if is_convex(task_cfg):
        names += ["opt_gap", "dist_opt"]
    names += [m for m in output_cfg.get("metrics") or () if m not in names]
    return [(m, m not in LINEAR_METRICS) for m in names]
