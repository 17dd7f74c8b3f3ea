"""Trace readers. The ns-2 reader is held to ns-3's ``Ns2MobilityHelper``: every case of ns-3's
own test suite (src/mobility/test/ns2-mobility-helper-test-suite.cc) is ported below, and the
two real movement files from the ns-3 tree are checked against an independent replay."""

import csv
import gzip
import io
import math
import re
import warnings
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netemu.cli_mobility import mobility
from netemu.errors import TraceError
from netemu.world.trajectory import Trajectories
from netemu.world.traces import (TraceWarning, detect_format, load_trace, read_bonnmotion,
                                 read_csv_trace, read_ns2, read_one, replay_ns2, write_ns2)

NS3_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces" / "ns3"
TOL = 1e-6

# ---------------------------------------------------------------------------------------------
# ns-3's test suite, case by case. Ref(node, time, position, velocity) is ns-3's ReferencePoint.
# ns-3's test sorts the references by time (stable), checks the time-0 ones against the
# positions before the run, and the others, in order, against every CourseChange notification
# up to the case's time limit.
# ---------------------------------------------------------------------------------------------

Ref = namedtuple("Ref", "node t pos vel")
Case = namedtuple("Case", "name limit trace refs unreachable warnings")


def _case(name, limit, trace, refs, unreachable=(), warnings=0):
    return Case(name, limit, trace, [Ref(*r) for r in refs], set(unreachable), warnings)


_SQUARE = [(0, 0, (0, 0, 0), (0, 0, 0)), (0, 1, (0, 0, 0), (5, 0, 0)), (0, 2, (5, 0, 0), (0, 0, 0)),
           (0, 2, (5, 0, 0), (0, 5, 0)), (0, 3, (5, 5, 0), (0, 0, 0)), (0, 3, (5, 5, 0), (-5, 0, 0)),
           (0, 4, (0, 5, 0), (0, 0, 0)), (0, 4, (0, 5, 0), (0, -5, 0)), (0, 5, (0, 0, 0), (0, 0, 0))]

