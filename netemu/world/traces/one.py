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

Bounds (:mod:`.reading`): lines up to 65,536 characters, header values and coordinates within
±1e12 m, sample times in [0, 1e12] s, ids up to 2^31 - 1; other lines are bad lines. The file is
parsed in pieces of about a megabyte with one regular expression each; pieces holding anything
but plain sample lines are read line by line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from netemu.world.trajectory import Trajectories
from netemu.world.traces import from_arrays
from netemu.world.traces.reading import (MAX_LINE, MAX_NODE_ID, Reporter, bad_id, check, chunks,
                                         floats, guarded, is_number, open_text, overlong, whole,
                                         within)

_N = r"([-+.0-9eE]{1,64})"
_S = r"[ \t]{1,64}"
_SAMPLE = re.compile(rf"^[ \t]{{0,64}}{_N}{_S}([0-9]{{1,10}}){_S}{_N}{_S}{_N}[ \t]{{0,64}}$", re.M)
_HEADER = "the first line must be the ONE header 'minTime maxTime minX maxX minY maxY'"


def _sample(raw: str) -> tuple | str | None:
    """``(time, id, x, y)``, ``None`` for a blank or comment line, or why the line is bad."""
    if len(raw) > MAX_LINE:
        return overlong(len(raw))
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    tok = line.split()
    if len(tok) < 4:
        return "expected 'time id x y'"
    if not (is_number(tok[0]) and is_number(tok[2]) and is_number(tok[3])):
        return "time, x and y must be numbers"
    if not (tok[1].isascii() and tok[1].isdigit()):
        return "node id must be a whole number >= 0"
    node = whole(tok[1])
    if node is None:
        return bad_id(tok[1])
    t, why_t = check("time", tok[0], "s", low=0.0)
    x, why_x = check("x", tok[2], "m")
    y, why_y = check("y", tok[3], "m")
    return why_t or why_x or why_y or (t, node, x, y)


def _header(line: str, lineno: int, report: Reporter) -> list[float]:
    tok = line.split()
    if len(tok) not in (6, 8) or not all(map(is_number, tok)):
        raise report.fail(lineno, f"{_HEADER}, found {line[:100]!r}")
    values = []
    for name, token in zip(("minTime", "maxTime", "minX", "maxX", "minY", "maxY", "minZ", "maxZ"), tok):
        value, why = check(name, token, "m" if "Time" not in name else "s")
        if why:
            raise report.fail(lineno, f"ONE header: {why}")
        values.append(value)
    return values


@guarded
def read_one(path: Path | str, strict: bool = False) -> Trajectories:
    """Trajectories of a ONE ``ExternalMovement`` file (see the module doc)."""
    path = Path(path)
    report = Reporter(path, strict)
    parts: list[np.ndarray] = []  # [k, 4] rows (time, id, x, y), unshifted
    header = None
    with open_text(path) as f:
        for first, text, long in chunks(f):
            if long:
                if header is None:
                    raise report.fail(first, f"{_HEADER}; found a {overlong(long)}")
                report.bad(first, overlong(long), text)
                continue
            if header is not None:
                rows = _SAMPLE.findall(text)
                if len(rows) == text.count("\n") + 1:
                    v = floats(rows)
                    if (within(v[:, 0], 0.0) & (v[:, 1] <= MAX_NODE_ID) & within(v[:, 2:4])).all():
                        parts.append(v)
                        continue
            got = []
            for i, raw in enumerate(text.split("\n")):
                if header is None:
                    if len(raw) > MAX_LINE:
                        raise report.fail(first + i, f"{_HEADER}; found a {overlong(len(raw))}")
                    line = raw.strip()
                    if line and not line.startswith("#"):
                        header = _header(line, first + i, report)
                    continue
                sample = _sample(raw)
                if isinstance(sample, str):
                    report.bad(first + i, sample, raw)
                elif sample is not None:
                    got.append(sample)
            if got:
                parts.append(np.array(got, dtype=np.float64))
    report.finish()
    if header is None:
        raise report.fail(None, "empty file: expected the ONE header 'minTime maxTime minX maxX minY maxY'")
    v = np.concatenate([np.empty((0, 4))] + parts)
    t0, _, x0, _, y0, _ = header[:6]
    xyz = np.column_stack([v[:, 2] - x0, v[:, 3] - y0, np.zeros(len(v))])
    return from_arrays(path, v[:, 1].astype(np.int64), v[:, 0] - t0, xyz)
