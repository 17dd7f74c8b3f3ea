"""BonnMotion's native movement files (``scenario.movements`` or ``scenario.movements.gz``).

One line per node, node ``i`` on the ``i``-th line: waypoints ``t1 x1 y1 t2 x2 y2 …`` meaning the
node is at ``(xk, yk)`` at ``tk``, moving linearly in between (a pause repeats a position). A 3-D
scenario writes ``t x y z`` quadruples; BonnMotion marks it with a ``#3D`` line in the file and a
``z=…`` key in the sibling ``scenario.params``; either one makes this reader read quadruples.
(The ``dim=`` key that RandomWaypoint writes to ``.params`` is *not* about 3-D: it restricts
movement to x only, x or y, or x and y.) Lines starting with ``#`` are comments.

A broken node line is always an error, whatever ``strict`` says: skipping it would renumber
every node after it. Broken includes absurd (:mod:`.reading`): a line over 64 Mi characters
(about a million waypoints), times outside [0, 1e12] s, coordinates beyond ±1e12 m.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from netemu.world.trajectory import Trajectories
from netemu.world.traces import from_arrays
from netemu.world.traces.reading import (MAX_ABS, MAX_BONNMOTION_LINE, Reporter, guarded, is_number,
                                         lines, open_text, out_of_bounds, overlong, within)

_ODD = re.compile(r"[^-+.0-9eE \t\r\n]")  # a character no plain number or blank is made of


def _params_say_3d(path: Path) -> bool:
    base = path.name[:-3] if path.name.endswith(".gz") else path.name
    if base.endswith(".movements"):
        base = base[: -len(".movements")]
    params = path.with_name(base + ".params")
    if not params.is_file():
        return False
    with open(params, encoding="utf-8", errors="replace") as f:
        return any(line.split("=", 1)[0].strip() == "z" for _, line, long in lines(f) if not long)


def _values(raw: str) -> np.ndarray | int:
    """The numbers of a node line, or how many fields it has when some are not numbers."""
    tok = raw.split()
    if _ODD.search(raw) is None:
        try:
            return np.array(tok, dtype=np.float64)
        except ValueError:
            pass
    if not all(map(is_number, tok)):
        return len(tok)
    return np.array([float(t) for t in tok], dtype=np.float64)


@guarded
def read_bonnmotion(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of a BonnMotion ``.movements[.gz]`` file (see the module doc)."""
    path = Path(path)
    report = Reporter(path, strict)
    nodes: list[tuple[int, np.ndarray | int | str | None]] = []  # (lineno, what the line holds)
    blanks: list[int] = []
    three = _params_say_3d(path)
    with open_text(path) as f:
        for lineno, raw, long in lines(f, MAX_BONNMOTION_LINE):
            if not long and raw.lstrip().startswith("#"):
                three = three or raw.strip() == "#3D"
                continue
            if not long and not raw.strip():
                blanks.append(lineno)  # an error only if a node line follows
                continue
            nodes += [(b, None) for b in blanks]
            blanks = []
            nodes.append((lineno, overlong(long, MAX_BONNMOTION_LINE) if long else _values(raw)))
    width = 4 if three else 3
    what = "t x y z" if three else "t x y"
    ids, parts = [], []
    for node, (lineno, vals) in enumerate(nodes):
        if vals is None:
            raise report.fail(lineno, f"node {node} has no waypoints (BonnMotion writes one line per node)")
        if isinstance(vals, str):
            raise report.fail(lineno, f"node {node}: {vals}")
        if isinstance(vals, int) or len(vals) % width:
            count = vals if isinstance(vals, int) else len(vals)
            raise report.fail(lineno, f"node {node}: expected numbers in groups of {width} ({what}), "
                              f"found {count} fields{' with non-numbers' if isinstance(vals, int) else ''}")
        rows = vals.reshape(-1, width)
        bad_t = ~within(rows[:, 0], 0.0)
        bad_p = ~within(rows[:, 1:])
        if bad_t.any() or bad_p.any():
            k = int(np.flatnonzero(bad_t | bad_p)[0])
            name, col = ("t", 0) if bad_t[k] else next(
                (n, c) for n, c in zip("xyz", range(1, width)) if not within(rows[k, c:c + 1])[0])
            value = float(rows[k, col])
            why = out_of_bounds(name, repr(value), value, "s" if col == 0 else "m",
                                low=0.0 if col == 0 else -MAX_ABS)
            raise report.fail(lineno, f"node {node}: waypoint {k + 1}: {why}")
        if (np.diff(rows[:, 0]) < 0).any():
            raise report.fail(lineno, f"node {node}: waypoint times must not decrease")
        ids.append(np.full(len(rows), node, dtype=np.int64))
        parts.append(rows if three else np.column_stack([rows, np.zeros(len(rows))]))
    v = np.concatenate([np.empty((0, 4))] + parts)
    return from_arrays(path, np.concatenate([np.empty(0, np.int64)] + ids), v[:, 0], v[:, 1:])
