"""A sweep's results, read back from its folder: tidy tables, bands over seeds, final-value tables.

- ``sweep.csv``: one row per run × protocol × final metric (columns ``run``, one per grid key,
  ``seed``, ``status``, ``protocol``, ``metric``, ``value``, ``diverged``, ``error``); a failed run
  is one row with ``status = failed`` and its error. ``failed.csv`` lists the failed runs.
- ``series.parquet`` (``series.csv`` without pyarrow): every recorded point, columns ``run``, the
  grid keys, ``seed``, ``protocol``, ``round``, ``time``, ``metric``, ``value``.
- ``band_<metric>.png``: the mean over seeds and its 95% confidence band (Student t with n − 1
  degrees of freedom, n the seeds with a value there) against round (or simulated time), one
  colour per protocol, one panel per grid combination. Metrics drawn on a log axis (errors that
  span decades) get the same interval on ``log10`` of the values: the geometric mean and a band
  that stays positive (an arithmetic band's lower edge would fall below zero there).
- ``tables.md``, ``tables.tex``: the final value of each metric as mean ± the 95% CI half-width,
  one row per grid combination, one column per protocol. Diverged runs are left out of the mean
  and counted in the cell; failed runs have no value.

Everything here reads files only (``netemu report DIR`` runs nothing).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from netemu.sweeps import store
from netemu.sweeps.grid import label

BAND_POINTS = 400  # points of a band against time


def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def load(out: Path):
    """``(manifest, finals, series, failed)``: the sweep.csv, series and failed.csv DataFrames of
    the runs listed in ``out/sweep.json``, from their folders (runs not yet done are absent)."""
    import pandas as pd

    out = Path(out)
    manifest = store.read_manifest(out)
    keys = list(manifest["grid"])
    finals, series, failed = [], [], []
    for r in manifest["runs"]:
        rid, folder = r["id"], store.run_dir(out, r["id"])
        head = {"run": rid, **{k: _cell(r["values"][k]) for k in keys}, "seed": r["seed"]}
        error = store.error_of(out, rid)
        if not store.finished(out, rid):
            if error is not None:
                finals.append({**head, "status": "failed", "protocol": None, "metric": None,
                               "value": float("nan"), "diverged": None, "error": error})
                failed.append({**head, "error": error})
            continue
        doc = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        for proto, res in doc["protocols"].items():
            for metric, value in res["final"].items():
                finals.append({**head, "status": "ok", "protocol": proto, "metric": metric,
                               "value": _number(value), "diverged": bool(res.get("diverged")), "error": None})
        m = pd.read_csv(folder / "metrics.csv", keep_default_na=False, na_values={"value": ["nan"]},
                        dtype={"protocol": str, "round": "int64", "time": float, "metric": str, "value": float})
        for k, v in reversed(list(head.items())):
            m.insert(0, k, [v] * len(m))
        series.append(m)
    cols = ["run", *keys, "seed"]
    finals = pd.DataFrame(finals, columns=[*cols, "status", "protocol", "metric", "value", "diverged", "error"])
    series = (pd.concat(series, ignore_index=True) if series else
              pd.DataFrame(columns=[*cols, "protocol", "round", "time", "metric", "value"]))
    failed = pd.DataFrame(failed, columns=[*cols, "error"])
    return manifest, finals, series, failed


def t_band(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, 95% CI half-width (Student t, n − 1 degrees of freedom; NaN for n < 2) and n of the
    finite ``values``."""
    from scipy.stats import t

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    mean = float(v.mean())
    if n < 2:
        return mean, float("nan"), 1
    return mean, float(t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)), n


def _combos(manifest: dict) -> list[tuple[str, dict]]:
    seen: dict = {}
    for r in manifest["runs"]:
        seen.setdefault(label(r["values"]), r["values"])
    return list(seen.items())