NS3_CASES = [
    _case("initial position", 1,
          "$node_(0) set X_ 1.0\n$node_(0) set Y_ 2.0\n$node_(0) set Z_ 3.0\n",
          [(0, 0, (1, 2, 3), (0, 0, 0))]),
    _case("comments", 1,
          "# comment\n\n\n$node_(0) set X_ 1.0 # comment \n$node_(0) set Y_ 2.0 ### \n"
          "$node_(0) set Z_ 3.0 # $node_(0) set Z_ 3.0\n#$node_(0) set Z_ 100 #",
          [(0, 0, (1, 2, 3), (0, 0, 0))]),
    _case("simple setdest", 10,
          '$ns_ at 1.0 "$node_(0) setdest 25 0 5"',
          [(0, 0, (0, 0, 0), (0, 0, 0)), (0, 1, (0, 0, 0), (5, 0, 0)), (0, 6, (25, 0, 0), (0, 0, 0))]),
    _case("square setdest", 6,
          "$node_(0) set X_ 0.0\n$node_(0) set Y_ 0.0\n"
          '$ns_ at 1.0 "$node_(0) setdest 5  0  5"\n$ns_ at 2.0 "$node_(0) setdest 5  5  5"\n'
          '$ns_ at 3.0 "$node_(0) setdest 0  5  5"\n$ns_ at 4.0 "$node_(0) setdest 0  0  5"\n',
          _SQUARE),
    _case("square setdest (initial positions at end)", 6,
          '$ns_ at 1.0 "$node_(0) setdest 15  10  5"\n$ns_ at 2.0 "$node_(0) setdest 15  15  5"\n'
          '$ns_ at 3.0 "$node_(0) setdest 10  15  5"\n$ns_ at 4.0 "$node_(0) setdest 10  10  5"\n'
          "$node_(0) set X_ 10.0\n$node_(0) set Y_ 10.0\n",
          [(0, t, (x + 10, y + 10, 0), v) for _, t, (x, y, _z), v in _SQUARE]),
    # Three scheduled sets at one instant: each sets the point built up while the file was read,
    # so the course changes at t = 1 are (10,0,0), (10,0,10), (10,10,10).
    _case("scheduled set position", 2,
          '$ns_ at 1.0 "$node_(0) set X_ 10"\n$ns_ at 1.0 "$node_(0) set Z_ 10"\n'
          '$ns_ at 1.0 "$node_(0) set Y_ 10"',
          [(0, 1, (10, 0, 0), (0, 0, 0)), (0, 1, (10, 0, 10), (0, 0, 0)), (0, 1, (10, 10, 10), (0, 0, 0))]),
    _case("malformed lines", 2,
          "$node() set X_ 1 # node id is not present\n"
          '$node # incoplete line"\n'
          "$node this line is not correct\n"
          "$node_(0) set X_ 1 # line OK \n$node_(0) set Y_ 2 # line OK \n$node_(0) set Z_ 3 # line OK \n"
          '$ns_ at  "$node_(0) setdest 4 4 4" # time not present\n'
          '$ns_ at 1 "$node_(0) setdest 2 2 1   " # line OK \n',
          [(0, 0, (1, 2, 3), (0, 0, 0)), (0, 1, (1, 2, 3), (1, 0, 0)), (0, 2, (2, 2, 3), (0, 0, 0))],
          warnings=4),
    # "non possible values": ns-3's code does not skip the negative-speed line; it cancels the
    # running movement's stop at t = 2, so the node would drift on (ns-3's test cannot see it:
    # it never checks that all references were met). The reference says the line is ignored,
    # and so does netemu: the stop at t = 2 happens.
    _case("non possible values", 2,
          "$node_(0) set X_ 1 # line OK \n$node_(0) set Y_ 2 # line OK \n$node_(0) set Z_ 3 # line OK \n"
          "$node_(-22) set Y_ 3 # node id not correct\n"
          "$node_(3.3) set Y_ 1111 # node id not correct\n"
          '$ns_ at sss "$node_(0) setdest 5 5 5" # time is not a number\n'
          '$ns_ at 1 "$node_(0) setdest 2 2 1" # line OK \n'
          '$ns_ at 1 "$node_(0) setdest 2 2 -1" # negative speed is not correct\n'
          '$ns_ at 1 "$node_(0) setdest 2 2 sdfs"    # speed is not a number\n'
          '$ns_ at 1 "$node_(0) setdest 2 2 s232dfs" # speed is not a number\n'
          '$ns_ at 1 "$node_(0) setdest 233 2.. s232dfs"   # more than one non numbers\n'
          '$ns_ at -12 "$node_(0) setdest 11 22 33" # time should not be negative\n',
          [(0, 0, (1, 2, 3), (0, 0, 0)), (0, 1, (1, 2, 3), (1, 0, 0)), (0, 2, (2, 2, 3), (0, 0, 0))],
          warnings=8),
    _case("few nodes, combinations of set and setdest", 10,
          "$node_(0) set X_ 1.0\n$node_(0) set Y_ 2.0\n$node_(0) set Z_ 3.0\n"
          '$ns_ at 1.0 "$node_(1) setdest 25 0 5"\n'
          "$node_(2) set X_ 0.0\n$node_(2) set Y_ 0.0\n"
          '$ns_ at 1.0 "$node_(2) setdest 5  0  5"\n$ns_ at 2.0 "$node_(2) setdest 5  5  5"\n'
          '$ns_ at 3.0 "$node_(2) setdest 0  5  5"\n$ns_ at 4.0 "$node_(2) setdest 0  0  5"\n',
          [(0, 0, (1, 2, 3), (0, 0, 0)),
           (1, 0, (0, 0, 0), (0, 0, 0)), (1, 1, (0, 0, 0), (5, 0, 0)), (1, 6, (25, 0, 0), (0, 0, 0))]
          + [(2, t, p, v) for _, t, p, v in _SQUARE]),
    _case("setdest with speed cero", 10,
          '$ns_ at 1.0 "$node_(0) setdest 25 0 5"\n$ns_ at 7.0 "$node_(0) setdest 11  22  0"\n',
          [(0, 0, (0, 0, 0), (0, 0, 0)), (0, 1, (0, 0, 0), (5, 0, 0)), (0, 6, (25, 0, 0), (0, 0, 0)),
           (0, 7, (25, 0, 0), (0, 0, 0))]),
    _case("test negative positions", 10,
          "$node_(0) set X_ -1.0\n$node_(0) set Y_ 0\n"
          '$ns_ at 1.0 "$node_(0) setdest 0 0 1"\n$ns_ at 2.0 "$node_(0) setdest 0  -1  1"\n',
          [(0, 0, (-1, 0, 0), (0, 0, 0)), (0, 1, (-1, 0, 0), (1, 0, 0)), (0, 2, (0, 0, 0), (0, 0, 0)),
           (0, 2, (0, 0, 0), (0, -1, 0)), (0, 3, (0, -1, 0), (0, 0, 0))]),
    _case("Foalt numbers in 1.0e+2 format", 6,
          "$node_(0) set X_ 0.0\n$node_(0) set Y_ 0.0\n"
          '$ns_ at 1.0 "$node_(0) setdest 1.0e+2  0       1.0e+2"\n'
          '$ns_ at 2.0 "$node_(0) setdest 1.0e+2  1.0e+2  1.0e+2"\n'
          '$ns_ at 3.0 "$node_(0) setdest 0       1.0e+2  1.0e+2"\n'
          '$ns_ at 4.0 "$node_(0) setdest 0       0       1.0e+2"\n',
          [(0, t, tuple(20 * c for c in p), tuple(20 * c for c in v)) for _, t, p, v in _SQUARE]),
    # "Bug 1219 testcase": the node is at (0, 5) at t = 6 and heads for (0, -10) at 1 m/s, so
    # it arrives at t = 21, not 16. ns-3's reference point at t = 16 is never compared (the
    # run stops at 16 s and no course change happens then); netemu asserts ns-3's behaviour:
    # at t = 16 the node is at (0, -5), still moving; it stops at (0, -10) at t = 21.
    _case("Bug 1219 testcase", 16,
          "$node_(0) set X_ 0.0\n$node_(0) set Y_ 0.0\n"
          '$ns_ at 1.0 "$node_(0) setdest 0  10       1"\n$ns_ at 6.0 "$node_(0) setdest 0  -10       1"\n',
          [(0, 0, (0, 0, 0), (0, 0, 0)), (0, 1, (0, 0, 0), (0, 1, 0)), (0, 6, (0, 5, 0), (0, -1, 0)),
           (0, 16, (0, -10, 0), (0, 0, 0))],
          unreachable={3}),
    _case("Bug 1059 testcase", 16,
          "$node_(0) set X_ 10.0\r\n$node_(0) set Y_ 0.0\r\n",
          [(0, 0, (10, 0, 0), (0, 0, 0))]),
    # Moving to the current position must change nothing (and give no NaN speed).
    _case("Bug 1301 testcase", 16,
          "$node_(0) set X_ 10.0\n$node_(0) set Y_ 0.0\n" '$ns_ at 1.0 "$node_(0) setdest 10  0       1"\n',
          [(0, 0, (10, 0, 0), (0, 0, 0))]),
    _case("Bug 1316 testcase", 1000,
          "$node_(0) set X_ 350.00000000000000\n$node_(0) set Y_ 50.00000000000000\n" + "".join(
              f'$ns_ at {t} "$node_(0) setdest {x} {y} {v}"\n' for t, x, y, v in [
                  ("50.00000000000000 ", "400.00000000000000", "50.00000000000000", "1.00000000000000"),
                  ("150.00000000000000", "400.00000000000000", "150.00000000000000", "4.00000000000000"),
                  ("300.00000000000000", "250.00000000000000", "150.00000000000000", "3.00000000000000"),
                  ("350.00000000000000", "250.00000000000000", "50.00000000000000", "1.00000000000000"),
                  ("600.00000000000000", "250.00000000000000", "1050.00000000000000", "2.00000000000000"),
                  ("900.00000000000000", "300.00000000000000", "650.00000000000000", "2.50000000000000")]),
          [(0, 0, (350, 50, 0), (0, 0, 0)), (0, 50, (350, 50, 0), (1, 0, 0)),
           (0, 100, (400, 50, 0), (0, 0, 0)),
           (0, 150, (400, 50, 0), (0, 4, 0)), (0, 175, (400, 150, 0), (0, 0, 0)),
           (0, 300, (400, 150, 0), (-3, 0, 0)), (0, 350, (250, 150, 0), (0, 0, 0)),
           (0, 350, (250, 150, 0), (0, -1, 0)), (0, 450, (250, 50, 0), (0, 0, 0)),
           (0, 600, (250, 50, 0), (0, 2, 0)), (0, 900, (250, 650, 0), (2.5, 0, 0)),
           (0, 920, (300, 650, 0), (0, 0, 0))]),
]


