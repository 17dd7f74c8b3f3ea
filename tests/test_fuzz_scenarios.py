"""Hostile scenarios: mutants of small valid scenarios, drawn from the schema, either run or raise
``NetemuError`` (``ScenarioError``, ``ProtocolError``) with one line; never another exception.

Every table and key of ``netemu.scenario.schema`` (and every protocol parameter) is mutated: wrong
types, extremes, NaN and infinities, huge and negative numbers, deep nesting, unknown keys, empty
tables, lists for scalars. A mutant reaches the scenario layer through a dict
(``Scenario.from_dict``), a TOML file, or ``--set`` overrides on a TOML file. One that loads runs
capped (at most 3 rounds; the node count is the base's unless the mutant is about nodes) under a
memory limit of ``MAX_MEMORY`` (the preflight refuses bigger runs, as ``--max-memory`` would).

The default run draws a few hundred mutants (about 10 s); ``pytest -m slow`` runs the campaign
of ``CAMPAIGN`` mutants.
"""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import netemu
from netemu import registry
from netemu.cli import main
from netemu.errors import NetemuError
from netemu.params import Key
from netemu.scenario import schema as S
from netemu.scenario.load import Scenario, load as load_file

MAX_MEMORY = 256 * 2**20
CAP_ROUNDS = 3
DEFAULT_EXAMPLES = 400
CAMPAIGN = 2400

# ------------------------------------------------------------------ small valid scenarios

BASES: dict[str, dict] = {
    "consensus": {
        "seed": 1, "name": "consensus",
        "network": {"nodes": 6, "topology": "random", "p": 0.4, "loss": 0.1},
        "run": {"rounds": 3, "period": 1.0},
        "task": {"kind": "consensus", "dim": 2},
        "output": {"plot": False, "trace": False},
        "live": {"time_scale": 20.0, "external": [5]},
        "protocols": [{"name": "pulm"}, {"name": "push-sum"}, {"name": "gossip"}],
    },
    "radio": {
        "seed": 2,
        "network": {"nodes": 8, "topology": "radio", "range": {"dist": "uniform", "low": 150, "high": 300},
                    "loss_model": {"kind": "gilbert-elliott", "p_good_bad": 0.1, "p_bad_good": 0.5},
                    "delay": {"latency": 0.01, "bandwidth": 1e6, "jitter": "lognormal",
                              "jitter_scale": 0.01, "jitter_sigma": 0.5, "resolution": 0.001}},
        "mobility": {"model": "random-waypoint", "area": [400.0, 400.0], "speed": [1.0, 5.0],
                     "pause": [0.0, 2.0]},
        "run": {"rounds": 3},
        "task": {"dim": 1},
        "output": {"plot": False, "trace": True},
        "protocols": [{"name": "broadcast-gossip", "gamma": 0.5, "rate": 2.0, "slot": 0.1},
                      {"name": "async-push-sum", "rate": 1.0}],
    },
    "logdist": {
        "seed": 3,
        "network": {"nodes": 7, "topology": "radio", "reception": "log-distance", "tx_power": 20.0,
                    "reference_loss": 40.0, "path_loss_exponent": 3.0, "shadowing": 4.0,
                    "threshold": -85.0, "mac": {"model": "csma", "bitrate": 1e6}},
        "mobility": {"model": "random-walk", "area": [300.0, 200.0], "speed": [0.5, 2.0],
                     "interval": 1.0},
        "run": {"rounds": 2},
        "output": {"plot": False},
        "protocols": [{"name": "pulm"}, {"name": "gossip"}],
    },
    "latent": {
        "seed": 4,
        "network": {"nodes": 6, "topology": "latent", "graph": "erdos-renyi", "edge_prob": 0.5,
                    "disconnect": 0.2},
        "run": {"rounds": 3},
        "task": {"x0": "x0.npy"},
        "output": {"plot": False},
        "protocols": [{"name": "push-sum"}, {"name": "pulm", "label": "pulm-2"}],
    },
    "schedule": {
        "seed": 5,
        "network": {"nodes": 6, "topology": "schedule", "file": "adj.npz"},
        "run": {"rounds": 3},
        "output": {"plot": False},
        "protocols": [{"name": "pulm"}],
    },
    "logistic": {
        "seed": 6,
        "network": {"nodes": 6, "topology": "radio", "range": 400.0,
                    "delay": {"latency": 0.01, "jitter": "exponential", "jitter_scale": 0.01},
                    "uplink": {"server": 0, "latency": 0.01, "bandwidth": 1e6, "loss": 0.1}},
        "mobility": {"model": "static", "area": [500.0, 500.0]},
        "run": {"rounds": 3, "period": 0.5},
        "task": {"kind": "logistic", "samples": 12, "features": 3, "sigma_h": 1.0, "rho": 0.01,
                 "l2": 0.001, "batch": 4},
        "compute": {"device": "cpu", "dtype": "float64", "threads": 1, "deadline": 0.2,
                    "step_time": {"dist": "lognormal", "median": 0.05, "sigma": 0.5},
                    "speeds": {"dist": "uniform", "low": 0.5, "high": 1.5},
                    "stragglers": {"fraction": 0.2, "slowdown": 10.0, "persistent": False},
                    "availability": {"kind": "periods", "on": 60.0, "off": 10.0}},
        "output": {"plot": False, "eval_every": 2},
        "protocols": [{"name": "dgd", "lr": 0.05}, {"name": "pulm-dgd", "inner_rounds": 2},
                      {"name": "local-sgd", "tau": 2, "inner_rounds": 1},
                      {"name": "easgd", "alpha": 0.1, "tau": 1}, {"name": "push-diging"}],
    },
    "quadratic": {
        "seed": 7,
        "network": {"nodes": 5, "topology": "latent", "graph": "ring"},
        "run": {"rounds": 3},
        "task": {"kind": "quadratic", "samples": 8, "features": 3, "batch": 0},
        "compute": {"device": "cpu", "step_time": {"dist": "exponential", "mean": 0.01},
                    "speeds": {"dist": "lognormal", "sigma": 0.3},
                    "stragglers": {"fraction": 0.5, "slowdown": 3.0, "persistent": True}},
        "output": {"plot": False, "metrics": ["dist_opt_worst"]},
        "protocols": [{"name": "dgd", "lr": {"schedule": "inv_sqrt", "a": 0.1}},
                      {"name": "pulm-dgd", "inner_rounds": {"schedule": "log", "c": 1.0, "min": 1}}],
    },
    "digits": {
        "seed": 8,
        "network": {"nodes": 4, "topology": "latent", "graph": "ring"},
        "run": {"rounds": 2},
        "task": {"kind": "digits", "model": "mlp", "hidden": 8, "split": "iid", "test_fraction": 0.2,
                 "batch": 8},
        "compute": {"device": "cpu", "step_time": {"dist": "fixed", "value": 0.01}},
        "output": {"plot": False},
        "protocols": [{"name": "dgd"}, {"name": "local-sgd", "tau": 2, "averaging": "gossip"}],
    },
}

