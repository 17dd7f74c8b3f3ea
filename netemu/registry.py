"""Protocol registry: the built-ins, plus third-party protocols from an entry-point group.

A package adds a protocol by declaring, in its ``pyproject.toml``::

    [project.entry-points."netemu.protocols"]
    my-protocol = "my_package.module:MyProtocol"

Names are resolved lazily; an unknown name gets a "did you mean" suggestion.
"""

from __future__ import annotations

import importlib

from netemu.errors import ProtocolError, did_you_mean

BUILTIN = {
    "gossip": "netemu.protocols.gossip:Gossip",
    "push-sum": "netemu.protocols.push_sum:PushSum",
    "pulm": "netemu.protocols.pulm:PULM",
    "dgd": "netemu.protocols.dgd:DGD",
    "push-diging": "netemu.protocols.push_diging:PushDIGing",
    "pulm-dgd": "netemu.protocols.pulm_dgd:PULMDGD",
    "local-sgd": "netemu.protocols.local_sgd:LocalSGD",
    "easgd": "netemu.protocols.easgd:EASGD",
    "broadcast-gossip": "netemu.protocols.broadcast_gossip:BroadcastGossip",
    "async-push-sum": "netemu.protocols.async_push_sum:AsyncPushSum",
    "fedavg": "netemu.protocols.fedavg:FedAvg",
    "fedasync": "netemu.protocols.fedasync:FedAsync",
    "fedbuff": "netemu.protocols.fedbuff:FedBuff",
    "fedfix": "netemu.protocols.fedfix:FedFix",
    "traffic": "netemu.protocols.traffic:Traffic",
}

GROUP = "netemu.protocols"
_extra: dict[str, object] = {}


def register(name: str, cls: object) -> None:
    """Register a protocol class under ``name`` at run time (tests, notebooks)."""
    _extra[name] = cls


def _plugins() -> dict[str, object]:
    from importlib.metadata import entry_points  # read only when a name is not a built-in

    return {ep.name: ep for ep in entry_points(group=GROUP)}


def names() -> list[str]:
    return sorted(set(BUILTIN) | set(_extra) | set(_plugins()))


def get(name: str, where: str = "protocol") -> type:
    """The protocol class registered as ``name``."""
    if name in _extra:
        return _extra[name]  # type: ignore[return-value]
    if name in BUILTIN:
        module, _, attr = BUILTIN[name].partition(":")
        return getattr(importlib.import_module(module), attr)
    plugins = _plugins()
    if name in plugins:
        return plugins[name].load()
    raise ProtocolError(f"{where}: unknown protocol {name!r}{did_you_mean(name, names())}; "
                        f"run 'netemu protocols' to list them")