def _write(tmp_path, text, name="Ns2MobilityHelperTest.tcl"):
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def _replay(path, expect_warnings=0):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        replay = replay_ns2(path)
    got = [w for w in caught if issubclass(w.category, TraceWarning)]
    assert len(got) == expect_warnings, [str(w.message) for w in got]
    return replay, got


def _close(a, b):
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=TOL)


@pytest.mark.parametrize("case", NS3_CASES, ids=[c.name for c in NS3_CASES])
def test_ns3_suite_reference_points(case, tmp_path):
    replay, _ = _replay(_write(tmp_path, case.trace), case.warnings)
    refs = sorted(case.refs, key=lambda r: r.t)  # std::stable_sort by time, as ns-3 does
    checked = [r for r in refs if case.refs.index(r) not in case.unreachable]
    initial = [r for r in checked if r.t == 0]
    for r in initial:  # CheckInitialPositions: before Simulator::Run
        assert _close(replay.initial[r.node], r.pos), (r, replay.initial)
    changes = [c for c in replay.changes if c.time <= case.limit]
    expected = [r for r in checked if r.t != 0]
    assert len(changes) == len(expected), changes
    for c, r in zip(changes, expected):  # CourseChange: time, node, position, velocity
        assert (abs(c.time - r.t) < 1e-9, c.node) == (True, r.node), (c, r)
        assert _close(c.position, r.pos), (c, r)
        assert _close(c.velocity, r.vel), (c, r)
    # positions(t) returns the state after everything at t (the last reference at that time)
    traj = replay.trajectories
    last = {(r.node, r.t): r.pos for r in checked}
    for (node, t), pos in last.items():
        assert _close(traj.positions(t)[traj.ids.index(node)], pos), (node, t)