# where each table of the schema sits in a scenario, and the bases that hold it
TABLES: dict[str, tuple[tuple, tuple[str, ...]]] = {
    "TOP": ((), tuple(BASES)),
    "NETWORK": (("network",), tuple(BASES)),
    "RANGE_UNIFORM": (("network", "range"), ("radio",)),
    "LOSS_MODEL": (("network", "loss_model"), ("radio", "consensus")),
    "DELAY": (("network", "delay"), ("radio", "logistic")),
    "UPLINK": (("network", "uplink"), ("logistic",)),
    "MAC": (("network", "mac"), ("logdist",)),
    "MOBILITY": (("mobility",), ("radio", "logdist", "logistic")),
    "RUN": (("run",), tuple(BASES)),
    "TASK": (("task",), tuple(BASES)),
    "COMPUTE": (("compute",), ("logistic", "quadratic", "digits")),
    "STEP_TIME": (("compute", "step_time"), ("logistic", "quadratic", "digits")),
    "SPEEDS": (("compute", "speeds"), ("logistic", "quadratic")),
    "STRAGGLERS": (("compute", "stragglers"), ("logistic", "quadratic")),
    "AVAILABILITY": (("compute", "availability"), ("logistic",)),
    "OUTPUT": (("output",), tuple(BASES)),
    "LIVE": (("live",), ("consensus",)),
    "PROTOCOL_COMMON": (("protocols", 0), tuple(BASES)),
}
TASK_BASES = {"consensus": ("consensus", "latent"), "logistic": ("logistic",), "quadratic": ("quadratic",),
              "digits": ("digits",)}


def schema_tables() -> dict[str, dict]:
    return {name: value for name, value in vars(S).items()
            if isinstance(value, dict) and value and all(isinstance(v, Key) for v in value.values())}


