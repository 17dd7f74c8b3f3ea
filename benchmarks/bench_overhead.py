"""Fixed costs of a run: start-up, a tiny run, and writing the plots, as ratios to bare baselines.

In one invocation, interleaved, median of ``--repeats``, as wall time and as CPU time (user +
system; steadier than wall time on a machine shared with other work):

- start-up (wall time of a fresh process) against ``python -c pass``: ``netemu --help``, and a
  five-node, one-round consensus ``netemu run`` with ``[output] plot = false`` and ``true``;
- the plots of one run (``netemu.runner.write_plots``, timed inside a fresh process so that
  matplotlib's import counts, as in a real run) against a bare matplotlib figure save in a fresh
  process (import, one 1000-point line, ``savefig``), for
  ``scenarios/digits_radio_stragglers.toml`` at ``--rounds`` rounds (3 protocols, 7 plots) and
  ``scenarios/pulm_consensus.toml`` (both sweep values: 2 plots and the sweep's panel figure);
  ``before`` draws the same plots the way netemu did before (pyplot, a new figure per plot,
  ``tight_layout``, mathtext tick labels), kept here as ``before_plot_metric``/``before_panels``.

The runs themselves (digits takes about 10 s at 1000 rounds) are made once, without plots, and
their results pickled for the plotting processes.

Run:  python benchmarks/bench_overhead.py [--repeats 5] [--rounds 1000]
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TINY = """seed = 1
[network]
nodes = 5
topology = "random"
p = 0.5
[run]
rounds = 1
[task]
kind = "consensus"
dim = 2
[output]
plot = {plot}
[[protocols]]
name = "push-sum"
"""


# -- the plots as netemu drew them before (for the "before" rows) --------------------------------

def before_plot_metric(path, results, metric, title, x="round", log=True, cap=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    first = []
    for r in results:
        pts = [((k if x == "round" else t), m[metric]) for k, t, m in r.rows if metric in m]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ys = np.asarray(ys, dtype=float)
        ys = np.where(np.isfinite(ys) & ((ys > 0) if log else True), ys, np.nan)
        ax.plot(xs, ys, label=r.label, lw=1.6)
        first.append(ys[0])
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


def before_panels(path, runs, metric, title, cap=1e3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.8), dpi=120, sharey=True,
                             squeeze=False)
    first = []
    for ax, (label, results) in zip(axes[0], runs):
        for r in results:
            xs, ys = zip(*[(k, m[metric]) for k, _, m in r.rows if metric in m])
            ys = np.asarray(ys, dtype=float)
            ys = np.where(np.isfinite(ys) & (ys > 0), ys, np.nan)
            first.append(ys[0])
            ax.plot(xs, ys, label=r.label, lw=1.5)
        ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("round")
        ax.grid(True, which="both", alpha=0.3)
    top = float(np.nanmax(first)) * cap
    if top < axes[0][0].get_ylim()[1]:
        axes[0][0].set_ylim(top=top)
    axes[0][0].set_ylabel(metric.replace("_", " "))
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- what one plotting process does --------------------------------------------------------------

def child(mode: str, data: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds that ``mode`` takes in this fresh process (the pickle's loading not
    counted)."""
    runs = pickle.loads(data.read_bytes()) if mode != "bare" else None
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "bare":
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6.4, 4.2), dpi=120)
        FigureCanvasAgg(fig)
        fig.add_subplot().plot(np.arange(1000.0))
        fig.savefig(out / "bare.png")
    elif mode == "netemu":
        from netemu.runner import write_plots
        from netemu.sweep import plot_panels

        for i, (label, sc, results) in enumerate(runs):
            write_plots(out / str(i), sc, results, optimization=sc.task["kind"] != "consensus")
        if len(runs) > 1:
            plot_panels(out / "panels.png", [(label, res) for label, _, res in runs], "consensus_error",
                        runs[0][1].name)
    else:  # before
        from netemu.outputs import opt_plots
        from netemu.runner import CAPPED

        for i, (label, sc, results) in enumerate(runs):
            title = sc.name
            if sc.task["kind"] == "consensus":
                before_plot_metric(out / str(i) / "consensus_error.png", results, "consensus_error", title)
                continue
            for metric, log in opt_plots(sc.task, sc.output):
                cap = 100.0 if metric in CAPPED else None
                before_plot_metric(out / str(i) / f"{metric}.png", results, metric, title, log=log, cap=cap)
                if metric != "disagreement":
                    before_plot_metric(out / str(i) / f"{metric}_time.png", results, metric, title,
                                       x="time", log=log, cap=cap)
        if len(runs) > 1:
            before_panels(out / "panels.png", [(label, res) for label, _, res in runs], "consensus_error",
                          runs[0][1].name)
    return time.perf_counter() - t0, time.process_time() - c0