def test_ns3_bug_1219_follows_ns3_past_the_wrong_reference(tmp_path):
    case = next(c for c in NS3_CASES if c.name == "Bug 1219 testcase")
    replay, _ = _replay(_write(tmp_path, case.trace))
    assert _close(replay.trajectories.positions(16), [(0, -5, 0)])
    last = replay.changes[-1]
    assert (last.time, last.velocity) == (21.0, (0.0, 0.0, 0.0)) and _close(last.position, (0, -10, 0))
    assert _close(replay.trajectories.positions(100), [(0, -10, 0)])


def test_ns3_scheduled_set_moves_the_initial_position_too(tmp_path):
    # ns-3's SetSchedPosition calls SetPosition while reading the file: the node is at the
    # scheduled point from t = 0 (ns-3's suite has no time-0 reference for this case).
    case = next(c for c in NS3_CASES if c.name == "scheduled set position")
    replay, _ = _replay(_write(tmp_path, case.trace))
    assert replay.initial[0] == (10.0, 10.0, 10.0)
    assert _close(replay.trajectories.positions(0.5), [(10, 10, 10)])


def test_ns3_scheduled_set_stops_motion_at_the_point_fixed_when_read(tmp_path):
    # The set at t = 5 stops the node (SetPosition zeroes the velocity) and puts it at the point
    # built while reading: (0, 3, 0), not (4, 3, 0) where it was. Reading it also moved the
    # initial position to y = 3, and the setdest was planned from y = 0, so it runs along y = 3.
    path = _write(tmp_path, "$node_(0) set X_ 0\n$node_(0) set Y_ 0\n"
                            '$ns_ at 1 "$node_(0) setdest 10 0 1"\n$ns_ at 5 "$node_(0) set Y_ 3"\n')
    replay, _ = _replay(path)
    pos = replay.trajectories.positions
    for t, want in [(0, (0, 3, 0)), (3, (2, 3, 0)), (4.999, (3.999, 3, 0)), (5, (0, 3, 0)), (20, (0, 3, 0))]:
        assert _close(pos(t), [want]), t
    assert [(c.time, c.velocity) for c in replay.changes] == [(1.0, (1.0, 0.0, 0.0)), (5.0, (0.0, 0.0, 0.0))]


