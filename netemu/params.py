"""Parameter declarations (`Key`) and their checks: types, ranges, choices, defaults.

Each table is a mapping ``key -> Key``. ``check_table`` returns a new dict with defaults filled
in, or raises ``ScenarioError`` with one line naming the file, the table and key, the bad value
and the fix. Unknown keys get a "did you mean" suggestion.

Every number has a finite range: a key states ``lo``/``hi``, and where it does not, ``FLOAT_MAX``
and ``INT_MAX`` bound the magnitude (so that a plugin's key cannot be ``1e308``); NaN and the
infinities are refused unless the key says ``finite=False``. Values are shown in messages on one
line and shortened (``show``), keys that are not bare TOML keys are quoted (``show_key``), and
``check_depth`` refuses values nested deeper than ``MAX_DEPTH`` (before anything recurses on them).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from netemu.errors import ScenarioError, did_you_mean

REQUIRED = object()
FLOAT_MAX = 1e12  # |x| bound of a float key that states no lo/hi
INT_MAX = 10**9  # |x| bound of an int key that states no lo/hi
MAX_DEPTH = 32  # tables and lists nested deeper than this are refused
SHOW_CHARS = 60  # values longer than this are shortened in messages


@dataclass(frozen=True)
class Key:
    """One key of a table.

    ``kind``: ``int``, ``float``, ``bool``, ``str``, ``path``, ``pair`` (two floats), ``ints``
    (a list of ints), ``strs`` (a list of non-empty strings), ``table`` (left to the caller),
    ``number_or_dist`` (a number, or a table naming a distribution to draw per item), ``any``.
    ``lo``/``hi`` bound numbers (``lo_open`` makes the lower bound strict; a missing bound is
    ``∓FLOAT_MAX`` or ``∓INT_MAX``), ``finite=False`` lets a float be NaN or infinite (no key of
    netemu does), ``choices`` restricts strings (each entry of ``strs``).
    """

    kind: str
    default: Any = None
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: Sequence[str] | None = None
    doc: str = ""
    example: str = ""
    nullable: bool = False
    extra: dict = field(default_factory=dict)
    finite: bool = True


def _where(source: str, table: str, key: str) -> str:
    head = f"{source}: " if source else ""
    key = show_key(key)
    return f"{head}[{table}] {key}" if table else f"{head}{key}"


_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def show_key(key: Any) -> str:
    """A key as a message shows it: bare keys as they are, others quoted (``'a b'``, ``'\\n'``)
    and shortened, so that a message stays one line."""
    if isinstance(key, str) and key and len(key) <= SHOW_CHARS and set(key) <= _BARE:
        return key
    text = repr(str(key))
    return text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS - 1] + "…"


def show(v: Any, limit: int = SHOW_CHARS) -> str:
    """A value as messages show it (``true``, ``'text'``, ``[1, 2]``, ``{'a': 1}``): on one line,
    at most about ``limit`` characters (longer ones end in ``…``), never more than 3 levels deep."""
    text = _show(v, 0, limit)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _show(v: Any, depth: int, limit: int) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v) if len(v) <= limit - 3 else repr(v[:limit - 6])[:-1] + "…'"
    if isinstance(v, int):
        if v.bit_length() > 200:
            return f"{'-' if v < 0 else ''}(a {len(str(abs(v)))}-digit number)"
        return str(v)
    if isinstance(v, (list, tuple, dict)):
        dict_like = isinstance(v, dict)
        if depth >= 3:
            return "{…}" if dict_like else "[…]"
        items, total = [], 0
        for k, x in (v.items() if dict_like else ((None, x) for x in v)):
            item = _show(x, depth + 1, limit)
            items.append(item if k is None else f"{_show(k, depth + 1, limit)}: {item}")
            total += len(items[-1]) + 2
            if total > limit:
                items.append("…")
                break
        body = ", ".join(items)
        return "{" + body + "}" if dict_like else "[" + body + "]"
    try:
        text = str(v)
    except Exception:  # noqa: BLE001 - a value that cannot even be shown
        text = f"<{type(v).__name__}>"
    return " ".join(text.split())


_fmt = show


def check_depth(value: Any, where: str, limit: int = MAX_DEPTH) -> None:
    """Refuse ``value`` if its tables and lists nest deeper than ``limit`` levels (a scenario needs
    about five); iterative, so that any depth is refused without recursing."""
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children = list(v.values())
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if d >= limit:
            raise ScenarioError(f"{where}: values are nested more than {limit} levels deep (tables in "
                                f"tables or lists in lists); a scenario needs a few levels, so flatten them")
        stack.extend((c, d + 1) for c in children)


def fmt_strs(values: Sequence[str]) -> str:
    """A list of strings as TOML writes it: ``["a", "b"]``."""
    def one(v: str) -> str:
        v = v.replace('\\', '\\\\').replace('"', '\\"')
        v = "".join(c if c.isprintable() else repr(c)[1:-1] for c in v)  # one line: \n, \x96, …
        return '"' + (v if len(v) <= SHOW_CHARS else v[:SHOW_CHARS - 1] + "…") + '"'

    text = "[" + ", ".join(one(v) for v in values[:8]) + (", …]" if len(values) > 8 else "]")
    return text


def check_value(value: Any, spec: Key, where: str) -> Any:
    """Check one value against its ``Key``; return it normalised (ints to floats where needed)."""
    if value is None and spec.nullable:
        return None
    k = spec.kind
    hint = f" (e.g. {spec.example})" if spec.example else ""
    if k == "any" or k == "table":
        return value
    if k == "bool":
        if not isinstance(value, bool):
            raise ScenarioError(f"{where} = {_fmt(value)} must be true or false")
        return value
    if k in ("str", "path"):
        if not isinstance(value, str) or not value:
            raise ScenarioError(f"{where} = {_fmt(value)} must be a non-empty string{hint}")
        if k == "path" and "\x00" in value:
            raise ScenarioError(f"{where} = {_fmt(value)}: a file name cannot hold a NUL character")
        if spec.choices is not None and value not in spec.choices:
            raise ScenarioError(f"{where} = {_fmt(value)} is not one of {', '.join(spec.choices)}"
                                f"{did_you_mean(value, spec.choices)}")
        return value
    if k == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
                value = int(value)
            else:
                raise ScenarioError(f"{where} = {_fmt(value)} must be a whole number{hint}")
        _check_range(value, spec, where)
        return value
    if k == "float":
        value = _float(value, spec, where, value, f"must be a number{hint}")
        _check_range(value, spec, where)
        return value
    if k == "pair":
        if (not isinstance(value, list) or len(value) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)):
            raise ScenarioError(f"{where} = {_fmt(value)} must be a list of two numbers{hint}")
        value = [_float(v, spec, where, value, f"must be a list of two finite numbers{hint}") for v in value]
        for v in value:
            _check_range(v, spec, where, shown=value)
        if value[0] > value[1] and spec.extra.get("ordered", False):
            raise ScenarioError(f"{where} = {_fmt(value)} has min > max; write [min, max]")
        return value
    if k == "ints":
        if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ScenarioError(f"{where} = {_fmt(value)} must be a list of whole numbers{hint}")
        for v in value:
            _check_range(v, spec, where, shown=value)
        return list(value)
    if k == "strs":
        if not isinstance(value, list) or any(not isinstance(v, str) or not v for v in value):
            raise ScenarioError(f"{where} = {_fmt(value)} must be a list of non-empty strings{hint}")
        for v in value:
            if spec.choices is not None and v not in spec.choices:
                raise ScenarioError(f"{where} = {fmt_strs(value)}: {v!r} is not one of "
                                    f"{', '.join(spec.choices)}{did_you_mean(v, spec.choices)}")
        return list(value)
    if k == "schedule":
        return _check_schedule(value, spec, where)
    if k == "number_or_dist":
        return _check_number_or_dist(value, spec, where)
    raise AssertionError(f"unknown key kind {k}")


def _float(v: Any, spec: Key, where: str, shown: Any, must: str) -> float:
    """``v`` as a float; NaN and infinities refused unless ``spec.finite`` is false."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ScenarioError(f"{where} = {_fmt(shown)} {must}")
    try:
        f = float(v)
    except OverflowError:  # an int beyond the floats
        f = math.copysign(math.inf, v)
    if spec.finite and not math.isfinite(f):
        fix = f"; for example {spec.example}" if spec.example else ""
        raise ScenarioError(f"{where} = {_fmt(shown)} must be a finite number{fix}")
    return f


