"""ns-2 movement files, read exactly as ns-3's ``Ns2MobilityHelper`` reads them.

An ns-2 movement file has three kinds of line::

    $node_(0) set X_ 150.0                              # initial coordinate (X_, Y_ or Z_)
    $ns_ at 0.5 "$node_(0) setdest 170.0 110.0 50.4"    # from t = 0.5 head for (170, 110) at 50.4 m/s
    $ns_ at 9.0 "$node_(0) set Y_ 20.0"                 # scheduled set of one coordinate

ns-3 (``src/mobility/helper/ns2-mobility-helper.cc``) gives every node a constant-velocity model
and turns each line into simulator events, in *file order*, keeping a little book per node of
where it believes the node will be. This module does the same, then runs the events in time
order to get each node's breakpoints (:mod:`.ns3plan` does both for all nodes at once). The
rules, all taken from that source:

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
* Also skipped, as absurd (:mod:`.reading`): lines over 65,536 characters, times beyond
  :data:`MAX_TIME_S` (ns-3's clock counts int64 nanoseconds, up to 9.22e9 s), coordinates beyond
  ±1e12 m, speeds beyond 1e12 m/s, node ids beyond 2^31 - 1. A trip that would end after
  :data:`~.ns3plan.NS3_END_S` stops there (ns-3 cannot schedule it); one whose end is not even
  a finite number stops the node at once, where it is.

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

import numpy as np

from netemu.world.trajectory import Trajectories
from netemu.world.traces.ns3plan import (DRIFT_HORIZON_S, INIT, SET, SETDEST, TICKS_PER_S, Commands,
                                         plan, replay)
from netemu.world.traces.reading import (MAX_ABS, MAX_LINE, MAX_NODE_ID, Reporter, TraceInputError,
                                         TraceWarning, bad_id, check, chunks, floats, guarded,
                                         is_number, open_text, overlong, whole, within)

__all__ = ["CourseChange", "DRIFT_HORIZON_S", "MAX_TIME_S", "Ns2Replay", "TICKS_PER_S", "read_ns2",
           "replay_ns2", "write_ns2"]

MAX_TIME_S = 9e9  # latest command time: ns-3's clock (int64 nanoseconds) ends at 9.22e9 s
_AXES = {"X_": 0, "Y_": 1, "Z_": 2, "X": 0, "Y": 1, "Z": 2}
_DRIFT_WARNINGS = 10  # nodes named one by one in "still moving" warnings


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


# ---------------------------------------------------------------------------------------------
# One line, exactly (the reference for what is accepted and why a line is not)
# ---------------------------------------------------------------------------------------------

def _node_id(text: str) -> str | None:
    """What lies between the first ``(`` and the first ``)``, if both are there in that order."""
    a, b = text.find("("), text.find(")")
    return text[a + 1:b] if 0 <= a < b else None


def _id_problem(inner: str | None) -> str:
    return bad_id(inner or "", default="no node id like $node_(3)")


def _parse(raw: str, lineno: int) -> tuple | str | None:
    """A command ``(kind, line, node, at, axis, a, b, c)``, ``None`` for a blank or comment line,
    or why the line is malformed."""
    if len(raw) > MAX_LINE:
        return overlong(len(raw))
    text = raw.split("#", 1)[0].lstrip(" \t").rstrip(" \t;\r\n")
    if not text.strip():
        return None
    inner = _node_id(text)
    if inner is None or whole(inner) is None:
        return _id_problem(inner)
    tok = text.split()
    n = len(tok)
    if n in (7, 8) and tok[-1].endswith('"'):
        tok[-1] = tok[-1][:-1]
    elif n == 9 and tok[-1] == '"':
        tok.pop()
        n = 8
    if n == 4:
        node = whole(_node_id(tok[0]) or "")
        if node is None or tok[1] != "set" or tok[2] not in ("X_", "Y_", "Z_") or not is_number(tok[3]):
            return 'not "$node_(i) set X_|Y_|Z_ value"'
        value, why = check(tok[2], tok[3], "m")
        return why or (INIT, lineno, node, 0.0, _AXES[tok[2]], value, 0.0, 0.0)
    if n not in (7, 8) or tok[0] != "$ns_" or tok[1] != "at":
        return 'not "$node_(i) set …" nor "$ns_ at T \\"$node_(i) …\\""'
    at, why = check("time", tok[2], "s", low=0.0, high=MAX_TIME_S, not_a_number="time is not a number")
    if why:
        return why
    inner = _node_id(tok[3])
    node = whole(inner) if inner is not None else None
    if node is None:
        return _id_problem(inner)
    if n == 7 and tok[4] == "set" and tok[5] in ("X_", "Y_", "Z_"):
        value, why = check(tok[5], tok[6], "m", not_a_number="coordinate is not a number")
        return why or (SET, lineno, node, at, _AXES[tok[5]], value, 0.0, 0.0)
    if n == 8 and tok[4] == "setdest":
        if not all(map(is_number, tok[5:8])):
            return "setdest needs numbers: x y speed"
        x, why_x = check("x", tok[5], "m")
        y, why_y = check("y", tok[6], "m")
        v, why_v = check("speed", tok[7], "m/s", low=0.0)
        return why_x or why_y or why_v or (SETDEST, lineno, node, at, 0, x, y, v)
    if n == 8 and tok[4] == "set":
        return 'a space before the closing quote of a scheduled set (ns-3 skips such lines)'
    return 'not "set X_|Y_|Z_ v" nor "setdest x y speed"'


# ---------------------------------------------------------------------------------------------
# Many lines at once: regular expressions over a piece of the file, numbers through numpy
# ---------------------------------------------------------------------------------------------

_S = r"[ \t]{1,64}"
_N = r"([-+.0-9eE]{1,64})"
_I = r"([0-9]{1,10})"
_SETDEST = rf'\$ns_{_S}at{_S}{_N}{_S}"?\$node_\({_I}\){_S}setdest{_S}{_N}{_S}{_N}{_S}{_N}"?'
_SET = rf'\$ns_{_S}at{_S}{_N}{_S}"?\$node_\({_I}\){_S}set{_S}([XYZ])_{_S}{_N}"?'
_INIT = rf"\$node_\({_I}\){_S}set{_S}([XYZ])_{_S}{_N}"
_LEAD, _TRAIL = r"^[ \t]{0,64}", r"[ \t;]{0,64}$"
_ALL_SETDEST = re.compile(_LEAD + _SETDEST + _TRAIL, re.M)
_ANY = re.compile(_LEAD + rf"(?:{_SETDEST}|{_SET}|{_INIT}|(.*?))" + _TRAIL, re.M)


def _commands(kind: int, line, node, at, axis, a, b, c) -> Commands:
    k = len(line)
    full = (lambda v, dt: np.full(k, v, dtype=dt) if np.ndim(v) == 0 else np.asarray(v, dtype=dt))
    return Commands(full(kind, np.int8), full(line, np.int64), full(node, np.int64),
                    full(at, np.float64), full(axis, np.int8), full(a, np.float64),
                    full(b, np.float64), full(c, np.float64))


def _valid_setdest(v: np.ndarray) -> np.ndarray:  # columns at, id, x, y, speed
    return (within(v[:, 0], 0.0, MAX_TIME_S) & (v[:, 1] <= MAX_NODE_ID) & within(v[:, 2:4])
            & within(v[:, 4], 0.0, MAX_ABS))


def _piece(text: str, first: int, report: Reporter) -> list[Commands]:
    """The commands of a piece of whole lines whose first line is ``first``."""
    rows = _ALL_SETDEST.findall(text)
    n_lines = text.count("\n") + 1
    if len(rows) == n_lines:  # the common case: nothing but plain setdest lines
        v = floats(rows)
        if _valid_setdest(v).all():
            return [_commands(SETDEST, first + np.arange(n_lines), v[:, 1], v[:, 0], 0, v[:, 2],
                              v[:, 3], v[:, 4])]
    rows = _ANY.findall(text)  # one match per line, whatever it holds
    if len(rows) != n_lines:  # cannot happen; if it did, the exact parser reads every line
        rows = [("",) * 12 + (line or " ",) for line in text.split("\n")]
    out, slow = [], []
    g = list(zip(*rows))
    for lead, kind, cols, valid in (
            (0, SETDEST, (0, 1, 2, 3, 4), _valid_setdest),
            (5, SET, (5, 6, 8), lambda v: within(v[:, 0], 0.0, MAX_TIME_S) & (v[:, 1] <= MAX_NODE_ID)
             & within(v[:, 2])),
            (9, INIT, (9, 11), lambda v: (v[:, 0] <= MAX_NODE_ID) & within(v[:, 1]))):
        idx = np.flatnonzero(np.fromiter(map(bool, g[lead]), bool, len(rows)))
        if not len(idx):
            continue
        v = floats([[g[c][i] for c in cols] for i in idx.tolist()])
        ok = valid(v)
        slow.append(idx[~ok])
        idx, v = idx[ok], v[ok]
        line = first + idx
        if kind == SETDEST:
            out.append(_commands(SETDEST, line, v[:, 1], v[:, 0], 0, v[:, 2], v[:, 3], v[:, 4]))
        else:
            axis = [_AXES[g[lead + (2 if kind == SET else 1)][i]] for i in idx.tolist()]
            if kind == SET:
                out.append(_commands(SET, line, v[:, 1], v[:, 0], axis, v[:, 2], 0.0, 0.0))
            else:
                out.append(_commands(INIT, line, v[:, 0], 0.0, axis, v[:, 1], 0.0, 0.0))
    slow.append(np.flatnonzero(np.fromiter(map(bool, g[12]), bool, len(rows))))
    slow = np.sort(np.concatenate(slow)).tolist()
    if slow:
        lines = text.split("\n")
        got = []
        for i in slow:
            cmd = _parse(lines[i], first + i)
            if isinstance(cmd, str):
                report.bad(first + i, cmd, lines[i])
            elif cmd is not None:
                got.append(cmd)
        if got:
            kind, line, node, at, axis, a, b, c = zip(*got)
            out.append(_commands(np.array(kind), line, node, at, axis, a, b, c))
    return out


@guarded
def read_commands(path: Path | str, strict: bool = False) -> Commands:
    """Every command of an ns-2 movement file; bad lines reported as ``strict`` says."""
    report = Reporter(path, strict)
    parts: list[Commands] = []
    with open_text(Path(path)) as f:
        for first, text, long in chunks(f):
            if long:
                report.bad(first, overlong(long), text)
            else:
                parts += _piece(text, first, report)
    report.finish()
    return Commands.concat(parts)


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------

def _replay(path: Path, strict: bool, changes: bool) -> Ns2Replay:
    cmd = read_commands(path, strict)
    if not len(cmd.line):
        raise TraceInputError(f"{path}: no ns-2 movement commands found (expected lines like "
                              f'$node_(0) set X_ 1.0 or $ns_ at 1.0 "$node_(0) setdest 5 5 1")')
    ev = plan(cmd)
    rep = replay(ev)
    for node, last in rep.drifting[:_DRIFT_WARNINGS]:
        warnings.warn(f"{path}: node {node} is still moving after its last event at {last:g} s "
                      f"(ns-3 never stops it); followed for {DRIFT_HORIZON_S:g} s more",
                      TraceWarning, stacklevel=4)
    if len(rep.drifting) > _DRIFT_WARNINGS:
        warnings.warn(f"{path}: {len(rep.drifting) - _DRIFT_WARNINGS} more nodes still moving after "
                      f"their last event ({len(rep.drifting)} in all)", TraceWarning, stacklevel=4)
    initial = dict(zip(ev.ids.tolist(), map(tuple, ev.initial.tolist())))
    course = []
    if changes:  # ns-3's notifications: all events in (tick, scheduling order)
        order = np.lexsort((ev.sub, ev.line, ev.tick))
        ids = ev.ids[ev.node[order]].tolist()
        t = (ev.tick[order] / TICKS_PER_S).tolist()
        course = [CourseChange(a, b, tuple(p), tuple(v)) for a, b, p, v in
                  zip(t, ids, rep.after[order].tolist(), rep.velocity[order].tolist())]
    return Ns2Replay(initial, course, rep.trajectories)


def replay_ns2(path: Path | str, strict: bool = False) -> Ns2Replay:
    """Replay an ns-2 movement file as ns-3 would: initial positions, course changes, trajectories."""
    return _replay(Path(path), strict, changes=True)


def read_ns2(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of an ns-2 movement file, with ns-3's semantics (see the module doc)."""
    return _replay(Path(path), strict, changes=False).trajectories

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
