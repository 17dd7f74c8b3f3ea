"""The Python API: ``netemu.run`` for notebooks and scripts, and the ``Results`` it returns.

::

    import netemu
    res = netemu.run("scenarios/pulm_consensus.toml", set={"network.loss": 0.3})
    res.final()                                         # protocol × metric, last values
    res.pivot("consensus_error").plot(logy=True)        # round × protocol

``run`` reads and validates a scenario exactly as ``netemu run`` does (``set`` goes through the
same override and checking code as ``--set``), runs it with ``netemu.runner.run_scenario`` and
writes the same files; ``Results`` reads them back as pandas objects. pandas is imported only
when a table is asked for.

**Sweeps.** ``run`` always runs *one* scenario and returns one ``Results``. A scenario with a
``sweep`` table is narrowed by ``set``: a key of ``set`` that the sweep also varies pins that key
(``set={"network.loss": 0.3}`` runs only the 0.3 combination; this is the value used, not
overridden by the sweep as on the command line), and a swept key with a single value is applied.
When more than one combination is left, ``run`` raises ``NetemuError`` naming the swept keys and
their values: loop in Python instead (``[netemu.run(path, set={"network.loss": v}) for v in
(0.1, 0.3)]``), or use ``netemu run`` for a sweep's side-by-side figure. ``netemu.sweep`` runs
grids × seeds with confidence bands and resume (``netemu.sweeps``, docs/sweeps.md).
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from netemu.errors import NetemuError, ScenarioError, did_you_mean
from netemu.params import check_depth
from netemu.scenario.load import Scenario, apply_override, from_dict, read_toml

__all__ = ["run", "load", "Results"]


def _plain(value: Any) -> Any:
    """A Python value as a TOML reader would give it: numpy scalars to ``int``/``float``/``bool``,
    tuples to lists, paths to strings (so ``np.linspace`` values and ``Path`` objects work)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    return value


def _overrides(set: Mapping | None) -> dict[str, Any]:
    if set is None:
        return {}
    if not isinstance(set, Mapping):
        raise ScenarioError(f"set = {set!r}: expected a dict of dotted keys to values, "
                            f"e.g. set={{\"network.loss\": 0.3}}")
    check_depth(dict(set), "set=")  # before anything recurses on the values
    out = {}
    for key, value in set.items():
        if not isinstance(key, str) or not key.strip() or any(not p.strip() for p in key.split(".")):
            raise ScenarioError(f"set key {key!r}: expected a dotted key such as \"network.loss\" "
                                f"or \"protocols.0.lr\"")
        out[_norm(key)] = _plain(value)
    return out


def _apply(data: dict, overrides: dict[str, Any]) -> None:
    """``--set`` semantics through the loader's own ``apply_override``."""
    for key, value in overrides.items():
        apply_override(data, _norm(key).split("."), value, f"{key}={value!r}", where="set=")


def _narrow_sweep(data: dict, overrides: dict[str, Any], source: str) -> None:
    """Remove ``data``'s sweep table, applying it when it leaves one combination (see the module
    docstring); raise ``NetemuError`` when it leaves several."""
    sweep = data.pop("sweep", None)
    if not sweep:
        return
    if not isinstance(sweep, dict) or any(not isinstance(v, list) or not v for v in sweep.values()):
        raise ScenarioError(f"{source}: sweep must map dotted keys to non-empty lists, "
                            f"e.g. sweep = {{ \"network.loss\" = [0.1, 0.3] }}")
    pinned = {_norm(k) for k in overrides}
    left = {k: v for k, v in sweep.items() if _norm(k) not in pinned}
    several = {k: v for k, v in left.items() if len(v) > 1}
    if several:
        keys = ", ".join(f"{k} in {v}" for k, v in several.items())
        first = next(iter(several.items()))
        raise NetemuError(
            f"{source}: its sweep table runs {_count(several)} scenarios ({keys}); netemu.run runs "
            f"one: pick a value with set={{{first[0]!r}: {first[1][0]!r}}} (loop over the values "
            f"in Python for several), or run the whole sweep with 'netemu run'")
    for key, values in left.items():
        apply_override(data, key.split("."), _plain(values[0]), f"sweep {key}={values[0]!r}")


