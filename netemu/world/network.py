"""The network of a scenario: mobility, topology and channel, realized round by round.

``Network.round(k)`` returns the nominal edges of round ``k``, which receptions are lost, and the
jitter of each reception. It is a pure function of the scenario and seed (the Gilbert-Elliott
chain carries state, so rounds must be asked for in order on one ``Network``); build one
``Network`` per protocol run to give every protocol the same realization.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from netemu.rng import stream
from netemu.world import topology as topo
from netemu.world.channel import Delay, loss_model


@dataclass
class Round:
    k: int
    time: float
    recv: np.ndarray
    send: np.ndarray
    lost: np.ndarray
    jitter: np.ndarray | None
    out_degree: np.ndarray


def build_topology(net: dict, n: int, seed: int, base_dir: Path):
    kind = net["topology"]
    if kind == "random":
        return topo.RandomTopology(n, net["p"], seed)
    if kind == "latent":
        return topo.LatentTopology(n, topo.latent_graph(net, n, seed, base_dir), net["disconnect"], seed)
    if kind == "radio":
        return topo.RadioTopology(n, net, seed)
    return topo.ScheduleTopology(n, base_dir / net["file"], net["file"])


class Network:
    def __init__(self, scenario, trajectories=None, topology=None) -> None:
        net = scenario.network
        self.n = net["nodes"]
        self.seed = scenario.seed
        self.period = scenario.run["period"]
        self.topology = topology or build_topology(net, self.n, self.seed, scenario.base_dir)
        self.trajectories = trajectories
        self.loss = loss_model(net, self.seed)
        self.delay = Delay(net.get("delay"), self.seed)

    def positions(self, t: float) -> np.ndarray | None:
        return None if self.trajectories is None else self.trajectories.positions(t)

    def round(self, k: int, t: float | None = None) -> Round:
        """Round ``k``, its radio positions taken at ``t`` (default ``k · period``; rounds shifted
        by compute phases start later). Every random draw is keyed by ``k`` alone."""
        t = k * self.period if t is None else t
        pos = self.positions(t) if self.topology.needs_positions else None
        recv, send = self.topology.edges(k, pos)
        lost = self.loss.lost(k, recv, send, self.n)
        jitter = self.delay.jitter_draws(k, len(recv))
        out_degree = np.bincount(send, minlength=self.n)
        return Round(k, t, recv, send, lost, jitter, out_degree)


def build_trajectories(scenario):
    """Trajectories for the scenario's ``[mobility]`` over the run's horizon (radio only)."""
    if scenario.network["topology"] != "radio":
        return None
    from netemu.world.mobility import build_mobility

    horizon = scenario.run["rounds"] * scenario.run["period"] + scenario.run["period"]
    return build_mobility(scenario.mobility, scenario.network["nodes"], horizon,
                          stream(scenario.seed, "mobility"), scenario.base_dir)
