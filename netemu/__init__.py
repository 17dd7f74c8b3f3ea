"""netemu: an emulator of broadcast networks for decentralized optimization and federated learning.

The public names are imported on first use (module ``__getattr__``), so ``import netemu`` stays
cheap: it loads neither torch, matplotlib nor pandas. ``netemu.run`` is the Python API
(``netemu.api``); ``netemu.load`` reads a scenario without running it.
"""

from __future__ import annotations

from importlib import import_module

from netemu.errors import NetemuError, ProtocolError, ScenarioError

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "run": "netemu.api",
    "load": "netemu.api",
    "sweep": "netemu.sweep",
    "SweepResults": "netemu.sweeps",
    "Results": "netemu.api",
    "Scenario": "netemu.scenario.load",
    "check_protocol": "netemu.checks",
    "Protocol": "netemu.protocol",
    "EventProtocol": "netemu.protocol",
    "Batch": "netemu.protocol",
    "Context": "netemu.protocol",
    "Observer": "netemu.runtime.results",
    "RunResult": "netemu.runtime.results",
}

__all__ = ["run", "Results", "sweep", "SweepResults", "Scenario", "load", "check_protocol", "Protocol",
           "EventProtocol", "Batch", "Context", "Observer", "RunResult", "NetemuError", "ScenarioError", "ProtocolError",
           "__version__"]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netemu' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