def _key_sites() -> list[tuple[tuple, str, Key, tuple[str, ...]]]:
    """(path of the table, key, declaration, bases) for every key of the schema and of every
    protocol of the bases."""
    from netemu.scenario.load import TASK_KEYS

    sites = []
    for name, keys in schema_tables().items():
        path, bases = TABLES[name]
        for key, spec in keys.items():
            b = bases
            if name == "TASK":
                b = tuple(x for kind, bs in TASK_BASES.items() for x in bs
                          if key == "kind" or key in TASK_KEYS[kind])
            sites.append((path, key, spec, b))
    for base, data in BASES.items():
        for i, p in enumerate(data["protocols"]):
            for key, spec in registry.get(p["name"]).params.items():
                sites.append((("protocols", i), key, spec, (base,)))
    return sites


SITES = _key_sites()

# ------------------------------------------------------------------ values

EXTREME_FLOATS = [0.0, -0.0, 5e-324, 1e-300, 1e-9, 0.25, 0.5, 1.0, 2.0, 3.0, 10.0, 1e3, 1e4, 1e6, 1e7,
                  1e9, 1e15, 1e100, 1e308, -1.0, -1e-9, -1e308, math.inf, -math.inf, math.nan]
EXTREME_INTS = [0, -1, 1, 2, 3, 7, 100, 10**6, 10**8, 10**8 + 1, 10**9, 2**31, 2**53 + 1, 2**63 - 1,
                2**63, 2**64, -2**63, 10**30]
WRONG = ["x", "", "1", "nan", True, False, [], [1, 2], ["a"], {}, {"a": 1}, [[1]], {"dist": "uniform"},
         {"schedule": "log"}]


def deep(depth: int, dict_like: bool) -> object:
    v: object = 1
    for _ in range(depth):
        v = {"a": v} if dict_like else [v]
    return v


def text_values():
    return st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def values_for(spec: Key):
    """Values aimed at one key: its kind's extremes, valid-looking ones, wrong types, nesting."""
    k = spec.kind
    near: list = []
    if k in ("int", "schedule") or spec.extra.get("number") == "int":
        near = [st.sampled_from(EXTREME_INTS), st.integers(), st.sampled_from([2.0, 2.5, 1e20])]
    if k in ("float", "number_or_dist", "schedule"):
        near += [st.sampled_from(EXTREME_FLOATS), st.floats(), st.integers(-10**12, 10**12)]
    if k == "pair":
        f = st.sampled_from(EXTREME_FLOATS) | st.floats()
        near = [st.lists(f, min_size=0, max_size=3), st.tuples(f, f).map(list)]
    if k in ("ints",):
        near = [st.lists(st.sampled_from(EXTREME_INTS), max_size=4)]
    if k in ("str", "path", "strs"):
        choices = list(spec.choices or []) + ["x0.npy", "adj.npz", "nope.npz", "pos.csv", "speeds.npy",
                                              "avail.csv", "g.edgelist", "ring", "directed-random",
                                              "erdos-renyi", "random-geometric"]
        one = st.sampled_from(choices) | text_values()
        near = [one] if k != "strs" else [st.lists(one, max_size=3)]
    if k == "number_or_dist":
        f = st.sampled_from(EXTREME_FLOATS)
        near.append(st.fixed_dictionaries({"dist": st.sampled_from(["uniform", "normal"]), "low": f, "high": f}))
    if k == "schedule":
        forms = list(spec.extra.get("forms", {}))
        near.append(st.fixed_dictionaries({"schedule": st.sampled_from(forms + ["nope"])},
                                          optional={"a": st.sampled_from(EXTREME_FLOATS),
                                                    "c": st.sampled_from(EXTREME_FLOATS),
                                                    "min": st.sampled_from(EXTREME_INTS)}))
    if k == "bool":
        near = [st.booleans()]
    if k == "table":
        near = [st.just({}), st.dictionaries(st.sampled_from(["kind", "dist", "x", "low"]),
                                             st.sampled_from(EXTREME_FLOATS + WRONG), max_size=2)]
    wrong = st.sampled_from(WRONG)
    nested = st.builds(deep, st.integers(1, 80), st.booleans())
    if not near:
        return st.one_of(wrong, nested)
    scalar_list = st.lists(st.one_of(*near), min_size=1, max_size=2)
    odd = st.one_of(wrong, nested, scalar_list)
    # mostly values of the right type (they get past the type checks and reach the run)
    return st.one_of(*([st.one_of(*near)] * 5), odd)


# ------------------------------------------------------------------ mutations


def _table(data: dict, path: tuple, create: bool = True):
    node = data
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return None
            node = node[part]
        else:
            if not isinstance(node, dict):
                return None
            if part not in node or not isinstance(node[part], (dict, list)):
                if not create:
                    return None
                node[part] = {}
            node = node[part]
    return node if isinstance(node, dict) else None