def bands(series, manifest: dict, metric: str, x: str = "round", log: bool = False) -> dict:
    """``{(combination label, protocol): (xs, centre, lower, upper, n)}`` of ``metric`` over seeds:
    the mean and its 95% t-interval, or with ``log`` (metrics drawn on a log axis, whose values
    span decades) the same on ``log10`` of the values, turned back (the geometric mean and its
    interval, which stays positive); non-positive values are left out of a ``log`` band."""
    out = {}
    runs = {r["id"]: label(r["values"]) for r in manifest["runs"]}
    s = series[series["metric"] == metric]
    for (rid, proto), g in s.groupby(["run", "protocol"], sort=False):
        out.setdefault((runs[rid], proto), []).append(g)
    result = {}
    for key, groups in out.items():
        if x == "round":
            wide = [g.drop_duplicates("round", keep="last").set_index("round")["value"] for g in groups]
            import pandas as pd

            table = pd.concat(wide, axis=1)
            xs = table.index.to_numpy(dtype=float)
            vals = table.to_numpy(dtype=float)
        else:
            ends = [g["time"].max() for g in groups]
            xs = np.unique(np.concatenate([g["time"].to_numpy() for g in groups]))
            if len(xs) > BAND_POINTS:
                xs = np.linspace(xs.min(), xs.max(), BAND_POINTS)
            vals = np.full((len(xs), len(groups)), np.nan)
            for j, (g, end) in enumerate(zip(groups, ends)):
                t, v = g["time"].to_numpy(), g["value"].to_numpy(dtype=float)
                at = np.searchsorted(t, xs, side="right") - 1  # last sample at or before each x
                ok = (at >= 0) & (xs <= end + 1e-12)
                vals[ok, j] = v[at[ok]]
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                vals = np.where(vals > 0, np.log10(np.where(vals > 0, vals, 1.0)), np.nan)
        stats = np.array([t_band(row) for row in vals]).reshape(-1, 3)
        centre, half = stats[:, 0], np.nan_to_num(stats[:, 1], nan=0.0)
        lower, upper = centre - half, centre + half
        if log:
            centre, lower, upper = 10.0 ** centre, 10.0 ** lower, 10.0 ** upper
        result[key] = (xs, centre, lower, upper, stats[:, 2].astype(int))
    return result


