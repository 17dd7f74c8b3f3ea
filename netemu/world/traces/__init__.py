"""Movement traces: read ns-2, ONE, BonnMotion and CSV files into :class:`Trajectories`.

One reader per format, each in its own module, each returning the same thing: piecewise-linear
trajectories with one node per id found in the file, sorted by id (node ``k`` of a scenario is
the ``k``-th smallest id).

==============  ==========================================  ==========================================
format          what a file holds                           how it is read
==============  ==========================================  ==========================================
``ns2``         ``$node_(i) set X_ …`` and                  exactly as ns-3's ``Ns2MobilityHelper``
                ``$ns_ at T "$node_(i) setdest x y v"``     (see :mod:`.ns2`)
``one``         ONE ``ExternalMovement``: a header          linear between samples, shifted by the
                ``minTime maxTime minX maxX minY maxY``,    header's minima like ONE does
                then ``time id x y`` lines
``bonnmotion``  BonnMotion native ``.movements[.gz]``:      linear between waypoints; 3-D when the
                one line per node, ``t x y t x y …``        file has ``#3D`` or its ``.params`` has ``z``
``csv``         header ``time,node,x,y[,z]``, one row per   linear between samples
                sample
==============  ==========================================  ==========================================

``strict``: a line that cannot be read is skipped with a :class:`TraceWarning` naming
``file:line``; with ``strict=True`` it raises :class:`TraceInputError` (a
:class:`~netemu.errors.TraceError` and a :class:`~netemu.errors.ScenarioError`) instead. Errors
that make the whole file meaningless (no header, nothing readable, a BonnMotion node line that
is broken, since skipping it would renumber the nodes after it) always raise.

Hostile input is bounded (see :mod:`.reading`): lines over :data:`MAX_LINE` characters,
numbers that are not plain decimals, magnitudes beyond :data:`MAX_ABS` (m, m/s, s), negative
times and node ids beyond :data:`MAX_NODE_ID` are bad lines like any other, reported with
``file:line`` and the value; no input makes a reader fail with anything but
:class:`TraceInputError`.

The ns-2 and ONE readers parse the file in pieces of about a megabyte with one regular
expression per piece and convert the numbers with numpy; lines that the fast expression does not
take (comments, odd spacing, bad values) go through the exact per-line parser, which alone
decides what is accepted and why a line is not. ns-2 planning then runs over all nodes at once
(see :mod:`.ns3plan`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netemu.errors import did_you_mean
from netemu.world.trajectory import Trajectories
from netemu.world.traces.reading import (MAX_ABS, MAX_BONNMOTION_LINE, MAX_LINE, MAX_NODE_ID,
                                         Reporter, TraceInputError, TraceWarning, lines, number,
                                         open_text, readable)

FORMATS = ("auto", "ns2", "one", "bonnmotion", "csv")


def from_arrays(path: Path | str, ids: np.ndarray, t: np.ndarray, xyz: np.ndarray) -> Trajectories:
    """Trajectories from samples ``(id, t, x, y, z)`` in file order: sorted by id, then by time.

    The sorts are stable, so two samples of a node at the same time stay in file order and make
    a jump whose later sample wins (as :class:`Trajectories` defines).
    """
    if len(ids) == 0:
        raise TraceInputError(f"{path}: no node positions found in the trace")
    by_time = np.argsort(t, kind="stable")
    order = by_time[np.argsort(ids[by_time], kind="stable")]
    uniq, counts = np.unique(ids[order], return_counts=True)
    return Trajectories.from_flat(uniq.tolist(), counts, t[order], xyz[order])


def detect_format(path: Path | str) -> str:
    """Guess a trace's format from its name, then from its first lines.

    ``.ns_movements``/``.tcl``/``.ns2`` or a ``$node_(`` in the text → ns2; ``.movements[.gz]`` →
    bonnmotion; ``.csv`` or a ``time,node,…`` header → csv; a header of 6 or 8 numbers followed by
    ``time id x y`` lines → one; lines of 3k numbers → bonnmotion. Pass ``format`` explicitly when
    a file could be read more than one way.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".ns_movements", ".tcl", ".ns2")):
        return "ns2"
    if name.endswith((".movements", ".movements.gz")):
        return "bonnmotion"
    if name.endswith(".csv"):
        return "csv"
    with readable(path), open_text(path) as f:
        head = [line.strip() if not long else "" for (_, line, long), _ in zip(lines(f), range(200))]
    if any("$node_(" in line for line in head):
        return "ns2"
    if "#3D" in head:
        return "bonnmotion"
    body = [line for line in head if line and not line.startswith("#")]
    if body and body[0].replace(" ", "").lower().startswith("time,node"):
        return "csv"
    if body:
        first = body[0].split()
        rest = [line.split() for line in body[1:]]
        if len(first) in (6, 8) and all(number(x) is not None for x in first) and rest \
                and all(len(r) == 4 for r in rest):
            return "one"
        if all(len(r) % 3 == 0 and all(number(x) is not None for x in r) for r in map(str.split, body)):
            return "bonnmotion"
    raise TraceInputError(f"{path}: cannot tell the trace format from its name or first lines; "
                          f"pass format = one of {', '.join(FORMATS[1:])}")


def load_trace(path: Path | str, format: str = "auto", strict: bool = False) -> Trajectories:
    """Read the movement trace at ``path`` into :class:`Trajectories` (see the module doc)."""
    path = Path(path)
    if format not in FORMATS:
        raise TraceInputError(f"trace format {format!r} is unknown{did_you_mean(format, FORMATS)}")
    if not path.is_file():
        raise TraceInputError(f"{path}: no such trace file")
    if format == "auto":
        format = detect_format(path)
    reader = {"ns2": read_ns2, "one": read_one, "bonnmotion": read_bonnmotion, "csv": read_csv_trace}
    with readable(path):
        return reader[format](path, strict=strict)


# The readers import the helpers above, so they come last.
from netemu.world.traces.bonnmotion import read_bonnmotion  # noqa: E402
from netemu.world.traces.csvtrace import read_csv_trace  # noqa: E402
from netemu.world.traces.ns2 import read_ns2, replay_ns2, write_ns2  # noqa: E402
from netemu.world.traces.one import read_one  # noqa: E402

__all__ = ["FORMATS", "MAX_ABS", "MAX_BONNMOTION_LINE", "MAX_LINE", "MAX_NODE_ID", "Reporter",
           "TraceInputError", "TraceWarning", "detect_format", "from_arrays", "load_trace", "number",
           "open_text", "read_bonnmotion", "read_csv_trace", "read_ns2", "read_one", "replay_ns2",
           "write_ns2"]
