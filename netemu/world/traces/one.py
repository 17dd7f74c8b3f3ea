"""The ONE simulator's ``ExternalMovement`` traces.

The first line is a header ``minTime maxTime minX maxX minY maxY`` (ONE also accepts and ignores
``minZ maxZ``); every other line is a sample ``time id x y`` saying where node ``id`` is at
``time``. Like ONE's ``ExternalMovementReader`` (normalize on, its default), times and
coordinates are shifted by the header's minima, so a trace recorded in UTM metres starting at
``minTime`` plays from t = 0 in an area starting at (0, 0). Blank lines and lines starting with
``#`` are skipped. Between two samples of a node, the node moves linearly.

Two differences from ONE, both for robustness: ids must be whole numbers (they become node ids),
and a node's samples need not be sorted by time (they are sorted, stably); ONE also ignores ids
that are not in the first time instant, while netemu keeps every id it finds.
"""

from __future__ import annotations

from pathlib import Path

from netemu.world.trajectory import Trajectories
from netemu.world.traces import Reporter, from_samples, number, open_text


def read_one(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of a ONE ``ExternalMovement`` file (see the module doc)."""
    path = Path(path)
    report = Reporter(path, strict)
    samples: dict[int, list[tuple]] = {}
    header = None
    with open_text(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            tok = line.split()
            if header is None:
                header = [number(t) for t in tok]
                if len(header) not in (6, 8) or None in header:
                    raise report.fail(lineno, f"the first line must be the ONE header "
                                      f"'minTime maxTime minX maxX minY maxY', found {line!r}")
                t0, _, x0, _, y0, _ = header[:6]
                continue
            if len(tok) < 4:
                report.bad(lineno, "expected 'time id x y'", raw)
                continue
            t, x, y = number(tok[0]), number(tok[2]), number(tok[3])
            if t is None or x is None or y is None:
                report.bad(lineno, "time, x and y must be numbers", raw)
                continue
            if not tok[1].isdigit():
                report.bad(lineno, "node id must be a whole number >= 0", raw)
                continue
            samples.setdefault(int(tok[1]), []).append((t - t0, x - x0, y - y0, 0.0))
    report.finish()
    if header is None:
        raise report.fail(None, "empty file: expected the ONE header 'minTime maxTime minX maxX minY maxY'")
    return from_samples(samples, path)
