"""Sweeps. ``netemu.sweep(...)`` (this module, callable) runs a sweep over grids × seeds:
``netemu.sweeps.run_sweep``, ``netemu sweep``, docs/sweeps.md.

Below, the side-by-side sweep of ``netemu run``: one scenario run per combination of its ``sweep`` table, side by side.

Each combination writes its own outputs into ``OUT/<key=value,…>/``; the sweep adds one figure
``OUT/<metric>.png`` with a panel per combination (same y-axis), so the effect of the swept value
is visible at a glance. Every combination sees its own network realization from the same seed.

``netemu plot-sweep DIR… --x KEY --metric M`` (``sweep_points``, ``plot_sweep``) draws what the
panels cannot: a run's *final* ``M`` against a swept value ``KEY``, read back from the
``summary.json`` files under the given output folders, one line per setting, the best value of
each marked.
"""

from __future__ import annotations

import json
import sys
import types
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

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
    try:
        futures = [pool.submit(_run_one, sc, _target(out, label)) for label, sc in runs]
        for (label, sc), fut in zip(runs, futures):
            results = fut.result()
            announce(label, sc, _target(out, label))
            for r in results:
                if log:
                    log(r)
            done.append((label, results))
    except BaseException:  # interrupted or failed: stop the workers now, not after their runs
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return done


PANEL_METRICS = ("consensus_error", "loss", "grad_norm_sq", "opt_gap", "dist_opt")


def plot_panels(path: Path, runs: list, metric: str, title: str, cap: float = 1e3) -> bool:
    """One panel per combination; non-finite values (a diverged run) are left out and the y-axis
    ends at ``cap`` times the largest first value, so a blown-up run does not flatten the rest."""
    from netemu.outputs import log_yaxis, new_figure, thin, y_label_room

    runs = [(label, res) for label, res in runs if any(metric in m for r in res for _, _, m in r.rows)]
    if not runs:
        return False
    width, height = 4.2 * len(runs), 3.8  # inches
    fig = new_figure(figsize=(width, height), dpi=120)
    axes = fig.subplots(1, len(runs), sharey=True, squeeze=False)
    first = []
    for ax, (label, results) in zip(axes[0], runs):
        for r in results:
            pts = [(k, m[metric]) for k, _, m in r.rows if metric in m]
            if not pts:
                continue
            xs, ys = (np.asarray(v, dtype=float) for v in zip(*pts))
            ys = np.where(np.isfinite(ys) & (ys > 0), ys, np.nan)
            first.append(ys[0])
            ax.plot(*thin(xs, ys), label=r.label, lw=1.5)
        log_yaxis(ax)
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
    # fixed margins in inches (a layout pass would draw the figure twice), the left one measured
    fig.subplots_adjust(left=max(0.75, y_label_room(axes[0][0])) / width, right=1 - 0.15 / width,
                        bottom=0.5 / height, top=1 - 0.62 / height, wspace=0.06)
    fig.savefig(path)
    return True


# -- a final metric against a swept value: ``netemu plot-sweep`` ---------------------------------

def _lookup(tree, parts: list[str]):
    for part in parts:
        if isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        elif isinstance(tree, dict) and part in tree:
            tree = tree[part]
        else:
            raise KeyError(part)
    return tree


def _number(v) -> float:
    try:
        return float(v)  # summary.json writes non-finite values as "nan", "inf"
    except (TypeError, ValueError):
        return float("nan")


def _value_at(folder: Path, label: str, metric: str, t: float, diverged: bool) -> float:
    """``metric`` of protocol ``label`` at simulated time ``t``: its last sample at or before ``t``,
    from ``folder/metrics.csv``; NaN for a run that diverged before ``t``."""
    from netemu.errors import NetemuError

    last, end = float("nan"), -np.inf
    with open(folder / "metrics.csv", encoding="utf-8") as f:
        next(f)
        for line in f:
            p, _, time, m, v = line.rstrip("\n").rsplit(",", 4)
            if p == label and m == metric:
                end = float(time)
                if end <= t + 1e-9:
                    last = float(v)
    if end < t - 1e-9 and not diverged:
        raise NetemuError(f"{folder}: protocol {label!r} ends at t = {end:g} s, before --at-time {t:g}; "
                          f"give a time at most {end:g} (or more [run] rounds)")
    return float("nan") if diverged and end < t - 1e-9 else last