def _check_number_or_dist(value: Any, spec: Key, where: str) -> Any:
    """Kind ``number_or_dist``: one number for every item (a float within ``lo``/``hi``), or a table
    ``{ dist = NAME, … }`` from which each item draws its own: the other keys are checked against
    ``extra["dists"][NAME]`` (a mapping key -> ``Key``, finite numbers) and every pair ``(a, b)``
    of ``extra["ordered"]`` that both appear must have ``a <= b``. ``extra["table_example"]``
    is shown in the errors. Per-node radio ranges use it."""
    dists, table_ex = spec.extra["dists"], spec.extra.get("table_example", "")
    if not isinstance(value, dict):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{where} = {_fmt(value)} must be a number (e.g. {spec.example}) "
                                f"or a table (e.g. {table_ex})")
        num = Key("float", lo=spec.lo, hi=spec.hi, lo_open=spec.lo_open, example=spec.example)
        return check_value(value, num, where)
    name = value.get("dist")
    if not isinstance(name, str) or name not in dists:
        shown = (f" = {_fmt(name)} is not one of {', '.join(dists)}{did_you_mean(str(name), dists)}"
                 if name is not None else " is missing")
        raise ScenarioError(f"{where}.dist{shown}; write e.g. {table_ex}")
    keys, out = dists[name], {"dist": name}
    for sub, v in value.items():
        if sub == "dist":
            continue
        if sub not in keys:
            raise ScenarioError(f"{where}.{show_key(sub)}: unknown key of dist = {_fmt(name)}"
                                f"{did_you_mean(sub, keys)}")
        v = check_value(v, keys[sub], f"{where}.{sub}")
        if isinstance(v, float) and not math.isfinite(v):
            raise ScenarioError(f"{where}.{sub} = {_fmt(v)} must be a finite number; write e.g. {table_ex}")
        out[sub] = v
    for sub, key in keys.items():
        if sub not in out:
            if key.default is REQUIRED:
                raise ScenarioError(f"{where}.{sub} is missing: dist = {_fmt(name)} needs it; "
                                    f"write e.g. {table_ex}")
            out[sub] = key.default
    for a, b in spec.extra.get("ordered", ()):
        if a in out and b in out and out[a] > out[b]:
            raise ScenarioError(f"{where} has {a} = {_fmt(out[a])} > {b} = {_fmt(out[b])}; "
                                f"swap them so that {a} <= {b}")
    return out


