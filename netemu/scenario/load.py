"""Read a scenario (TOML), apply ``--set`` overrides, validate everything up front.

This is the input boundary: scenario files, ``--set`` overrides (and ``netemu.run``'s ``set=``,
through ``apply_override``), sweep tables, and the headers of the files a scenario names that
size the run (a schedule's ``.npz``) are parsed and checked here, before anything is allocated;
every failure is a ``ScenarioError`` of one line naming the file or key, the value and the fix.
A file larger than ``MAX_FILE_BYTES``, not UTF-8, holding a NUL or nesting values deeper than
``netemu.params.MAX_DEPTH`` levels is refused; so is a sweep of more than ``MAX_COMBINATIONS``.
``netemu.scenario.preflight`` then refuses a run that would not fit in memory.

A ``Scenario`` holds plain dicts with every default filled in; ``resolved()`` gives the dict that
``summary.json`` records, so a run can be repeated from its outputs alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from netemu import registry
from netemu.errors import NetemuError, ScenarioError
from netemu.scenario import schema as S
from netemu.params import MAX_DEPTH, check_depth, check_table, show, show_key

MAX_FILE_BYTES = 16 * 2**20  # a scenario is a short text file
MAX_COMBINATIONS = 10_000  # scenarios one sweep table may make


@dataclass
class Scenario:
    source: str
    base_dir: Path
    seed: int
    name: str | None
    network: dict
    mobility: dict
    run: dict
    task: dict
    output: dict
    protocols: list[dict]
    compute: dict = field(default_factory=dict)
    live: dict = field(default_factory=dict)
    max_memory: int | None = None  # bytes a run may use (--max-memory); None: what is available

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>", base_dir: Path | None = None) -> "Scenario":
        """A validated scenario from a dict of a scenario file's tables, e.g. ``{"network":
        {"nodes": 10}, "protocols": [{"name": "pulm"}]}``; defaults are filled in and a bad key or
        value raises ``ScenarioError`` naming it (``source`` names the dict in messages).
        ``base_dir``: where relative file paths start (default: the current folder). ``data`` is
        not modified. A ``sweep`` table is refused (a scenario is one combination): remove it, or
        give the dict to ``netemu.run`` with ``set={key: value}`` to pick one."""
        check_depth(data, source)
        if isinstance(data, dict) and data.get("sweep"):
            key = next(iter(data["sweep"])) if isinstance(data["sweep"], dict) else "network.loss"
            raise ScenarioError(f"{source}: sweep makes several scenarios and a Scenario is one; remove "
                                f"the sweep table, or pick a value with netemu.run(data, set={{{key!r}: …}})")
        return from_dict(copy.deepcopy(data), source=source, base_dir=base_dir)

    def resolved(self) -> dict:
        out = {"seed": self.seed, "name": self.name, "network": self.network, "mobility": self.mobility,
               "run": self.run, "task": self.task, "output": self.output, "protocols": self.protocols}
        if self.compute:
            out["compute"] = self.compute
        if self.live:
            out["live"] = self.live
        return copy.deepcopy(out)


def parse_override(text: str) -> tuple[list[str], object]:
    """``"network.loss=0.3"`` → ``(["network", "loss"], 0.3)``; values are TOML, else strings."""
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise ScenarioError(f"--set {show(text)}: expected dotted.key=value, e.g. --set network.loss=0.3")
    if "\n" in raw or "\r" in raw:
        raise ScenarioError(f"--set {show(text)}: the value spans several lines; give one line")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise ScenarioError(f"--set {show(text)}: the value is nested too deeply to read; a value "
                            f"needs a few levels at most") from None
    check_depth(value, f"--set {show(text)}")
    return [p.strip() for p in key.strip().split(".")], value


def apply_override(data: dict, path: list[str], value: object, text: str, where: str = "--set") -> None:
    """Set ``data[path…] = value``; errors name ``where`` (``--set``, ``set=`` of ``netemu.run``)
    and the override ``text``."""
    text = show(text)
    if len(path) > MAX_DEPTH:
        raise ScenarioError(f"{where} {text}: the key has {len(path)} parts; scenario keys have a few")
    check_depth(value, f"{where} {text}")
    node: object = data
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(f"{where} {text}: {show(part)} is not an index of the "
                                    f"{len(node)} entries of {show_key('.'.join(path[:i]))}; use 0..{len(node) - 1}")
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ScenarioError(f"{where} {text}: {show_key('.'.join(path[:i]))} is not a table")
    last = path[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    else:
        raise ScenarioError(f"{where} {text}: cannot set {show_key('.'.join(path))}")


def read_toml(path: Path) -> dict:
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file; check the path "
                            f"(shipped scenarios are in scenarios/)")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ScenarioError(f"{path}: {size} bytes is too large for a scenario (at most {MAX_FILE_BYTES}); "
                            f"a scenario is a short TOML text file: put data in the files it names")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{path}: TOML syntax error: {' '.join(str(e).split())}; fix the file at "
                            f"that line") from None
    except UnicodeDecodeError as e:
        line = path.read_bytes()[:e.start].count(b"\n") + 1
        raise ScenarioError(f"{path}: not a UTF-8 text file (byte {e.start}, line {line}); a scenario is "
                            f"a TOML text file: save it as UTF-8") from None
    except RecursionError:
        raise ScenarioError(f"{path}: values are nested too deeply to read (tables in tables or lists in "
                            f"lists); a scenario needs a few levels, so flatten them") from None
    check_depth(data, str(path))
    return data


def _read(path: Path, overrides: tuple[str, ...], seed: int | None) -> dict:
    data = read_toml(path)
    for text in overrides:
        keys, value = parse_override(text)
        apply_override(data, keys, value, text)
    if seed is not None:
        data["seed"] = seed
    return data


def load(path: str | Path, overrides: tuple[str, ...] = (), seed: int | None = None) -> Scenario:
    """One scenario; a file with a ``sweep`` table is refused (``load_sweep`` expands it)."""
    path = Path(path)
    data = _read(path, overrides, seed)
    if data.get("sweep"):
        raise ScenarioError(f"{path}: sweep runs several scenarios, which only 'netemu run' does; "
                            f"remove the sweep table and pick a value with --set")
    return from_dict(data, source=str(path), base_dir=path.resolve().parent)


def load_sweep(path: str | Path, overrides: tuple[str, ...] = (), seed: int | None = None
               ) -> list[tuple[str | None, Scenario]]:
    """The scenarios of a file: one, or one per combination of its ``sweep`` table.

    ``sweep = { "network.loss" = [0.1, 0.3], "run.rounds" = [100] }`` gives one scenario per
    combination, labelled ``network.loss=0.1,run.rounds=100``. All are validated before any runs.
    """
    import itertools

    path = Path(path)
    data = _read(path, overrides, seed)
    sweep = data.pop("sweep", None)
    base = dict(source=str(path), base_dir=path.resolve().parent)
    if not sweep:
        return [(None, from_dict(data, **base))]
    if not isinstance(sweep, dict) or any(not isinstance(v, list) or not v for v in sweep.values()):
        raise ScenarioError(f"{path}: sweep must map dotted keys to non-empty lists, "
                            f"e.g. sweep = {{ \"network.loss\" = [0.1, 0.3] }}")
    count = 1
    for values in sweep.values():
        count *= len(values)
    if count > MAX_COMBINATIONS:
        sizes = " × ".join(f"{show_key(k)} ({len(v)})" for k, v in sweep.items())
        raise ScenarioError(f"{path}: sweep makes {count} scenarios ({sizes}), more than {MAX_COMBINATIONS}; "
                            f"sweep fewer values, or split it into several files")
    out = []
    for combo in itertools.product(*sweep.values()):
        d = copy.deepcopy(data)
        parts = []
        for key, value in zip(sweep, combo):
            text = f"{key}={value}"
            apply_override(d, key.split("."), value, f"sweep {text}")
            parts.append(text)
        out.append((_label(",".join(parts), path), from_dict(d, **base)))
    return out


def _label(label: str, path: Path) -> str:
    """A sweep combination's label, which names its output folder: path separators and control
    characters become ``_`` (a value such as ``"../x"`` must not write outside ``--out``)."""
    safe = "".join("_" if c in "/\\" or ord(c) < 0x20 or ord(c) == 0x7F else c for c in label)
    if len(safe.encode("utf-8")) > 200:
        raise ScenarioError(f"{path}: sweep combination {show(label)} makes a folder name longer than "
                            f"200 bytes; sweep shorter values")
    return safe


def from_dict(data: dict, source: str = "<scenario>", base_dir: Path | None = None) -> Scenario:
    base_dir = base_dir or Path.cwd()
    check_depth(data, source)
    top = check_table(data, S.TOP, source, "")
    network = check_table(top["network"], S.NETWORK, source, "network")
    if network["loss_model"] is not None:
        network["loss_model"] = check_table(network["loss_model"], S.LOSS_MODEL, source, "network.loss_model")
    if network["delay"] is not None:
        network["delay"] = check_table(network["delay"], S.DELAY, source, "network.delay")
    if network["uplink"] is not None:
        network["uplink"] = check_table(network["uplink"], S.UPLINK, source, "network.uplink")
        if network["uplink"]["server"] >= network["nodes"]:
            raise ScenarioError(f"{source}: [network.uplink] server = {network['uplink']['server']} is not a "
                                f"node: ids are 0..{network['nodes'] - 1}; pick one of them")
    if network["mac"] is not None:
        network["mac"] = check_mac(check_table(network["mac"], S.MAC, source, "network.mac"), network, source)
    mobility = check_table(top["mobility"] or {}, S.MOBILITY, source, "mobility")
    run = check_table(top["run"] or {}, S.RUN, source, "run")
    task = check_table(top["task"] or {}, S.TASK, source, "task")
    output = check_table(top["output"] or {}, S.OUTPUT, source, "output")
    if not (isinstance(output["record"], bool) or output["record"] == "auto"):
        raise ScenarioError(f"{source}: [output] record = {show(output['record'])} must be true, false or "
                            f"\"auto\" (on up to 2000 nodes)")
    protocols = check_protocols(top["protocols"], source)
    if network["topology"] == "schedule" and not network["file"]:
        raise ScenarioError(f"{source}: [network] topology = \"schedule\" needs file = \"…npz\" "
                            f"(bool adjacency [K, n, n])")
    check_network(network, top["network"], source)
    if mobility["model"] == "trace" and not mobility["file"]:
        raise ScenarioError(f"{source}: [mobility] model = \"trace\" needs file = \"…\" (a movement trace)")
    task = check_task_keys(task, top["task"] or {}, source)
    if task.get("x0") and not str(task["x0"]).lower().endswith(".npy"):
        raise ScenarioError(f"{source}: [task] x0 = {show(task['x0'])} is not a .npy file; save the [n, dim] "
                            f"initial values with np.save(\"x0.npy\", x0)")
    if task["kind"] == "charlm":
        from netemu.tasks import corpus

        task["corpus"] = corpus.check(task["corpus"], base_dir, f"{source}: [task] corpus")
    check_task_protocols(task, protocols, source)
    check_output_metrics(output, task, source)
    top["compute"] = check_compute(top["compute"], task, source)
    check_timing(top["compute"], task, protocols, source)
    check_static_weights(network, protocols, source)
    for i, p in enumerate(protocols):  # checks against the network (FL: server, clients, buffer sizes)
        check = getattr(registry.get(p["name"]), "check_scenario", None)
        if check is not None:
            check(p, network, f"{source}: [protocols #{i + 1}]")
    return Scenario(source=source, base_dir=base_dir, seed=top["seed"], name=top["name"],
                    network=network, mobility=mobility, run=run, task=task, output=output,
                    protocols=protocols, compute=top["compute"] or {},
                    live=check_live(top["live"], network["nodes"], source) if top["live"] is not None else {})


def check_network(network: dict, given: dict, source: str) -> None:
    """Combinations of ``[network]`` keys that are wrong together (``given``: the table as written)."""
    r = network["range"]
    if isinstance(r, dict) and network["topology"] == "radio" and network["reception"] != "unit-disk":
        raise ScenarioError(f"{source}: [network] range = {{ dist = {r['dist']!r}, … }} (per-node ranges) "
                            f"needs reception = \"unit-disk\", not {network['reception']!r}; use "
                            f"reception = \"unit-disk\", or remove range (log-distance reach comes "
                            f"from tx_power and threshold)")
    if network["topology"] == "latent" and network["graph"] == "directed-random" and "p" in given:
        raise ScenarioError(f"{source}: [network] p = {given['p']} is the per-round probability of "
                            f"topology = \"random\"; graph = \"directed-random\" takes "
                            f"edge_prob = {given['p']} instead")


def check_mac(mac: dict, network: dict, source: str) -> dict:
    """``[network.mac]`` keys that are wrong together or with ``[network]``."""
    where = f"{source}: [network.mac]"
    if mac["model"] == "ideal":
        return mac
    radio = network["topology"] == "radio"
    r = network["range"]
    reach = (r["high"] if isinstance(r, dict) else r) if radio and network["reception"] == "unit-disk" else None
    for key in ("carrier_sense_range", "interference_range"):
        if mac[key] is not None and not radio:
            raise ScenarioError(f"{where} {key} = {mac[key]:g} needs positions, but [network] topology = "
                                f"{network['topology']!r}; use topology = \"radio\" or remove {key} (then "
                                f"the graph's links decide who senses and who interferes)")
    if mac["interference_range"] is not None and reach is not None and mac["interference_range"] < reach:
        raise ScenarioError(f"{where} interference_range = {mac['interference_range']:g} is smaller than the "
                            f"reception range ([network] range = {reach:g}); a signal that can be received "
                            f"also interferes: set interference_range >= {reach:g}")
    sinr = mac["reception"] == "sinr" or mac["sinr_threshold"] is not None
    if sinr:
        missing = [k for k in ("sinr_threshold", "tx_power", "reference_loss", "path_loss_exponent") if mac[k] is None]
        if missing:
            raise ScenarioError(f"{where} reception = \"sinr\" needs the path-loss parameters, but "
                                f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set; add e.g. "
                                f"sinr_threshold = 10, tx_power = 20, reference_loss = 40, path_loss_exponent = 3")
        if mac["reception"] != "sinr":
            raise ScenarioError(f"{where} sinr_threshold = {mac['sinr_threshold']:g} is a setting of "
                                f"reception = \"sinr\"; set reception = \"sinr\" or remove sinr_threshold")
        if not radio:
            raise ScenarioError(f"{where} reception = \"sinr\" needs distances, but [network] topology = "
                                f"{network['topology']!r}; use topology = \"radio\"")
    if mac["attempts"] and mac["model"] != "csma":
        raise ScenarioError(f"{where} attempts = {mac['attempts']} limits carrier sensing, a setting of "
                            f"model = \"csma\" (ALOHA never senses); remove it")
    bw = (network["delay"] or {}).get("bandwidth")
    if bw is not None:
        raise ScenarioError(f"{source}: [network.delay] bandwidth = {bw:g} and [network.mac] model = "
                            f"{mac['model']!r}: the medium's bitrate sets the transmission time; remove "
                            f"bandwidth (bitrate = {8 * bw:g} bits/s is the same rate)")
    return mac


def check_live(data: object, n: int, source: str) -> dict:
    """The ``[live]`` table (used by ``netemu live`` only) with defaults filled in."""
    live = check_table(data, S.LIVE, source, "live")
    ext = live["external"] = list(live["external"])
    bad = [i for i in ext if i >= n]
    if bad:
        raise ScenarioError(f"{source}: [live] external = {ext} names node {bad[0]}, but node ids are "
                            f"0..{n - 1} for [network] nodes = {n}; use ids below {n}")
    if len(set(ext)) != len(ext):
        dup = next(i for i in ext if ext.count(i) > 1)
        raise ScenarioError(f"{source}: [live] external = {ext} lists node {dup} twice; list each id once")
    if len(ext) >= n:
        raise ScenarioError(f"{source}: [live] external = {ext} leaves no local node of the {n}; "
                            f"keep at least one node local")
    return live


def check_protocols(entries: object, source: str) -> list[dict]:
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise ScenarioError(f"{source}: protocols must be one or more [[protocols]] tables, "
                            f"e.g. [[protocols]] name = \"pulm\"")
    out, labels = [], set()
    for i, entry in enumerate(entries):
        place = f"protocols #{i + 1}"
        if not isinstance(entry, dict) or "name" not in entry:
            raise ScenarioError(f"{source}: [[protocols]] #{i + 1} has no name; add name = \"pulm\" "
                                f"(run 'netemu protocols' to list them)")
        try:
            cls = registry.get(entry["name"], where=f"{source}: [{place}] name")
        except NetemuError:
            raise
        except TypeError:
            raise ScenarioError(f"{source}: [{place}] name = {entry['name']!r} must be a string") from None
        p = check_table(entry, {**S.PROTOCOL_COMMON, **cls.params}, source, place)
        p["label"] = p["label"] or p["name"]
        if p["label"] in labels:
            raise ScenarioError(f"{source}: [{place}] two protocols are labelled {p['label']!r}; "
                                f"give this one label = \"{p['label']}-2\" (or another name)")
        labels.add(p["label"])
        out.append(p)
    return out


OPTIMIZATION_TASKS = ("logistic", "quadratic", "digits", "charlm", "custom")
TASK_KEYS = {"consensus": ("dim", "x0"),
             "logistic": ("samples", "features", "sigma_h", "rho", "l2", "batch"),
             "quadratic": ("samples", "features", "sigma_h", "batch"),
             "digits": ("model", "hidden", "split", "test_fraction", "batch"),
             "charlm": ("corpus", "chars_per_client", "context", "d_model", "layers", "heads", "batch"),
             "custom": ()}


def check_output_metrics(output: dict, task: dict, source: str) -> None:
    """``[output] metrics`` names only metrics that the task records."""
    from netemu import metrics as M
    from netemu.params import fmt_strs
    from netemu.tasks import is_convex

    asked = output["metrics"]
    where = f"{source}: [output] metrics = {fmt_strs(asked)}"
    optimizing = task["kind"] in OPTIMIZATION_TASKS
    for name in asked:
        if name in M.CONVEX and not is_convex(task):
            now = (f"rho = {task['rho']:g}" if task["kind"] == "logistic"
                   else f"kind = {task['kind']!r}")
            fix = ("set [task] rho = 0" if task["kind"] == "logistic"
                   else "use [task] kind = \"quadratic\" or \"logistic\" with rho = 0")
            raise ScenarioError(f"{where}: {name} needs a convex task (quadratic, or logistic with "
                                f"rho = 0); [task] {now} is not convex; {fix}, or remove {name!r}")
        valid = M.CONSENSUS
        if optimizing:
            valid = tuple(m for m in M.OPTIMIZATION
                          if not (m == "accuracy" and task["kind"] in ("quadratic", "charlm"))
                          and not (m == "perplexity" and task["kind"] != "charlm"))
            valid += M.CONVEX if is_convex(task) else ()
        if name not in valid:
            raise ScenarioError(f"{where}: {name} is not recorded for [task] kind = {task['kind']!r} "
                                f"(it records {', '.join(valid)}); remove {name!r}")


def check_task_keys(task: dict, given: dict, source: str) -> dict:
    """Only the ``[task]`` keys of its ``kind`` are kept (and allowed)."""
    keep = ("kind",) + TASK_KEYS[task["kind"]]
    for key in given:
        if key not in keep:
            owners = [k for k, keys in TASK_KEYS.items() if key in keys]
            raise ScenarioError(f"{source}: [task] {key} is a key of kind = {' / '.join(map(repr, owners))}, "
                                f"not of kind = {task['kind']!r}; remove it or change kind")
    return {k: v for k, v in task.items() if k in keep}


def check_task_protocols(task: dict, protocols: list[dict], source: str) -> None:
    """Optimization protocols need an optimization task, and consensus protocols a consensus one."""
    optimizing = task["kind"] in OPTIMIZATION_TASKS
    for i, p in enumerate(protocols):
        needs = getattr(registry.get(p["name"]), "needs_compute", False)
        if needs and not optimizing:
            raise ScenarioError(f"{source}: [protocols #{i + 1}] name = {p['name']!r} optimizes, but "
                                f"[task] kind = {task['kind']!r}; set [task] kind = \"logistic\" or "
                                f"\"digits\"")
        if optimizing and not needs:
            raise ScenarioError(f"{source}: [protocols #{i + 1}] name = {p['name']!r} is a consensus "
                                f"protocol and cannot run [task] kind = {task['kind']!r}; use one of "
                                f"dgd, push-diging, pulm-dgd, local-sgd, easgd")


def check_static_weights(network: dict, protocols: list[dict], source: str) -> None:
    """``weights = "metropolis"`` needs a static undirected graph on which every message arrives."""
    for i, p in enumerate(protocols):
        if p.get("weights") != "metropolis":
            continue
        why = None
        if network["topology"] != "latent":
            why = f'[network] topology = "{network["topology"]}" is not a fixed latent graph'
        elif network["disconnect"] > 0:
            why = f"[network] disconnect = {network['disconnect']:g} takes links down each round"
        elif network["graph"] == "directed-random" or network["directed"]:
            why = "[network] graph is directed (graph = \"directed-random\", or directed = true with a file)"
        elif (network["loss_model"] or {}).get("kind") == "gilbert-elliott":
            why = "[network.loss_model] kind = \"gilbert-elliott\" loses messages"
        elif network["loss"] > 0:
            why = f"[network] loss = {network['loss']:g} loses messages"
        elif (network["delay"] or {}).get("jitter", "none") != "none" and network["delay"]["jitter_scale"] > 0:
            why = f"[network.delay] jitter = \"{network['delay']['jitter']}\" can delay messages past the round"
        if why:
            raise ScenarioError(f"{source}: [protocols #{i + 1}] weights = \"metropolis\" needs a static "
                                f"undirected graph without loss ([network] topology = \"latent\" with an "
                                f"undirected graph, disconnect = 0, loss = 0, no jitter), but {why}; fix that, "
                                f"or use weights = \"uniform\"")


def check_timing(compute: dict, task: dict, protocols: list[dict], source: str) -> None:
    """Round-only settings are refused for event protocols, and event-only ones for round
    protocols: a compute ``deadline`` and ``availability`` shape the rounds' compute phases; on a
    consensus task, ``[compute]`` only sets the clock rates of event protocols."""
    for i, p in enumerate(protocols):
        cls = registry.get(p["name"])
        place = f"{source}: [protocols #{i + 1}] name = {p['name']!r}"
        if not cls.round_based:
            for key in ("deadline", "availability"):
                if key == "availability" and getattr(cls, "uses_availability", False):
                    continue  # FL clients go offline
                if compute and compute.get(key) is not None:
                    raise ScenarioError(f"{place} is event-driven, but [compute] {key} is a setting of "
                                        f"round protocols (it shapes a round's compute phase); remove it")
        elif compute and task["kind"] not in OPTIMIZATION_TASKS:
            raise ScenarioError(f"{place} is round-based and computes nothing: on a consensus task "
                                f"[compute] only sets the clock rates of event protocols (e.g. "
                                f"broadcast-gossip); remove [compute] or use an event protocol")


def check_compute(data: object, task: dict, source: str) -> dict:
    """The ``[compute]`` table and its sub-tables with defaults filled in (optimization tasks, or
    when given); ``{}`` for a consensus scenario without one."""
    if data is None and task["kind"] not in OPTIMIZATION_TASKS:
        return {}
    c = check_table(data or {}, S.COMPUTE, source, "compute")
    if c["dtype"] is not None and task["kind"] not in OPTIMIZATION_TASKS:
        raise ScenarioError(f"{source}: [compute] dtype = {c['dtype']!r}: a {task['kind']} task keeps its "
                            f"values in float64 and computes nothing; remove dtype")
    if c["dtype"] is None:
        c["dtype"] = "float32" if task["kind"] in ("digits", "charlm") else "float64"
    subs = (("step_time", S.STEP_TIME), ("speeds", S.SPEEDS), ("stragglers", S.STRAGGLERS),
            ("availability", S.AVAILABILITY))
    for name, keys in subs:
        if c[name] is not None:
            c[name] = check_table(c[name], keys, source, f"compute.{name}")
    st = c["step_time"]
    need = {"fixed": "value", "lognormal": "median", "exponential": "mean"}
    if st is not None and st["dist"] in need and st[need[st["dist"]]] is None:
        key = need[st["dist"]]
        raise ScenarioError(f"{source}: [compute.step_time] dist = {st['dist']!r} needs {key}, "
                            f"e.g. {key} = 0.05 (seconds)")
    sp = c["speeds"]
    if sp is not None:
        if sp["dist"] == "file" and not sp["file"]:
            raise ScenarioError(f"{source}: [compute.speeds] dist = \"file\" needs file = \"…\" "
                                f"(one speed factor per node)")
        if sp["dist"] == "uniform" and sp["low"] > sp["high"]:
            raise ScenarioError(f"{source}: [compute.speeds] low = {sp['low']} > high = {sp['high']}; "
                                f"write low <= high")
    av = c["availability"]
    if av is not None and av["kind"] == "trace" and not av["file"]:
        raise ScenarioError(f"{source}: [compute.availability] kind = \"trace\" needs file = \"…csv\" "
                            f"(lines node,start,end)")
    return c
