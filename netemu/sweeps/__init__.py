"""Sweeps over grids × seeds (``netemu sweep``, ``netemu.sweep``), with resume and failed runs kept.

::

    import netemu
    sw = netemu.sweep("scenarios/pulm_consensus.toml", grid={"network.loss": [0.0, 0.3]}, seeds=5)
    sw.finals                 # sweep.csv: run × protocol × final metric, a column per grid key + seed
    sw.series                 # every recorded point of every run
    sw.table("consensus_error")  # mean, CI half-width and n per grid combination × protocol

The pieces: ``grid`` (the plan: parsing, validation, run ids), ``executors`` (local process pool,
Ray), ``store`` (the sweep folder, atomic run folders), ``report`` (sweep.csv, series, bands,
tables; ``netemu report``). docs/sweeps.md describes the folder and the command.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from netemu.errors import NetemuError, ScenarioError

__all__ = ["run_sweep", "SweepResults", "redraw"]


class SweepResults:
    """A sweep's results, read from its folder ``out`` (``SweepResults(DIR)`` opens a finished
    sweep): ``finals`` (sweep.csv), ``series``, ``failed`` (failed.csv) as pandas DataFrames,
    ``manifest`` (sweep.json), ``ran``/``skipped`` (runs done now / found finished; None when
    opened from a folder)."""

    def __init__(self, out, data: dict | None = None, ran: int | None = None, skipped: int | None = None):
        from netemu.sweeps import report as R

        self.out = Path(out)
        if data is None:
            manifest, finals, series, failed = R.load(self.out)
            data = {"manifest": manifest, "finals": finals, "series": series, "failed": failed}
        self.manifest, self.finals = data["manifest"], data["finals"]
        self.series, self.failed = data["series"], data["failed"]
        self.ran, self.skipped = ran, skipped

    def __repr__(self) -> str:
        return (f"SweepResults(out={str(self.out)!r}, runs={len(self.manifest['runs'])}, "
                f"failed={len(self.failed)})")

    @property
    def ok(self) -> bool:
        """Every run of the sweep finished without an error."""
        done = set(self.finals.loc[self.finals["status"] == "ok", "run"])
        return len(self.failed) == 0 and all(r["id"] in done for r in self.manifest["runs"])

    def table(self, metric: str):
        """The final value of ``metric``: one row per grid combination × protocol, columns
        ``grid``, ``protocol``, ``mean``, ``ci95`` (half-width), ``n`` (seeds with a value),
        ``diverged`` (seeds that diverged)."""
        import pandas as pd

        from netemu.errors import did_you_mean
        from netemu.sweeps.report import final_table

        names = list(dict.fromkeys(self.finals["metric"].dropna()))
        if metric not in names:
            raise NetemuError(f"{self.out}: metric {metric!r} is not recorded in this sweep"
                              f"{did_you_mean(metric, names)}")
        header, texts, stats = final_table(self.finals, self.manifest, metric)
        rows = [{"grid": t[0], "protocol": p, "mean": s[0], "ci95": s[1], "n": s[2], "diverged": s[3]}
                for t, srow in zip(texts, stats) for p, s in zip(header[1:], srow)]
        return pd.DataFrame(rows, columns=["grid", "protocol", "mean", "ci95", "n", "diverged"])


def run_sweep(scenario, grid: dict | None = None, seeds: int = 1, out=None, jobs: int | None = None,
              ray: str | None = None, set: dict | None = None, progress: bool | None = False,
              plots: bool = True, x: str = "round", max_memory=None, grids: tuple = (),
              overrides: tuple = (), echo=None) -> SweepResults:
    """Run a sweep and return its ``SweepResults``.

    ``scenario``: a TOML file (its ``sweep`` table gives grids too) or a dict of its tables.
    ``grid``: dotted key → list of values (over the file's sweep table); ``seeds``: seeds per
    combination, from the scenario's seed on; ``set``: overrides applied first (as ``--set``).
    ``out``: the sweep folder (default: a fresh temporary one); finished runs found there are
    skipped. ``jobs``: worker processes (default: the cores); ``ray``: ``"auto"`` or a cluster
    address instead of the process pool. Failed runs are recorded (``failed``), not raised.
    ``grids``/``overrides``: ``--grid``/``--set`` texts (the command line). Bad input raises
    ``ScenarioError`` (or ``NetemuError`` for ``ray``) before any run.
    """
    from netemu.api import _overrides, _plain
    from netemu.scenario import preflight
    from netemu.sweeps import grid as G
    from netemu.sweeps import store

    if ray is not None and jobs is not None:
        raise NetemuError("--jobs and --ray: give one; --jobs sets local processes, Ray places runs itself")
    if x not in ("round", "time"):
        raise NetemuError(f"x={x!r}: use \"round\" or \"time\"")
    sets = tuple(f"{k}={_toml(v)}" for k, v in _overrides(set).items()) + tuple(overrides)
    if isinstance(scenario, (str, os.PathLike)):
        plan = G.plan(scenario, grids=grids, seeds=seeds, overrides=sets, grid=_plain(grid or {}))
    elif isinstance(scenario, dict):
        plan = G.plan(None, grids=grids, seeds=seeds, overrides=sets, grid=_plain(grid or {}),
                      base_data=scenario)
    else:
        raise ScenarioError(f"{type(scenario).__name__} is not a scenario: pass a path to a TOML file "
                            f"or a dict of its tables")
    ids: dict = {}
    for r in plan.runs:
        if r.id in ids and ids[r.id] is not r:
            raise ScenarioError(f"grid: {G.label(ids[r.id].values)} and {G.label(r.values)} (seed {r.seed}) "
                                f"make the same scenario; remove one of the values")
        ids[r.id] = r
    if max_memory is not None:
        from dataclasses import replace

        limit = preflight.parse_size(max_memory, "--max-memory")
        for r in plan.runs:
            r.scenario = replace(r.scenario, max_memory=limit)
    for r in plan.runs:  # every run is sized before any starts
        preflight.check(r.scenario)
    from netemu.sweeps.executors import LocalPool, RayExecutor

    if out is not None:
        store.check_out(Path(out), plan)
    executor = RayExecutor(ray) if ray is not None else LocalPool(jobs)
    try:
        return _execute(plan, executor, out, progress, plots, x, echo)
    finally:
        executor.close()


def _execute(plan, executor, out, progress, plots: bool, x: str, echo) -> SweepResults:
    from netemu.sweeps import grid as G
    from netemu.sweeps import report, store

    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="netemu-sweep-"))
    store.write_manifest(out, plan)
    store.clean(out)
    todo = [r for r in plan.runs if not store.finished(out, r.id)]
    skipped = len(plan.runs) - len(todo)
    echo = echo or (lambda text: None)
    combos, seeds = len(plan.runs) // len(plan.seeds), len(plan.seeds)
    echo(f"{plan.name}: {len(plan.runs)} runs ({combos} grid combination{'s' * (combos != 1)} × "
         f"{seeds} seed{'s' * (seeds != 1)}), {skipped} already finished, {len(todo)} to run on "
         f"{executor.name} -> {out}/")
    bar = _Progress(len(plan.runs), skipped, progress)
    failed = []

    def on_done(run, status, payload) -> None:
        if status == "ok":
            store.write_files(out, run.id, payload)
        else:
            store.write_failure(out, run.id, payload)
            failed.append(run)
            echo(f"  run {run.id} ({G.label(run.values)}, seed {run.seed}) failed: {payload}")
        bar.update(status == "ok")

    try:
        if todo:
            executor.map(todo, on_done)
    except BaseException:
        store.clean(out)
        raise
    finally:
        bar.close()
    data = report.write(out, x=x, plots=plots)
    return SweepResults(out, data, ran=len(todo), skipped=skipped)


def _toml(v) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str, list)):
        return json.dumps(v)
    raise ScenarioError(f"set value {v!r}: give numbers, strings, booleans or lists")


class _Progress:
    """Runs done, failed and remaining, with tqdm's ETA (on stderr; off unless asked or a terminal)."""

    def __init__(self, total: int, skipped: int, progress: bool | None) -> None:
        self.done, self.failed, self.total = skipped, 0, total
        self.start = time.monotonic()
        if progress is None:
            progress = sys.stderr.isatty()
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=skipped, unit="run", dynamic_ncols=True)
            self._post()

    def _post(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"done {self.done}, failed {self.failed}, "
                                     f"remaining {self.total - self.done - self.failed}")

    def update(self, ok: bool) -> None:
        if ok:
            self.done += 1
        else:
            self.failed += 1
        if self.bar is not None:
            self.bar.update(1)
            self._post()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def redraw(out, x: str = "round", plots: bool = True) -> SweepResults:
    """Redraw a sweep's tables and figures from its folder, running nothing (``netemu report``)."""
    from netemu.sweeps import report as R

    return SweepResults(out, R.write(Path(out), x=x, plots=plots))
