"""Live-mode settings and the checks made before any socket is opened.

``settings`` gives the ``[live]`` table with defaults filled in (the scenario loader has already
checked its types and ranges). ``preflight`` checks what only a live run needs, so that a run
never fails half-way: one node's message of a round protocol is at most ``[live] max_message``
bytes (a longer one than ``[live] max_datagram`` travels as fragments); with external nodes there is exactly one
``[[protocols]]`` entry and its message shows each node's estimate; there are enough file
descriptors for one socket per local node; the ports fit below 65536; an external node's
``timeout`` is longer than one round. ``security`` reads the key and refuses to bind another
interface than loopback without one (unless ``--insecure``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import socket
from pathlib import Path

import numpy as np

from netemu import registry, wire
from netemu.errors import ScenarioError
from netemu.live import auth
from netemu.live.external import estimator, fl_server, is_fl
from netemu.protocol import Context
from netemu.scenario import schema as S
from netemu.params import check_table, check_value


def settings(sc) -> dict:
    """The ``[live]`` table of ``sc`` with every default filled in."""
    return check_table(dict(sc.live or {}), S.LIVE, sc.source, "live")


def with_overrides(sc, time_scale: float | None = None, port_base: int | None = None,
                   duration: float | None = None):
    """A copy of ``sc`` with ``[live]`` filled in, CLI overrides applied and checked.

    ``duration`` (wall-clock seconds) replaces ``[run] rounds`` by ``floor(duration · time_scale /
    period)``, so the run takes about that long; the summary records the rounds actually asked for.
    """
    live = check_table(dict(sc.live or {}), S.LIVE, sc.source, "live")
    if time_scale is not None:
        live["time_scale"] = check_value(time_scale, S.LIVE["time_scale"], "--time-scale")
    if port_base is not None:
        live["port_base"] = check_value(port_base, S.LIVE["port_base"], "--port-base")
    run = dict(sc.run)
    if duration is not None:
        if not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
            raise ScenarioError(f"--duration {duration}: must be a positive number of seconds, "
                                f"e.g. --duration 5")
        run["rounds"] = max(1, int(duration * live["time_scale"] / run["period"]))
    return dataclasses.replace(sc, live=live, run=run)


def security(sc, live: dict, insecure: bool = False) -> dict:
    """``{"key": bytes or None, "bind": the medium's address, "nodes": the local nodes' address}``.

    Without a key the medium binds loopback only: a ``[live] host`` that is not a loopback address
    is refused unless ``insecure`` (``netemu live --insecure``), since anyone who can reach the
    port could then join, forge and flood the run. The key file is read here, before any socket,
    with one-line errors for a missing, unreadable, empty or badly sized key.
    """
    where = sc.source
    key = None
    if live.get("key_file"):
        shown = live["key_file"]
        path = Path(shown).expanduser()
        if not path.is_absolute():
            path = Path(getattr(sc, "base_dir", None) or Path.cwd()) / path
        key = auth.read_key(path, shown, f"{where}: [live] key_file")
    host = live.get("host", "127.0.0.1")
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as e:
        raise ScenarioError(f"{where}: [live] host = {host!r} is not an IPv4 address or a name that resolves "
                            f"to one ({getattr(e, 'strerror', None) or e}); use e.g. "
                            f"host = \"127.0.0.1\"") from None
    bind = infos[0][4][0]
    ip = ipaddress.ip_address(bind)
    if not ip.is_loopback and key is None and not insecure:
        raise ScenarioError(f"{where}: [live] host = {host!r} is not a loopback address and there is no "
                            f"[live] key_file: anyone who can reach the port could join, forge datagrams and "
                            f"flood the run; set key_file = \"live.key\" (every datagram then carries a keyed "
                            f"tag, docs/wire.md), or pass --insecure to accept that")
    nodes = "127.0.0.1" if ip.is_unspecified else bind  # on 0.0.0.0, local nodes use loopback
    return {"key": key, "bind": bind, "nodes": nodes}


def message_fields(cls, pcfg: dict, sc, x0: np.ndarray, task=None) -> dict:
    """One round-0 message of round protocol ``pcfg`` on a throwaway instance: its fields and
    shapes (optimization protocols: on a throwaway compute handle, so no draw is spent)."""
    from netemu.engine import construct

    n = sc.network["nodes"]
    ctx = Context(n=n, seed=sc.seed, period=sc.run["period"], active=np.ones(n, dtype=bool),
                  out_degree=np.zeros(n, dtype=np.int64), rounds=sc.run["rounds"])
    if task is not None:  # the state's place and dtype, as in the run: the message's dtype follows
        from netemu.arrays import host, namespace
        from netemu.compute.handle import ComputeHandle

        ctx.xp = namespace(task.device, task.dtype)
        ctx.compute = ComputeHandle(task, n, sc.seed, as_tensor=ctx.xp.torch)
        x0 = task.x0()
    else:
        from netemu.arrays import host
    with np.errstate(all="ignore"):
        proto = construct(pcfg, ctx)
        proto.start(x0)
        return {k: np.array(host(v), copy=True) for k, v in proto.message().items()}


def preflight(sc, live: dict, x0: np.ndarray, task=None) -> dict:
    """Check a live run of ``sc`` can go ahead; return ``{label: message fields}`` (``None`` for
    event protocols, whose messages are checked as they are sent)."""
    where = sc.source
    n = sc.network["nodes"]
    if sc.network.get("mac"):
        raise ScenarioError(f"{where}: [network.mac] (a shared medium with collisions) is simulated by netemu run "
                            f"only: netemu live forwards each copy as the channel's loss and delay say, without "
                            f"contention; remove [network.mac] to run live")
    ext = live["external"]
    fl = bool(sc.protocols) and is_fl(registry.get(sc.protocols[0]["name"]))
    if ext and task is not None and not fl:
        raise ScenarioError(f"{where}: [live] external = {ext} with [task] kind = {sc.task['kind']!r}: "
                            f"external nodes take part in consensus tasks and as FL clients only (their "
                            f"gradients are not this process's to compute); remove [live] external")
    if ext and len(sc.protocols) != 1:
        raise ScenarioError(f"{where}: [live] external = {ext} needs exactly one [[protocols]] entry "
                            f"(an external process speaks one protocol); this scenario has "
                            f"{len(sc.protocols)}: keep one, or run them one at a time")
    if ext and live["timeout"] <= sc.run["period"] / live["time_scale"]:
        wall = sc.run["period"] / live["time_scale"]
        raise ScenarioError(f"{where}: [live] timeout = {live['timeout']:g} s is not longer than one round "
                            f"({wall:g} wall seconds: period / time_scale), and an external node sends once per "
                            f"round; raise timeout to a few rounds, e.g. timeout = {max(10.0, 5 * wall):g}")
    if live["reassembly_bytes"] < live["max_message"]:
        raise ScenarioError(f"{where}: [live] reassembly_bytes = {live['reassembly_bytes']} is less than [live] "
                            f"max_message = {live['max_message']}: a message of the largest size could never be "
                            f"reassembled; raise reassembly_bytes to at least {live['max_message']}")
    port = live["port_base"]
    if port and port + n > 65535:
        raise ScenarioError(f"{where}: [live] port_base = {port} leaves no room for {n} node ports "
                            f"(port_base + 1 + i must stay below 65536); use port_base <= {65535 - n} or 0")
    _check_descriptors(n - len(ext), where)
    out = {}
    for p in sc.protocols:
        place = f"{where}: [protocols] {p['label']!r}"
        cls = registry.get(p["name"])
        if ext and is_fl(cls) and fl_server(p, sc.network) in ext:
            raise ScenarioError(f"{place}: [live] external = {ext} includes the FL server (node "
                                f"{fl_server(p, sc.network)}); external nodes are FL clients; remove it from "
                                f"[live] external")
        if not cls.round_based:
            if ext and is_fl(cls):
                out[p["label"]] = None
                continue
            if ext:
                raise ScenarioError(f"{place}: protocol {p['name']!r} is event-driven; external nodes "
                                    f"speak the round protocol of docs/wire.md, or are FL clients; remove "
                                    f"[live] external")
            out[p["label"]] = None
            continue
        fields = message_fields(cls, p, sc, x0, task)
        if not fields:
            raise ScenarioError(f"{place}: protocol {p['name']!r} sends no message; nothing to run live")
        size = wire.message_bytes(fields, n)
        if size > live["max_message"]:
            raise ScenarioError(f"{place}: one node's message is {size} bytes with {n} nodes, more than "
                                f"[live] max_message = {live['max_message']} (the largest message reassembled "
                                f"from fragments); raise max_message (and reassembly_bytes) or use fewer nodes")
        if ext and estimator(fields) is None:
            raise ScenarioError(f"{place}: protocol {p['name']!r} cannot have external nodes: its message "
                                f"({', '.join(fields)}) carries neither 'x' nor 's' and 'w', so an external "
                                f"node's estimate cannot be read from its datagrams; remove [live] external")
        out[p["label"]] = fields
    return out


def _check_descriptors(sockets: int, where: str) -> None:
    try:
        import resource
    except ImportError:  # not on POSIX: let the OS say no
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = sockets + 64
    if soft != resource.RLIM_INFINITY and need > soft:
        raise ScenarioError(f"{where}: live mode opens one UDP socket per local node ({sockets}) but the "
                            f"open-file limit is {soft}; raise it (ulimit -n {need}) or use fewer nodes")
