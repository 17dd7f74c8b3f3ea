"""BonnMotion's native movement files (``scenario.movements`` or ``scenario.movements.gz``).

One line per node, node ``i`` on the ``i``-th line: waypoints ``t1 x1 y1 t2 x2 y2 …`` meaning the
node is at ``(xk, yk)`` at ``tk``, moving linearly in between (a pause repeats a position). A 3-D
scenario writes ``t x y z`` quadruples; BonnMotion marks it with a ``#3D`` line in the file and a
``z=…`` key in the sibling ``scenario.params``; either one makes this reader read quadruples.
(The ``dim=`` key that RandomWaypoint writes to ``.params`` is *not* about 3-D: it restricts
movement to x only, x or y, or x and y.) Lines starting with ``#`` are comments.

A broken node line is always an error, whatever ``strict`` says: skipping it would renumber
every node after it.
"""

from __future__ import annotations

from pathlib import Path

from netemu.world.trajectory import Trajectories
from netemu.world.traces import Reporter, from_samples, number, open_text


def _params_say_3d(path: Path) -> bool:
    base = path.name[:-3] if path.name.endswith(".gz") else path.name
    if base.endswith(".movements"):
        base = base[: -len(".movements")]
    params = path.with_name(base + ".params")
    if not params.is_file():
        return False
    keys = (line.split("=", 1)[0].strip() for line in params.read_text(errors="replace").splitlines())
    return "z" in keys


def read_bonnmotion(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of a BonnMotion ``.movements[.gz]`` file (see the module doc)."""
    path = Path(path)
    report = Reporter(path, strict)
    with open_text(path) as f:
        lines = list(enumerate(f, 1))
    dim = 3 if _params_say_3d(path) or any(raw.strip() == "#3D" for _, raw in lines) else 2
    width = dim + 1
    body = [(i, raw) for i, raw in lines if not raw.lstrip().startswith("#")]
    while body and not body[-1][1].strip():
        body.pop()
    samples: dict[int, list[tuple]] = {}
    for node, (lineno, raw) in enumerate(body):
        vals = [number(t) for t in raw.split()]
        if not vals:
            raise report.fail(lineno, f"node {node} has no waypoints (BonnMotion writes one line per node)")
        if None in vals or len(vals) % width:
            what = "t x y z" if dim == 3 else "t x y"
            raise report.fail(lineno, f"node {node}: expected numbers in groups of {width} ({what}), "
                              f"found {len(vals)} fields{' with non-numbers' if None in vals else ''}")
        rows = [tuple(vals[j:j + width]) for j in range(0, len(vals), width)]
        if any(b[0] < a[0] for a, b in zip(rows, rows[1:])):
            raise report.fail(lineno, f"node {node}: waypoint times must not decrease")
        samples[node] = [(r[0], r[1], r[2], r[3] if dim == 3 else 0.0) for r in rows]
    return from_samples(samples, path)
