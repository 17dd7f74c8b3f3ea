"""``netemu run``: build everything a scenario needs (validating all inputs first), run each
protocol on the same network realization, write the outputs.

Optimization runs (``[task] kind = "logistic"``, ``"digits"``, or a task passed from Python as
``run_scenario(sc, out, task=ModuleTask(...))`` with ``kind = "custom"``) write ``loss``,
``grad_norm_sq``, ``accuracy`` and ``disagreement`` plots (``netemu.outputs.opt_plots``: convex
tasks add ``opt_gap`` and ``dist_opt``, ``[output] metrics`` more) against round and, all but
``disagreement``, against simulated time.
"""

from __future__ import annotations

import math
import sys
from contextlib import contextmanager
from pathlib import Path

from netemu import recording, registry
from netemu.engine import SimEngine
from netemu.errors import NetemuError, ScenarioError
from netemu.outputs import Plotter, opt_plots, staged, write_metrics, write_summary
from netemu.tasks import OPTIMIZATION
from netemu.tasks.consensus import initial_values
from netemu.scenario import build, preflight

# y-axis capped at 100× the largest first value, so one diverging protocol does not flatten the rest
CAPPED = ("loss", "grad_norm_sq", "opt_gap", "dist_opt", "dist_opt_worst")


def prepare(sc):
    """Everything that reads files or can fail on user input, before anything is written."""
    trajectories = build.trajectories(_compute_horizon(sc))
    topology = build.topology(sc)
    x0 = initial_values(sc.task, sc.network["nodes"], sc.seed, sc.base_dir) \
        if sc.task["kind"] == "consensus" else None
    return trajectories, topology, x0


def _compute_horizon(sc):
    """``sc`` with enough extra rounds that mobility also covers the compute phases, which push
    rounds later than ``k · period`` (a bound: ``deadline`` per step, or 5× the slowest nominal
    step without one; nodes stand still past the horizon). Consensus scenarios: ``sc`` itself."""
    c = sc.compute
    if sc.task["kind"] == "consensus" or not c or c.get("step_time") is None:
        return sc
    from dataclasses import replace

    from netemu.compute.timing import StepTimes

    times = StepTimes(c, sc.network["nodes"], sc.seed, sc.base_dir)
    per_step = c["deadline"] or 5.0 * times.nominal() * max(times.slowdown, 1.0) / float(times.speed.min())
    steps = max(int(p.get("tau") or 1) for p in sc.protocols)
    extra = math.ceil(sc.run["rounds"] * steps * per_step / sc.run["period"])
    return replace(sc, run={**sc.run, "rounds": sc.run["rounds"] + extra})


def make_task(sc, notice=None):
    """The optimization task of ``sc`` on its ``[compute]`` device, or None for consensus."""
    kind = sc.task["kind"]
    if kind not in OPTIMIZATION:
        if kind == "custom":
            raise ScenarioError(f"{sc.source}: [task] kind = \"custom\" takes its task from Python: "
                                f"run_scenario(sc, out, task=ModuleTask(...)); or use \"logistic\"/\"digits\"")
        return None
    from netemu.compute.device import resolve
    from netemu.tasks import build_task

    from netemu.compute.timing import Clock

    Clock(sc.compute, sc.network["nodes"], sc.seed, sc.base_dir)  # reads and checks its files
    device, dtype = resolve(sc.compute["device"], sc.compute["dtype"], notice=notice)
    return build_task(sc.task, sc.network["nodes"], sc.seed, device, dtype)


@contextmanager
def compute_threads(n: int):
    """torch's intra-op thread count set to ``n`` (0: left alone) for the duration."""
    if not n:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="round", leave=False, dynamic_ncols=True)


class _NoBar:
    """The progress bar when there is none (tqdm is not even imported)."""

    def update(self, n: int = 1) -> None: ...

    def set_description(self, desc: str) -> None: ...

    def close(self) -> None: ...


def run_scenario(sc, out: Path, progress: bool | None = None, log=None, task=None) -> list:
    preflight.check(sc, task)  # refuses a run that would not fit in memory, before allocating
    trajectories, topology, x0 = prepare(sc)
    if task is None:
        task = make_task(sc)
    elif task.n != sc.network["nodes"]:
        raise ScenarioError(f"{sc.source}: the task has data for {task.n} nodes but [network] nodes = "
                            f"{sc.network['nodes']}; make them equal")
    for i, p in enumerate(sc.protocols):  # checks against the task (FL: a codec's rank and the tensors)
        check = getattr(registry.get(p["name"]), "check_task", None)
        if check is not None and task is not None:
            check(p, task, f"{sc.source}: [protocols #{i + 1}]")
    if progress is None:
        progress = sys.stderr.isatty()
    bar = _bar(sc.run["rounds"] * len(sc.protocols)) if progress else _NoBar()
    observers = []
    results = []
    with staged(Path(out)) as stage, compute_threads(sc.compute.get("threads", 0) if task is not None else 0):
        if sc.output["trace"]:
            from netemu.tracefile import TraceWriter

            observers.append(TraceWriter(stage / "events.msgpack"))
        recorder = None
        if recording.enabled(sc):  # recording.npz for netemu view: an observer, metrics unchanged
            recorder = recording.FrameRecorder.for_run(sc, topology, x0, task)
            observers.append(recorder)
        engine = SimEngine(sc, x0, trajectories, topology, tuple(observers), on_round=lambda: bar.update(),
                           task=task)
        try:
            for p in sc.protocols:
                bar.set_description(p["label"])
                results.append(engine.run_protocol(p))
                if results[-1].diverged and sc.run.get("on_diverge") == "fail":
                    raise NetemuError(f"{sc.source}: protocol {p['label']!r} diverged at round "
                                      f"{results[-1].diverged_at_round} and [run] on_diverge = \"fail\"")
                if log:
                    log(results[-1])
        finally:
            bar.close()
            for o in observers:
                o.close()
        if recorder is not None:
            recorder.write(stage / recording.FILE)
        write_results(stage, sc, results, task)
    return results


def write_results(stage: Path, sc, results: list, task, suffix: str = "") -> None:
    """metrics.csv, summary.json and the plots of a run (``netemu run`` and ``netemu live``)."""
    write_metrics(stage / "metrics.csv", results)
    write_summary(stage / "summary.json", sc, results, task)
    from netemu.fl import report as fl

    if fl.is_fl(results):  # the federated-learning table: time to target, bytes, updates
        fl.write_table(stage / "fl_table.csv", results, sc.run.get("target_loss"))
    if sc.output["plot"]:
        write_plots(stage, sc, results, optimization=task is not None, suffix=suffix)
        if fl.is_fl(results):
            fl.write_plots(stage, results, (sc.name or Path(sc.source).stem) + suffix, Plotter())


def write_plots(stage: Path, sc, results: list, optimization: bool, suffix: str = "") -> None:
    """The plots of a run, all on one reused figure (``netemu.outputs.Plotter``): consensus_error,
    or those of ``opt_plots`` against round and (all but disagreement) simulated time."""
    title = (sc.name or Path(sc.source).stem) + suffix
    plots = Plotter()
    if not optimization:
        plots.metric(stage / "consensus_error.png", results, "consensus_error", title)
        return
    for metric, log_scale in opt_plots(sc.task, sc.output):  # plus opt_gap, dist_opt on convex tasks
        cap = 100.0 if metric in CAPPED else None
        plots.metric(stage / f"{metric}.png", results, metric, title, log=log_scale, cap=cap)
        if metric != "disagreement":
            plots.metric(stage / f"{metric}_time.png", results, metric, title, x="time", log=log_scale, cap=cap)