def sweep_points(dirs: list, x: str, metric: str, at_time: float | None = None) -> list[dict]:
    """One point per protocol of every run folder (a ``summary.json``) under ``dirs``.

    ``x`` is a dotted key of the run's resolved scenario (``network.loss``, ``protocols.0.alpha``:
    one value per folder), or ``protocols.KEY`` (``protocols.alpha``: each protocol's own value).
    A point is ``{"series", "x", "value", "diverged"}`` (``value``: the final ``metric``, or the
    one at simulated time ``at_time``, to compare runs on one time budget); its
    series is what else tells it apart: the folder (the sweep's other keys, led by the folder
    given when several are) and the protocol's label, or, for ``protocols.KEY``, the protocol's
    parameters other than ``KEY`` that vary between points."""
    from netemu.errors import NetemuError

    parts = x.split(".")
    per_protocol = len(parts) == 2 and parts[0] == "protocols" and not parts[1].isdigit()
    raw = []
    for d in dirs:
        d = Path(d)
        files = sorted(d.rglob("summary.json"))
        if not files:
            raise NetemuError(f"{d}: no summary.json below it; give the --out folder of a 'netemu run'")
        for f in files:
            doc = json.loads(f.read_text(encoding="utf-8"))
            folder = f.parent.relative_to(d).as_posix()
            folder = "" if folder == "." else folder
            if len(dirs) > 1:
                folder = f"{d.name}/{folder}" if folder else d.name
            entries = {p["label"]: p for p in doc["scenario"]["protocols"]}
            for label, res in doc["protocols"].items():
                params = entries.get(label, {})
                try:
                    xv = params[parts[1]] if per_protocol else _lookup(doc["scenario"], parts)
                except KeyError:
                    where = f"protocol {label!r}'s parameters" if per_protocol else "the scenario"
                    raise NetemuError(f"{f}: --x {x}: no such key in {where}; use a dotted key of "
                                      f"summary.json's \"scenario\" (e.g. network.loss, protocols.0.lr) "
                                      f"or protocols.KEY for each protocol's own KEY") from None
                if metric not in res["final"]:
                    raise NetemuError(f"{f}: protocol {label!r} recorded no {metric!r}; it has "
                                      f"{', '.join(res['final'])}")
                if per_protocol:
                    rest = {k: v for k, v in params.items() if k not in (parts[1], "label")}
                else:  # the folder name less its own "x=…" part (a sweep label, maybe led by "DIR/")
                    head, _, tail = folder.rpartition("/")
                    tail = ",".join(p for p in tail.split(",") if not p.startswith(f"{x}="))
                    folder = "/".join(p for p in (head, tail) if p)
                    rest = {"label": label}
                diverged = bool(res.get("diverged"))
                value = (_number(res["final"][metric]) if at_time is None
                         else _value_at(f.parent, label, metric, at_time, diverged))
                raw.append((folder, rest, xv, value, diverged))
    varying = {k for k in {k for _, rest, *_ in raw for k in rest}
               if len({json.dumps(r.get(k), sort_keys=True) for _, r, *_ in raw}) > 1}
    points = []
    for folder, rest, xv, value, diverged in raw:
        tags = [f"{k}={rest[k]}" if k != "label" else str(rest[k]) for k in sorted(varying) if k in rest]
        series = " · ".join([p for p in [folder, *tags] if p])
        points.append({"series": series, "x": xv, "value": value, "diverged": diverged})
    return points


def best_points(points: list[dict], best: str) -> dict:
    """Per series, the point with the smallest (``best = "min"``) or largest (``"max"``) finite value."""
    out: dict = {}
    for p in points:
        if not np.isfinite(p["value"]):
            continue
        b = out.get(p["series"])
        if b is None or (p["value"] < b["value"] if best == "min" else p["value"] > b["value"]):
            out[p["series"]] = p
    return out


