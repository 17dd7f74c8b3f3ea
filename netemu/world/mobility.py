"""Mobility models: where every node is at every time, as :class:`Trajectories`.

``build_mobility(cfg, n, horizon, rng, base_dir)`` reads a scenario's ``[mobility]`` table:

``static``
    Nodes never move: uniform in ``area`` (from ``rng``), or read from ``positions`` (a ``.npy``
    array ``[n, 2|3]`` or a ``.csv`` with a header naming columns ``x,y[,z]``).
``random-waypoint``
    Pick a uniform destination and a speed uniform in ``speed``, go there in a straight line,
    pause for a time uniform in ``pause``, repeat (BonnMotion's order: move first, then pause).
    Waypoints are drawn until ``horizon`` is passed. With ``stationary = true`` (the default)
    every node starts in the model's stationary distribution (perfect simulation: Navidi and
    Camp 2004; Le Boudec and Vojnović's random trip 2005; ns-3's
    ``SteadyStateRandomWaypointMobilityModel``), so that the spatial density and the mean speed
    do not drift with time (Yoon, Liu and Noble, "Random waypoint considered harmful", 2003):

    - paused with probability ``E[T] / (E[T] + E[L] E[1/V])`` (``E[L]``: the mean distance
      between two uniform points of the area, in closed form; ``E[1/V] = ln(v_max/v_min) /
      (v_max - v_min)``), at a uniform point, for a remaining pause drawn from the residual-life
      density ``∝ P(T > t)``;
    - otherwise on a leg ``(P1, P2)`` drawn with density ``∝ |P2 - P1|`` (rejection), at
      ``P1 + U (P2 - P1)``, heading to ``P2`` at speed ``v_min (v_max/v_min)^U'`` (the
      time-weighted density ``∝ 1/v``); on arrival it pauses as usual.

    ``stationary = false`` starts uniform in ``area``, at the start of a leg (the old behaviour,
    with the same draws), which is out of equilibrium: nodes drift towards the centre and slow
    down over the first legs.
``random-walk``
    Start uniform in ``area``; every ``interval`` seconds draw a direction uniform in [0, 2π) and
    a speed uniform in ``speed``; bounce off the area's edges like light off a mirror. The walk
    is drawn on the unfolded plane and folded back into the area, which gives each reflection as
    a breakpoint; the folded direction is a mirror image of the drawn one, and still uniform.
``trace``
    Replay ``file`` (``format``, ``strict``: see :mod:`netemu.world.traces`); its node count must
    equal ``n``; node ``k`` is the trace's ``k``-th smallest id.

All positions are in metres with z = 0 unless a file says otherwise. Relative paths are read
from ``base_dir`` (the scenario file's folder). Every random number comes from ``rng``, drawn in
rounds over all nodes, so the same generator state gives the same trajectories, and a longer
``horizon`` only appends movement: it never changes the movement drawn before.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from netemu.errors import ScenarioError, did_you_mean
from netemu.world.trajectory import Trajectories

MAX_WAYPOINTS = 20_000_000  # a guard against an area so small that legs take no time
MODELS = ("static", "random-waypoint", "random-walk", "trace")
DEFAULTS = {"model": "static", "area": [1000.0, 1000.0], "positions": None, "speed": [1.0, 5.0],
            "pause": [0.0, 10.0], "interval": 10.0, "file": None, "format": "auto", "strict": False,
            "stationary": True}


def build_mobility(cfg: dict, n: int, horizon: float, rng: np.random.Generator,
                   base_dir: Path) -> Trajectories:
    """Trajectories of ``n`` nodes over ``[0, horizon]`` for the ``[mobility]`` table ``cfg``."""
    c = {**DEFAULTS, **{k: v for k, v in (cfg or {}).items() if v is not None}}
    model = c["model"]
    if model not in MODELS:
        raise ScenarioError(f"[mobility] model = {model!r} is unknown{did_you_mean(str(model), MODELS)}")
    base_dir = Path(base_dir)
    if model == "trace":
        return _trace(c, n, base_dir)
    area = _pair(c, "area", positive=True)
    if model == "static":
        if c["positions"] is not None:
            pts = _positions_file(c["positions"], n, base_dir)
        else:
            pts = np.zeros((n, 3))
            pts[:, :2] = rng.uniform(size=(n, 2)) * area
        return Trajectories.from_flat(range(n), np.ones(n, dtype=np.int64), np.zeros(n), pts)  # one breakpoint each
    speed = _pair(c, "speed", ordered=True)
    if model == "random-waypoint":
        stationary = c["stationary"]
        if not isinstance(stationary, bool):
            raise ScenarioError(f"[mobility] stationary = {_show(stationary)} must be true or false")
        if speed[0] <= 0:
            why = ("a node drawn at speed 0 never arrives, and stationary = true needs "
                   "E[1/V] < inf" if stationary else "a node drawn at speed 0 never arrives")
            raise ScenarioError(f"[mobility] speed = {_show(c['speed'])}: random-waypoint needs a "
                                f"minimum speed > 0 ({why}); e.g. speed = [1, 5]")
        return random_waypoint(n, area, speed, _pair(c, "pause", ordered=True), horizon, rng,
                               stationary)
    interval = c["interval"]
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not interval > 0:
        raise ScenarioError(f"[mobility] interval = {_show(interval)} must be a number of seconds > 0")
    return random_walk(n, area, speed, float(interval), horizon, rng)


def random_waypoint(n: int, area: np.ndarray, speed: np.ndarray, pause: np.ndarray,
                    horizon: float, rng: np.random.Generator, stationary: bool = True) -> Trajectories:
    """Random waypoint (see the module doc): breakpoints at every arrival and end of pause."""
    if stationary:
        t, pos, rows = _stationary_start(n, area, speed, pause, rng)
    else:
        pos = rng.uniform(size=(n, 2)) * area
        t = np.zeros(n)
        rows = [(np.arange(n), t.copy(), pos.copy())]  # (node, time, position) batches
    legs = 0
    while True:
        active = np.flatnonzero(t < horizon)
        if active.size == 0:
            break
        legs += active.size
        if legs > MAX_WAYPOINTS:
            raise ScenarioError(f"[mobility] random-waypoint needs more than {MAX_WAYPOINTS} waypoints "
                                f"to reach the horizon ({horizon:g} s); use a larger area, lower "
                                f"speed, longer pauses or fewer rounds")
        dest = rng.uniform(size=(n, 2)) * area  # drawn for every node, so draws stay aligned
        v = rng.uniform(speed[0], speed[1], size=n)
        rest = rng.uniform(pause[0], pause[1], size=n)
        arrive = t[active] + np.hypot(*(dest[active] - pos[active]).T) / v[active]
        rows.append((active, arrive, dest[active]))
        paused = active[rest[active] > 0]
        t[active] = arrive
        t[paused] += rest[paused]
        rows.append((paused, t[paused], dest[paused]))
        pos[active] = dest[active]
    return _assemble(n, rows)


def mean_distance(area: np.ndarray) -> float:
    """E|P2 - P1| for two independent uniform points of the ``a × b`` rectangle ``area``.

    Ghosh's closed form (1951), the one ns-3 uses, with its two differences of large terms
    rewritten without cancellation (``a³/b² − d a²/b² = −a²/(a + d)``, ``d = √(a² + b²)``), so it
    stays accurate for very elongated areas; 0.52140543… a for an ``a × a`` square.
    """
    a, b = float(area[0]), float(area[1])
    d = math.hypot(a, b)
    return ((3 * d - a * a / (a + d) - b * b / (b + d)) / 15
            + (b * b / a * math.asinh(a / b) + a * a / b * math.asinh(b / a)) / 6)


def paused_probability(area: np.ndarray, speed: np.ndarray, pause: np.ndarray) -> float:
    """Stationary share of time a random-waypoint node is paused: E[T] / (E[T] + E[L] E[1/V])."""
    mean_pause = (pause[0] + pause[1]) / 2
    if mean_pause == 0:
        return 0.0
    v0, v1 = float(speed[0]), float(speed[1])
    inv_speed = math.log1p((v1 - v0) / v0) / (v1 - v0) if v1 > v0 else 1.0 / v0
    return mean_pause / (mean_pause + mean_distance(area) * inv_speed)


def _residual_pause(u: np.ndarray, pause: np.ndarray) -> np.ndarray:
    """Inverse CDF of the residual life of ``T ~ U[a, b]`` (density ``P(T > t) / E[T]``) at ``u``.

    The density is flat (``1/E[T]``) on ``[0, a]`` and falls linearly to 0 on ``[a, b]``.
    """
    a, b = float(pause[0]), float(pause[1])
    s = u * (a + b) / 2  # E[T] F(t): t on the flat part, then a + ((b-a)² - (b-t)²) / (2(b-a))
    tail = b - np.sqrt(np.maximum((b - a) ** 2 - 2 * (b - a) * (s - a), 0.0))
    return np.where(s < a, s, tail)


def _legs_by_length(m: int, area: np.ndarray, rng: np.random.Generator):
    """``m`` legs (P1, P2) with density ∝ |P2 − P1|: uniform pairs, each kept with probability
    |P2 − P1| / diagonal, redrawn in rounds over the rejected ones (about 3 rounds on average)."""
    p1, p2 = np.empty((m, 2)), np.empty((m, 2))
    diag = math.hypot(area[0], area[1])
    todo = np.arange(m)
    while todo.size:
        a = rng.uniform(size=(todo.size, 2)) * area
        b = rng.uniform(size=(todo.size, 2)) * area
        keep = rng.uniform(size=todo.size) * diag < np.hypot(*(b - a).T)
        p1[todo[keep]], p2[todo[keep]] = a[keep], b[keep]
        todo = todo[~keep]
    return p1, p2


def _stationary_start(n: int, area: np.ndarray, speed: np.ndarray, pause: np.ndarray,
                      rng: np.random.Generator):
    """Random waypoint's stationary state at t = 0 (see the module doc), up to the end of each
    node's first pause: returns (time of that end, position there, breakpoint batches)."""
    paused = rng.uniform(size=n) < paused_probability(area, speed, pause)
    still, moving = np.flatnonzero(paused), np.flatnonzero(~paused)
    spot = rng.uniform(size=(still.size, 2)) * area
    left = _residual_pause(rng.uniform(size=still.size), pause)
    p1, p2 = _legs_by_length(moving.size, area, rng)
    here = p1 + rng.uniform(size=moving.size)[:, None] * (p2 - p1)
    v = speed[0] * (speed[1] / speed[0]) ** rng.uniform(size=moving.size)
    rest = rng.uniform(pause[0], pause[1], size=moving.size)
    arrive = np.hypot(*(p2 - here).T) / v
    pos, t = np.empty((n, 2)), np.empty(n)
    pos[still], pos[moving] = spot, here
    rows = [(np.arange(n), np.zeros(n), pos.copy())]  # (node, time, position) batches
    rows.append((still[left > 0], left[left > 0], spot[left > 0]))
    rows.append((moving, arrive, p2))
    rows.append((moving[rest > 0], (arrive + rest)[rest > 0], p2[rest > 0]))
    pos[still], pos[moving] = spot, p2
    t[still], t[moving] = left, arrive + rest
    return t, pos, rows


