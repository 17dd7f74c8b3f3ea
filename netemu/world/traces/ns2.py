"""ns-2 movement files, read exactly as ns-3's ``Ns2MobilityHelper`` reads them.

An ns-2 movement file has three kinds of line::

    $node_(0) set X_ 150.0                              # initial coordinate (X_, Y_ or Z_)
    $ns_ at 0.5 "$node_(0) setdest 170.0 110.0 50.4"    # from t = 0.5 head for (170, 110) at 50.4 m/s
    $ns_ at 9.0 "$node_(0) set Y_ 20.0"                 # scheduled set of one coordinate

ns-3 (``src/mobility/helper/ns2-mobility-helper.cc``) gives every node a constant-velocity model
and turns each line into simulator events, in *file order*, keeping a little book per node of
where it believes the node will be. This module does the same, then runs the events in time
order to get each node's breakpoints. The rules, all taken from that source:

* Everything from the first ``#`` is a comment; leading blanks and trailing blanks and ``;`` are
  trimmed; fields are split on whitespace. A trailing ``"`` is cut from the last field of a 7- or
  8-field line, and a lone ``"`` field closing a 9-field line is dropped; so ``"…setdest 2 2 1 "``
  works, while ``"…set X_ 2 "`` (space before the quote) leaves an empty field and ns-3 skips it.
* ``set X_/Y_/Z_`` lines count wherever they are in the file (ns-3 reads the file twice); the
  last one of a coordinate wins. A node never set starts at (0, 0, 0).
* ``setdest x y v`` at ``T``: if the node's previous movement would still be under way at ``T``,
  its stop is cancelled and the point it has reached is computed; from there the node moves at
  ``v`` towards ``(x, y)`` (z never changes) and stops on arrival. ``v == 0`` stops the node at
  ``T`` where it is (the destination is ignored); a destination equal to the current point
  schedules nothing.
* A scheduled ``set`` at ``T`` stops the node (ns-3's ``SetPosition`` zeroes the velocity) and
  puts it at a point *fixed when the file is read*: the coordinate given, the other two as the
  node's position was while reading, i.e. its initial position as changed by earlier scheduled
  sets. Reading the line also moves the node's *initial* position (ns-3 calls ``SetPosition``
  right away too): a file with ``$ns_ at 9 "$node_(0) set X_ 5"`` has node 0 at x = 5 from t = 0.
* Times are ns-3 ``Time`` values: rounded to the nanosecond, and events at the same nanosecond run
  in the order they were scheduled (file order).
* Skipped with a warning (an error with ``strict=True``), as ns-3 skips them: lines without a
  node id like ``$node_(3)`` (negative or fractional ids included), with a time that is not a
  number or is negative, with fewer/more fields, with non-numbers where numbers go.

Where ns-3 misreads a malformed line instead of skipping it, netemu skips it with a warning:
a negative ``setdest`` speed (ns-3 cancels the running movement's stop, so the node drifts on
forever; ns-3's own test suite expects the line to be ignored), an empty id ``$node_()``
(ns-3: node 0), ids like ``(1e2)`` (ns-3: node 1), and a non-numeric coordinate in a scheduled
``set`` (ns-3: 0). If ns-3's rules leave a node moving after its last event, the trajectory
keeps moving for :data:`DRIFT_HORIZON_S` seconds and a warning says so.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from netemu.errors import TraceError
from netemu.world.trajectory import Trajectories
from netemu.world.traces import Reporter, TraceWarning, number, open_text

TICKS_PER_S = 1e9  # ns-3's default time resolution: every event time is a whole nanosecond
DRIFT_HORIZON_S = 1e6  # how long a node that ns-3 never stops is followed
_AXES = {"X_": 0, "Y_": 1, "Z_": 2}
_ZERO = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class CourseChange:
    """One ns-3 ``CourseChange`` notification: the state right after an event ran."""

    time: float
    node: int
    position: tuple[float, float, float]
    velocity: tuple[float, float, float]


@dataclass
class Ns2Replay:
    """What replaying a file gives: positions before the run, every course change, trajectories."""

    initial: dict[int, tuple[float, float, float]]
    changes: list[CourseChange]
    trajectories: Trajectories


@dataclass(frozen=True)
class _Cmd:
    kind: str  # "init" | "set" | "setdest"
    lineno: int
    node: int
    at: float = 0.0
    axis: int = 0
    value: float = 0.0
    dest: tuple[float, float] = (0.0, 0.0)
    speed: float = 0.0


@dataclass
class _Event:
    tick: int
    seq: int
    node: int
    kind: str  # "vel" | "pos"
    vec: tuple[float, float, float]
    alive: bool = True


@dataclass
class _Book:
    """ns-3's ``DestinationPoint``: what the helper believes about a node's last movement."""

    start: tuple = _ZERO
    speed: tuple = _ZERO
    final: tuple = _ZERO
    stop: _Event | None = None
    start_time: float = 0.0
    arrival: float = 0.0


def _node_id(text: str) -> int | None:
    """The id between the first ``(`` and the first ``)``, if it is a plain whole number."""
    a, b = text.find("("), text.find(")")
    if a < 0 or b < a:
        return None
    inner = text[a + 1:b]
    return int(inner) if re.fullmatch(r"\+?\d+", inner) else None


def _parse(raw: str, lineno: int) -> _Cmd | str | None:
    """A command, ``None`` for a blank or comment line, or why the line is malformed."""
    text = raw.split("#", 1)[0].lstrip(" \t").rstrip(" \t;\r\n")
    if not text.strip():
        return None
    if _node_id(text) is None:
        return "no node id like $node_(3)"
    tok = text.split()
    n = len(tok)
    if n in (7, 8) and tok[-1].endswith('"'):
        tok[-1] = tok[-1][:-1]
    elif n == 9 and tok[-1] == '"':
        tok.pop()
        n = 8
    if n == 4:
        node, value = _node_id(tok[0]), number(tok[3])
        if node is None or tok[1] != "set" or tok[2] not in _AXES or value is None:
            return 'not "$node_(i) set X_|Y_|Z_ value"'
        return _Cmd("init", lineno, node, axis=_AXES[tok[2]], value=value)
    if n not in (7, 8) or tok[0] != "$ns_" or tok[1] != "at":
        return 'not "$node_(i) set …" nor "$ns_ at T \\"$node_(i) …\\""'
    at = number(tok[2])
    if at is None or not math.isfinite(at * TICKS_PER_S):
        return "time is not a number"
    if at < 0:
        return "time is negative"
    node = _node_id(tok[3])
    if node is None:
        return "no node id like $node_(3)"
    if n == 7 and tok[4] == "set" and tok[5] in _AXES:
        value = number(tok[6])
        if value is None:
            return "coordinate is not a number"
        return _Cmd("set", lineno, node, at=at, axis=_AXES[tok[5]], value=value)
    if n == 8 and tok[4] == "setdest":
        x, y, v = (number(t) for t in tok[5:8])
        if x is None or y is None or v is None:
            return "setdest needs numbers: x y speed"
        if v < 0:
            return "speed is negative"
        return _Cmd("setdest", lineno, node, at=at, dest=(x, y), speed=v)
    if n == 8 and tok[4] == "set":
        return 'a space before the closing quote of a scheduled set (ns-3 skips such lines)'
    return 'not "set X_|Y_|Z_ v" nor "setdest x y speed"'


def _tick(seconds: float) -> int:
    return math.floor(seconds * TICKS_PER_S + 0.5)


class _Schedule:
    """Turns commands into events exactly as ``Ns2MobilityHelper::ConfigNodesMovements`` does."""

    def __init__(self) -> None:
        self.config: dict[int, list[float]] = {}  # the model's position while the file is read
        self.books: dict[int, _Book] = {}
        self.events: list[_Event] = []

    def _at(self, at: float, node: int, kind: str, vec: tuple) -> _Event:
        ev = _Event(_tick(at), len(self.events), node, kind, vec)
        self.events.append(ev)
        return ev

    def init(self, c: _Cmd) -> None:  # pass 1: SetInitialPosition
        pos = self.config.setdefault(c.node, [0.0, 0.0, 0.0])
        pos[c.axis] = c.value
        self.books[c.node] = _Book(final=tuple(pos))

    def set(self, c: _Cmd) -> None:  # SetSchedPosition, then the helper's book-keeping
        pos = self.config.setdefault(c.node, [0.0, 0.0, 0.0])
        pos[c.axis] = c.value
        book = self.books.setdefault(c.node, _Book())
        self._at(c.at, c.node, "pos", tuple(pos))
        book.final = tuple(pos)
        if book.arrival > c.at and book.stop is not None:
            book.stop.alive = False
        book.arrival = book.start_time = c.at

    def setdest(self, c: _Cmd) -> None:
        self.config.setdefault(c.node, [0.0, 0.0, 0.0])
        book = self.books.setdefault(c.node, _Book())
        if book.arrival > c.at:  # "Did not reach a destination!": cut the movement short
            dt = c.at - book.start_time
            book.final = (book.start[0] + book.speed[0] * dt, book.start[1] + book.speed[1] * dt, 0.0)
            if book.stop is not None:
                book.stop.alive = False
        self.books[c.node] = self._movement(c, book.final)

    def _movement(self, c: _Cmd, last: tuple) -> _Book:  # SetMovement
        new = _Book(start=last, final=last, start_time=c.at, arrival=c.at)
        if c.speed == 0:
            new.stop = self._at(c.at, c.node, "vel", _ZERO)
            return new
        (x, y), (fx, fy, fz) = c.dest, last
        time = math.sqrt((x - fx) ** 2 + (y - fy) ** 2) / c.speed
        if time == 0:
            return new
        if not math.isfinite(c.at + time):  # so slow it never arrives: ns-3 cannot say; stay put
            new.stop = self._at(c.at, c.node, "vel", _ZERO)
            return new
        vx, vy = (x - fx) / time, (y - fy) / time
        new.speed = (vx, vy, 0.0)
        self._at(c.at, c.node, "vel", (vx, vy, 0.0))
        new.stop = self._at(c.at + time, c.node, "vel", _ZERO)
        new.final = (fx + vx * time, fy + vy * time, fz)
        new.arrival = c.at + time
        return new


def _commands(path: Path, strict: bool) -> list[_Cmd]:
    report = Reporter(path, strict)
    cmds = []
    with open_text(path) as f:
        for lineno, raw in enumerate(f, 1):
            got = _parse(raw, lineno)
            if isinstance(got, str):
                report.bad(lineno, got, raw)
            elif got is not None:
                cmds.append(got)
    report.finish()
    return cmds


def replay_ns2(path: Path | str, strict: bool = False) -> Ns2Replay:
    """Replay an ns-2 movement file as ns-3 would: initial positions, course changes, trajectories."""
    path = Path(path)
    cmds = _commands(path, strict)
    sched = _Schedule()
    for c in cmds:  # pass 1: initial positions, wherever they are in the file
        if c.kind == "init":
            sched.init(c)
    for c in cmds:  # pass 2: everything else, in file order
        if c.kind == "set":
            sched.set(c)
        elif c.kind == "setdest":
            sched.setdest(c)
    if not sched.config:
        raise TraceError(f"{path}: no ns-2 movement commands found (expected lines like "
                         f'$node_(0) set X_ 1.0 or $ns_ at 1.0 "$node_(0) setdest 5 5 1")')
    return _run(path, sched)


def _run(path: Path, sched: _Schedule) -> Ns2Replay:
    """Run the live events in (tick, scheduling order) like ns-3's simulator, integrating motion."""
    initial = {k: tuple(p) for k, p in sorted(sched.config.items())}
    state = {k: (p, _ZERO, 0) for k, p in initial.items()}  # position, velocity, tick of last update
    bps: dict[int, tuple[list, list]] = {k: ([0.0], [p]) for k, p in initial.items()}
    changes = []
    for ev in sorted((e for e in sched.events if e.alive), key=lambda e: (e.tick, e.seq)):
        (x, y, z), vel, last = state[ev.node]
        t = ev.tick / TICKS_PER_S
        dt = (ev.tick - last) / TICKS_PER_S  # ConstantVelocityHelper::Update
        pos = (x + vel[0] * dt, y + vel[1] * dt, z + vel[2] * dt)
        ts, ps = bps[ev.node]
        ts.append(t)
        ps.append(pos)
        if ev.kind == "pos":  # SetPosition: a jump, and the velocity is zeroed
            pos, vel = ev.vec, _ZERO
            ts.append(t)
            ps.append(pos)
        else:
            vel = ev.vec
        state[ev.node] = (pos, vel, ev.tick)
        changes.append(CourseChange(t, ev.node, pos, vel))
    for k, ((x, y, z), vel, last) in state.items():
        if vel != _ZERO:
            warnings.warn(f"{path}: node {k} is still moving after its last event at "
                          f"{last / TICKS_PER_S:g} s (ns-3 never stops it); followed for "
                          f"{DRIFT_HORIZON_S:g} s more", TraceWarning, stacklevel=3)
            d = DRIFT_HORIZON_S
            bps[k][0].append(last / TICKS_PER_S + d)
            bps[k][1].append((x + vel[0] * d, y + vel[1] * d, z + vel[2] * d))
    ids = list(initial)
    traj = Trajectories([bps[k][0] for k in ids], [bps[k][1] for k in ids], ids)
    return Ns2Replay(initial, changes, traj)