def in_fresh_process(mode: str, data: Path, work: Path) -> tuple[float, float]:
    out = Path(tempfile.mkdtemp(dir=work))
    for i in range(2):
        (out / str(i)).mkdir()
    r = subprocess.run([sys.executable, __file__, "--child", mode, str(data), str(out)], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    return tuple(json.loads(r.stdout.strip().splitlines()[-1])["seconds"])


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wall(cmd: list, cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of a fresh process running ``cmd``."""
    t0, c0 = time.perf_counter(), _children_cpu()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _children_cpu() - c0


def _table(title: str, base_name: str, rows, data: dict, base: str) -> None:
    med = statistics.median
    bw, bc = (med(x[i] for x in data[base]) for i in (0, 1))
    print(f"\n{title}")
    print(f"  {'':70}{'wall s':>8}{'× ' + base_name:>14}{'cpu s':>8}{'× ' + base_name:>14}")
    for key, what in rows:
        w, c = (med(x[i] for x in data[key]) for i in (0, 1))
        print(f"  {what:<70}{w:8.3f}{w / bw:14.1f}{c:8.3f}{c / bc:14.1f}")


def runs_of(path: Path, sets: list[dict], data: Path) -> None:
    """Run the scenario once per ``set`` (plots off) and pickle ``[(label, scenario, results)]``."""
    import netemu

    runs = []
    for s in sets:
        res = netemu.run(path, set={**s, "output.plot": False}, out=data.parent / f"run-{len(runs)}")
        label = ",".join(f"{k}={v}" for k, v in s.items() if k != "run.rounds")
        runs.append((label, res.scenario, res.results))
    data.write_bytes(pickle.dumps(runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1000, help="rounds of the digits run")
    args = ap.parse_args()
    med = statistics.median
    entry = Path(sys.executable).parent / "netemu"
    netemu_cmd = [str(entry)] if entry.exists() else [sys.executable, "-m", "netemu"]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        work = Path(tmp)
        for plot in (False, True):
            (work / f"tiny_{str(plot).lower()}.toml").write_text(TINY.format(plot=str(plot).lower()))
        print(f"making the runs (digits {args.rounds} rounds, pulm_consensus), plots off ...", flush=True)
        digits, pulm = work / "digits.pkl", work / "pulm.pkl"
        runs_of(ROOT / "scenarios/digits_radio_stragglers.toml", [{"run.rounds": args.rounds}], digits)
        runs_of(ROOT / "scenarios/pulm_consensus.toml", [{"network.loss": 0.1}, {"network.loss": 0.3}], pulm)

        start = {k: [] for k in ("pass", "help", "run_noplot", "run_plot")}
        plots = {k: [] for k in ("bare", "digits", "digits_before", "pulm", "pulm_before")}
        for _ in range(args.repeats):
            start["pass"].append(wall([sys.executable, "-c", "pass"], work))
            start["help"].append(wall([*netemu_cmd, "--help"], work))
            for plot, key in ((False, "run_noplot"), (True, "run_plot")):
                start[key].append(wall([*netemu_cmd, "run", f"tiny_{str(plot).lower()}.toml", "--out",
                                        f"out_{key}", "--no-progress"], work))
            plots["bare"].append(in_fresh_process("bare", digits, work))
            plots["digits"].append(in_fresh_process("netemu", digits, work))
            plots["digits_before"].append(in_fresh_process("before", digits, work))
            plots["pulm"].append(in_fresh_process("netemu", pulm, work))
            plots["pulm_before"].append(in_fresh_process("before", pulm, work))

    _table(f"start-up: a fresh process, median of {args.repeats}", "pass", (
        ("pass", "python -c pass"), ("help", "netemu --help"),
        ("run_noplot", "netemu run: 5 nodes, 1 round, consensus, plot = false"),
        ("run_plot", "netemu run: 5 nodes, 1 round, consensus, plot = true")), start, "pass")
    _table(f"plots of one run: timed in a fresh process, matplotlib's import included, median of "
           f"{args.repeats}", "bare", (
               ("bare", "bare matplotlib figure save (import, one 1000-point line)"),
               ("digits", f"digits, 3 protocols × {args.rounds} rounds: 7 plots"),
               ("digits_before", "  the same, as drawn before"),
               ("pulm", "pulm_consensus, 2 runs × 3 protocols × 500 rounds: 2 plots + panels"),
               ("pulm_before", "  the same, as drawn before")), plots, "bare")
    ratio = {k: med(x[0] for x in plots[k]) / med(x[0] for x in plots[f"{k}_before"]) for k in ("digits", "pulm")}
    print(f"\nplots now / before (wall): digits {ratio['digits']:.2f}, pulm_consensus {ratio['pulm']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps({"seconds": child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))}))
    else:
        main()