def test_ns3_file_order_drives_the_bookkeeping(tmp_path):
    # ns-3 plans each line in file order. The t = 2 line comes after the t = 5 one, so ns-3
    # believes the node "reached" (0,0) + (1,0)·(2 - 5) = (-3, 0) at t = 2, cancels the stop at
    # 15, and plans (-3,0) → (0,10) at 1 m/s; both velocity events still run.
    path = _write(tmp_path, '$ns_ at 5 "$node_(0) setdest 10 0 1"\n$ns_ at 2 "$node_(0) setdest 0 10 1"\n')
    replay, _ = _replay(path)
    d = math.hypot(3, 10)
    v1 = np.array([3 / d, 10 / d, 0])
    p5 = v1 * 3
    stop = 2 + d
    assert _close([c.time for c in replay.changes], [2, 5, stop])
    assert _close(replay.trajectories.positions(4), [v1 * 2])
    assert _close(replay.trajectories.positions(30), [p5 + [stop - 5, 0, 0]])


def test_ns3_destination_equal_to_reached_point_leaves_the_node_drifting(tmp_path):
    # At t = 5 the node has reached exactly (5, 0); ns-3 cancels the stop at t = 10 and, the
    # new trip having length 0, schedules nothing: the node never stops. netemu warns.
    path = _write(tmp_path, '$ns_ at 0 "$node_(0) setdest 10 0 1"\n$ns_ at 5 "$node_(0) setdest 5 0 1"\n')
    replay, got = _replay(path, expect_warnings=1)
    assert "still moving" in str(got[0].message)
    assert _close(replay.trajectories.positions(20), [(20, 0, 0)])


@pytest.mark.parametrize("line, ok", [
    ('$ns_ at 1 "$node_(0) setdest 2 0 1"', True),
    ('$ns_ at 1 "$node_(0) setdest 2 0 1   "', True),  # lone closing quote: dropped
    ("$ns_ at 1 $node_(0) setdest 2 0 1", True),  # no quotes at all
    ('\t $ns_   at 1\t"$node_(0)   setdest 2 0 1";;', True),  # blanks, tabs, trailing ';'
    ('$ns_ at 1 "$node_(00) setdest 2 0 1" # comment', True),  # leading zeros in the id
    ('$ns_ at 1 "$node_(0) setdest 2 0 1 0"', False),  # 9 fields
    ('$ns_ at 1 "$node_(0) setdest 2 0"', False),  # 7 fields but not a set
    ('$ns_ at 1 "$node_() setdest 2 0 1"', False),  # empty id (ns-3 would take node 0)
    ('$ns_ at 1 "$node_(1e2) setdest 2 0 1"', False),  # ns-3 would take node 1
    ('$ns_ at 1 "$node_(0) setdest 2 0 0x1"', False),  # hex is not a number here
    ('$ns_ at 1 "$node_(0) setdest 2 0 inf"', False),
    ('$ns_ at 1 "$node_(0) setdest 2 0 1_0"', False),  # Python's float() would take it
])
def test_ns3_line_syntax(tmp_path, line, ok):
    path = _write(tmp_path, "$node_(0) set X_ 0\n" + line + "\n")
    replay, _ = _replay(path, expect_warnings=0 if ok else 1)
    assert _close(replay.trajectories.positions(10), [(2, 0, 0) if ok else (0, 0, 0)])


def test_ns3_scheduled_set_with_space_before_quote_is_skipped_like_ns3(tmp_path):
    # 8 fields ending in '"': ns-3 cuts the quote, leaving an empty last field, and then
    # recognizes neither a setdest (field 5 is "set") nor a set (8 fields): the line is skipped.
    path = _write(tmp_path, '$node_(0) set X_ 1\n$ns_ at 4 "$node_(0) set X_ 2 "\n'
                            '$ns_ at 5 "$node_(0) set Y_ 7"\n')
    replay, got = _replay(path, expect_warnings=1)
    assert ":2: a space before the closing quote" in str(got[0].message)
    assert _close(replay.trajectories.positions(6), [(1, 7, 0)])


def test_ns3_z_is_kept_while_moving_and_ids_map_in_order(tmp_path):
    path = _write(tmp_path, "$node_(7) set Z_ 4\n$node_(7) set X_ 1\n$node_(3) set Y_ 2\n"
                            '$ns_ at 0 "$node_(7) setdest 1 10 2"\n')
    traj = load_trace(path)
    assert traj.ids == [3, 7]
    assert _close(traj.positions(2.5), [(0, 2, 0), (1, 5, 4)])