def _check_schedule(value: Any, spec: Key, where: str) -> Any:
    """Kind ``schedule``: a number (checked as kind ``extra["number"]`` with ``lo``/``hi``), or a
    table ``{ schedule = NAME, … }`` whose other keys are checked against ``extra["forms"][NAME]``
    (a mapping key -> ``Key``; nested places are named ``lr.a``). Numbers must be finite."""
    forms, table_ex = spec.extra["forms"], spec.extra.get("table_example", "")
    if not isinstance(value, dict):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{where} = {_fmt(value)} must be a number (e.g. {spec.example}) or a "
                                f"table (e.g. {table_ex})")
        num = Key(spec.extra.get("number", "float"), lo=spec.lo, hi=spec.hi, lo_open=spec.lo_open,
                  example=spec.example)
        return _finite(check_value(value, num, where), where)
    name = value.get("schedule")
    if not isinstance(name, str) or name not in forms:
        shown = f" = {_fmt(name)} is not one of {', '.join(forms)}{did_you_mean(str(name), forms)}" \
            if name is not None else f" is missing: a table needs one, e.g. {table_ex}"
        raise ScenarioError(f"{where}.schedule{shown}")
    keys = forms[name]
    out = {"schedule": name}
    for sub, v in value.items():
        if sub == "schedule":
            continue
        if sub not in keys:
            raise ScenarioError(f"{where}.{show_key(sub)}: unknown key of schedule = {_fmt(name)}"
                                f"{did_you_mean(sub, keys) if keys else '; it takes no other keys'}")
        out[sub] = _finite(check_value(v, keys[sub], f"{where}.{sub}"), f"{where}.{sub}")
    for sub, key in keys.items():
        if sub not in out:
            if key.default is REQUIRED:
                raise ScenarioError(f"{where}.{sub} is missing: schedule = {_fmt(name)} needs it, "
                                    f"e.g. {sub} = {key.example}")
            out[sub] = key.default
    return out


