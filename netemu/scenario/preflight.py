"""Memory preflight: estimate the peak memory of a run before anything is allocated, and refuse a
run that would not fit.

``estimate(sc)`` adds up what a run holds at its peak, from the scenario's keys alone (and the
headers of the ``.npy``/``.npz`` files it names, never their data):

- protocol state: ``nodes × P × bytes × copies`` of the largest protocol (``P``: ``[task] dim``,
  the model's parameters for optimization tasks; protocols keep a few ``[n, P]`` arrays: state,
  message, sums, temporaries), plus the ``[n, n]`` memory of PULM-style averaging (``pulm``,
  ``pulm-dgd``, ``local-sgd`` with ``averaging = "pulm"``) and Metropolis weights;
- one round's links: expected edges (radio: ``nodes ×`` the expected number of neighbours from the
  range and the area's density; ``random``: ``n² p``; latent graphs: their edge counts, networkx
  objects included) times the bytes a delivery costs, plus the ``[n, n]`` random draw of the
  ``random`` topology (and of ``directed-random``) and a schedule's ``[K, n, n]`` adjacency;
- the shared medium (``[network.mac]`` model ``aloha`` or ``csma``): its per-graph structures and a
  round's resolution, per pair of nodes within its largest range and per node;
- task data (``nodes × samples × features``, a few copies) and one batch of gradients;
- mobility over the run's horizon (random-waypoint legs, random-walk steps) and availability
  periods; the cached step times of the compute clock; every protocol's metric history;
- per-node bookkeeping, and the interpreter with its libraries (a fixed ``BASE_BYTES``).

The figures are deliberately round, each rounded up from a measurement: those of radio networks
(bytes per edge and per node, static and moving, and PULM's ``[n, n]`` copies) from
``benchmarks/scale.py``'s peak resident memory at 10³-10⁷ nodes, so that the estimate stays above
the measured peak, by about 1.2-1.35 times at large sizes (``tests/test_preflight_peak.py`` holds
it above a real 10⁵-node run); the others (copies, bytes per waypoint, networkx edges) on small
runs, within about a factor of two. They size a run, they do not account for it. ``check`` compares the
total with the memory available (``psutil`` when installed, else ``MemAvailable`` of
``/proc/meminfo``, else ``os.sysconf``; a cgroup limit lowers it), or with ``--max-memory``
(``max_memory=`` of ``netemu.run``), and raises ``ScenarioError`` naming the keys that drive the
estimate and the numbers. Host memory is compared even when the state lives on a GPU.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from netemu.errors import ScenarioError

GiB, MiB = 2**30, 2**20
# Where the radio figures come from: benchmarks/scale.py (static radio, unit disk, consensus, push-sum
# and gossip), peak RSS at 10⁶ nodes for a mean degree of 5, 10 and 20 (0.41, 0.58, 0.96 GB): about
# 41 B per edge and 150-180 B per node besides the edges, the protocol's state included; at 10⁷
# nodes (degree 10) 5.12 GB. Each constant is rounded up from what was measured, so that the
# estimate stays above the measured peak (about 1.2-1.35 times it at 10⁶-10⁷ nodes).
BASE_BYTES = 96 * MiB  # the interpreter with numpy and netemu (57 MB once a scenario is loaded) and the
#                        modules a run imports (scipy's KD-tree...): the measured line's intercept is 79 MB
EDGE_BYTES = 60  # one delivery of one round: receiver, sender, row, delay, loss draw, sort copies
RADIO_EDGE_BYTES = 48  # the same on a radio network: measured 35-41 B (int64 edge key sorted in place)
JITTER_EDGE_BYTES = 1600  # one delivery under continuous jitter: every arrival instant is its own batch
SLOTTED_EDGE_BYTES = 120  # one delivery under jitter rounded to [network.delay] resolution
NX_EDGE_BYTES = 200  # one directed edge of a networkx DiGraph (successor and predecessor dicts)
WAYPOINT_BYTES = 120  # one random-waypoint breakpoint (time, position, node), with its batch arrays
NODE_BYTES = 600  # per node: trajectories, speeds, counters, busy times, Python objects (not re-measured)
RADIO_NODE_BYTES = 200  # the same on a radio network: measured 150-180 B with the protocol's state
# moving radio nodes (random-waypoint, 10⁶ nodes, degree 5/10/20: 1.19, 1.58, 2.35 GB): about 83 B per
# edge (twice RADIO_EDGE_BYTES: the KD-tree's candidate pairs of every round besides the deliveries) and
# 810 B per node, of which these cover what the static figures and the legs do not (each round's
# positions, the KD-tree over them, its cached copy)
MOVING_NODE_BYTES = 600
# [network.mac] model = "aloha" / "csma": the medium's structures per graph (the sender rows of where each
# signal counts, those rows turned around per receiver with their packed sort keys, the carrier-sense rows
# padded to nodes × the largest degree) and one round's resolution arrays (keys, starts, ends, neighbours'
# times per pair). Measured as the peak RSS (VmHWM) of csma minus that of ideal in the same static radio
# run (push-sum, 3 rounds, 1 Mb/s, cw 15): 10⁵ nodes at a mean degree of 10 and 26.8, 182 and 399 MB more,
# a line of about 129 B per edge and 520 B per node; 4000 nodes (degree 25.9): 16.5 MB more; aloha less
# (343 MB more at 10⁵, degree 26.8); an interference or carrier-sense range of 1.5 times the reception range
# (degree 60 there): 712 and 695 MB more, less than the line at that degree. Rounded up from the line.
MAC_EDGE_BYTES = 140  # per pair of nodes within the medium's largest range (reception, interference, sensing)
MAC_NODE_BYTES = 600
ROUND_BYTES = 500  # one round of one protocol's metric history (a tuple and a dict of floats)
MAX_WAYPOINTS = 20_000_000  # netemu.world.mobility's guard: it stops there with its own error
# [n, P] arrays a protocol holds at its peak (a plugin not listed: DEFAULT_COPIES)
COPIES = {"gossip": 5, "pulm": 5, "push-sum": 6, "broadcast-gossip": 4, "async-push-sum": 5, "dgd": 7,
          "push-diging": 9, "pulm-dgd": 7, "local-sgd": 7, "easgd": 8}
DEFAULT_COPIES = 9
# [n, n] memories of PULM-style averaging: d, its pulled average, the sums, a message (scale.py measures
# 32 B × n², four float64 copies, at 3·10³-10⁴ nodes), and one more of margin for a round's temporaries
NN_COPIES = 5


@dataclass
class Part:
    """One item of an estimate: ``what`` (e.g. "protocol state"), ``bytes``, ``how`` (the keys and
    numbers that give it) and ``keys`` (the scenario keys that drive it, for the fix)."""

    what: str
    bytes: float
    how: str
    keys: tuple[str, ...] = ()


@dataclass
class Estimate:
    """``total`` bytes (``int(estimate)``) and its ``parts``, largest first."""

    total: int
    parts: list[Part] = field(default_factory=list)

    def __int__(self) -> int:
        return self.total

    def breakdown(self, limit: int = 3) -> str:
        return "; ".join(f"{p.what}: {p.how} = {size(p.bytes)}" for p in self.parts[:limit])


def size(b: float) -> str:
    """``96 GiB``, ``512 MiB``, ``3.5 KiB``: the unit that keeps the number readable."""
    for unit, scale in (("TiB", 2**40), ("GiB", GiB), ("MiB", MiB), ("KiB", 2**10)):
        if b >= scale:
            v = b / scale
            return f"{v:.0f} {unit}" if v >= 10 else f"{v:.1f} {unit}"
    return f"{b:.0f} B"


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*$")


def parse_size(text, where: str = "--max-memory") -> int:
    """``"100G"``, ``"512M"``, ``"1.5GiB"``, ``"2e9"`` (bytes) or a number of bytes; K, M, G, T are
    powers of 1024."""
    if isinstance(text, bool):
        m = None
    elif isinstance(text, (int, float)):
        m = _SIZE.match(repr(text)) if math.isfinite(text) else None
    else:
        m = _SIZE.match(str(text))
    if not m:
        shown = str(text)[:40]
        raise ScenarioError(f"{where} {shown!r}: expected a size such as 100G, 512M or 2e9 (bytes; K, M, G, "
                            f"T are powers of 1024)")
    value = float(m.group(1)) * {"": 1, "k": 2**10, "m": MiB, "g": GiB, "t": 2**40}[m.group(2).lower()]
    if not 1 <= value <= 2**60:
        raise ScenarioError(f"{where} {str(text)[:40]!r}: must be between 1 byte and 1 EiB")
    return int(value)


def available() -> tuple[int, str]:
    """Bytes of memory available to this process now, and where the figure comes from."""
    found: list[tuple[int, str]] = []
    try:
        import psutil

        found.append((int(psutil.virtual_memory().available), "available"))
    except Exception:  # noqa: BLE001 - not installed, or no figure on this system
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        found.append((int(line.split()[1]) * 1024, "available"))
                        break
        except (OSError, ValueError, IndexError):
            pass
    if not found:
        try:
            found.append((os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available"))
        except (ValueError, OSError, AttributeError):
            pass
    try:  # a container's limit (cgroup v2)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append((max(0, int(limit) - used), "left under this cgroup's memory.max"))
    except (OSError, ValueError):
        pass
    return min(found) if found else (2**62, "available")


# ------------------------------------------------------------------ the estimate


def _params(sc, task) -> tuple[int, int, str, tuple[str, ...]]:
    """(P, bytes per number, how P is written, its keys)."""
    t = sc.task
    kind = t["kind"]
    isz = 4 if (sc.compute or {}).get("dtype") == "float32" else 8
    if task is not None:
        return int(getattr(task, "dim", 1)), isz, f"the task's {int(getattr(task, 'dim', 1))} parameters", ()
    if kind == "consensus":
        dim = t["dim"]
        if t.get("x0"):
            shape = _npy_shape(sc.base_dir / t["x0"])
            if shape is not None and len(shape) in (1, 2):
                dim = shape[1] if len(shape) == 2 else 1
                return dim, 8, f"{dim} columns of [task] x0", ("[task] x0",)
        return dim, 8, f"[task] dim = {dim}", ("[task] dim",)
    if kind == "logistic":
        return t["features"] + 1, isz, f"([task] features = {t['features']} + 1)", ("[task] features",)
    if kind == "quadratic":
        return t["features"], isz, f"[task] features = {t['features']}", ("[task] features",)
    if kind == "digits":
        if t["model"] == "cnn":
            return 30_000, isz, "the CNN's about 30000 parameters", ()
        h = t["hidden"]
        return 75 * h + 10, isz, f"(75 × [task] hidden = {h} + 10) parameters", ("[task] hidden",)
    if kind == "charlm":
        from netemu.tasks.corpus import parameter_count

        P = parameter_count(t["context"], t["d_model"], t["layers"], t["heads"])
        return P, isz, f"charlm's {P} parameters", ("[task] d_model", "[task] layers")
    return 1, isz, "1", ()


def _npy_shape(path: Path):
    try:
        with open(path, "rb") as f:
            return _header_shape(f)
    except Exception:  # noqa: BLE001 - unreadable: the loader reports it with its own message
        return None


def _header_shape(f):
    """The shape in an open ``.npy`` stream's header (its data is not read), or None."""
    import numpy as np

    version = np.lib.format.read_magic(f)
    read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read is None:
        return None
    shape = read(f)[0]
    return tuple(int(x) for x in shape)