def _norm(key: str) -> str:
    return ".".join(p.strip() for p in key.split("."))


def _count(sweep: dict) -> int:
    n = 1
    for v in sweep.values():
        n *= len(v)
    return n


def load(path_or_scenario: str | os.PathLike | Scenario | Mapping, set: Mapping | None = None,
         seed: int | None = None) -> Scenario:
    """A validated ``Scenario`` from a TOML file (``str`` or ``Path``), a ``Scenario`` or a plain
    dict of the file's tables (``Scenario.from_dict``), with ``set`` overrides (dotted keys to
    values, like ``--set``) and ``seed`` applied. A sweep table is narrowed as described in the
    module docstring; several combinations left raise ``NetemuError``. Bad keys or values raise
    ``ScenarioError`` naming them, before anything runs."""
    overrides = _overrides(set)
    src = path_or_scenario
    if isinstance(src, Scenario):
        if not overrides and seed is None:
            return src
        data, source, base_dir = src.resolved(), src.source, src.base_dir
    elif isinstance(src, Mapping):
        check_depth(dict(src), "<dict>")
        data, source, base_dir = copy.deepcopy(dict(src)), "<dict>", None
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        data, source, base_dir = read_toml(path), str(path), path.resolve().parent
    else:
        raise ScenarioError(f"{type(src).__name__} is not a scenario: pass a path to a TOML file, "
                            f"a netemu.Scenario or a dict of its tables")
    _apply(data, overrides)
    if seed is not None:
        data["seed"] = seed
    _narrow_sweep(data, overrides, source)
    return from_dict(data, source=source, base_dir=base_dir)


def run(path_or_scenario: str | os.PathLike | Scenario | Mapping, set: Mapping | None = None,
        seed: int | None = None, out: str | os.PathLike | None = None, progress: bool = False,
        task=None, max_memory: int | str | None = None) -> "Results":
    """Run a scenario and return its ``Results``.

    ``path_or_scenario``: a TOML file (``str`` or ``Path``), a ``Scenario``, or a dict of the
    file's tables (validated with ``Scenario.from_dict``; relative file paths in it start at the
    current folder). ``set``: dotted keys to values, applied like ``netemu run --set``, e.g.
    ``{"network.loss": 0.3, "protocols.0.lr": 0.1}``; a bad key or value raises ``ScenarioError``
    naming it. ``seed`` overrides the scenario's seed. ``out``: the output folder (created; files
    there with the output names are replaced); by default a fresh folder ``netemu-XXXXXXXX`` in
    the system's temporary folder (``tempfile.gettempdir()``, e.g. ``/tmp``), which is left in
    place so the plots can be opened. ``progress``: a progress bar on stderr. ``task``: the
    optimization task for ``[task] kind = "custom"`` (as ``run_scenario``'s ``task=``).
    ``max_memory``: the memory the run may use, in bytes or as a size such as ``"100G"`` (as
    ``netemu run --max-memory``); by default the memory available now. A run whose estimate
    (``netemu.scenario.preflight``) exceeds it raises ``ScenarioError`` before anything is allocated.

    A scenario with a ``sweep`` table must be narrowed to one combination with ``set`` (see the
    module docstring), else ``NetemuError``.
    """
    from netemu.runner import run_scenario

    sc = load(path_or_scenario, set=set, seed=seed)
    if max_memory is not None:
        from dataclasses import replace

        from netemu.scenario.preflight import parse_size

        sc = replace(sc, max_memory=parse_size(max_memory, "max_memory="))
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="netemu-"))
    results = run_scenario(sc, out, progress=progress, task=task)
    return Results(out, scenario=sc, results=results)