def _finite(v: Any, where: str) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        raise ScenarioError(f"{where} = {_fmt(v)} must be a finite number")
    return v


def _check_range(v: float, spec: Key, where: str, shown: Any = None) -> None:
    shown = v if shown is None else shown
    if isinstance(v, float) and math.isnan(v):  # only where finite=False allows it
        return
    top = INT_MAX if isinstance(v, int) else FLOAT_MAX
    lo = spec.lo if spec.lo is not None else -top
    hi = spec.hi if spec.hi is not None else top
    bad = (v <= lo if spec.lo_open else v < lo) or v > hi
    if not bad or (not spec.finite and math.isinf(v)):
        return
    whole = isinstance(v, int)
    if spec.lo is not None and spec.hi is not None:
        rng = f"within {'(' if spec.lo_open else '['}{_bound(lo, whole)}, {_bound(hi, whole)}]"
    elif spec.lo is None and spec.hi is None:
        rng = f"within [{_bound(lo, whole)}, {_bound(hi, whole)}]"
    elif spec.hi is None and v >= lo:  # above the default bound
        rng = f"{'>' if spec.lo_open else '>='} {_bound(lo, whole)} and <= {_bound(hi, whole)}"
    elif spec.hi is None:
        rng = f"{'>' if spec.lo_open else '>='} {_bound(lo, whole)}"
    else:
        rng = f"within [{_bound(lo, whole)}, {_bound(hi, whole)}]"
    fix = f"; for example {spec.example}" if spec.example else ""
    raise ScenarioError(f"{where} = {_fmt(shown)} is out of range: it must be {rng}{fix}")


def _bound(x: float, whole: bool) -> str:
    """A bound as messages show it: ``100000000`` for whole numbers, ``1e7`` and ``0.5`` else."""
    if whole or (float(x).is_integer() and abs(x) < 1e6):
        return str(int(x))
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).replace("+", "") + m.group(2), f"{x:g}")


def check_table(data: Any, keys: Mapping[str, Key], source: str, table: str,
                allow_extra: Sequence[str] = ()) -> dict:
    """Validate ``data`` (a TOML table) against ``keys``; return it with defaults filled in."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{_where(source, '', table)} must be a table, e.g. [{table}]")
    out: dict = {}
    for name, value in data.items():
        if name in allow_extra:
            out[name] = value
            continue
        if name not in keys:
            raise ScenarioError(f"{_where(source, table, name)}: unknown key"
                                f"{did_you_mean(name, list(keys) + list(allow_extra))}")
        out[name] = check_value(value, keys[name], _where(source, table, name))
    for name, spec in keys.items():
        if name not in out:
            if spec.default is REQUIRED:
                ex = f", e.g. {name} = {spec.example}" if spec.example else ""
                raise ScenarioError(f"{_where(source, table, name)} is missing: add it{ex}")
            out[name] = spec.default
    return out