@st.composite
def mutation(draw, base: str):
    """One change to the scenario ``base``: (op, path, key, value)."""
    op = draw(st.sampled_from(["set"] * 8 + ["del", "unknown", "table", "protocol", "size"]))
    if op == "size":  # a big network and a big per-node size together (out-of-memory runs)
        key = draw(st.sampled_from(SIZE_KEYS))
        return ("size", ("network",), key, (draw(st.sampled_from([10**4, 10**5, 10**6, 10**7, 10**8])),
                                            draw(st.sampled_from([10**3, 10**5, 10**6, 10**7, 10**9]))))
    if op == "set":
        path, key, spec, bases = draw(st.sampled_from([s for s in SITES if base in s[3]]))
        return ("set", path, key, draw(values_for(spec)))
    if op == "del":
        path, key, _, _ = draw(st.sampled_from([s for s in SITES if base in s[3]]))
        return ("del", path, key, None)
    if op == "unknown":
        path = draw(st.sampled_from([p for p, b in TABLES.values() if base in b]))
        key = draw(st.sampled_from(["nodez", "x", "a.b", "", " ", "\n", "é", "lr2", "k" * 60]) | text_values())
        return ("set", path, key, draw(st.sampled_from(EXTREME_FLOATS + WRONG)))
    if op == "table":
        path = draw(st.sampled_from([p for p, b in TABLES.values() if base in b and p]))
        value = draw(st.sampled_from([{}, [], 1, "x", [{}], math.nan]) | st.builds(deep, st.integers(1, 80),
                                                                                     st.booleans()))
        return ("table", path, None, value)
    name = draw(st.sampled_from(sorted(registry.BUILTIN) + ["nope", ""]))  # not the ones tests register
    extra = draw(st.dictionaries(st.sampled_from(["lr", "tau", "rate", "alpha", "anchor", "gamma",
                                                  "inner_rounds", "fraction", "label", "weights"]),
                                 st.sampled_from(EXTREME_FLOATS + EXTREME_INTS + WRONG), max_size=2))
    return ("protocol", ("protocols",), None, {"name": name, **extra})


SIZE_KEYS = [("task", "dim"), ("task", "samples"), ("task", "features"), ("task", "hidden"), ("task", "batch"),
             ("run", "rounds"), ("mobility", "area")]


def apply(data: dict, m: tuple) -> None:
    op, path, key, value = m
    if op == "size":
        nodes, big = value
        table, name = key
        for where, k, v in ((("network",), "nodes", nodes),
                            ((table,), name, [float(big), float(big)] if name == "area" else big)):
            t = _table(data, where)
            if isinstance(t, dict):  # an earlier mutation may have made the table a list
                t[k] = v
    elif op == "set":
        t = _table(data, path)
        if t is not None:
            t[key] = copy.deepcopy(value)
    elif op == "del":
        t = _table(data, path, create=False)
        if t is not None:
            t.pop(key, None)
    elif op == "table":
        parent = _table(data, path[:-1])
        if parent is not None:
            parent[path[-1]] = copy.deepcopy(value)
    elif op == "protocol":
        data.setdefault("protocols", []).append(copy.deepcopy(value)) if isinstance(
            data.get("protocols"), list) else None


@st.composite
def mutants(draw):
    """(base name, mutated scenario dict, mutations, channel)."""
    base = draw(st.sampled_from(sorted(BASES)))
    muts = [draw(mutation(base)) for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3])))]
    data = copy.deepcopy(BASES[base])
    for m in muts:
        apply(data, m)
    channel = draw(st.sampled_from(["dict", "dict", "toml", "set"]))
    return base, data, muts, channel


# ------------------------------------------------------------------ TOML text

BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(k: str) -> str:
    return k if BARE.match(k) else toml_str(k)


def toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(data: dict) -> str:
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in data.items())


# ------------------------------------------------------------------ running a mutant