class Results:
    """The outputs of one run, read from its folder ``out``.

    - ``metrics``: a pandas ``DataFrame`` in ``metrics.csv``'s long form, columns ``protocol``,
      ``round``, ``time``, ``metric``, ``value`` (read from ``metrics.csv``, so the same values);
    - ``summary``: the ``summary.json`` dict;
    - ``paths``: ``{"metrics", "summary", "plots" (a list of PNGs), "trace" (or None)}``;
    - ``final()``: protocol × metric, each metric's last value;
    - ``pivot(metric)``: round × protocol (or ``time`` × protocol with ``index="time"``);
    - ``scenario``, ``results``: the ``Scenario`` and the ``RunResult`` list (``netemu.run`` only).

    ``Results("results/pulm_consensus/network.loss=0.1")`` opens the outputs of an earlier
    ``netemu run`` the same way.
    """

    def __init__(self, out: str | os.PathLike, scenario: Scenario | None = None,
                 results: list | None = None) -> None:
        self.out = Path(out)
        self.scenario = scenario
        self.results = results
        self._metrics = None
        self._summary = None
        if not (self.out / "metrics.csv").is_file():
            raise NetemuError(f"{self.out}: no metrics.csv; give the folder of a finished run "
                              f"(the --out of 'netemu run', or a sweep's OUT/<key=value>/)")

    def __repr__(self) -> str:
        protos = list(self._protocols())
        return f"Results(out={str(self.out)!r}, protocols={protos})"

    @property
    def paths(self) -> dict:
        trace = self.out / "events.msgpack"
        return {"metrics": self.out / "metrics.csv", "summary": self.out / "summary.json",
                "plots": sorted(self.out.glob("*.png")), "trace": trace if trace.is_file() else None}

    @property
    def metrics(self):
        if self._metrics is None:
            import pandas as pd

            # labels stay strings ("1", "NA" are labels, not numbers or missing values)
            self._metrics = pd.read_csv(
                self.out / "metrics.csv", keep_default_na=False, na_values={"value": ["nan"]},
                dtype={"protocol": str, "round": "int64", "time": float, "metric": str, "value": float})
        return self._metrics

    @property
    def summary(self) -> dict:
        if self._summary is None:
            self._summary = json.loads((self.out / "summary.json").read_text(encoding="utf-8"))
        return self._summary

    def _protocols(self) -> list[str]:
        """Protocol labels in run order."""
        return list(dict.fromkeys(self.metrics["protocol"]))

    def _metric_names(self) -> list[str]:
        return list(dict.fromkeys(self.metrics["metric"]))

    def final(self):
        """A ``DataFrame``, one row per protocol (run order) and one column per metric, holding
        each metric's last recorded value (a diverged run's ``nan``/``inf`` included)."""
        m = self.metrics
        last = m.drop_duplicates(["protocol", "metric"], keep="last")
        table = last.pivot(index="protocol", columns="metric", values="value")
        table = table.reindex(index=self._protocols(), columns=self._metric_names())
        table.columns.name = None
        return table

    def pivot(self, metric: str, index: str = "round"):
        """``metric`` as a ``DataFrame``: one row per ``round`` (or per ``time`` with
        ``index="time"``), one column per protocol (run order); ready for ``.plot()``."""
        if index not in ("round", "time"):
            raise NetemuError(f"pivot(index={index!r}): use index=\"round\" or index=\"time\"")
        names = self._metric_names()
        if metric not in names:
            raise NetemuError(f"{self.out}: metric {metric!r} is not recorded in this run"
                              f"{did_you_mean(metric, names)}")
        m = self.metrics
        rows = m[m["metric"] == metric].drop_duplicates([index, "protocol"], keep="last")
        table = rows.pivot(index=index, columns="protocol", values="value")
        table = table.reindex(columns=[p for p in self._protocols() if p in set(rows["protocol"])])
        table.columns.name = None
        return table
