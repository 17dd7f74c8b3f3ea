"""Where each round's nominal graph comes from: random, latent (+ disconnections), radio, schedule.

A topology source maps round ``k`` (and the positions at that round's start) to the nominal
directed edges ``(receivers, senders)``: ``i`` can hear ``j``. Edges are sorted by sender, then
receiver, so that every random draw made per edge is reproducible. Self-loops are implied and
never listed.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
from scipy.spatial import cKDTree

from netemu.errors import ScenarioError, require_file
from netemu.rng import stream


def _sorted(recv: np.ndarray, send: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    recv = np.asarray(recv, dtype=np.int64)
    send = np.asarray(send, dtype=np.int64)
    keep = recv != send
    recv, send = recv[keep], send[keep]
    order = np.lexsort((recv, send))
    return recv[order], send[order]


class RandomTopology:
    """Every round, each directed link j→i (i ≠ j) exists independently with probability ``p``."""

    needs_positions = False

    def __init__(self, n: int, p: float, seed: int) -> None:
        self.n, self.p, self.seed = n, p, seed

    def edges(self, k: int, positions=None):
        rng = stream(self.seed, "topology", k)
        mask = rng.random((self.n, self.n)) < self.p
        np.fill_diagonal(mask, False)
        send, recv = np.nonzero(mask.T)  # row-major over senders: already sorted by (send, recv)
        return recv.astype(np.int64), send.astype(np.int64)


class LatentTopology:
    """A fixed digraph whose links each go down per round with probability ``disconnect``."""

    needs_positions = False

    def __init__(self, n: int, graph: nx.DiGraph, disconnect: float, seed: int) -> None:
        self.n, self.disconnect, self.seed = n, disconnect, seed
        src = np.array([u for u, v in graph.edges()], dtype=np.int64)
        dst = np.array([v for u, v in graph.edges()], dtype=np.int64)
        # an edge u→v means v hears u
        self.recv, self.send = _sorted(dst, src)

    def edges(self, k: int, positions=None):
        if self.disconnect <= 0:
            return self.recv, self.send
        up = stream(self.seed, "topology", k).random(len(self.recv)) >= self.disconnect
        return self.recv[up], self.send[up]


def latent_graph(cfg: dict, n: int, seed: int, base_dir: Path) -> nx.DiGraph:
    """Build the latent digraph named by ``[network] graph`` (undirected graphs: both directions)."""
    name = cfg["graph"]
    gseed = int(stream(seed, "graph").integers(2**31))
    if name == "ring":
        g = nx.cycle_graph(n) if n > 2 else nx.path_graph(n)
    elif name == "erdos-renyi":
        g = nx.gnp_random_graph(n, cfg["edge_prob"], seed=gseed)
    elif name == "random-geometric":
        g = nx.random_geometric_graph(n, cfg["radius"], seed=gseed)
    elif name.endswith((".graphml", ".edgelist")):
        g = _read_graph_file(base_dir / name, name, n, cfg["directed"])
    else:
        raise ScenarioError(f"[network] graph = {name!r} is not a known graph: use \"ring\", "
                            f"\"erdos-renyi\", \"random-geometric\" or a .graphml / .edgelist file")
    return g.to_directed() if not g.is_directed() else g


def _read_graph_file(path: Path, shown: str, n: int, directed: bool) -> nx.Graph:
    require_file(path, f"[network] graph = {shown!r}")
    try:
        if path.suffix == ".graphml":
            g = nx.read_graphml(path)
            if not directed and g.is_directed():
                g = g.to_undirected()
        else:
            g = nx.read_edgelist(path, create_using=nx.DiGraph if directed else nx.Graph)
    except Exception as e:  # networkx raises many kinds on malformed files
        raise ScenarioError(f"[network] graph = {shown!r}: cannot read it ({e}); "
                            f"write a valid {path.suffix[1:]} file") from None
    if g.number_of_nodes() != n:
        raise ScenarioError(f"[network] graph = {shown!r} has {g.number_of_nodes()} nodes but "
                            f"[network] nodes = {n}; set nodes = {g.number_of_nodes()}")
    try:
        mapping = {v: i for i, v in enumerate(sorted(g.nodes(), key=lambda v: int(v)))}
    except (TypeError, ValueError):
        mapping = {v: i for i, v in enumerate(sorted(g.nodes(), key=str))}
    return nx.relabel_nodes(g, mapping)


class RadioTopology:
    """Radio reception from positions: unit disk within ``range``, or log-distance path loss.

    Log-distance: received power ``P = tx_power − reference_loss − 10·η·log10(d / 1 m) + X`` with
    shadowing ``X ~ N(0, σ²)`` drawn per directed reception and round; heard when ``P ≥ threshold``.
    Candidates come from a KD-tree within the distance where ``X = +5σ`` would still be heard.
    """

    needs_positions = True

    def __init__(self, n: int, cfg: dict, seed: int) -> None:
        self.n, self.seed = n, seed
        self.model = cfg["reception"]
        self.range = cfg["range"]
        self.cfg = cfg
        self._cache_pos: np.ndarray | None = None
        self._cache: tuple | None = None

    def _max_distance(self) -> float:
        if self.model == "unit-disk":
            return self.range
        c = self.cfg
        margin = c["tx_power"] - c["reference_loss"] - c["threshold"] + 5 * c["shadowing"]
        return 10 ** (margin / (10 * c["path_loss_exponent"]))

    def _candidates(self, positions: np.ndarray):
        if self._cache_pos is not None and np.array_equal(positions, self._cache_pos):
            return self._cache
        pairs = cKDTree(positions).query_pairs(self._max_distance(), output_type="ndarray")
        a, b = pairs[:, 0], pairs[:, 1]
        recv, send = _sorted(np.concatenate([a, b]), np.concatenate([b, a]))
        dist = np.linalg.norm(positions[recv] - positions[send], axis=1)
        self._cache_pos, self._cache = positions.copy(), (recv, send, dist)
        return self._cache

    def edges(self, k: int, positions: np.ndarray):
        recv, send, dist = self._candidates(positions)
        if self.model == "unit-disk":
            return recv, send
        c = self.cfg
        power = c["tx_power"] - c["reference_loss"] - 10 * c["path_loss_exponent"] * np.log10(
            np.maximum(dist, 1e-9))
        if c["shadowing"] > 0:
            power = power + stream(self.seed, "topology", k).normal(0.0, c["shadowing"], len(dist))
        ok = power >= c["threshold"]
        return recv[ok], send[ok]


class ScheduleTopology:
    """Rounds read from an ``.npz`` file: bool ``adjacency[k, i, j]`` (i hears j); rounds cycle."""

    needs_positions = False

    def __init__(self, n: int, path: Path, shown: str) -> None:
        where = f"[network] file = {shown!r}"
        require_file(path, where)
        try:
            with np.load(path, allow_pickle=False) as z:
                if "adjacency" not in z.files:
                    raise ScenarioError(f"{where} has no array 'adjacency' (it has: "
                                        f"{', '.join(z.files) or 'none'}); save it with "
                                        f"np.savez(file, adjacency=A)")
                adj = z["adjacency"]
        except ScenarioError:
            raise
        except Exception as e:
            raise ScenarioError(f"{where}: cannot read it as .npz ({e}); save it with np.savez") from None
        if adj.dtype != np.bool_:
            raise ScenarioError(f"{where}: adjacency has dtype {adj.dtype}, expected bool; "
                                f"save adjacency.astype(bool)")
        if adj.ndim != 3 or adj.shape[1:] != (n, n) or adj.shape[0] < 1:
            raise ScenarioError(f"{where}: adjacency has shape {tuple(adj.shape)}, expected "
                                f"[K, {n}, {n}] for [network] nodes = {n}")
        self.rounds = []
        for a in adj:
            recv, send = np.nonzero(a)
            self.rounds.append(_sorted(recv, send))

    def edges(self, k: int, positions=None):
        return self.rounds[k % len(self.rounds)]
