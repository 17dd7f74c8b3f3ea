"""The one translation of scenario tables into objects: topology, channel, network, mobility,
compute clock. Everything below this layer takes plain arguments."""

from __future__ import annotations

import numpy as np

from netemu.rng import stream
from netemu.world import topology as topo
from netemu.world.channel import Delay, GilbertElliottLoss, IndependentLoss
from netemu.world.network import Network, Uplink


def topology(sc):
    net, n, seed, base_dir = sc.network, sc.network["nodes"], sc.seed, sc.base_dir
    kind = net["topology"]
    if kind == "random":
        return topo.RandomTopology(n, net["p"], seed)
    if kind == "latent":
        graph = topo.latent_graph(net["graph"], n, seed, edge_prob=net["edge_prob"], radius=net["radius"],
                                  base_dir=base_dir, directed=net["directed"])
        return topo.LatentTopology(n, graph, net["disconnect"], seed)
    if kind == "radio":
        if net["reception"] == "log-distance":
            path_loss = topo.PathLoss(net["tx_power"], net["reference_loss"], net["path_loss_exponent"],
                                      net["shadowing"], net["threshold"])
            return topo.RadioTopology(n, None, seed, path_loss=path_loss)
        r = net["range"]  # one number, or { dist = "uniform", low, high } (checked by scenario.load)
        ranges = topo.uniform_ranges(n, r["low"], r["high"], seed) if isinstance(r, dict) else r
        return topo.RadioTopology(n, ranges, seed)
    return topo.ScheduleTopology(n, base_dir / net["file"], net["file"])


def loss(sc):
    lm = sc.network.get("loss_model")
    if lm and lm["kind"] == "gilbert-elliott":
        return GilbertElliottLoss(lm["p_good_bad"], lm["p_bad_good"], lm["loss_good"], lm["loss_bad"], sc.seed)
    return IndependentLoss(sc.network["loss"], sc.seed)


def delay(sc) -> Delay:
    d = sc.network.get("delay") or {}
    return Delay(latency=d.get("latency", 0.0), bandwidth=d.get("bandwidth"), jitter=d.get("jitter", "none"),
                 scale=d.get("jitter_scale", 0.0), sigma=d.get("jitter_sigma", 0.5),
                 resolution=d.get("resolution", 0.0), seed=sc.seed)


def uplink(sc):
    """The server link of ``[network.uplink]``, or None."""
    u = sc.network.get("uplink")
    if not u:
        return None
    return Uplink(u["server"], Delay(latency=u["latency"], bandwidth=u["bandwidth"], seed=sc.seed),
                  IndependentLoss(u["loss"], sc.seed), u.get("retries", 0))


def network(sc, trajectories=None, topology_=None) -> Network:
    """A fresh ``Network`` (one per protocol run: the Gilbert-Elliott chain carries state)."""
    from netemu.world import medium

    return Network(sc.network["nodes"], topology_ or topology(sc), loss(sc), delay(sc),
                   sc.run["period"], trajectories, uplink(sc),
                   medium.build(sc.network.get("mac"), sc.network["nodes"], sc.seed))


def trajectories(sc, horizon: float | None = None):
    """Trajectories for the scenario's ``[mobility]`` over the run (radio topologies only)."""
    if sc.network["topology"] != "radio":
        return None
    from netemu.world.mobility import build_mobility

    if horizon is None:
        horizon = sc.run["rounds"] * sc.run["period"] + sc.run["period"]
    return build_mobility(sc.mobility, sc.network["nodes"], horizon, stream(sc.seed, "mobility"), sc.base_dir)


def clock(sc):
    """The compute clock (step times, stragglers, availability) of an optimization scenario."""
    from netemu.compute.timing import Clock

    return Clock(sc.compute or {}, sc.network["nodes"], sc.seed, sc.base_dir)


def speeds(sc):
    """Per-node speed factors from ``[compute]`` (``speeds``, and persistent ``stragglers`` slowed
    by their ``slowdown``): the clock rates of event protocols. ``None`` without ``[compute]``."""
    if not sc.compute:
        return None
    from netemu.compute.timing import StepTimes

    times = StepTimes(sc.compute, sc.network["nodes"], sc.seed, sc.base_dir)
    speed = times.speed.copy()
    if times.persistent:
        speed = speed / np.where(times.slow_nodes, times.slowdown, 1.0)
    return speed
