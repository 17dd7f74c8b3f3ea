"""``netemu run``: build everything a scenario needs (validating all inputs first), run each
protocol on the same network realization, write the outputs."""

from __future__ import annotations

import sys
from pathlib import Path

from netemu.engine import SimEngine
from netemu.outputs import plot_metric, staged, write_metrics, write_summary
from netemu.tasks.consensus import initial_values
from netemu.world.network import build_topology, build_trajectories


def prepare(sc):
    """Everything that reads files or can fail on user input, before anything is written."""
    trajectories = build_trajectories(sc)
    topology = build_topology(sc.network, sc.network["nodes"], sc.seed, sc.base_dir)
    x0 = initial_values(sc.task, sc.network["nodes"], sc.seed, sc.base_dir)
    return trajectories, topology, x0


def run_scenario(sc, out: Path, progress: bool | None = None, log=None) -> list:
    trajectories, topology, x0 = prepare(sc)
    if progress is None:
        progress = sys.stderr.isatty()
    from tqdm import tqdm

    bar = tqdm(total=sc.run["rounds"] * len(sc.protocols), disable=not progress, unit="round",
               leave=False, dynamic_ncols=True)
    observers = []
    results = []
    with staged(Path(out)) as stage:
        if sc.output["trace"]:
            from netemu.tracefile import TraceWriter

            observers.append(TraceWriter(stage / "events.msgpack"))
        engine = SimEngine(sc, x0, trajectories, topology, tuple(observers), on_round=lambda: bar.update())
        try:
            for p in sc.protocols:
                bar.set_description(p["label"])
                results.append(engine.run_protocol(p))
                if log:
                    log(results[-1])
        finally:
            bar.close()
            for o in observers:
                o.close()
        write_metrics(stage / "metrics.csv", results)
        write_summary(stage / "summary.json", sc, results)
        if sc.output["plot"]:
            title = sc.name or Path(sc.source).stem
            plot_metric(stage / "consensus_error.png", results, "consensus_error", title)
    return results
