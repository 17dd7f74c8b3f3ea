"""Writing a run's results: metrics.csv (long form), summary.json and plots.

Everything is first written into a hidden staging folder beside ``--out`` and renamed into place
only when complete, replacing the previous set as a whole, so an interrupted or failed run never
leaves half-written or stale files.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np

from netemu import __version__


STAGE_PREFIX = ".netemu-"
MARKERS = ("summary.json", "error.txt")  # a folder holding one of these is a netemu result set


def check_out(out: Path) -> None:
    """Refuse an ``out`` that holds other files than a netemu result set: replacing it would
    delete them."""
    from netemu.errors import ScenarioError

    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ScenarioError(f"--out {out}: is a file, not a folder; choose a folder for the results")
    entries = [e for e in out.iterdir() if not e.name.startswith(STAGE_PREFIX)]
    if entries and not any((out / m).is_file() for m in MARKERS):
        raise ScenarioError(f"--out {out}: the folder holds files that are not a netemu run's results "
                            f"(no summary.json); a run replaces its output folder as a whole, so "
                            f"choose a new or empty folder")


def _swap(stage: Path, out: Path) -> None:
    """Put ``stage`` in place of ``out`` by renames: the old set goes as a whole."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{out.name}-old-", dir=out.parent))
        os.replace(out, old / "set")
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged(out: Path):
    """Yield a staging folder beside ``out``; on success it replaces ``out`` as a whole (no file
    of an earlier run stays). A run that fails leaves ``out`` as it was."""
    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{out.name}-", dir=out.parent))
    try:
        yield stage
        _swap(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_error(out: Path, message: str) -> None:
    """A failed run's output set: ``error.txt`` alone, in place of ``out``."""
    with staged(out) as stage:
        (stage / "error.txt").write_text(message.rstrip("\n") + "\n", encoding="utf-8")


def remove_stages(folder: Path) -> None:
    """Remove staging folders left in ``folder`` by runs that were killed."""
    folder = Path(folder)
    if folder.is_dir():
        for e in folder.iterdir():
            if e.name.startswith(STAGE_PREFIX) and e.is_dir():
                shutil.rmtree(e, ignore_errors=True)


def fmt(v: float) -> str:
    return repr(float(v))


def write_metrics(path: Path, results) -> None:
    """``metrics.csv`` in long form, CSV-quoted where a value needs it (a label with a comma or a
    quote); numbers are written with ``repr`` (exact round trip)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("protocol", "round", "time", "metric", "value"))
        for r in results:
            for k, t, m in r.rows:
                for name, v in m.items():
                    w.writerow((r.label, k, fmt(t), name, fmt(v)))


def _clean(v):
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v


def write_summary(path: Path, scenario, results, task=None) -> None:
    """summary.json: the counters and final metrics of each protocol, the optimization task's
    parameter count (``task``: ``{"kind", "parameters"}``) and the resolved scenario."""
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
    if getattr(task, "dim", None) is not None:
        doc["task"] = {"kind": getattr(task, "kind", "custom"), "parameters": int(task.dim)}
    path.write_text(json.dumps(doc, indent=2, default=_clean) + "\n", encoding="utf-8")


# -- plots ---------------------------------------------------------------------------------------
# All the plots of a run share one Agg figure (``Plotter``), built without pyplot, so plotting
# neither selects a global backend nor touches a user's open figures. What a plot cost before
# (about 0.15 s each, measured by benchmarks/bench_overhead.py) went mostly to mathtext, which
# parsed every log-axis tick label (``10^{-3}``), and to ``tight_layout``, which draws the figure
# once more to measure it. So: log-axis labels are plain text with Unicode superscripts
# (``plain_math``); the margins are fixed, the left one widened from the measured width of the y
# tick labels when they need more (``Plotter._fit_left``); series longer than ``MAX_POINTS`` are
# thinned (``thin``), since far more points than the axes have pixels only cost time.

PLOT_SIZE = (6.4, 4.2)  # inches
PLOT_DPI = 120  # 768 × 504 pixels
PLOT_MARGINS = dict(left=0.12, right=0.975, bottom=0.125, top=0.925)
MAX_POINTS = 2000


def thin(xs, ys, limit: int = MAX_POINTS):
    """``xs``, ``ys`` (arrays of one length) with at most about ``limit`` points: every k-th one
    (k = ceil(n / limit)) plus the last and the last finite one, so a line still ends where its
    data does (a diverged run included). Series of up to ``limit`` points come back whole."""
    n = len(ys)
    if n <= limit:
        return xs, ys
    keep = np.arange(0, n, -(-n // limit))
    finite = np.flatnonzero(np.isfinite(ys))
    tail = [n - 1] + ([int(finite[-1])] if len(finite) else [])
    keep = np.union1d(keep, tail)
    return xs[keep], ys[keep]


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def plain_math(label: str) -> str:
    """A log-axis tick label of matplotlib's (``$\\mathdefault{2\\times10^{-3}}$``) as plain text
    (``2×10⁻³``), which needs no mathtext parsing (about a third of a plot's time otherwise);
    labels of any other form come back unchanged."""
    m = re.fullmatch(r"\$\\mathdefault\{(?:([0-9.]+)\\times)?10\^\{(-?[0-9]+)\}\}\$", label)
    if m is None:
        return label
    head = f"{m[1]}×" if m[1] else ""
    return f"{head}10{m[2].translate(_SUPERSCRIPT)}"


@cache
def _plain_log_formatter():
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        """matplotlib's log-axis labels through ``plain_math``."""

        def __call__(self, x, pos=None):
            return plain_math(super().__call__(x, pos))

    return PlainLogFormatter


def log_yaxis(ax) -> None:
    """``ax`` with a log y-axis whose tick labels are plain text (``plain_math``)."""
    formatter = _plain_log_formatter()
    ax.set_yscale("log")
    # as matplotlib's LogScale sets them (base 10, subs None), with plain-text labels
    ax.yaxis.set_major_formatter(formatter(10))
    ax.yaxis.set_minor_formatter(formatter(10, labelOnlyBase=False))


def new_figure(**kwargs):
    """A matplotlib ``Figure`` on an Agg canvas, without pyplot (so no global backend or state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


class Plotter:
    """Draws the metric plots of one run on a single reused figure (see above); ``metric`` as
    ``plot_metric``. matplotlib is imported when the first ``Plotter`` is made."""

    def __init__(self) -> None:
        self.fig = new_figure(figsize=PLOT_SIZE, dpi=PLOT_DPI)
        self.fig.subplots_adjust(**PLOT_MARGINS)
        self.ax = self.fig.add_subplot()

    def metric(self, path: Path, results, metric: str, title: str, x: str = "round", log: bool = True,
               cap: float | None = None) -> bool:
        ax = self._reset()
        drawn = False
        first = []
        for r in results:
            pts = [((k if x == "round" else t), m[metric]) for k, t, m in r.rows if metric in m]
            if not pts:
                continue
            xs, ys = (np.asarray(v, dtype=float) for v in zip(*pts))
            ys = np.where(np.isfinite(ys) & ((ys > 0) if log else True), ys, np.nan)
            first.append(ys[0])
            label = r.label + (f" (diverged at round {r.diverged_at_round})" if r.diverged else "")
            (line,) = ax.plot(*thin(xs, ys), label=label, lw=1.6)
            if r.diverged:  # a cross where the run was stopped, at its last drawable value
                good = np.flatnonzero(np.isfinite(ys))
                if len(good):
                    ax.plot([xs[good[-1]]], [ys[good[-1]]], marker="x", ms=9, mew=2, color=line.get_color())
            drawn = True
        if not drawn:
            return False
        if log:
            log_yaxis(ax)
        top = np.nanmax(first) * cap if cap and np.isfinite(first).any() else None
        if top is not None and top > 0 and top < ax.get_ylim()[1]:
            ax.set_ylim(top=top)
        ax.set_xlabel("round" if x == "round" else "simulated time (s)")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(title, fontsize=10, y=1.0)  # a fixed place: no search for x-axis labels on top
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        self._fit_left()
        self.fig.savefig(path)
        return True

    def _reset(self):
        """The axes, emptied for the next plot: no lines or legend, a linear y-axis, autoscaled
        limits, the first colour. Not ``Axes.clear``, which also throws away the ticks that every
        plot would then build again (a good part of a plot's time)."""
        ax = self.ax
        for line in list(ax.lines):
            line.remove()
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        ax.set_prop_cycle(None)
        ax.set_yscale("linear")
        ax.ignore_existing_data_limits = True
        ax.set_autoscale_on(True)
        return ax

    def _fit_left(self) -> None:
        """The left margin: ``PLOT_MARGINS``'s, or wider when the y tick labels need it (a log axis
        under a decade labels its minor ticks, ``3.2×10⁻³``)."""
        left = y_label_room(self.ax) / PLOT_SIZE[0]
        self.fig.subplots_adjust(left=max(PLOT_MARGINS["left"], left))


def y_label_room(ax) -> float:
    """Inches that ``ax`` needs left of it for its y tick labels and y label, measured from the
    labels' text and matplotlib's tick and label pads, without a layout pass (which draws the
    whole figure once more)."""
    from matplotlib import rcParams
    from matplotlib.font_manager import FontProperties

    lo, hi = sorted(ax.get_ylim())
    labels = []
    for locator, formatter in ((ax.yaxis.get_major_locator(), ax.yaxis.get_major_formatter()),
                               (ax.yaxis.get_minor_locator(), ax.yaxis.get_minor_formatter())):
        labels += formatter.format_ticks([v for v in locator() if lo <= v <= hi])
    renderer = ax.figure.canvas.get_renderer()
    tick_font = FontProperties(size=rcParams["ytick.labelsize"])
    width = max((renderer.get_text_width_height_descent(s, tick_font, ismath=False)[0]
                 for s in labels if s), default=0.0) * 72.0 / ax.figure.dpi  # points
    label = 1.2 * FontProperties(size=rcParams["axes.labelsize"]).get_size_in_points()
    room = (width + rcParams["ytick.major.size"] + rcParams["ytick.major.pad"] + rcParams["axes.labelpad"]
            + label + 4.0)  # points, with a little room at the edge
    return room / 72.0


def plot_metric(path: Path, results, metric: str, title: str, x: str = "round", log: bool = True,
                cap: float | None = None) -> bool:
    """A plot of ``metric`` (log scale unless ``log`` is false) against ``round`` or ``time``, one
    line per protocol; non-finite values (a diverged run) are left out. ``cap``: the y-axis ends
    at ``cap`` times the largest first value, so one blown-up run does not flatten the others.
    False (and no file) when no run recorded ``metric``. Several plots: one ``Plotter``."""
    return Plotter().metric(path, results, metric, title, x=x, log=log, cap=cap)


# plotted on a linear scale; every other metric on a log scale
LINEAR_METRICS = ("accuracy", "stragglers", "offline")


def opt_plots(task_cfg: dict, output_cfg: dict) -> list[tuple[str, bool]]:
    """The ``(metric, log scale)`` pairs to plot for an optimization run: ``loss``,
    ``grad_norm_sq``, ``accuracy`` (``perplexity`` for ``charlm``; none for ``quadratic``), ``disagreement``; for a
    convex task (``netemu.tasks.is_convex``) ``opt_gap`` and ``dist_opt``; then the ``[output]
    metrics`` not already there, in their order."""
    from netemu.tasks import is_convex

    kind = task_cfg.get("kind")
    names = ["loss", "grad_norm_sq"] + {"quadratic": [], "charlm": ["perplexity"]}.get(kind, ["accuracy"])
    names.append("disagreement")
    if is_convex(task_cfg):
        names += ["opt_gap", "dist_opt"]
    names += [m for m in output_cfg.get("metrics") or () if m not in names]
    return [(m, m not in LINEAR_METRICS) for m in names]
