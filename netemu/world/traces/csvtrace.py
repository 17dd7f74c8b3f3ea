"""CSV traces: one row per sample, header ``time,node,x,y`` and optionally ``z``.

Columns are found by name, in any order (other columns are ignored); ``node`` is a whole number.
Between two samples of a node the node moves linearly; before its first and after its last it
stands still. Rows need not be sorted: each node's samples are sorted by time (stably, so two
rows of a node at one time make a jump, the later row winning). Blank lines and lines starting
with ``#`` are skipped. This is also what ``netemu mobility positions`` prints, so its output
reads back as a trace.
"""

from __future__ import annotations

import csv
from pathlib import Path

from netemu.world.trajectory import Trajectories
from netemu.world.traces import Reporter, from_samples, number, open_text

REQUIRED = ("time", "node", "x", "y")


def read_csv_trace(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of a ``time,node,x,y[,z]`` CSV file (see the module doc)."""
    path = Path(path)
    report = Reporter(path, strict)
    samples: dict[int, list[tuple]] = {}
    with open_text(path) as f:
        lines = ((i, line) for i, line in enumerate(f, 1) if line.strip() and not line.startswith("#"))
        col = None
        for lineno, raw in lines:
            row = [c.strip() for c in next(csv.reader([raw]))]
            if col is None:
                names = [c.lower() for c in row]
                missing = [c for c in REQUIRED if c not in names]
                if missing:
                    raise report.fail(lineno, f"the CSV header must name columns time,node,x,y[,z]; "
                                      f"missing {', '.join(missing)} in {raw.strip()!r}")
                col = {c: names.index(c) for c in (*REQUIRED, "z") if c in names}
                continue
            if len(row) < len(names):
                report.bad(lineno, f"expected {len(names)} columns", raw)
                continue
            vals = {c: number(row[i]) for c, i in col.items() if c != "node"}
            if None in vals.values():
                report.bad(lineno, "time, x, y (and z) must be numbers", raw)
                continue
            if not row[col["node"]].isdigit():
                report.bad(lineno, "node must be a whole number >= 0", raw)
                continue
            samples.setdefault(int(row[col["node"]]), []).append(
                (vals["time"], vals["x"], vals["y"], vals.get("z", 0.0)))
    report.finish()
    if col is None:
        raise report.fail(None, "empty file: expected a header time,node,x,y[,z]")
    return from_samples(samples, path)
