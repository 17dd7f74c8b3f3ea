"""A sweep's plan: grids × seeds, each combination validated before any run starts.

A grid is a dotted scenario key and its values (``network.loss`` = ``[0, 0.1]``), from ``--grid
KEY=V1,V2`` or from the scenario file's ``sweep`` table (``--grid`` replaces the file's values of
the same key). Every value goes through the loader's own override and checking code
(``netemu.scenario.load.apply_override``, ``from_dict``), so a key that is not in the schema, or a
value of the wrong type or out of range, is the loader's one-line ``ScenarioError``, prefixed with
the ``--grid`` item it came from, before anything runs.

A run's id is a stable hash of its resolved scenario (``Scenario.resolved()``: every default
filled in, the seed included), so the same run gets the same id in every sweep that contains it.
A sweep's *identity* is the scenario less its grid keys and seed: two sweeps of one identity may
share an output folder (a re-run, more values or seeds), others may not.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from netemu.errors import ScenarioError
from netemu.params import show, show_key

MAX_RUNS = 10_000  # grid combinations × seeds of one sweep


@dataclass
class Run:
    """One run of a sweep: its id, its grid values (key → value, in grid order), seed, scenario."""

    id: str
    values: dict
    seed: int
    scenario: object  # netemu.scenario.load.Scenario


@dataclass
class Plan:
    source: str
    name: str
    grid: dict  # key -> list of values
    seeds: list
    runs: list  # [Run], grid combinations (in order) × seeds
    identity: str


def parse_grid(text: str) -> tuple[str, list]:
    """``"network.loss=0,0.1"`` → ``("network.loss", [0, 0.1])``: values are TOML (numbers,
    booleans, ``"quoted strings"``, ``[arrays]``), bare words are strings."""
    key, eq, raw = text.partition("=")
    key = ".".join(p.strip() for p in key.split("."))
    if not eq or not key or any(not p for p in key.split(".")) or not raw.strip():
        raise ScenarioError(f"--grid {show(text)}: expected KEY=V1,V2,…, e.g. --grid network.loss=0,0.1,0.3")
    if "\n" in raw or "\r" in raw:
        raise ScenarioError(f"--grid {show(text)}: the values span several lines; give one line")
    try:
        values = tomllib.loads(f"v = [{raw}]")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        values = []
        for part in raw.split(","):
            part = part.strip()
            try:
                values.append(tomllib.loads(f"v = {part}")["v"])
            except (tomllib.TOMLDecodeError, RecursionError):
                values.append(part)
    if not values or any(v == "" for v in values):
        raise ScenarioError(f"--grid {show(text)}: an empty value; give KEY=V1,V2,… without empty items")
    return key, values


def run_id(sc) -> str:
    """A stable hash of ``sc``'s resolved scenario (12 hex digits)."""
    doc = json.dumps(sc.resolved(), sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:12]


def label(values: dict) -> str:
    """``network.loss=0.1,run.rounds=10``: a grid combination as text (panels, tables)."""
    return ",".join(f"{k}={_text(v)}" for k, v in values.items()) or "all runs"