def random_walk(n: int, area: np.ndarray, speed: np.ndarray, interval: float, horizon: float,
                rng: np.random.Generator) -> Trajectories:
    """Random walk with mirror reflection at the area's edges (see the module doc)."""
    start = rng.uniform(size=(n, 2)) * area
    steps = max(0, math.ceil(horizon / interval)) if horizon > 0 else 0
    vel = np.zeros((steps, n, 2))
    for k in range(steps):  # one round of draws per interval, over all nodes
        theta = rng.uniform(0.0, 2 * math.pi, size=n)
        v = rng.uniform(speed[0], speed[1], size=n)
        vel[k] = np.stack([v * np.cos(theta), v * np.sin(theta)], axis=1)
    tk = np.arange(steps + 1) * interval  # never accumulated
    unfolded = np.concatenate([start[None], start[None] + np.cumsum(vel * interval, axis=0)])
    times, points = [], []
    for i in range(n):
        ts, ps = _fold_walk(tk, unfolded[:, i], vel[:, i], area)
        times.append(ts)
        points.append(ps)
    return Trajectories(times, points, list(range(n)))


def _fold_walk(tk: np.ndarray, u: np.ndarray, v: np.ndarray, area: np.ndarray):
    """Breakpoints of one folded walk: interval ends plus every crossing of a multiple of W or H."""
    t_all, seg_all = [tk], [np.arange(len(tk))]  # interval ends start their own segment
    for a in range(2):
        if len(tk) < 2:
            break
        L, lo, hi = area[a], np.minimum(u[:-1, a], u[1:, a]), np.maximum(u[:-1, a], u[1:, a])
        first, last = np.floor(lo / L) + 1, np.ceil(hi / L) - 1  # multiples strictly inside
        count = np.maximum(0, last - first + 1).astype(np.int64)
        seg = np.repeat(np.arange(len(count)), count)
        m = np.repeat(first, count) + (np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count))
        t_all.append(tk[seg] + (m * L - u[seg, a]) / v[seg, a])
        seg_all.append(seg)
    t = np.concatenate(t_all)
    seg = np.concatenate(seg_all)
    order = np.argsort(t, kind="stable")
    t, seg = t[order], seg[order]
    step = np.minimum(seg, len(v) - 1) if len(v) else seg
    dt = t - tk[seg]
    w = u[seg] + (v[step] * dt[:, None] if len(v) else 0.0)
    period = 2 * area
    r = np.mod(w, period)
    folded = np.clip(np.where(r > area, period - r, r), 0.0, area)
    pts = np.zeros((len(t), 3))
    pts[:, :2] = folded
    return t, pts