def _npz_shape(path: Path, member: str):
    try:
        with zipfile.ZipFile(path) as z, z.open(member + ".npy") as f:
            return _header_shape(f)
    except Exception:  # noqa: BLE001 - unreadable: ScheduleTopology reports it with its own message
        return None


def _state(sc, n: int, P: int, isz: int, p_how: str, p_keys) -> list[Part]:
    """The largest protocol's [n, P] arrays and [n, n] memories."""
    best: list[Part] = []
    best_bytes = -1.0
    for p in sc.protocols:
        name = p["name"]
        copies = COPIES.get(name, DEFAULT_COPIES)
        parts = [Part(f"protocol state ({p['label']})", float(n) * P * isz * copies,
                      f"[network] nodes = {n} × {p_how} × {isz} B × {copies} copies",
                      ("[network] nodes",) + tuple(p_keys))]
        pulm_memory = name in ("pulm", "pulm-dgd") or (name == "local-sgd" and p.get("averaging") == "pulm")
        if pulm_memory:
            parts.append(Part(f"PULM memory ({p['label']})", float(n) * n * 8 * NN_COPIES,
                              f"[network] nodes² = {n}² × 8 B × {NN_COPIES} copies", ("[network] nodes",)))
        if p.get("weights") == "metropolis":
            parts.append(Part(f"Metropolis weights ({p['label']})", float(n) * n * 8 * 2,
                              f"[network] nodes² = {n}² × 8 B × 2", ("[network] nodes",)))
        total = sum(x.bytes for x in parts)
        if total > best_bytes:
            best, best_bytes = parts, total
    return best