def make_files(d: Path) -> Path:
    """The files the bases (and path mutants) name, in the folder ``d``."""
    adj = np.random.default_rng(0).random((2, 6, 6)) < 0.5
    np.savez(d / "adj.npz", adjacency=adj)
    np.save(d / "x0.npy", np.arange(12.0).reshape(6, 2))
    (d / "pos.csv").write_text("x,y\n" + "".join(f"{i},{i * 2}\n" for i in range(6)))
    np.save(d / "speeds.npy", np.ones(6))
    (d / "avail.csv").write_text("node,start,end\n0,0,100\n1,5,20\n")
    (d / "g.edgelist").write_text("".join(f"{i} {(i + 1) % 6}\n" for i in range(6)))
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return make_files(tmp_path_factory.mktemp("fuzz-files"))


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _capped(data: dict) -> dict:
    """The work of a mutant capped (it was validated uncapped): at most ``CAP_ROUNDS`` rounds, 3
    local steps per round (``tau``), and event clocks of at most 20 wake-ups per node and period
    (and 2000 per period in all)."""
    out = copy.deepcopy(data)
    run = out.get("run")
    if isinstance(run, dict) and isinstance(run.get("rounds"), int) and _number(run["rounds"]) \
            and run["rounds"] > CAP_ROUNDS:
        run["rounds"] = CAP_ROUNDS
    period = run.get("period", 1.0) if isinstance(run, dict) else 1.0
    period = period if _number(period) and period > 0 else 1.0
    net = out.get("network")
    n = net.get("nodes") if isinstance(net, dict) else None
    n = n if isinstance(n, int) and _number(n) and n > 0 else 1
    top = min(20.0, 2000.0 / n) / period
    for p in out.get("protocols") or []:
        if isinstance(p, dict):
            if _number(p.get("tau")) and p["tau"] > 3:
                p["tau"] = 3
            if p.get("name") in ("broadcast-gossip", "async-push-sum") and not (
                    _number(p.get("rate")) and p["rate"] <= top):
                if p.get("rate") is None or _number(p["rate"]):
                    p["rate"] = top
    return out


def _one_line(e: BaseException) -> str:
    text = str(e)
    assert text and "\n" not in text and "\r" not in text, f"not one line: {text!r}"
    assert len(text) < 800, f"too long ({len(text)} characters): {text[:200]}…"
    return text


def check_mutant(base: str, data: dict, muts: list, channel: str, folder: Path, out: Path) -> str:
    """Load the mutant through ``channel`` and run it capped; return "ran" or the error line.
    Any exception other than ``NetemuError`` propagates (the test fails)."""
    try:
        if channel == "dict":
            Scenario.from_dict(data, source="m.toml", base_dir=folder)
        elif channel == "toml":
            p = folder / f"m-{base}.toml"
            p.write_text(to_toml(data), encoding="utf-8")
            load_file(p)
        else:  # --set: the base file with each "set" mutation as an override (others applied in the file)
            p = folder / f"s-{base}.toml"
            file_data = copy.deepcopy(BASES[base])
            overrides = []
            for m in muts:
                op, path, key, value = m
                if op == "set" and all(isinstance(x, str) and BARE.match(x) for x in (*path, key)) or (
                        op == "set" and path[:1] == ("protocols",) and BARE.match(key)):
                    overrides.append(".".join(str(x) for x in (*path, key)) + "=" + toml_value(value))
                else:
                    apply(file_data, m)
            p.write_text(to_toml(file_data), encoding="utf-8")
            load_file(p, overrides=tuple(overrides))
        sc = Scenario.from_dict(_capped(data), source="m.toml", base_dir=folder)
        netemu.run(sc, out=out, max_memory=MAX_MEMORY)
        return "ran"
    except NetemuError as e:
        cause = e.__cause__
        # the runtime wraps a protocol handler's exception in a ProtocolError: that is a crash too
        assert cause is None or isinstance(cause, NetemuError), f"wrapped {type(cause).__name__}: {e}"
        return "error: " + _one_line(e)


SETTINGS = dict(deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture],
                phases=[Phase.explicit, Phase.generate, Phase.shrink])


@settings(max_examples=DEFAULT_EXAMPLES, **SETTINGS)
@given(mutants())
def test_mutants_run_or_refuse(files, tmp_path_factory, mutant):
    base, data, muts, channel = mutant
    check_mutant(base, data, muts, channel, files, tmp_path_factory.mktemp("o") / "out")


@pytest.mark.slow
@settings(max_examples=CAMPAIGN, **{**SETTINGS, "derandomize": False})
@given(mutants())
def test_campaign(files, tmp_path_factory, mutant):
    base, data, muts, channel = mutant
    check_mutant(base, data, muts, channel, files, tmp_path_factory.mktemp("o") / "out")