def test_ns3_strict_names_file_and_line(tmp_path):
    case = next(c for c in NS3_CASES if c.name == "non possible values")
    path = _write(tmp_path, case.trace)
    with pytest.raises(TraceError, match=re.escape(f"{path}:4: no node id like $node_(3)")):
        read_ns2(path, strict=True)
    with pytest.raises(TraceError, match=r":8: speed is negative"):
        read_ns2(_write(tmp_path, '$ns_ at 1 "$node_(0) setdest 1 1 1"\n' * 7
                        + '$ns_ at 1 "$node_(0) setdest 2 2 -1"\n', "neg.tcl"), strict=True)


def test_ns3_warning_names_file_line_and_reason(tmp_path):
    path = _write(tmp_path, '$node_(0) set X_ 1\n$ns_ at -1 "$node_(0) setdest 1 1 1"\n')
    with pytest.warns(TraceWarning, match=re.escape(f"{path}:2: time is negative")):
        read_ns2(path)


def test_ns2_without_commands_is_an_error(tmp_path):
    with pytest.raises(TraceError, match="no ns-2 movement commands"):
        read_ns2(_write(tmp_path, "# nothing here\n"))


# ---------------------------------------------------------------------------------------------
# The real files from ns-3's tree, against an independent replay written here: initial
# positions from every "set", each node's setdest commands as events in time order, constant
# velocity from where the node is towards the destination, a stop on arrival.
# ---------------------------------------------------------------------------------------------

def reference_positions(text: str, times) -> dict:
    start, cmds = {}, {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\$node_\((\d+)\) set ([XYZ])_ (\S+)", line)
        if m:
            start.setdefault(int(m[1]), [0.0, 0.0, 0.0])["XYZ".index(m[2])] = float(m[3])
            continue
        m = re.fullmatch(r'\$ns_ at (\S+) "\$node_\((\d+)\) setdest (\S+) (\S+) (\S+)"', line)
        assert m, line
        cmds.setdefault(int(m[2]), []).append(tuple(float(m[i]) for i in (1, 3, 4, 5)))
    out = {}
    for node in sorted(set(start) | set(cmds)):
        p0 = np.array(start.get(node, [0.0, 0.0, 0.0]))
        legs = []  # (t_from, p_from, velocity, t_stop)
        here, t_here, vel, t_stop = p0, 0.0, np.zeros(3), 0.0
        for at, x, y, speed in sorted(cmds.get(node, []), key=lambda c: c[0]):
            here = here + vel * (min(at, t_stop) - t_here)
            t_here = at
            dist = math.hypot(x - here[0], y - here[1])
            if speed == 0 or dist == 0:
                vel, t_stop = np.zeros(3), at
            else:
                vel = np.array([x - here[0], y - here[1], 0.0]) / dist * speed
                t_stop = at + dist / speed
            legs.append((at, here, vel, t_stop))
        for t in times:
            p = p0
            for at, frm, v, stop in legs:
                if at <= t:
                    p = frm + v * (min(t, stop) - at)
            out[(t, node)] = p
    return out


def _ns3_file(name):
    path = NS3_TRACES / name
    if not NS3_TRACES.is_dir():
        pytest.skip(f"{NS3_TRACES} is absent")
    return path


@pytest.mark.parametrize("name", ["default.ns_movements", "bonnmotion.ns_movements"])
def test_real_ns3_files_match_independent_replay(name):
    path = _ns3_file(name)
    traj = load_trace(path)
    end = traj.end_time()
    cmd_times = sorted({float(m) for m in re.findall(r"\$ns_ at (\S+)", path.read_text())})
    times = sorted(set(np.linspace(0, end + 5, 41).tolist() + cmd_times[::7] + [cmd_times[-1]]))
    ref = reference_positions(path.read_text(), times)
    for t in times:
        got = traj.positions(t)
        for k, node in enumerate(traj.ids):
            assert np.abs(got[k] - ref[(t, node)]).max() < TOL, (t, node, got[k], ref[(t, node)])


@pytest.mark.parametrize("name", ["default.ns_movements", "bonnmotion.ns_movements"])
def test_real_ns3_files_through_the_cli(name):
    path = _ns3_file(name)
    times = [0.0, 0.5, 3.3, 47.25, 99.9, 500.0, 1000.0]
    result = CliRunner().invoke(mobility, ["positions", str(path), "--at", ",".join(map(repr, times))])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0] == ["time", "node", "x", "y", "z"]
    ref = reference_positions(path.read_text(), times)
    nodes = sorted({node for _, node in ref})
    assert [(float(r[0]), int(r[1])) for r in rows[1:]] == [(t, k) for t in times for k in nodes]
    for r in rows[1:]:
        want = ref[(float(r[0]), int(r[1]))]
        assert np.abs(np.array(r[2:], dtype=float) - want).max() < TOL, r