def _assemble(n: int, rows: list) -> Trajectories:
    """Per-node breakpoints from batches of (node indices, times, xy positions)."""
    nodes = np.concatenate([r[0] for r in rows])
    t = np.concatenate([r[1] for r in rows])
    xy = np.concatenate([r[2] for r in rows])
    order = np.argsort(nodes, kind="stable")  # batches are in time order per node
    nodes, t, xy = nodes[order], t[order], xy[order]
    cuts = np.searchsorted(nodes, np.arange(n + 1))
    pts = np.zeros((len(t), 3))
    pts[:, :2] = xy
    return Trajectories([t[a:b] for a, b in zip(cuts, cuts[1:])],
                        [pts[a:b] for a, b in zip(cuts, cuts[1:])], list(range(n)))


def _show(v) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _pair(c: dict, key: str, positive: bool = False, ordered: bool = False) -> np.ndarray:
    v = c[key]
    if (not isinstance(v, (list, tuple)) or len(v) != 2
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x) for x in v)):
        raise ScenarioError(f"[mobility] {key} = {_show(v)} must be a list of two numbers, "
                            f"e.g. {key} = {_show(DEFAULTS[key])}")
    if positive and not all(x > 0 for x in v):
        raise ScenarioError(f"[mobility] {key} = {_show(v)}: both values must be > 0 (metres)")
    if not all(x >= 0 for x in v):
        raise ScenarioError(f"[mobility] {key} = {_show(v)}: values must be >= 0")
    if ordered and v[0] > v[1]:
        raise ScenarioError(f"[mobility] {key} = {_show(v)} has min > max; write [min, max]")
    if not all(math.isfinite(x) for x in v):
        raise ScenarioError(f"[mobility] {key} = {_show(v)}: values must be finite")
    return np.array(v, dtype=np.float64)