def plot_bands(path: Path, series, manifest: dict, metric: str, x: str = "round") -> bool:
    """``band_<metric>.png``: see the module docstring. False when no run recorded ``metric``."""
    from netemu.outputs import LINEAR_METRICS, log_yaxis, new_figure

    log = metric not in LINEAR_METRICS
    data = bands(series, manifest, metric, x, log=log)
    if not data:
        return False
    combos = [c for c, _ in _combos(manifest) if any(k[0] == c for k in data)]
    protos = list(dict.fromkeys(p for _, p in data))
    cols = min(len(combos), 3)
    rows = -(-len(combos) // cols)
    width, height = 4.4 * cols, 3.6 * rows
    fig = new_figure(figsize=(width, height + 0.5), dpi=110)
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)
    for i, combo in enumerate(combos):
        ax = axes[i // cols][i % cols]
        for j, proto in enumerate(protos):
            if (combo, proto) not in data:
                continue
            xs, centre, lo, hi, n = data[(combo, proto)]
            color = f"C{j % 10}"
            seeds = int(n.max()) if len(n) else 0
            ax.plot(xs, np.where(np.isfinite(centre), centre, np.nan),
                    color=color, lw=1.5, label=f"{proto} (n = {seeds})")
            ok = np.isfinite(lo) & np.isfinite(hi) & (n >= 2)
            ax.fill_between(xs, lo, hi, where=ok, color=color, alpha=0.25, lw=0)
        if log:
            log_yaxis(ax)
        ax.set_title(combo, fontsize=8)
        ax.set_xlabel("round" if x == "round" else "simulated time (s)")
        ax.grid(True, which="both", alpha=0.3)
    for i in range(len(combos), rows * cols):
        axes[i // cols][i % cols].set_visible(False)
    for r in range(rows):
        axes[r][0].set_ylabel(metric.replace("_", " "))
    axes[0][0].legend(fontsize=7)
    what = "geometric mean and 95% CI (t-interval of log10)" if log else "mean and 95% CI (t-interval)"
    fig.suptitle(f"{manifest.get('name')}\n{metric.replace('_', ' ')}: {what} over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return True


def final_table(finals, manifest: dict, metric: str) -> tuple[list[str], list[list[str]], list[list[tuple]]]:
    """Header, text cells and ``(mean, half-width, n, diverged)`` per grid combination × protocol
    of ``metric``'s final value."""
    ok = finals[(finals["status"] == "ok") & (finals["metric"] == metric)]
    protos = list(dict.fromkeys(ok["protocol"]))
    runs = {r["id"]: label(r["values"]) for r in manifest["runs"]}
    combos = [c for c, _ in _combos(manifest)]
    keyed = ok.assign(combo=ok["run"].map(runs))
    bad = finals.loc[finals["status"] == "failed", "run"].map(runs).value_counts()
    texts, stats = [], []
    for combo in combos:
        trow, srow = [combo], []
        failed = int(bad.get(combo, 0))
        for proto in protos:
            g = keyed[(keyed["combo"] == combo) & (keyed["protocol"] == proto)]
            good = g[~g["diverged"].astype(bool)]["value"].to_numpy(dtype=float)
            diverged = int(g["diverged"].astype(bool).sum())
            mean, half, n = t_band(good)
            srow.append((mean, half, n, diverged))
            trow.append(_fmt(mean, half, n, diverged, len(g) + failed, failed))
        texts.append(trow)
        stats.append(srow)
    return ["grid", *protos], texts, stats


def _fmt(mean, half, n, diverged, total, failed=0) -> str:
    notes = [f"{k}/{total} {what}" for k, what in ((diverged, "diverged"), (failed, "failed")) if k]
    if n == 0:
        return ", ".join(notes) or "–"
    text = f"{mean:.4g}" if not np.isfinite(half) else f"{mean:.4g} ± {half:.2g}"
    return text + (f" ({', '.join(notes)})" if notes else "")


def markdown(finals, manifest: dict, metrics: list[str]) -> str:
    seeds = len(manifest["seeds"])
    parts = [f"# {manifest.get('name')}: final values\n\nmean ± 95% CI half-width over {seeds} "
             f"seed{'s' if seeds != 1 else ''} (Student t); diverged and failed runs are left out of the "
             f"mean and counted\n"]
    for metric in metrics:
        header, rows, _ = final_table(finals, manifest, metric)
        lines = [f"## {metric}\n", "| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def _tex(s: str) -> str:
    table = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
             "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}", "–": "--"}
    return "".join(table.get(c, c) for c in s)


def latex(finals, manifest: dict, metrics: list[str]) -> str:
    seeds = len(manifest["seeds"])
    out = [f"% {manifest.get('name')}: final values, mean $\\pm$ 95% CI half-width over {seeds} seed(s) "
           f"(Student t)"]
    for metric in metrics:
        header, rows, _ = final_table(finals, manifest, metric)
        out += [r"\begin{table}[ht]", r"\centering",
                r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\toprule",
                " & ".join(_tex(h) for h in header) + r" \\", r"\midrule"]
        out += [" & ".join(_tex(c).replace("±", r"$\pm$") for c in row) + r" \\" for row in rows]
        out += [r"\bottomrule", r"\end{tabular}",
                f"\\caption{{{_tex(metric)}: final value, mean $\\pm$ 95\\% CI over {seeds} seed(s)}}",
                r"\end{table}", ""]
    return "\n".join(out)


def write(out: Path, x: str = "round", plots: bool = True) -> dict:
    """Write every file of the module docstring into ``out`` from its run folders; returns
    ``{"finals", "series", "failed", "manifest", "files"}``."""
    out = Path(out)
    manifest, finals, series, failed = load(out)
    files = []

    def put(name: str, write_to) -> None:
        tmp = out / f"{store.STAGE_PREFIX}{name}"
        write_to(tmp)
        tmp.replace(out / name)
        files.append(out / name)

    put("sweep.csv", lambda p: finals.to_csv(p, index=False))
    put("failed.csv", lambda p: failed.to_csv(p, index=False))
    from importlib.util import find_spec

    if find_spec("pyarrow") is not None:
        put("series.parquet", lambda p: series.to_parquet(p, index=False))
    else:
        put("series.csv", lambda p: series.to_csv(p, index=False))
    metrics = list(dict.fromkeys(finals.loc[finals["status"] == "ok", "metric"]))
    put("tables.md", lambda p: p.write_text(markdown(finals, manifest, metrics), encoding="utf-8"))
    put("tables.tex", lambda p: p.write_text(latex(finals, manifest, metrics), encoding="utf-8"))
    if plots:
        for metric in dict.fromkeys(series["metric"]):
            name = f"band_{metric}.png"
            if plot_bands(out / f"{store.STAGE_PREFIX}{name}", series, manifest, metric, x):
                (out / f"{store.STAGE_PREFIX}{name}").replace(out / name)
                files.append(out / name)
    return {"manifest": manifest, "finals": finals, "series": series, "failed": failed, "files": files}