def test_bonnmotion_ns_movements_comments_are_skipped_silently():
    path = _ns3_file("bonnmotion.ns_movements")
    replay, _ = _replay(path)
    assert len(replay.changes) == 12  # six setdests: a start and a stop each


# ---------------------------------------------------------------------------------------------
# write_ns2
# ---------------------------------------------------------------------------------------------

def test_write_ns2_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    times, points = [], []
    for _ in range(5):
        t = np.concatenate([[rng.uniform(0, 2)], rng.uniform(0.1, 5, 12)]).cumsum()
        p = np.zeros((13, 3))
        p[:, :2] = rng.uniform(0, 300, (13, 2))
        p[5] = p[4]  # a pause
        p[:, 2] = 1.5
        times.append(t)
        points.append(p)
    traj = Trajectories(times, points, [4, 8, 15, 16, 23])
    path = tmp_path / "round.ns_movements"
    write_ns2(traj, path)
    back = load_trace(path)
    assert back.ids == traj.ids
    for t in np.linspace(0, traj.end_time() + 3, 301):
        assert np.abs(back.positions(t) - traj.positions(t)).max() < TOL, t


def test_write_ns2_refuses_what_ns2_cannot_say(tmp_path):
    jump = Trajectories([[0.0, 1.0, 1.0]], [[[0, 0, 0], [1, 0, 0], [5, 5, 0]]], [0])
    with pytest.raises(ValueError, match="jump"):
        write_ns2(jump, tmp_path / "j.tcl")
    climb = Trajectories([[0.0, 1.0]], [[[0, 0, 0], [0, 0, 1]]], [0])
    with pytest.raises(ValueError, match="z"):
        write_ns2(climb, tmp_path / "z.tcl")


# ---------------------------------------------------------------------------------------------
# ONE, BonnMotion, CSV
# ---------------------------------------------------------------------------------------------

def test_one_reader_normalizes_and_interpolates(tmp_path):
    path = _write(tmp_path, "100 200 1000 1100 2000 2100\n"
                            "100 1 1000 2000\n100 0 1010 2010\n"
                            "# a comment\n\n"
                            "110 1 1020 2000\n110 0 1010 2010\n120 1 1020 2040\n", "walk.txt")
    traj = read_one(path)
    assert traj.ids == [0, 1]
    assert _close(traj.positions(0), [(10, 10, 0), (0, 0, 0)])
    assert _close(traj.positions(5), [(10, 10, 0), (10, 0, 0)])
    assert _close(traj.positions(17.5), [(10, 10, 0), (20, 30, 0)])
    assert _close(traj.positions(99), [(10, 10, 0), (20, 40, 0)])
    assert detect_format(path) == "one"
    assert load_trace(path).ids == [0, 1]


