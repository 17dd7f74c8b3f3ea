"""Trace readers at scale and at the hostile-input boundary.

* The chunked, vectorized ns-2 reader equals the previous one-command-at-a-time implementation
  (kept below as ``reference_replay``) on random traces, bit for bit, whichever of its paths
  (numpy steps over nodes, or the plain loop for the last few nodes) plans a node, and however
  the file is cut into pieces.
* The fast regular-expression paths of the ns-2 and ONE readers accept exactly the lines that
  the exact per-line parsers accept, with the same values.
* Overlong lines and absurd numbers are bad lines named by ``file:line``: a warning, or with
  ``strict=True`` a :class:`~netemu.errors.ScenarioError` naming the value and the fix.
* Fuzzing: every mutant of an ns-2, ONE or CSV trace loads or raises ``ScenarioError``.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netemu.errors import ScenarioError, TraceError
from netemu.world.traces import (MAX_LINE, TraceWarning, load_trace, read_bonnmotion, read_csv_trace,
                                 read_ns2, read_one, replay_ns2)
from netemu.world.traces import bonnmotion, ns2, ns3plan, one, reading
from netemu.world.traces.reading import Reporter

# ---------------------------------------------------------------------------------------------
# The previous implementation's planning, one command and one event at a time (the reader as
# it was before it was vectorized). One change: the trip length is sqrt(dx*dx + dy*dy), as
# compiled ns-3 computes it (GCC turns std::pow(dx, 2) into dx*dx); the previous reader's
# dx ** 2 called libm's pow, one ulp off for about one dx in a thousand.
# ---------------------------------------------------------------------------------------------

_ZERO = (0.0, 0.0, 0.0)


@dataclass
class _Event:
    tick: int
    seq: int
    node: int
    kind: str
    vec: tuple
    alive: bool = True


@dataclass
class _Book:
    start: tuple = _ZERO
    speed: tuple = _ZERO
    final: tuple = _ZERO
    stop: _Event | None = None
    start_time: float = 0.0
    arrival: float = 0.0


class _Schedule:
    def __init__(self):
        self.config, self.books, self.events = {}, {}, []

    def _at(self, at, node, kind, vec):
        ev = _Event(math.floor(at * 1e9 + 0.5), len(self.events), node, kind, vec)
        self.events.append(ev)
        return ev

    def init(self, node, axis, value):
        pos = self.config.setdefault(node, [0.0, 0.0, 0.0])
        pos[axis] = value
        self.books[node] = _Book(final=tuple(pos))

    def set(self, node, at, axis, value):
        pos = self.config.setdefault(node, [0.0, 0.0, 0.0])
        pos[axis] = value
        book = self.books.setdefault(node, _Book())
        self._at(at, node, "pos", tuple(pos))
        book.final = tuple(pos)
        if book.arrival > at and book.stop is not None:
            book.stop.alive = False
        book.arrival = book.start_time = at

    def setdest(self, node, at, x, y, speed):
        self.config.setdefault(node, [0.0, 0.0, 0.0])
        book = self.books.setdefault(node, _Book())
        if book.arrival > at:
            dt = at - book.start_time
            book.final = (book.start[0] + book.speed[0] * dt, book.start[1] + book.speed[1] * dt, 0.0)
            if book.stop is not None:
                book.stop.alive = False
        last = book.final
        new = _Book(start=last, final=last, start_time=at, arrival=at)
        self.books[node] = new
        if speed == 0:
            new.stop = self._at(at, node, "vel", _ZERO)
            return
        fx, fy, fz = last
        time = math.sqrt((x - fx) * (x - fx) + (y - fy) * (y - fy)) / speed
        if time == 0:
            return
        if not math.isfinite(at + time):
            new.stop = self._at(at, node, "vel", _ZERO)
            return
        vx, vy = (x - fx) / time, (y - fy) / time
        new.speed = (vx, vy, 0.0)
        self._at(at, node, "vel", (vx, vy, 0.0))
        new.stop = self._at(at + time, node, "vel", _ZERO)
        new.final = (fx + vx * time, fy + vy * time, fz)
        new.arrival = at + time


def reference_replay(commands):
    """``(initial, changes, breakpoints)`` from commands ``(kind, line, node, at, axis, a, b, c)``."""
    sched = _Schedule()
    for k, _, node, _, axis, a, _, _ in commands:
        if k == ns3plan.INIT:
            sched.init(node, axis, a)
    for k, _, node, at, axis, a, b, c in commands:
        if k == ns3plan.SET:
            sched.set(node, at, axis, a)
        elif k == ns3plan.SETDEST:
            sched.setdest(node, at, a, b, c)
    initial = {k: tuple(p) for k, p in sorted(sched.config.items())}
    state = {k: (p, _ZERO, 0) for k, p in initial.items()}
    bps = {k: ([0.0], [p]) for k, p in initial.items()}
    changes = []
    for ev in sorted((e for e in sched.events if e.alive), key=lambda e: (e.tick, e.seq)):
        (x, y, z), vel, last = state[ev.node]
        t = ev.tick / 1e9
        dt = (ev.tick - last) / 1e9
        pos = (x + vel[0] * dt, y + vel[1] * dt, z + vel[2] * dt)
        bps[ev.node][0].append(t)
        bps[ev.node][1].append(pos)
        if ev.kind == "pos":
            pos, vel = ev.vec, _ZERO
            bps[ev.node][0].append(t)
            bps[ev.node][1].append(pos)
        else:
            vel = ev.vec
        state[ev.node] = (pos, vel, ev.tick)
        changes.append((t, ev.node, pos, vel))
    for k, ((x, y, z), vel, last) in state.items():
        if vel != _ZERO:
            bps[k][0].append(last / 1e9 + 1e6)
            bps[k][1].append((x + vel[0] * 1e6, y + vel[1] * 1e6, z + vel[2] * 1e6))
    return initial, changes, bps


def _exact_commands(path):
    """Every line through the exact per-line parser, in file order."""
    out = []
    for i, raw in enumerate(Path(path).read_text().split("\n"), 1):
        got = ns2._parse(raw, i)
        if isinstance(got, tuple):
            out.append(got)
    return out


# ---------------------------------------------------------------------------------------------
# Random ns-2 traces
# ---------------------------------------------------------------------------------------------

def random_ns2(rng, nodes=12, lines=300, sane=True):
    """An ns-2 trace mixing everything ns-3's rules care about, in a random file order."""
    out = []
    ids = rng.choice(1000, size=nodes, replace=False)
    where = {}
    for _ in range(lines):
        node = int(rng.choice(ids))
        r = rng.random()
        t = round(float(rng.uniform(0, 50)), int(rng.integers(0, 4)))  # repeats on purpose
        if r < 0.12:
            out.append(f"$node_({node}) set {rng.choice(['X_', 'Y_', 'Z_'])} {rng.uniform(-50, 250)!r}")
        elif r < 0.2:
            out.append(f'$ns_ at {t} "$node_({node}) set {rng.choice(["X_", "Y_", "Z_"])} '
                       f'{rng.uniform(0, 200):.3f}"')
        elif r < 0.25:
            out.append(f'$ns_ at {t} "$node_({node}) setdest {rng.uniform(0, 200):.2f} 7 0"')  # speed 0
        elif r < 0.3 and node in where:
            x, y = where[node]  # a destination the node may already be at
            out.append(f'$ns_ at {t} "$node_({node}) setdest {x} {y} 3"')
        elif r < 0.33:
            out.append(rng.choice(["# a comment", "", "   ", f"$node_({node}) set X_ oops",
                                   f'$ns_ at {t} "$node_({node}) setdest 1 2"',
                                   f'  $ns_ at {t}\t"$node_({node})  setdest 5 5 1 " ;;',
                                   f'$ns_ at {t} "$node_({node}) setdest 1 2 3" # trailing comment']))
        else:
            x, y = (round(float(v), int(rng.integers(0, 8))) for v in rng.uniform(0, 200, 2))
            where[node] = (x, y)
            v = float(rng.choice([rng.uniform(0.5, 30), 1e-3, 1e3, 5e-324]))
            out.append(f'$ns_ at {t} "$node_({node}) setdest {x} {y} {v!r}"')
    return "\n".join(out) + "\n"


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(np.asarray(x, float), np.asarray(y, float))
                                    for x, y in zip(a, b))