@st.composite
def toml_texts(draw):
    """A base as TOML text, then broken at the byte level: stray or control bytes, bytes that are not
    UTF-8, a NUL, a cut, a duplicated line, or a value nested deeper than tomllib can read."""
    base = draw(st.sampled_from(sorted(BASES)))
    lines = to_toml(BASES[base]).encode("utf-8").splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["byte", "nul", "latin1", "cut", "dup", "deep", "crlf", "bom"]))
    if how == "byte":
        line = lines[i]
        j = draw(st.integers(0, len(line)))
        lines[i] = line[:j] + bytes([draw(st.integers(0, 255))]) + line[j:]
    elif how == "nul":
        lines[i] = lines[i].replace(b"=", b"=\x00", 1)
    elif how == "latin1":
        lines[i] = lines[i].replace(b"\n", b" # caf\xe9\n")
    elif how == "cut":
        lines[i] = lines[i][:draw(st.integers(0, len(lines[i])))]
    elif how == "dup":
        lines.insert(i, lines[i])
    elif how == "deep":
        depth = draw(st.sampled_from([33, 100, 400, 1000, 5000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a = ", "}")]))
        lines.append(f"deep = {opener * depth}1{closer * depth}\n".encode())
    elif how == "crlf":
        lines = [ln.replace(b"\n", b"\r\n") for ln in lines]
    else:
        lines.insert(0, b"\xef\xbb\xbf")
    return base, b"".join(lines)


@settings(max_examples=60, **SETTINGS)
@given(toml_texts())
def test_broken_toml_files_are_refused_in_one_line(files, tmp_path_factory, case):
    base, text = case
    p = tmp_path_factory.mktemp("t") / "broken.toml"
    p.write_bytes(text)
    try:
        sc = load_file(p)
    except NetemuError as e:
        _one_line(e)
        return
    sc = Scenario.from_dict(_capped(sc.resolved()), source=str(p), base_dir=files)
    try:
        netemu.run(sc, out=p.parent / "out", max_memory=MAX_MEMORY)
    except NetemuError as e:
        _one_line(e)


@pytest.mark.slow
@settings(max_examples=600, **{**SETTINGS, "derandomize": False})
@given(toml_texts())
def test_broken_toml_campaign(files, tmp_path_factory, case):
    test_broken_toml_files_are_refused_in_one_line.hypothesis.inner_test(files, tmp_path_factory, case)


def test_every_schema_table_is_fuzzed():
    assert set(schema_tables()) == set(TABLES), "add the new table to TABLES (and to a base)"


@pytest.mark.parametrize("base", sorted(BASES))
def test_bases_run(base, files, tmp_path):
    assert check_mutant(base, BASES[base], [], "dict", files, tmp_path / "out") == "ran"


# ------------------------------------------------------------------ through the command line

SMALL = """
seed = 1
[network]
nodes = 6
topology = "random"
p = 0.3
[run]
rounds = 3
[output]
plot = false
[[protocols]]
name = "pulm"
"""
LOGISTIC = SMALL.replace("[output]", '[task]\nkind = "logistic"\nsamples = 10\nfeatures = 3\n'
                                    '[compute]\ndevice = "cpu"\n[output]').replace('"pulm"', '"dgd"')
DEEP = SMALL + "x = " + "[" * 3000 + "1" + "]" * 3000 + "\n"

CLI_CASES = [
    ("huge network and batch", LOGISTIC.replace("nodes = 6", "nodes = 1000000").replace(
        "samples = 10", "samples = 1000\nbatch = 1000"), (),
     ["this run needs about", "[network] nodes = 1000000", "--max-memory"]),
    ("huge dim", SMALL.replace("nodes = 6", "nodes = 100000") + "[task]\ndim = 120000\n", (),
     ["this run needs about", "[task] dim = 120000", "reduce [network] nodes"]),
    ("dim beyond its range", SMALL + "[task]\ndim = 100000000\n", (), ["[task] dim = 100000000", "within [1, 1000000]"]),
    ("area 1e308", SMALL.replace('"random"', '"radio"') + "[mobility]\narea = [1e308, 1e308]\n", (),
     ["[mobility] area = [1e+308, 1e+308]", "within [1, 1e7]"]),
    ("deep nesting", DEEP, (), ["nested too deeply"]),
    ("slowdown inf", LOGISTIC, ("--set", "compute.stragglers.slowdown=inf"),
     ["[compute.stragglers] slowdown = inf", "finite"]),
    ("sigma 1e3", LOGISTIC, ("--set", 'compute.step_time={dist = "lognormal", median = 0.1, sigma = 1e3}'),
     ["[compute.step_time] sigma = 1000.0", "within [0, 10]"]),
    ("nan", SMALL, ("--set", "network.loss=nan"), ["[network] loss = nan", "finite"]),
    ("huge int", SMALL, ("--set", "network.nodes=100000000000000000000000"), ["[network] nodes", "within"]),
    ("key with a newline", SMALL + '"a\\nb" = 1\n', (), ["'a\\nb': unknown key"]),
    ("deep --set", SMALL, ("--set", "network.loss=" + "[" * 2000 + "]" * 2000), ["--set", "nested too deeply"]),
    ("bad --max-memory", SMALL, ("--max-memory", "lots"), ["--max-memory 'lots'", "100G"]),
    ("tiny --max-memory", SMALL, ("--max-memory", "1K"), ["this run needs about", "is allowed by --max-memory"]),
    ("sweep too large", SMALL + '[sweep]\n"network.p" = [0.1, 0.2]\n"network.loss" = [' +
     ", ".join(str(i / 10000) for i in range(200)) + "]\n\n", ("--set", "sweep.x=[" + ",".join(["1"] * 60) + "]"),
     ["sweep makes 24000 scenarios", "more than 10000"]),
]


def _cli_error(path, tmp_path, args=()):
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(out), *args])
    text = r.stderr if hasattr(r, "stderr") else r.output
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    assert "Traceback" not in r.output
    assert not out.exists(), "nothing may be written for a refused scenario"
    return lines[0]