def _reach(net) -> tuple[float, str, str]:
    """(largest reach in metres, how it is written, its key)."""
    if net["reception"] == "log-distance":
        margin = net["tx_power"] - net["reference_loss"] - net["threshold"] + 5 * net["shadowing"]
        exponent = margin / (10 * net["path_loss_exponent"])
        reach = 10.0 ** min(exponent, 300.0)
        return reach, f"log-distance reach {reach:.3g} m", "[network] threshold"
    r = net["range"]
    if isinstance(r, dict):
        return float(r["high"]), f"[network] range.high = {r['high']:g} m", "[network] range"
    return float(r), f"[network] range = {r:g} m", "[network] range"


def _edge_bytes(net) -> tuple[int, tuple[str, ...]]:
    """Bytes of one delivery of one round, and the key that makes it so."""
    d = net.get("delay") or {}
    if d.get("jitter", "none") != "none" and d.get("jitter_scale", 0.0) > 0:
        if d.get("resolution", 0.0) > 0:
            return SLOTTED_EDGE_BYTES, ("[network.delay] resolution",)
        return JITTER_EDGE_BYTES, ("[network.delay] jitter",)
    return EDGE_BYTES, ()


def _links(sc, n: int) -> list[Part]:
    net, kind = sc.network, sc.network["topology"]
    parts: list[Part] = []
    eb, jitter = _edge_bytes(net)
    pairs = float(n) * max(n - 1, 0)
    if kind == "random":
        p = net["p"]
        parts.append(Part("random links", pairs * p * eb,
                          f"[network] nodes² = {n}² × p = {p:g} × {eb} B",
                          ("[network] nodes", "[network] p") + jitter))
        parts.append(Part("the [n, n] random draw", float(n) * n * 10,
                          f"[network] nodes² = {n}² × 10 B", ("[network] nodes",)))
    elif kind == "latent":
        g = net["graph"]
        if g == "ring":
            edges, how, keys = 2.0 * n, f"2 × [network] nodes = {n}", ("[network] nodes",)
        elif g in ("erdos-renyi", "directed-random"):
            q = net["edge_prob"]
            edges, how, keys = pairs * q, f"[network] nodes² = {n}² × edge_prob = {q:g}", ("[network] nodes", "[network] edge_prob")
            if g == "directed-random":
                parts.append(Part("the [n, n] random draw", float(n) * n * 10,
                                  f"[network] nodes² = {n}² × 10 B", ("[network] nodes",)))
        elif g == "random-geometric":
            r = net["radius"]
            share = min(1.0, math.pi * r * r)
            edges, how, keys = pairs * share, f"[network] nodes² = {n}² × π radius² = {share:.3g}", ("[network] nodes", "[network] radius")
        else:
            try:
                edges = (sc.base_dir / g).stat().st_size / 4.0
            except OSError:
                edges = 0.0
            how, keys = f"the {edges:.0f} lines of [network] graph", ("[network] graph",)
        parts.append(Part("latent graph", edges * (eb + NX_EDGE_BYTES),
                          f"{how} × {eb + NX_EDGE_BYTES} B", keys + jitter))
    elif kind == "radio":
        reach, how, key = _reach(net)
        w, h = sc.mobility["area"]
        share = min(1.0, math.pi * reach / w * reach / h) if reach < 1e150 else 1.0
        degree = max(n - 1, 0) * share
        if not jitter:
            eb = RADIO_EDGE_BYTES
        if sc.mobility["model"] != "static" and not jitter:
            eb *= 2  # moving nodes: a KD-tree and candidate pairs per round besides the deliveries
        parts.append(Part("radio links", float(n) * degree * eb,
                          f"[network] nodes = {n} × {degree:.3g} neighbours ({how} in [mobility] area = "
                          f"{w:g} × {h:g} m) × {eb} B", ("[network] nodes", key) + jitter))
        if sc.mobility["model"] != "static":
            parts.append(Part("moving positions", float(n) * MOVING_NODE_BYTES,
                              f"[network] nodes = {n} × {MOVING_NODE_BYTES} B ([mobility] model = "
                              f"{sc.mobility['model']})", ("[network] nodes", "[mobility] model")))
    elif kind == "schedule" and net.get("file"):
        shape = _npz_shape(sc.base_dir / net["file"], "adjacency")
        if shape is not None and len(shape) == 3:
            K = shape[0]
            parts.append(Part("schedule", float(K) * shape[1] * shape[2] * (1 + 16 * 0.5),
                              f"[network] file: {K} rounds × {shape[1]} × {shape[2]} × 9 B (adjacency, and edge "
                              f"lists if half dense)", ("[network] file",)))
    return parts