def _check_against_reference(path):
    initial, changes, bps = reference_replay(_exact_commands(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        got = replay_ns2(path)
    assert got.initial == initial
    assert [(c.time, c.node, c.position, c.velocity) for c in got.changes] == changes
    traj = got.trajectories
    assert traj.ids == sorted(bps)
    assert _same(traj.times, [bps[k][0] for k in traj.ids])
    assert _same(traj.points, [bps[k][1] for k in traj.ids])


@pytest.mark.parametrize("scalar_below", [0, 4, 10**9])  # numpy steps only, mixed, plain loop only
@pytest.mark.parametrize("seed", range(6))
def test_vectorized_reader_equals_the_previous_reader(tmp_path, monkeypatch, seed, scalar_below):
    rng = np.random.default_rng(seed)
    path = tmp_path / "r.tcl"
    path.write_text(random_ns2(rng, nodes=int(rng.integers(1, 40)), lines=int(rng.integers(1, 600))))
    monkeypatch.setattr(ns3plan, "SCALAR_BELOW", scalar_below)
    monkeypatch.setattr(reading, "CHUNK_CHARS", int(rng.integers(64, 4096)))  # many pieces
    _check_against_reference(path)


def test_real_files_equal_the_previous_reader(tmp_path):
    for name in ("default.ns_movements", "bonnmotion.ns_movements"):
        path = Path(__file__).resolve().parents[2] / "shared" / "traces" / "ns3" / name
        if path.is_file():
            _check_against_reference(path)
    _check_against_reference(Path(__file__).resolve().parents[1] / "traces" / "swarm_rwp.ns_movements")


def test_one_long_node_and_many_short_ones(tmp_path, monkeypatch):
    # the plain loop takes over for the long node; segments of very different lengths
    rng = np.random.default_rng(9)
    lines = [f'$ns_ at {i * 0.5} "$node_(0) setdest {rng.uniform(0, 99):.3f} 5 {rng.uniform(1, 9):.2f}"'
             for i in range(3000)]
    lines += [f'$ns_ at 1 "$node_({k}) setdest 10 10 1"' for k in range(1, 200)]
    lines += ['$ns_ at 700 "$node_(0) set X_ 3"', '$ns_ at 2 "$node_(5) set Y_ 1"']
    path = tmp_path / "long.tcl"
    path.write_text("\n".join(lines) + "\n")
    _check_against_reference(path)


# ---------------------------------------------------------------------------------------------
# Fast paths accept exactly what the exact parsers accept
# ---------------------------------------------------------------------------------------------

_ALPHABET = list("0123456789.eE+- \t\";#()$_XYZ,") + ["\x0c", "\u0661", "setdest", "set", "inf", "1e999",
                                                       "9" * 12, "\u00a0", "(", ")"]


def _mutate(line, edits):
    for pos, op, piece in edits:
        i = pos % (len(line) + 1)
        if op == 0:
            line = line[:i] + piece + line[i:]
        elif op == 1:
            line = line[:i] + line[i + 1:]
        else:
            line = line[:i] + piece + line[i + 1:]
    return line


_NS2_LINES = ['$ns_ at 1.5 "$node_(3) setdest 10.25 -7 2.5"', "$node_(12) set Y_ 4.5",
              '$ns_ at 0 "$node_(0) set Z_ 1e3"', '$ns_ at 2 $node_(7) setdest 1 2 0']
_EDITS = st.lists(st.tuples(st.integers(0, 80), st.integers(0, 2), st.sampled_from(_ALPHABET)),
                  min_size=0, max_size=4)


@settings(max_examples=300, deadline=None, database=None)
@given(base=st.sampled_from(_NS2_LINES), edits=_EDITS)
def test_ns2_fast_path_agrees_with_exact_parser(base, edits):
    line = _mutate(base, edits).replace("\n", " ")
    exact = ns2._parse(line, 7)
    report = Reporter("f", strict=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = ns2._piece(line, 7, report)
    cmd = ns3plan.Commands.concat(parts)
    got = [tuple(x) for x in zip(*(getattr(cmd, k).tolist() for k in
                                   ("kind", "line", "node", "at", "axis", "a", "b", "c")))]
    if isinstance(exact, tuple):
        assert got == [exact] and not caught
    else:
        assert got == [] and len(caught) == (exact is not None)


_ONE_LINES = ["12.5 3 100.25 -4", "0 0 0 0", "  7 12 1e2 3.5  "]


@settings(max_examples=200, deadline=None, database=None)
@given(base=st.sampled_from(_ONE_LINES), edits=_EDITS)
def test_one_fast_path_agrees_with_exact_parser(tmp_path_factory, base, edits):
    line = _mutate(base, edits).replace("\n", " ")
    path = tmp_path_factory.mktemp("one") / "t.txt"
    path.write_text(f"0 100 0 100 0 100\n{line}\n{line}\n")  # the second line takes the fast path
    exact = one._sample(line)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        if isinstance(exact, tuple):
            traj = read_one(path)
            t, node, x, y = exact
            assert traj.ids == [node] and np.array_equal(traj.times[0], [t, t])
            assert np.array_equal(traj.points[0], [[x, y, 0.0]] * 2)
        else:
            with pytest.raises(TraceError, match="no node positions"):
                read_one(path)


# ---------------------------------------------------------------------------------------------
# Overlong lines and absurd numbers: named by file:line, warned about or (strict) an error
# ---------------------------------------------------------------------------------------------

def _warned(fn, path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(path)
    return result, [str(w.message) for w in caught if issubclass(w.category, TraceWarning)]


def _strict_error(fn, path):
    with pytest.raises(ScenarioError) as info:
        fn(path, strict=True)
    assert isinstance(info.value, TraceError)
    return str(info.value)


HUGE = "1" * (MAX_LINE + 10)

ABSURD = {
    "ns2": ("t.tcl", read_ns2, "$node_(0) set X_ 1\n$node_(0) set Y_ 2\n", [
        ('$ns_ at 1 "$node_(0) setdest 1e308 0 1"', "x = 1e308 is beyond ±1e+12 m"),
        ('$ns_ at 1 "$node_(0) setdest 1 -2e12 1"', "y = -2e12 is beyond ±1e+12 m"),
        ('$ns_ at 1 "$node_(0) setdest 1 1 1e999"', "speed = 1e999 is beyond 1e+12 m/s"),
        ('$ns_ at 1e10 "$node_(0) setdest 1 1 1"', "time = 1e10 is beyond 9e+09 s"),
        ('$ns_ at -0.5 "$node_(0) setdest 1 1 1"', "time is negative (-0.5)"),
        ('$ns_ at 1 "$node_(0) setdest 1 1 nan"', "setdest needs numbers"),
        ('$ns_ at 1 "$node_(0) setdest 1 1 inf"', "setdest needs numbers"),
        ('$ns_ at 1 "$node_(99999999999) setdest 1 1 1"', "node id 99999999999 is beyond 2147483647"),
        ('$ns_ at 1 "$node_(0) set X_ 1e300"', "X_ = 1e300 is beyond"),
        ("$node_(0) set Z_ -1e13", "Z_ = -1e13 is beyond"),
        ('$ns_ at 1 "$node_(0) setdest 1 1 1" #' + HUGE, "line of {n:,} characters is over the 65,536"),
        (HUGE * 3, "line of {n:,} characters is over the 65,536"),
    ]),
    "one": ("t.one", read_one, "0 100 0 100 0 100\n0 0 1 1\n", [
        ("1 0 1e308 1", "x = 1e308 is beyond ±1e+12 m"),
        ("-1 0 1 1", "time is negative (-1)"),
        ("1e13 0 1 1", "time = 1e13 is beyond 1e+12 s"),
        ("1 0 1 1e999", "y = 1e999 is beyond"),
        ("1 0 inf 1", "time, x and y must be numbers"),
        ("1 12345678901 1 1", "node id 12345678901 is beyond 2147483647"),
        ("1 \u00b2 1 1", "node id must be a whole number"),
        ("1 0 1 " + HUGE, "line of {n:,} characters is over the 65,536"),
        (HUGE * 3, "line of {n:,} characters is over the 65,536"),
    ]),
    "csv": ("t.csv", read_csv_trace, "time,node,x,y\n0,0,1,1\n", [
        ("1,0,1e308,1", "x = 1e308 is beyond ±1e+12 m"),
        ("-1,0,1,1", "time is negative (-1)"),
        ("1,0,1,nan", "time, x, y (and z) must be numbers"),
        ("1,\u00b2,1,1", "node must be a whole number"),
        ("1,99999999999,1,1", "node id 99999999999 is beyond"),
        ('1,0,"1,1', "expected 4 columns"),
        ("1,0,1," + "2" * 140_000, "line of {n:,} characters is over the 65,536"),
    ]),
}


@pytest.mark.parametrize("fmt, case", [(f, i) for f, v in ABSURD.items() for i in range(len(v[3]))])
def test_bad_values_are_named_with_their_line(tmp_path, fmt, case):
    name, fn, head, cases = ABSURD[fmt]
    line, message = cases[case]
    message = message.replace("{n:,}", f"{len(line):,}")
    path = tmp_path / name
    lineno = head.count("\n") + 1
    path.write_text(head + line + "\n" + head.splitlines()[-1] + "\n")
    traj, warned = _warned(fn, path)
    assert len(warned) == 1, warned
    assert f"{path}:{lineno}: {message}" in warned[0], warned[0]
    assert "line skipped" in warned[0] and len(warned[0]) < 1000
    assert traj.n == 1
    err = _strict_error(fn, path)
    assert f"{path}:{lineno}: {message}" in err and "fix" in err and len(err) < 1000, err


def test_bonnmotion_absurd_lines_are_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(bonnmotion, "MAX_BONNMOTION_LINE", 1000)
    cases = [("0 0 0 10 1e308 0\n", ":1: node 0: waypoint 2: x = 1e+308 is beyond ±1e+12 m"),
             ("0 0 0\n-5 1 1\n", ":2: node 1: waypoint 1: t is negative"),
             ("0 0 0 1 1 1e999\n", ":1: node 0: waypoint 2: y = inf is beyond"),
             ("0 0 0 nan 1 1\n", ":1: node 0: expected numbers in groups of 3 (t x y), found 6 fields "
                                 "with non-numbers"),
             ("0 0 0\n" + "1 " * 2000 + "\n", ":2: node 1: line of 4,000 characters is over the 1,000"),
             ("0 0 0\n\n0 1 1\n", ":2: node 1 has no waypoints")]
    for text, message in cases:
        path = tmp_path / "b.movements"
        path.write_text(text)
        with pytest.raises(ScenarioError, match=re.escape(message)):
            read_bonnmotion(path)


@pytest.mark.parametrize("chunk", [64, 4096, reading.CHUNK_CHARS])
def test_overlong_lines_anywhere_in_the_pieces(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(reading, "CHUNK_CHARS", chunk)
    good = '$ns_ at 1 "$node_(0) setdest 5 5 1"\n'
    path = tmp_path / "long.tcl"
    path.write_text(good * 50 + "#" * 300_000 + "\n" + good * 50 + "x" * 70_000)  # no final newline
    _, warned = _warned(read_ns2, path)
    assert [w.split(": ")[0:2] for w in warned] == [[f"{path}:51", "line of 300,000 characters is over "
                                                     "the 65,536-character limit (a binary or corrupt "
                                                     "file? split or fix the line)"],
                                                    [f"{path}:102", "line of 70,000 characters is over "
                                                     "the 65,536-character limit (a binary or corrupt "
                                                     "file? split or fix the line)"]]
    one = tmp_path / "long.one"
    one.write_text("0 1 0 1 0 1\n" + "0 0 0 0\n" * 30 + "1" * 200_000 + "\n2 0 1 1\n")
    traj, warned = _warned(read_one, one)
    assert len(warned) == 1 and f"{one}:32: line of 200,000 characters" in warned[0]
    assert np.array_equal(traj.times[0], [0.0] * 30 + [2.0])


def test_overlong_headers_binary_and_broken_files(tmp_path):
    for name, fmt in (("h.one", "one"), ("h.csv", "csv")):
        (tmp_path / name).write_text("0" * 200_000 + "\n0 0 0 0\n")
        with pytest.raises(ScenarioError, match=re.escape(f"{tmp_path / name}:1: ") + ".*over the 65,536"):
            load_trace(tmp_path / name, format=fmt)
    blob = tmp_path / "x.tcl"
    blob.write_bytes(bytes(range(256)) * 4000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        with pytest.raises(ScenarioError, match="no ns-2 movement commands"):
            read_ns2(blob)
    broken = tmp_path / "g.movements.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ScenarioError, match="cannot read the trace"):
        load_trace(broken)
    (tmp_path / "n.dat").write_text("x" * 300_000)
    with pytest.raises(ScenarioError, match="cannot tell the trace format"):
        load_trace(tmp_path / "n.dat")


def test_ns2_setdest_1e308_no_longer_overflows(tmp_path):
    path = tmp_path / "o.tcl"
    path.write_text('$node_(0) set X_ 1\n$ns_ at 1 "$node_(0) setdest 1e308 1e308 1"\n'
                    '$ns_ at 2 "$node_(0) setdest 5 1 1e-320"\n')
    traj, warned = _warned(read_ns2, path)
    assert len(warned) == 1 and ":2: x = 1e308 is beyond" in warned[0]
    assert np.allclose(traj.positions(1e9), [[1, 0, 0]])  # too slow to get anywhere: stays put


def test_ns2_trips_past_ns3s_clock_stop_at_its_end(tmp_path):
    path = tmp_path / "slow.tcl"
    path.write_text('$ns_ at 1 "$node_(0) setdest 1e12 0 1e-3"\n')  # would arrive after 1e15 s
    traj = read_ns2(path)
    assert traj.times[0][-1] == ns3plan.NS3_END_S
    assert np.allclose(traj.positions(1e9 + 1), [[1e6, 0, 0]])
    assert np.allclose(traj.positions(1e12), traj.positions(ns3plan.NS3_END_S))


def test_many_bad_lines_are_summed_up(tmp_path):
    path = tmp_path / "m.tcl"
    path.write_text("$node_(0) set X_ 1\n" + '$ns_ at 1 "$node_(0) setdest 1e20 0 1"\n' * 50)
    _, warned = _warned(read_ns2, path)
    assert len(warned) == 11 and "40 more malformed lines skipped (50 in all)" in warned[-1]


# ---------------------------------------------------------------------------------------------
# Fuzzing whole files: each mutant loads or raises ScenarioError, never anything else
# ---------------------------------------------------------------------------------------------

_BASES = {
    "ns2": ("f.tcl", read_ns2, ["$node_(0) set X_ 10.0", "$node_(1) set Y_ 2",
                                '$ns_ at 0.5 "$node_(0) setdest 5 5 1"', '$ns_ at 1 "$node_(1) set X_ 3"',
                                '$ns_ at 2.25 "$node_(1) setdest 0 0 0"',
                                '$ns_ at 3 "$node_(0) setdest 7 1e3 2.5"']),
    "one": ("f.one", read_one, ["0 100 0 1000 0 1000", "0 0 10 20", "0 1 30 40", "5 0 15 25",
                                "7.5 1 1e2 40"]),
    "csv": ("f.csv", read_csv_trace, ["time,node,x,y,z", "0,0,1,2,0", "1,0,3,4,0", "0,1,5,5,1", "2,1,6,6,1"]),
}

_PIECES = st.sampled_from(_ALPHABET + ["\x00", "\ufffd", "\r", "\n", "1e308", "-1e308", "-0", "nan",
                                       "9" * 40, "1" * 5000, '"', ",", "00000000000007"])
_FILE_EDITS = st.lists(st.tuples(st.integers(0, 10), st.integers(0, 200), st.integers(0, 3), _PIECES),
                       min_size=1, max_size=6)


def _mutant(lines, edits):
    lines = list(lines)
    for row, pos, op, piece in edits:
        r = row % len(lines)
        if op == 3:
            lines.insert(r, piece * (1 + pos))  # a whole new line, possibly long
        else:
            lines[r] = _mutate(lines[r], [(pos, op, piece)])
    return "\n".join(lines) + "\n"


def _load_or_scenario_error(fmt, edits, tmp):
    name, fn, lines = _BASES[fmt]
    path = tmp / name
    path.write_text(_mutant(lines, edits), encoding="utf-8")
    for strict in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TraceWarning)
            try:
                traj = fn(path, strict=strict)
            except ScenarioError:
                continue
        assert traj.n >= 1
        for t in (0.0, 1.0, 1e6):
            assert np.isfinite(traj.positions(t)).all()


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(_BASES)), edits=_FILE_EDITS)
def test_fuzzed_traces_load_or_raise_scenario_error(tmp_path, fmt, edits):
    _load_or_scenario_error(fmt, edits, tmp_path)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(_BASES)), edits=_FILE_EDITS)
def test_fuzz_campaign(tmp_path, fmt, edits):
    _load_or_scenario_error(fmt, edits, tmp_path)