@pytest.mark.parametrize("label,text,args,expected", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_refuses_in_one_line(label, text, args, expected, tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    line = _cli_error(p, tmp_path, args)
    for e in expected:
        assert e in line, line


@pytest.mark.parametrize("data,expected", [
    (b"seed = 1\x00\n", "TOML syntax error"),
    (SMALL.encode().replace(b'"pulm"', b'"pulm" # caf\xe9'), "not a UTF-8 text file (byte"),
    (b"\xff\xfe" + SMALL.encode("utf-16-le"), "not a UTF-8 text file"),
])
def test_cli_refuses_bytes_that_are_not_toml(data, expected, tmp_path):
    p = tmp_path / "s.toml"
    p.write_bytes(data)
    assert expected in _cli_error(p, tmp_path)


def test_real_process_deep_nesting_no_traceback(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(DEEP)
    r = subprocess.run([sys.executable, "-m", "netemu", "run", str(p), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ the memory preflight


def test_preflight_names_the_keys_and_numbers():
    from netemu.scenario import preflight

    sc = Scenario.from_dict({"network": {"nodes": 100000, "topology": "latent", "graph": "ring"},
                             "task": {"dim": 120000}, "protocols": [{"name": "gossip"}]}, source="s.toml")
    est = preflight.estimate(sc)
    assert 400 * 2**30 < est.total < 600 * 2**30  # 100000 × 120000 × 8 B × 5 copies = 447 GiB
    assert est.parts[0].what == "protocol state (gossip)"
    with pytest.raises(NetemuError) as e:
        preflight.check(sc, max_memory="21G")
    msg = _one_line(e.value)
    assert msg.startswith("s.toml: this run needs about 4") and "but 21 GiB is allowed by --max-memory" in msg
    assert "[network] nodes = 100000 × [task] dim = 120000 × 8 B × 5 copies" in msg
    assert "reduce [network] nodes or [task] dim" in msg and "--max-memory 49" in msg
    assert preflight.check(sc, max_memory="1T").total == est.total


def test_preflight_pulm_memory_and_random_draw():
    from netemu.scenario import preflight

    sc = Scenario.from_dict({"network": {"nodes": 100000, "topology": "random", "p": 0.01},
                             "protocols": [{"name": "pulm"}]})
    parts = {p.what: p.bytes for p in preflight.estimate(sc).parts}
    assert parts["PULM memory (pulm)"] == 100000.0**2 * 8 * 5
    assert parts["the [n, n] random draw"] == 100000.0**2 * 10


def test_max_memory_of_netemu_run(tmp_path):
    data = {"network": {"nodes": 6}, "run": {"rounds": 2}, "output": {"plot": False},
            "protocols": [{"name": "gossip"}]}
    with pytest.raises(NetemuError, match="is allowed by --max-memory"):
        netemu.run(data, out=tmp_path / "a", max_memory="1K")
    assert not (tmp_path / "a").exists()
    with pytest.raises(NetemuError, match="max_memory= 'x'"):
        netemu.run(data, out=tmp_path / "b", max_memory="x")
    assert netemu.run(data, out=tmp_path / "c", max_memory=2**30).final().shape[0] == 1


def test_parse_size_and_available():
    from netemu.scenario.preflight import available, parse_size

    assert parse_size("100G") == 100 * 2**30 and parse_size("512M") == 512 * 2**20
    assert parse_size("1.5GiB") == int(1.5 * 2**30) and parse_size("2e9") == 2 * 10**9
    assert parse_size(4096) == 4096 and parse_size("8kb") == 8192
    for bad in ("", "G", "-1G", "1X", "nan", True, float("inf")):
        with pytest.raises(NetemuError):
            parse_size(bad)
    b, _ = available()
    assert b > 0


# ------------------------------------------------------------------ what the fuzzing found


def test_step_times_that_overflow_are_scenario_errors(tmp_path):
    """A component guard: values beyond the schema (here given directly) cannot make time infinite."""
    from netemu.compute.timing import Clock, StepTimes

    cfg = {"step_time": {"dist": "lognormal", "median": 1.0, "sigma": 1e3}}
    times = StepTimes(cfg, 4, 0, tmp_path)
    with pytest.raises(NetemuError, match=r"\[compute.step_time\] node \d+'s step 0 takes inf s"):
        times.draw(np.arange(4), np.zeros(4, dtype=np.int64))
    np.save(tmp_path / "s.npy", np.array([1.0, 1e-320, 1.0, 1.0]))
    cfg = {"step_time": {"dist": "fixed", "value": 1.0}, "speeds": {"dist": "file", "file": "s.npy"}}
    with pytest.raises(NetemuError, match="slowest speed"):
        Clock(cfg, 4, 0, tmp_path)


@pytest.mark.parametrize("base,table,key,value,expected", [
    ("logistic", "compute.stragglers", "slowdown", math.inf, "finite"),
    ("logistic", "compute.speeds", "sigma", 4.6e260, "within [0, 10]"),
    ("logistic", "compute", "threads", 29666153880, "within [0, 1024]"),
    ("logistic", "task", "features", 10**20, "within [1, 1000000]"),
    ("logistic", "network", "shadowing", 5.7e15, "within [0, 100]"),
    ("logistic", "run", "period", 6.8e16, "within [1e-6, 1e6]"),
    ("logistic", "mobility", "area", [1e308, 1e308], "within [1, 1e7]"),
    ("logistic", "mobility", "area", [3e-130, 2e-245], "within [1, 1e7]"),
    ("latent", "task", "x0", "adj.npz", "is not a .npy file"),
    ("digits", "task", "test_fraction", 1.4e-284, "within [0.01, 1]"),
])
def test_found_values_are_refused_at_the_boundary(base, table, key, value, expected):
    data = copy.deepcopy(BASES[base])
    node = data
    for part in table.split("."):
        node = node.setdefault(part, {})
    node[key] = value
    if table == "network":
        data["network"].update(topology="radio", reception="log-distance")
    with pytest.raises(NetemuError) as e:
        Scenario.from_dict(data, source="m.toml")
    assert expected in _one_line(e.value)


def test_odd_keys_and_values_are_shown_on_one_line():
    data = copy.deepcopy(BASES["consensus"])
    data["network"]["a\nb\rc"] = 1
    with pytest.raises(NetemuError) as e:
        Scenario.from_dict(data, source="m.toml")
    assert "[network] 'a\\nb\\rc': unknown key" in _one_line(e.value)
    data = copy.deepcopy(BASES["consensus"])
    data["network"]["nodes"] = list(range(10**5))
    with pytest.raises(NetemuError) as e:
        Scenario.from_dict(data, source="m.toml")
    assert "…" in _one_line(e.value)
    metrics = copy.deepcopy(BASES["consensus"])
    metrics["output"]["metrics"] = ["x\x96\n"] * 20
    with pytest.raises(NetemuError) as e:
        Scenario.from_dict(metrics, source="m.toml")
    assert '"x\\x96\\n"' in _one_line(e.value)
    data["network"]["nodes"] = deep(5000, True)
    with pytest.raises(NetemuError, match="nested more than 32 levels"):
        Scenario.from_dict(data, source="m.toml")
    with pytest.raises(NetemuError, match="nested more than 32 levels"):
        netemu.run(BASES["consensus"], set={"network.nodes": deep(5000, False)})


def test_sweep_labels_stay_inside_out(tmp_path):
    from netemu.scenario.load import load_sweep

    p = tmp_path / "s.toml"
    p.write_text(SMALL + '[sweep]\nname = ["../../escape", "a\\\\b"]\n')
    labels = [label for label, _ in load_sweep(p)]
    assert labels == ["name=.._.._escape", "name=a_b"]
