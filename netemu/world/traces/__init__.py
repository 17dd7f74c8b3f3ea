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
``file:line``; with ``strict=True`` it raises :class:`~netemu.errors.TraceError` instead. Errors
that make the whole file meaningless (no header, nothing readable, a BonnMotion node line that
is broken, since skipping it would renumber the nodes after it) always raise.
"""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path
from typing import IO

import numpy as np

from netemu.errors import TraceError, did_you_mean
from netemu.world.trajectory import Trajectories

FORMATS = ("auto", "ns2", "one", "bonnmotion", "csv")

# A decimal number as C's strtod reads one, minus hex, inf and nan (Python's float() would also
# take "1_000", "inf" and "nan", which no trace writer means).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class TraceWarning(UserWarning):
    """A line of a trace was skipped (``strict=True`` turns these into ``TraceError``)."""


def number(token: str) -> float | None:
    """``float(token)`` for a plain, finite decimal number, else ``None``."""
    if not _NUMBER.fullmatch(token):
        return None
    value = float(token)
    return value if np.isfinite(value) else None


class Reporter:
    """Warns about, or (strict) raises on, a bad line, always naming ``file:line``.

    The first ``limit`` skipped lines get a warning each; :meth:`finish` sums up the rest.
    """

    limit = 10

    def __init__(self, path: Path | str, strict: bool) -> None:
        self.path, self.strict, self.skipped = str(path), bool(strict), 0

    def bad(self, lineno: int, reason: str, line: str) -> None:
        where = f"{self.path}:{lineno}: {reason}: {line.strip()!r}"
        if self.strict:
            raise TraceError(where)
        self.skipped += 1
        if self.skipped <= self.limit:
            warnings.warn(f"{where} (line skipped; strict=True makes this an error)", TraceWarning,
                          stacklevel=3)

    def finish(self) -> None:
        if self.skipped > self.limit:
            warnings.warn(f"{self.path}: {self.skipped - self.limit} more malformed lines skipped "
                          f"({self.skipped} in all)", TraceWarning, stacklevel=4)

    def fail(self, lineno: int | None, message: str) -> TraceError:
        where = f"{self.path}:{lineno}" if lineno else self.path
        return TraceError(f"{where}: {message}")


def open_text(path: Path) -> IO[str]:
    """Open a trace as text, transparently gunzipping ``*.gz``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def from_samples(samples: dict[int, list[tuple]], path: Path | str) -> Trajectories:
    """Trajectories from ``{id: [(t, x, y, z), …]}``: sorted by id, each node's samples by time.

    The sort is stable, so two samples of a node at the same time stay in file order and make a
    jump whose later sample wins (as :class:`Trajectories` defines).
    """
    if not samples:
        raise TraceError(f"{path}: no node positions found in the trace")
    ids = sorted(samples)
    times, points = [], []
    for i in ids:
        arr = np.asarray(samples[i], dtype=np.float64).reshape(-1, 4)
        order = np.argsort(arr[:, 0], kind="stable")
        times.append(arr[order, 0])
        points.append(arr[order, 1:])
    return Trajectories(times, points, ids)


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
    with open_text(path) as f:
        head = [line.strip() for _, line in zip(range(200), f)]
    if any("$node_(" in line for line in head):
        return "ns2"
    if "#3D" in head:
        return "bonnmotion"
    lines = [line for line in head if line and not line.startswith("#")]
    if lines and lines[0].replace(" ", "").lower().startswith("time,node"):
        return "csv"
    if lines:
        first = lines[0].split()
        rest = [line.split() for line in lines[1:]]
        if len(first) in (6, 8) and all(number(x) is not None for x in first) and rest \
                and all(len(r) == 4 for r in rest):
            return "one"
        if all(len(r) % 3 == 0 and all(number(x) is not None for x in r) for r in map(str.split, lines)):
            return "bonnmotion"
    raise TraceError(f"{path}: cannot tell the trace format from its name or first lines; "
                     f"pass format = one of {', '.join(FORMATS[1:])}")


def load_trace(path: Path | str, format: str = "auto", strict: bool = False) -> Trajectories:
    """Read the movement trace at ``path`` into :class:`Trajectories` (see the module doc)."""
    path = Path(path)
    if format not in FORMATS:
        raise TraceError(f"trace format {format!r} is unknown{did_you_mean(format, FORMATS)}")
    if not path.is_file():
        raise TraceError(f"{path}: no such trace file")
    if format == "auto":
        format = detect_format(path)
    reader = {"ns2": read_ns2, "one": read_one, "bonnmotion": read_bonnmotion, "csv": read_csv_trace}
    return reader[format](path, strict=strict)


# The readers import the helpers above, so they come last.
from netemu.world.traces.bonnmotion import read_bonnmotion  # noqa: E402
from netemu.world.traces.csvtrace import read_csv_trace  # noqa: E402
from netemu.world.traces.ns2 import read_ns2, replay_ns2, write_ns2  # noqa: E402
from netemu.world.traces.one import read_one  # noqa: E402

__all__ = ["FORMATS", "TraceWarning", "detect_format", "load_trace", "read_bonnmotion",
           "read_csv_trace", "read_ns2", "read_one", "replay_ns2", "write_ns2"]
