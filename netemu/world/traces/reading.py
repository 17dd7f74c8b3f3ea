"""The boundary between a trace file and netemu: limits, number checks, streaming, reporting.

Every reader goes through these helpers, so a hostile or broken file ends in a warning or an
error that names ``file:line``, never in a traceback:

* a line longer than :data:`MAX_LINE` characters (ns-2, ONE, CSV; :data:`MAX_BONNMOTION_LINE` for
  BonnMotion, whose lines hold a whole node) is never held in memory whole: the reader skips it
  as a bad line (BonnMotion: an error), reading on in bounded pieces;
* numbers are plain decimals (ASCII digits; no ``inf``, ``nan``, hex or ``1_000``); coordinates
  and speeds must be within ``±``:data:`MAX_ABS` (m, m/s), times within ``[0,`` :data:`MAX_ABS`
  ``]`` s (ns-2: within ns-3's clock, see :mod:`.ns2`), node ids within ``[0,``
  :data:`MAX_NODE_ID` ``]``; a value beyond is reported with the value and the bound;
* a file that cannot be read at all (a broken ``.gz``, a directory) is a :class:`TraceInputError`.

:class:`TraceInputError` is both a :class:`~netemu.errors.TraceError` (what the trace API
raises) and a :class:`~netemu.errors.ScenarioError` (a file a scenario points to is wrong).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import re
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import numpy as np

from netemu.errors import ScenarioError, TraceError

MAX_LINE = 65_536  # characters in one line of an ns-2, ONE or CSV trace (newline not counted)
MAX_BONNMOTION_LINE = 1 << 26  # a BonnMotion line is a whole node: about a million waypoints
MAX_ABS = 1e12  # bound on |coordinate| (m), speed (m/s) and time (s)
MAX_NODE_ID = 2**31 - 1  # ns-3 node ids are 32-bit
CHUNK_CHARS = 1 << 20  # what the chunked readers parse at a time

# A decimal number as C's strtod reads one, minus hex, inf and nan (Python's float() would also
# take "1_000", "inf", "nan" and non-ASCII digits, which no trace writer means).
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ID = re.compile(r"\+?0*([0-9]{1,10})")
_ID_SYNTAX = re.compile(r"\+?[0-9]+")
_SHOWN = 100  # characters of a bad line quoted in a message
T = TypeVar("T")


class TraceInputError(TraceError, ScenarioError):
    """A trace cannot be read (or, ``strict=True``, one of its lines cannot)."""


class TraceWarning(UserWarning):
    """A line of a trace was skipped (``strict=True`` turns these into errors)."""


def number(token: str) -> float | None:
    """``float(token)`` for a plain, finite decimal number, else ``None``."""
    if not _NUMBER.fullmatch(token):
        return None
    value = float(token)
    return value if np.isfinite(value) else None


def is_number(token: str) -> bool:
    """Whether ``token`` is written as a plain decimal number (finite or not)."""
    return _NUMBER.fullmatch(token) is not None


def whole(token: str) -> int | None:
    """The integer of a plain whole number ``0 … MAX_NODE_ID`` (``+`` and leading zeros allowed)."""
    m = _ID.fullmatch(token)
    if m is None:
        return None
    value = int(m[1])
    return value if value <= MAX_NODE_ID else None


def check(name: str, token: str, unit: str, *, low: float = -MAX_ABS, high: float = MAX_ABS,
          not_a_number: str | None = None) -> tuple[float | None, str | None]:
    """``(value, None)`` if ``token`` is a number in ``[low, high]``, else ``(None, why)``.

    ``why`` names the value and the bound; ``not_a_number`` replaces the reason given for a token
    that is not a number at all.
    """
    if not _NUMBER.fullmatch(token):
        return None, not_a_number or f"{name} is not a number ({_clip(token)!r})"
    value = float(token)
    if low <= value <= high:
        return value, None
    return None, out_of_bounds(name, token, value, unit, low, high)


def out_of_bounds(name: str, shown: str, value: float, unit: str, low: float = -MAX_ABS,
                  high: float = MAX_ABS) -> str:
    """Why ``value`` (written ``shown``) is not in ``[low, high]``."""
    if value < 0 <= low:
        return f"{name} is negative ({_clip(shown)})"
    bound = f"±{high:g}" if low == -high else f"{high:g}"
    return f"{name} = {_clip(shown)} is beyond {bound} {unit} (a unit error? fix the number)"


def bad_id(token: str, default: str = "node id must be a whole number >= 0") -> str:
    """Why ``token`` is not a node id: beyond :data:`MAX_NODE_ID`, or ``default``."""
    if _ID_SYNTAX.fullmatch(token):
        return f"node id {_clip(token)} is beyond {MAX_NODE_ID}"
    return default


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}… ({len(text):,} characters)"


def overlong(length: int, limit: int = MAX_LINE) -> str:
    return (f"line of {length:,} characters is over the {limit:,}-character limit "
            f"(a binary or corrupt file? split or fix the line)")


class Reporter:
    """Warns about, or (strict) raises on, a bad line, always naming ``file:line``.

    The first ``limit`` skipped lines get a warning each; :meth:`finish` sums up the rest.
    """

    limit = 10

    def __init__(self, path: Path | str, strict: bool) -> None:
        self.path, self.strict, self.skipped = str(path), bool(strict), 0

    def bad(self, lineno: int, reason: str, line: str) -> None:
        where = f"{self.path}:{lineno}: {reason}: {_clip(line.strip())!r}"
        if self.strict:
            raise TraceInputError(f"{where} (fix or delete the line; strict=False skips bad lines "
                                  f"with a warning)")
        self.skipped += 1
        if self.skipped <= self.limit:
            warnings.warn(f"{where} (line skipped; strict=True makes this an error)", TraceWarning,
                          stacklevel=3)

    def finish(self) -> None:
        if self.skipped > self.limit:
            warnings.warn(f"{self.path}: {self.skipped - self.limit} more malformed lines skipped "
                          f"({self.skipped} in all)", TraceWarning, stacklevel=4)

    def fail(self, lineno: int | None, message: str) -> TraceInputError:
        where = f"{self.path}:{lineno}" if lineno else self.path
        return TraceInputError(f"{where}: {message}")


def open_text(path: Path) -> IO[str]:
    """Open a trace as text, transparently gunzipping ``*.gz``."""
    if Path(path).suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def guarded(reader: Callable[..., T]) -> Callable[..., T]:
    """Run ``reader(path, …)`` inside :func:`readable`."""
    @functools.wraps(reader)
    def read(path: Path | str, *args, **kwargs) -> T:
        with readable(path):
            return reader(path, *args, **kwargs)
    return read


@contextlib.contextmanager
def readable(path: Path | str) -> Iterator[None]:
    """Turn an unreadable file (I/O error, broken gzip) into a :class:`TraceInputError`."""
    try:
        yield
    except (OSError, EOFError, zlib.error) as e:
        raise TraceInputError(f"{path}: cannot read the trace: {e}") from None


def _skip_rest(f: IO[str], seen: str) -> int:
    """Read past the end of an overlong line in bounded pieces; returns the characters skipped."""
    n = 0
    while seen and not seen.endswith("\n"):
        seen = f.readline(CHUNK_CHARS)
        n += len(seen)
    return n - (1 if seen.endswith("\n") else 0)


def lines(f: IO[str], max_line: int = MAX_LINE) -> Iterator[tuple[int, str, int]]:
    """``(lineno, line, 0)`` per line; an overlong line gives ``(lineno, its head, its length)``.

    Memory stays bounded by ``max_line`` whatever the file holds.
    """
    lineno = 0
    while True:
        line = f.readline(max_line + 1)
        if not line:
            return
        lineno += 1
        if len(line) > max_line and not (len(line) == max_line + 1 and line.endswith("\n")):
            yield lineno, line[:_SHOWN], len(line) + _skip_rest(f, line)
        else:
            yield lineno, line, 0


def chunks(f: IO[str], max_line: int = MAX_LINE) -> Iterator[tuple[int, str, int]]:
    """Whole lines in pieces of about :data:`CHUNK_CHARS`: ``(first lineno, text, 0)``.

    ``text`` holds complete lines joined by ``\\n`` (no final newline). A line over ``max_line``
    characters that does not fit a piece comes alone as ``(lineno, its head, its length)``; a
    shorter overlong line stays inside its piece (the per-line parsers check lengths).
    """
    lineno, carry = 1, ""
    while True:
        block = f.read(CHUNK_CHARS)
        if not block:
            break
        buf = carry + block
        cut = buf.rfind("\n")
        if cut < 0:
            carry = buf
        else:
            yield lineno, buf[:cut], 0
            lineno += buf.count("\n", 0, cut) + 1
            carry = buf[cut + 1:]
        if len(carry) > max_line:
            yield lineno, carry[:_SHOWN], len(carry) + _skip_rest(f, carry)
            lineno, carry = lineno + 1, ""
    if carry:
        yield lineno, carry, 0


def floats(rows: list) -> np.ndarray:
    """float64 of strings (or tuples of strings) that a regex limited to ``[-+.0-9eE]``.

    Within that alphabet ``float()`` (which numpy calls) accepts exactly what :func:`number`'s
    grammar does; a string that is not a number becomes NaN, which :func:`within` rejects, so
    its row goes to the exact per-line parser.
    """
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        cells = np.array(rows, dtype=object)
        flat = [float(s) if _NUMBER.fullmatch(s) else np.nan for s in cells.ravel().tolist()]
        return np.array(flat, dtype=np.float64).reshape(cells.shape)


def within(values: np.ndarray, low: float = -MAX_ABS, high: float = MAX_ABS) -> np.ndarray:
    """Rows whose values all lie in ``[low, high]`` (NaN never does)."""
    ok = (values >= low) & (values <= high)
    return ok if ok.ndim == 1 else ok.all(axis=1)