def test_one_reader_errors(tmp_path):
    with pytest.raises(TraceError, match=r"h\.txt:1: the first line must be the ONE header"):
        read_one(_write(tmp_path, "0 10 0 100\n0 0 1 1\n", "h.txt"))
    path = _write(tmp_path, "0 10 0 100 0 100\n0 0 1 1\n1 zero 1 1\n2 0 x 1\n", "b.txt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        traj = read_one(path)
    assert traj.ids == [0]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert "b.txt:3: node id must be a whole number >= 0" in messages[0]
    assert "b.txt:4: time, x and y must be numbers" in messages[1]
    with pytest.raises(TraceError, match=r"b\.txt:3:"):
        read_one(path, strict=True)


def test_bonnmotion_reader_2d_gz_and_3d(tmp_path):
    text = "0 0 0 10 100 0 20 100 0\n0 5 5 10 5 5\n"
    plain = _write(tmp_path, text, "s.movements")
    zipped = tmp_path / "g.movements.gz"
    zipped.write_bytes(gzip.compress(text.encode()))
    for path in (plain, zipped):
        traj = load_trace(path)
        assert traj.ids == [0, 1]
        assert _close(traj.positions(5), [(50, 0, 0), (5, 5, 0)])
        assert _close(traj.positions(15), [(100, 0, 0), (5, 5, 0)])
    # RandomWaypoint's dim=3 is "move in x and y", not 3-D coordinates
    (tmp_path / "s.params").write_text("model=RandomWaypoint\nx=400.0\ndim=3\n")
    assert _close(read_bonnmotion(plain).positions(5), [(50, 0, 0), (5, 5, 0)])
    three = "#3D\n0 0 0 0 10 10 20 30\n"
    assert _close(read_bonnmotion(_write(tmp_path, three, "t.movements")).positions(5), [(5, 10, 15)])
    _write(tmp_path, "0 0 0 0 10 10 20 30\n", "u.movements")
    (tmp_path / "u.params").write_text("model=Static3D\nx=10\ny=10\nz=50\n")
    assert _close(read_bonnmotion(tmp_path / "u.movements").positions(5), [(5, 10, 15)])


def test_bonnmotion_reader_errors(tmp_path):
    with pytest.raises(TraceError, match=r"a\.movements:2: node 1: expected numbers in groups of 3"):
        read_bonnmotion(_write(tmp_path, "0 0 0\n0 1\n", "a.movements"))
    with pytest.raises(TraceError, match=r"b\.movements:1: node 0: waypoint times must not decrease"):
        read_bonnmotion(_write(tmp_path, "5 0 0 1 1 1\n", "b.movements"))
    with pytest.raises(TraceError, match=r"c\.movements:2: node 1 has no waypoints"):
        read_bonnmotion(_write(tmp_path, "0 0 0\n\n0 1 1\n", "c.movements"))


def test_csv_reader(tmp_path):
    path = _write(tmp_path, "node,time,y,x,z,comment\n3,10,0,10,1,a\n3,0,0,0,1,b\n"
                            "1,0,5,5,0,c\n3,10,7,7,1,jump\n", "t.csv")
    traj = read_csv_trace(path)
    assert traj.ids == [1, 3]
    assert _close(traj.positions(5), [(5, 5, 0), (5, 0, 1)])
    assert _close(traj.positions(10), [(5, 5, 0), (7, 7, 1)])  # the later row of the jump wins
    with pytest.raises(TraceError, match="must name columns time,node,x,y"):
        read_csv_trace(_write(tmp_path, "t,node,x,y\n0,0,0,0\n", "h.csv"))
    bad = _write(tmp_path, "time,node,x,y\n0,0,0,0\n1,0,oops,0\n", "b.csv")
    with pytest.warns(TraceWarning, match=r"b\.csv:3: time, x, y \(and z\) must be numbers"):
        assert read_csv_trace(bad).n == 1
    with pytest.raises(TraceError, match=r"b\.csv:3"):
        read_csv_trace(bad, strict=True)


def test_cli_output_reads_back_as_a_csv_trace(tmp_path):
    src = _write(tmp_path, '$node_(2) set X_ 1\n$ns_ at 0 "$node_(2) setdest 1 9 3"\n', "a.tcl")
    out = CliRunner().invoke(mobility, ["positions", str(src), "--at", "0,1,2,3"]).output
    back = read_csv_trace(_write(tmp_path, out, "back.csv"))
    assert back.ids == [2] and _close(back.positions(1.5), [(1, 4.5, 0)])


# ---------------------------------------------------------------------------------------------
# format detection and load_trace
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, fmt", [
    ("a.ns_movements", "", "ns2"), ("a.tcl", "", "ns2"), ("a.movements", "", "bonnmotion"),
    ("a.movements.gz", "", "bonnmotion"), ("a.csv", "", "csv"),
    ("a.txt", "# ns-2\n$node_(0) set X_ 1\n", "ns2"),
    ("a.txt", "0 10 0 100 0 100\n0 1 2 3\n", "one"),
    ("a.txt", "time,node,x,y\n0,0,0,0\n", "csv"),
    ("a.txt", "0 1 2 3 4 5 6 7 8\n0 1 1\n", "bonnmotion"),
    ("a.txt", "#3D\n0 1 2 3\n", "bonnmotion"),
])
def test_detect_format(tmp_path, name, text, fmt):
    assert detect_format(_write(tmp_path, text, name)) == fmt


def test_load_trace_errors(tmp_path):
    with pytest.raises(TraceError, match="no such trace file"):
        load_trace(tmp_path / "missing.tcl")
    with pytest.raises(TraceError, match="did you mean 'ns2'"):
        load_trace(tmp_path / "missing.tcl", format="ns3")
    with pytest.raises(TraceError, match="cannot tell the trace format"):
        load_trace(_write(tmp_path, "hello world\n", "x.dat"))