def _text(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _identity(data: dict, grid: dict) -> str:
    d = copy.deepcopy(data)
    d.pop("seed", None)
    d.pop("sweep", None)
    keys = sorted(grid)
    for key in keys:
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if isinstance(node, list):
            node[int(parts[-1])] = None
        else:
            node[parts[-1]] = None
    doc = json.dumps({"scenario": d, "grid": keys}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()[:16]


def plan(path, grids: tuple = (), seeds: int = 1, overrides: tuple = (), grid: dict | None = None,
         base_data: dict | None = None, source: str | None = None) -> Plan:
    """The runs of a sweep of scenario ``path`` (a TOML file; or ``base_data``, a dict of its
    tables): ``grids`` (``--grid`` texts) and ``grid`` (a dict) over the file's ``sweep`` table,
    ``overrides`` (``--set`` texts) applied first, ``seeds`` seeds from the scenario's own.
    Every combination is validated; errors name the ``--grid`` item."""
    from netemu.scenario.load import MAX_COMBINATIONS, apply_override, from_dict, parse_override, read_toml

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ScenarioError(f"--seeds {show(seeds)}: give the number of seeds per grid combination, "
                            f"a whole number of at least 1 (e.g. --seeds 5)")
    if base_data is None:
        path = Path(path)
        data = read_toml(path)
        source, base_dir = str(path), path.resolve().parent
    else:
        data, source, base_dir = copy.deepcopy(base_data), source or "<dict>", Path.cwd()
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value, text)
    table = data.pop("sweep", None) or {}
    if not isinstance(table, dict) or any(not isinstance(v, list) or not v for v in table.values()):
        raise ScenarioError(f"{source}: sweep must map dotted keys to non-empty lists, "
                            f"e.g. sweep = {{ \"network.loss\" = [0.1, 0.3] }}")
    # key -> (values, where errors start, the --grid text or None)
    given: dict = {".".join(p.strip() for p in k.split(".")): (v, f"{source}: sweep {show_key(k)}", None)
                   for k, v in table.items()}
    for key, values in (grid or {}).items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ScenarioError(f"grid {show_key(key)} = {show(values)}: give a non-empty list of values")
        given[key] = (list(values), f"grid {show_key(key)}", None)
    for text in grids:
        key, values = parse_grid(text)
        given[key] = (values, f"--grid {show(text)}", text)
    for key, (values, where, _) in given.items():
        if key.split(".")[0] in ("seed", "sweep"):
            raise ScenarioError(f"{where}: {key} cannot be a grid key; seeds are set with --seeds N "
                                f"(seeds from the scenario's seed on)")
    base_seed = data.get("seed", 0)
    if not isinstance(base_seed, int) or isinstance(base_seed, bool):
        from_dict(copy.deepcopy(data), source=source, base_dir=base_dir)  # the loader's message
    count = seeds
    for values, *_ in given.values():
        count *= len(values)
    if count > MAX_RUNS or count // seeds > MAX_COMBINATIONS:
        sizes = " × ".join([f"{k} ({len(v)})" for k, (v, *_) in given.items()] + [f"seeds ({seeds})"])
        raise ScenarioError(f"{source}: the sweep makes {count} runs ({sizes}), more than {MAX_RUNS}; "
                            f"sweep fewer values or seeds")
    # each value alone first, so that an error names the grid item that causes it
    for key, (values, where, text) in given.items():
        for v in values:
            d = copy.deepcopy(data)
            _apply(d, key, v, where, text)
            _check(d, source, base_dir, f"{where} (value {show(v)})")
    runs = []
    keys = list(given)
    for combo in itertools.product(*(v for v, *_ in given.values())):
        values = dict(zip(keys, combo))
        d = copy.deepcopy(data)
        for key, v in values.items():
            _apply(d, key, v, *given[key][1:])
        for s in range(seeds):
            d["seed"] = base_seed + s
            sc = _check(copy.deepcopy(d), source, base_dir, f"grid combination {label(values)}, seed {base_seed + s}")
            runs.append(Run(run_id(sc), values, base_seed + s, sc))
    name = data.get("name") if isinstance(data.get("name"), str) else Path(source).stem
    return Plan(source=source, name=name, grid={k: v for k, (v, *_) in given.items()},
                seeds=[base_seed + s for s in range(seeds)], runs=runs, identity=_identity(data, given))


def _apply(d: dict, key: str, value, where: str, text: str | None) -> None:
    """``d[key] = value`` by the loader's ``apply_override``; its errors start with the ``--grid``
    item (``text``), or else with ``where`` (the file's sweep key, the API's grid key)."""
    from netemu.scenario.load import apply_override

    if text is not None:
        apply_override(d, key.split("."), value, text, where="--grid")
    else:
        apply_override(d, key.split("."), value, f"{key}={show(value)}", where=f"{where}:")


def _check(d: dict, source: str, base_dir, where: str):
    from netemu.scenario.load import from_dict

    try:
        return from_dict(d, source=source, base_dir=base_dir)
    except ScenarioError as e:
        raise ScenarioError(f"{where}: {e}") from None