def _resolve(value, key: str, base_dir: Path) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise ScenarioError(f"[mobility] {key} = {_show(value)} must be a file path")
    path = Path(value)
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        raise ScenarioError(f"[mobility] {key} = {str(value)!r}: no such file ({path}); "
                            f"relative paths are read from the scenario's folder")
    return path


def _positions_file(value, n: int, base_dir: Path) -> np.ndarray:
    path = _resolve(value, "positions", base_dir)
    where = f"[mobility] positions = {str(value)!r}"
    if path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception as e:  # a truncated file, an object array, not .npy at all…
            raise ScenarioError(f"{where}: cannot read it as a .npy array ({e})") from None
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ScenarioError(f"{where} has dtype {arr.dtype}; save a float array "
                                f"(np.save(path, xy.astype(float)))")
    elif path.suffix.lower() == ".csv":
        arr = _read_xy_csv(path, where)
    else:
        raise ScenarioError(f"{where}: use a .npy array [n, 2|3] or a .csv with columns x,y[,z]")
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise ScenarioError(f"{where} has shape {list(arr.shape)}; expected [{n}, 2] or [{n}, 3]")
    if arr.shape[0] != n:
        raise ScenarioError(f"{where} has {arr.shape[0]} positions but [network] nodes = {n}; "
                            f"give one row per node")
    if not np.isfinite(arr).all():
        raise ScenarioError(f"{where} holds nan or inf values")
    out = np.zeros((n, 3))
    out[:, :arr.shape[1]] = arr
    return out


def _read_xy_csv(path: Path, where: str) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if r and any(c.strip() for c in r)]
    if not rows:
        raise ScenarioError(f"{where} is empty; expected a header x,y[,z] and one row per node")
    names = [c.strip().lower() for c in rows[0][1]]
    if "x" not in names or "y" not in names:
        raise ScenarioError(f"{where}: the first line must name the columns x,y[,z]; "
                            f"found {','.join(rows[0][1])!r}")
    cols = [names.index(c) for c in ("x", "y", "z") if c in names]
    out = []
    for lineno, r in rows[1:]:
        try:
            out.append([float(r[j]) for j in cols])
        except (ValueError, IndexError):
            raise ScenarioError(f"{where}: line {lineno} {','.join(r)!r} does not hold numbers "
                                f"in columns {','.join(names[j] for j in cols)}") from None
    return np.array(out, dtype=np.float64).reshape(-1, len(cols))


def _trace(c: dict, n: int, base_dir: Path) -> Trajectories:
    from netemu.world.traces import FORMATS, load_trace

    if c["file"] is None:
        raise ScenarioError('[mobility] model = "trace" needs file = "…" (a movement trace)')
    path = _resolve(c["file"], "file", base_dir)
    if c["format"] not in FORMATS:
        raise ScenarioError(f"[mobility] format = {_show(c['format'])} is unknown"
                            f"{did_you_mean(str(c['format']), FORMATS)}")
    traj = load_trace(path, c["format"], bool(c["strict"]))
    if traj.n != n:
        raise ScenarioError(f"trace {c['file']} has {traj.n} nodes but [network] nodes = {n}; "
                            f"set nodes = {traj.n} or use another trace")
    return traj