def _medium(sc, n: int) -> list[Part]:
    """The shared medium's per-graph structures (``[network.mac]`` model other than ideal)."""
    net = sc.network
    mac = net.get("mac") or {}
    if mac.get("model", "ideal") == "ideal":
        return []
    keys: tuple[str, ...] = ("[network] nodes", "[network.mac] model")
    if net["topology"] == "radio":
        reach, how, key = _reach(net)
        ranges = [(reach, how, key)] + [(mac[k], f"[network.mac] {k} = {mac[k]:g} m", f"[network.mac] {k}")
                                        for k in ("interference_range", "carrier_sense_range") if mac.get(k)]
        reach, how, key = max(ranges, key=lambda r: r[0])
        w, h = sc.mobility["area"]
        share = min(1.0, math.pi * reach / w * reach / h) if reach < 1e150 else 1.0
        degree, how = max(n - 1, 0) * share, f"{how} in [mobility] area = {w:g} × {h:g} m"
        keys += (key,)
    elif net["topology"] == "random":
        degree, how = max(n - 1, 0) * net["p"], f"[network] p = {net['p']:g}"
        keys += ("[network] p",)
    else:
        return []
    return [Part("radio medium", float(n) * (degree * MAC_EDGE_BYTES + MAC_NODE_BYTES),
                 f"[network] nodes = {n} × ({degree:.3g} neighbours ({how}) × {MAC_EDGE_BYTES} B + "
                 f"{MAC_NODE_BYTES} B) ([network.mac] model = {mac['model']!r})", keys)]