def plot_sweep(path: Path, points: list[dict], metric: str, x: str, *, marks=(), best: str = "min",
               logx: bool | None = None, logy: bool | None = None, title: str | None = None,
               names: dict | None = None, cap: float = 10.0, at_time: float | None = None) -> dict:
    """``metric`` (final value) against ``x``, one line per series (``names``: legend text per
    series); diverged runs are crosses on the top edge, and on a log y-axis values above ``cap``
    times the smallest one are triangles there (a blown-up run does not flatten the rest);
    ``marks``: ``(value, text)`` vertical lines; each series' best point is a star (``best``:
    ``"min"``, ``"max"`` or ``"none"``). Returns the best point per series."""
    from netemu.outputs import log_yaxis, new_figure

    numeric = all(isinstance(p["x"], (int, float)) and not isinstance(p["x"], bool) for p in points)
    cats = list(dict.fromkeys(str(p["x"]) for p in points))
    pos = (lambda v: float(v)) if numeric else (lambda v: float(cats.index(str(v))))
    xs_all = np.array([pos(p["x"]) for p in points])
    if logx is None:
        logx = numeric and (xs_all > 0).all() and xs_all.max() >= 10 * xs_all.min()
    if logy is None:
        from netemu.outputs import LINEAR_METRICS

        logy = metric not in LINEAR_METRICS
    names = names or {}
    fig = new_figure(figsize=(6.4, 4.2), dpi=120)
    ax = fig.add_subplot()
    series = list(dict.fromkeys(p["series"] for p in points))
    bests = best_points(points, best) if best != "none" else {}
    finite = np.array([p["value"] for p in points if np.isfinite(p["value"]) and p["value"] > 0])
    top = cap * finite.min() if logy and len(finite) else np.inf
    crosses, over = [], []
    for i, s in enumerate(series):
        pts = sorted((p for p in points if p["series"] == s), key=lambda p: pos(p["x"]))
        xs = np.array([pos(p["x"]) for p in pts])
        ys = np.array([p["value"] for p in pts])
        ok = np.isfinite(ys) & ((ys > 0) if logy else True)
        high = ok & (ys > top)
        color = f"C{i % 10}"
        ax.plot(xs[ok & ~high], ys[ok & ~high], "o-", color=color, lw=1.5, ms=4, label=names.get(s, s or metric))
        crosses += [(xv, color) for xv, good in zip(xs, ok) if not good]
        over += [(xv, color) for xv in xs[high]]
        if s in bests and bests[s]["value"] <= top:
            b = bests[s]
            ax.plot([pos(b["x"])], [b["value"]], "*", color=color, ms=14, mec="black", mew=0.6, zorder=5)
            ax.annotate(f"best {b['x']:g}" if numeric else f"best {b['x']}", (pos(b["x"]), b["value"]),
                        textcoords="offset points", xytext=(6, 8 if logy else -14), fontsize=8, color=color)
    if logx:
        ax.set_xscale("log")
    if logy:
        from matplotlib.ticker import FormatStrFormatter

        log_yaxis(ax)
        lo, hi = ax.get_ylim()
        if hi < 10 * lo:  # under a decade: label the minor ticks too, as plain numbers
            ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))
    edge = ax.get_xaxis_transform()  # x in data, y in axes fractions: above the plot, one row per series
    rows = {c: 1.03 + 0.04 * i for i, c in enumerate(dict.fromkeys(c for _, c in crosses + over))}
    for j, (xv, color) in enumerate(crosses):
        ax.plot([xv], [rows[color]], "x", color=color, ms=6, mew=1.6, clip_on=False, transform=edge,
                label="diverged (above the plot)" if j == 0 else None)
    for j, (xv, color) in enumerate(over):
        ax.plot([xv], [rows[color]], "^", color=color, ms=5, clip_on=False, transform=edge,
                label=f"above {top:.3g}" if j == 0 else None)
    for j, (value, text) in enumerate(marks):
        ax.axvline(value, color="0.3", ls=("--", ":", "-.")[j % 3], lw=1,
                   label=f"{text} = {value:g}" if text != f"{value:g}" else f"{value:g}")
    if not numeric:
        ax.set_xticks(range(len(cats)), cats)
    ax.set_xlabel(x)
    ax.set_ylabel(f"{metric.replace('_', ' ')} at t = {at_time:g} s" if at_time is not None
                  else f"final {metric.replace('_', ' ')}")
    if title:
        ax.set_title(title, fontsize=10, pad=8 + 12 * len(rows))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path)
    return bests


# -- ``netemu.sweep(...)``: this module is callable, as the sweep of netemu.sweeps ------------------

def sweep(*args, **kwargs):
    """``netemu.sweeps.run_sweep``: a sweep over grids × seeds (see its docstring)."""
    from netemu.sweeps import run_sweep

    return run_sweep(*args, **kwargs)


class _CallableModule(types.ModuleType):
    """``netemu.sweep`` is this module once anything imports it (``from netemu.sweep import …``),
    and the function ``sweep`` before: both calls run a sweep."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
