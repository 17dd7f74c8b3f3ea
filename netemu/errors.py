"""Errors a user can cause, each with a message that names the value, its place and the fix.

The CLI prints ``error: <message>`` for these and exits with status 2, without a traceback.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class NetemuError(Exception):
    """Base class of every user-facing error."""


class ScenarioError(NetemuError):
    """A scenario file, a key, a value or a file it points to is wrong."""


class TraceError(NetemuError):
    """A mobility trace cannot be read."""


class ProtocolError(NetemuError):
    """A protocol is unknown or misconfigured."""


def require_file(path, where: str) -> None:
    """Raise the standard error for a scenario file that is not there; ``where`` names the key."""
    from pathlib import Path

    if not Path(path).is_file():
        shown = str(path) if str(path).isprintable() else repr(str(path))
        raise ScenarioError(f"{where}: no such file {shown}; check the path "
                            f"(relative paths start at the scenario's folder)")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or a list of the valid ones."""
    choices = sorted(set(map(str, choices)))
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (valid: {', '.join(choices)})" if choices else ""