def _task(sc, n: int, P: int, isz: int, p_how: str) -> list[Part]:
    t = sc.task
    kind = t["kind"]
    if kind == "digits":
        b = t.get("batch")
        b = 32 if b is None else (b or 1438)  # 0: a node's whole share, at most the training set
        width = 74 + (t["hidden"] if t["model"] == "mlp" else 2000)
        return [Part("activations", float(n) * b * width * isz * 4,
                     f"[network] nodes = {n} × [task] batch = {b} × {width} units × {isz} B × 4",
                     ("[network] nodes", "[task] batch", "[task] hidden"))]
    if kind == "charlm":
        T, d, b = t["context"], t["d_model"], t.get("batch")
        b = 16 if b is None else (b or max(1, (t["chars_per_client"] - 1) // T))  # 0: all windows
        width = t["layers"] * (16 * d + 2 * t["heads"] * T) + 2 * 97
        return [Part("activations", float(n) * b * T * width * isz * 2,  # measured: 484 MB of 564 (50 nodes)
                     f"[network] nodes = {n} × [task] batch = {b} × context = {T} × {width} units × {isz} B × 2",
                     ("[network] nodes", "[task] batch", "[task] context", "[task] d_model"))]
    if kind not in ("logistic", "quadratic"):
        return []
    m, f = t["samples"], t["features"]
    cols = f + 1 if kind == "logistic" else f
    rows = m + max(1, m // 4) if kind == "logistic" else m
    copies = 2
    convex = kind == "quadratic" or t.get("rho", 0.01) == 0
    parts = [Part("task data", float(n) * rows * cols * 8 * copies,
                  f"[network] nodes = {n} × [task] samples = {m} × {cols} columns × 8 B × {copies:g} copies",
                  ("[network] nodes", "[task] samples", "[task] features"))]
    if convex:
        parts.append(Part("optimum solve", float(cols) * cols * 8 * 4,
                          f"[task] features² = {cols}² × 8 B × 4", ("[task] features",)))
    b = min(t.get("batch") or m, m)
    parts.append(Part("gradients", float(n) * b * cols * isz,
                      f"[network] nodes = {n} × [task] batch = {b} × {cols} × {isz} B",
                      ("[network] nodes", "[task] batch")))
    return parts


def _horizon(sc) -> float:
    """Simulated seconds the run may reach: its rounds, plus compute phases (as the runner does)."""
    rounds, period = sc.run["rounds"], sc.run["period"]
    horizon = (rounds + 1) * period
    c = sc.compute or {}
    st = c.get("step_time")
    if sc.task["kind"] != "consensus" and st and st["dist"] != "none":
        nominal = st.get({"fixed": "value", "lognormal": "median", "exponential": "mean"}[st["dist"]]) or 0.0
        sg = c.get("stragglers") or {}
        sp = c.get("speeds") or {"dist": "none"}
        slowest = {"uniform": sp.get("low", 1.0), "lognormal": math.exp(-6 * sp.get("sigma", 0.0))}.get(sp["dist"], 1.0)
        per_step = c.get("deadline") or 5.0 * nominal * max(sg.get("slowdown", 1.0), 1.0) / slowest
        steps = max(int(p.get("tau") or 1) for p in sc.protocols)
        horizon += rounds * steps * per_step
    return horizon


def _mobility(sc, n: int) -> list[Part]:
    if sc.network["topology"] != "radio":
        return []
    mob = sc.mobility
    model = mob["model"]
    horizon = _horizon(sc)
    if model == "random-waypoint":
        w, h = mob["area"]
        v0, v1 = mob["speed"]
        if v0 <= 0:
            return []  # refused by the mobility model itself
        inv_v = math.log(v1 / v0) / (v1 - v0) if v1 > v0 else 1.0 / v0
        leg = 0.52 * math.sqrt(w * h) * inv_v + (mob["pause"][0] + mob["pause"][1]) / 2
        legs = min(float(n) * (horizon / max(leg, 1e-300) + 2), MAX_WAYPOINTS + n)
        return [Part("random-waypoint legs", legs * WAYPOINT_BYTES,
                     f"[network] nodes = {n} × {legs / n:.3g} legs in {horizon:.3g} s ([run] rounds × period, "
                     f"[mobility] speed and area) × {WAYPOINT_BYTES} B",
                     ("[run] rounds", "[mobility] speed", "[network] nodes"))]
    if model == "random-walk":
        steps = math.ceil(horizon / mob["interval"]) + 1
        w, h = mob["area"]
        bounces = float(n) * mob["speed"][1] * horizon * (1 / w + 1 / h)  # reflections at the edges
        return [Part("random-walk steps", float(steps) * n * 16 * 4,
                     f"{steps} steps ({horizon:.3g} s / [mobility] interval = {mob['interval']:g} s) × "
                     f"[network] nodes = {n} × 16 B × 4", ("[mobility] interval", "[run] rounds", "[network] nodes")),
                Part("random-walk reflections", bounces * 80,
                     f"[network] nodes = {n} × [mobility] speed = {mob['speed'][1]:g} m/s × {horizon:.3g} s / "
                     f"[mobility] area = {w:g} × {h:g} m × 80 B", ("[mobility] area", "[mobility] speed", "[run] rounds"))]
    if model == "trace" and mob.get("file"):
        try:
            b = (sc.base_dir / mob["file"]).stat().st_size
        except OSError:
            return []
        return [Part("mobility trace", b * 20.0, f"[mobility] file of {size(b)} × 20", ("[mobility] file",))]
    return []


def _compute(sc, n: int) -> list[Part]:
    c = sc.compute or {}
    parts = []
    rounds = sc.run["rounds"]
    st = c.get("step_time")
    if sc.task["kind"] != "consensus" and st and st["dist"] != "none":
        steps = max(int(p.get("tau") or 1) for p in sc.protocols)
        parts.append(Part("step times", float(rounds) * steps * n * 8 * 2,
                          f"[run] rounds = {rounds} × {steps} steps × [network] nodes = {n} × 16 B",
                          ("[run] rounds", "[network] nodes")))
    av = c.get("availability")
    if av and av["kind"] == "periods":
        per_node = 2 * (2 * _horizon(sc) / (av["on"] + av["off"]) + 16)
        parts.append(Part("availability periods", float(n) * per_node * 8 * 3,
                          f"[network] nodes = {n} × {per_node:.3g} switches (run horizon / [compute.availability] "
                          f"on + off) × 24 B", ("[compute.availability] on", "[network] nodes")))
    return parts


def estimate(sc, task=None) -> Estimate:
    """The peak memory of running ``sc`` (see the module docstring), with its breakdown."""
    n = sc.network["nodes"]
    P, isz, p_how, p_keys = _params(sc, task)
    parts = _state(sc, n, P, isz, p_how, p_keys)
    parts += _links(sc, n)
    parts += _medium(sc, n)
    parts += _task(sc, n, P, isz, p_how)
    parts += _mobility(sc, n)
    parts += _compute(sc, n)
    rounds, k = sc.run["rounds"], len(sc.protocols)
    parts.append(Part("metric history", float(rounds + 1) * k * ROUND_BYTES,
                      f"[run] rounds = {rounds} × {k} protocols × {ROUND_BYTES} B", ("[run] rounds",)))
    nb = RADIO_NODE_BYTES if sc.network["topology"] == "radio" else NODE_BYTES
    parts.append(Part("per-node bookkeeping", float(n) * nb, f"[network] nodes = {n} × {nb} B",
                      ("[network] nodes",)))
    parts.append(Part("interpreter and libraries", float(BASE_BYTES), f"{size(BASE_BYTES)}", ()))
    parts.sort(key=lambda p: -p.bytes)
    total = sum(p.bytes for p in parts)
    return Estimate(int(min(total, 2.0**62)), parts)


def check(sc, task=None, max_memory: int | str | None = None) -> Estimate:
    """Refuse ``sc`` (``ScenarioError``) when its estimate exceeds ``max_memory`` (bytes or a size
    such as ``"100G"``), else ``sc.max_memory``, else the memory available now; return the
    estimate."""
    est = estimate(sc, task)
    limit = max_memory if max_memory is not None else getattr(sc, "max_memory", None)
    if limit is not None:
        limit, said = parse_size(limit), "is allowed by --max-memory"
    else:
        limit, said = available()
        said = "is available" if said == "available" else f"is {said}"
    if est.total <= limit:
        return est
    keys: list[str] = []
    for p in est.parts[:2]:
        keys += [k for k in p.keys if k not in keys]
    fix = " or ".join(keys[:3]) if keys else "the run's size"
    need = max(1, math.ceil(est.total * 1.1 / GiB))
    raise ScenarioError(f"{sc.source}: this run needs about {size(est.total)} ({est.breakdown()}) but "
                        f"{size(limit)} {said}; reduce {fix}, or pass --max-memory {need}G "
                        f"(max_memory=\"{need}G\" in netemu.run) to try anyway")
