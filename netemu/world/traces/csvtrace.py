"""CSV traces: one row per sample, header ``time,node,x,y`` and optionally ``z``.

Columns are found by name, in any order (other columns are ignored); ``node`` is a whole number.
Between two samples of a node the node moves linearly; before its first and after its last it
stands still. Rows need not be sorted: each node's samples are sorted by time (stably, so two
rows of a node at one time make a jump, the later row winning). Blank lines and lines starting
with ``#`` are skipped. This is also what ``netemu mobility positions`` prints, so its output
reads back as a trace.

Bounds (:mod:`.reading`): lines up to 65,536 characters (longer ones are never handed to the
``csv`` module, whose own field limit is 131,072), times in [0, 1e12] s, coordinates within
±1e12 m, node ids up to 2^31 - 1; other rows are bad lines.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from netemu.world.trajectory import Trajectories
from netemu.world.traces import from_arrays
from netemu.world.traces.reading import (MAX_ABS, Reporter, bad_id, check, guarded, is_number, lines,
                                         open_text, overlong, whole)

REQUIRED = ("time", "node", "x", "y")


def _row(raw: str) -> list[str] | str:
    try:
        return [c.strip() for c in next(csv.reader([raw]))]
    except (csv.Error, StopIteration) as e:
        return f"not a CSV row ({e or 'empty'})"


@guarded
def read_csv_trace(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of a ``time,node,x,y[,z]`` CSV file (see the module doc)."""
    path = Path(path)
    report = Reporter(path, strict)
    samples: list[tuple] = []
    col = None
    with open_text(path) as f:
        for lineno, raw, long in lines(f):
            if long:
                if col is None:
                    raise report.fail(lineno, f"the CSV header must name columns time,node,x,y[,z]; "
                                      f"found a {overlong(long)}")
                report.bad(lineno, overlong(long), raw)
                continue
            if not raw.strip() or raw.startswith("#"):
                continue
            row = _row(raw)
            if col is None:
                names = [c.lower() for c in row] if not isinstance(row, str) else []
                missing = [c for c in REQUIRED if c not in names]
                if missing:
                    raise report.fail(lineno, f"the CSV header must name columns time,node,x,y[,z]; "
                                      f"missing {', '.join(missing)} in {raw.strip()[:100]!r}")
                col = {c: names.index(c) for c in (*REQUIRED, "z") if c in names}
                continue
            if isinstance(row, str):
                report.bad(lineno, row, raw)
                continue
            if len(row) < len(names):
                report.bad(lineno, f"expected {len(names)} columns", raw)
                continue
            if not all(is_number(row[i]) for c, i in col.items() if c != "node"):
                report.bad(lineno, "time, x, y (and z) must be numbers", raw)
                continue
            node = row[col["node"]]
            if not (node.isascii() and node.isdigit()) or whole(node) is None:
                report.bad(lineno, bad_id(node) if node.isascii() and node.isdigit()
                           else "node must be a whole number >= 0", raw)
                continue
            vals, why = {}, None
            for c, i in col.items():
                if c != "node" and why is None:
                    vals[c], why = check(c, row[i], "s" if c == "time" else "m",
                                         low=0.0 if c == "time" else -MAX_ABS)
            if why:
                report.bad(lineno, why, raw)
                continue
            samples.append((vals["time"], whole(node), vals["x"], vals["y"], vals.get("z", 0.0)))
    report.finish()
    if col is None:
        raise report.fail(None, "empty file: expected a header time,node,x,y[,z]")
    v = np.array(samples, dtype=np.float64).reshape(-1, 5)
    return from_arrays(path, v[:, 1].astype(np.int64), v[:, 0], v[:, 2:])