def read_ns2(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of an ns-2 movement file, with ns-3's semantics (see the module doc)."""
    return replay_ns2(path, strict).trajectories


def _num(v: float) -> str:
    return repr(float(v))


def write_ns2(traj: Trajectories, path: Path | str) -> None:
    """Write ``traj`` as an ns-2 movement file that reads back (here or in ns-3) to the same motion.

    Each node gets ``set X_/Y_/Z_`` for its first breakpoint, then one ``setdest`` per moving
    segment, issued at the segment's start with speed = length / duration; pauses need no line,
    since a node stops on arrival. ns-2 cannot express a jump (two breakpoints at one time, apart)
    or a change of z along a segment: those raise ``ValueError``. Numbers are written with
    ``repr``, so nothing is lost but ns-3's rounding of times to the nanosecond.
    """
    out = [f"# ns-2 movement trace: {traj.n} nodes, written by netemu (netemu mobility generate)"]
    for k, node in enumerate(traj.ids):
        ts, ps = traj.times[k], traj.points[k]
        for axis, name in enumerate(("X_", "Y_", "Z_")):
            out.append(f"$node_({node}) set {name} {_num(ps[0][axis])}")
        for j in range(len(ts) - 1):
            (x0, y0, z0), (x1, y1, z1) = ps[j], ps[j + 1]
            if z1 != z0:
                raise ValueError(f"node {node} changes z at t = {ts[j]}: ns-2 setdest moves in x, y only")
            if x1 == x0 and y1 == y0:
                continue
            dt = ts[j + 1] - ts[j]
            if dt <= 0:
                raise ValueError(f"node {node} jumps at t = {ts[j]}: ns-2 setdest cannot express a jump")
            speed = math.hypot(x1 - x0, y1 - y0) / dt
            out.append(f'$ns_ at {_num(ts[j])} "$node_({node}) setdest {_num(x1)} {_num(y1)} {_num(speed)}"')
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")
