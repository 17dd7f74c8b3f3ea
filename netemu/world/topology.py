"""Where each round's nominal graph comes from: random, latent (+ disconnections), radio, schedule.

A topology source maps round ``k`` (and the positions at that round's start) to the nominal
directed edges ``(receivers, senders)``: ``i`` can hear ``j``. Edges are sorted by sender, then
receiver, so that every random draw made per edge is reproducible. Self-loops are implied and
never listed.

Every class takes plain arguments (numbers, arrays, graphs); ``netemu.scenario.build.topology`` is
the one place that reads a scenario's ``[network]`` table. networkx and scipy's KD-tree are imported
by the topologies that use them, so a run pays their import only when it needs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from netemu.errors import ScenarioError, require_file
from netemu.rng import stream

if TYPE_CHECKING:
    import networkx as nx


def _sorted(recv: np.ndarray, send: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    recv = np.asarray(recv, dtype=np.int64)
    send = np.asarray(send, dtype=np.int64)
    keep = recv != send
    if not keep.all():
        recv, send = recv[keep], send[keep]
    if not len(recv):
        return recv, send
    # one sort of the key send·base + recv: the order (and the arrays) of a lexsort by (send,
    # recv), at a fraction of its time on millions of edges; new arrays only where needed (fresh
    # memory costs page faults, a good part of the time at 10⁸ edges)
    base = int(max(recv.max(), send.max())) + 1
    key = send * base
    key += recv
    key.sort()
    send = key // base
    np.remainder(key, base, out=key)
    return key, send


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


LATENT_GRAPHS = ("ring", "erdos-renyi", "random-geometric", "directed-random")
STRONG_TRIES = 1000  # directed-random: draws tried before giving up on strong connectivity


def latent_graph(name: str, n: int, seed: int, *, edge_prob: float | None = None,
                 radius: float | None = None, base_dir: Path = Path("."), directed: bool = False
                 ) -> nx.DiGraph:
    """The latent digraph ``name`` (undirected graphs: both directions; ``u→v``: v hears u).

    ``edge_prob``: erdos-renyi and directed-random; ``radius``: random-geometric; ``base_dir`` and
    ``directed``: graph files. Random graphs draw from the ``graph`` stream of ``seed``.
    """
    import networkx as nx

    if name == "directed-random":
        return directed_random_graph(n, edge_prob, stream(seed, "graph"))
    gseed = int(stream(seed, "graph").integers(2**31))
    if name == "ring":
        g = nx.cycle_graph(n) if n > 2 else nx.path_graph(n)
    elif name == "erdos-renyi":
        g = nx.gnp_random_graph(n, edge_prob, seed=gseed)
    elif name == "random-geometric":
        g = nx.random_geometric_graph(n, radius, seed=gseed)
    elif name.endswith((".graphml", ".edgelist")):
        g = _read_graph_file(base_dir / name, name, n, directed)
    else:
        known = ", ".join(f'"{g}"' for g in LATENT_GRAPHS)
        raise ScenarioError(f"[network] graph = {name!r} is not a known graph: use {known} or a "
                            f".graphml / .edgelist file")
    return g.to_directed() if not g.is_directed() else g


def directed_random_graph(n: int, p: float, rng: np.random.Generator, tries: int = STRONG_TRIES
                          ) -> nx.DiGraph:
    """Each ordered pair ``j → i`` (``i ≠ j``) an edge with probability ``p``, drawn again from
    ``rng`` until the digraph is strongly connected (every node hears every other, over some
    path), at most ``tries`` times. Almost every draw succeeds once ``p`` is well above
    ``ln(n) / n``, the threshold of strong connectivity."""
    import networkx as nx

    nodes = range(n)
    for _ in range(tries):
        hears = rng.random((n, n)) < p  # hears[i, j]: i hears j, the edge j → i
        np.fill_diagonal(hears, False)
        send, recv = np.nonzero(hears.T)
        g = nx.DiGraph()
        g.add_nodes_from(nodes)
        g.add_edges_from(zip(send.tolist(), recv.tolist()))
        if nx.is_strongly_connected(g):
            return g
    hint = min(1.0, 2 * math.log(n) / n)
    fix = f"raise edge_prob, e.g. to {hint:.2g}" if hint > p else "raise edge_prob"
    raise ScenarioError(f"[network] edge_prob = {p:g}: no strongly connected graph = \"directed-random\" "
                        f"on {n} nodes in {tries} draws; {fix} (about ln(n)/n = "
                        f"{math.log(n) / n:.2g} is the threshold)")


def _read_graph_file(path: Path, shown: str, n: int, directed: bool) -> nx.Graph:
    import networkx as nx

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


@dataclass(frozen=True)
class PathLoss:
    """Log-distance reception: received power ``P = tx_power − reference_loss − 10·η·log10(d / 1 m)
    + X`` with shadowing ``X ~ N(0, shadowing²)`` (dB); heard when ``P ≥ threshold`` (dBm)."""

    tx_power: float
    reference_loss: float
    exponent: float
    shadowing: float
    threshold: float

    def max_distance(self) -> float:
        """The distance at which ``X = +5σ`` would still be heard."""
        margin = self.tx_power - self.reference_loss - self.threshold + 5 * self.shadowing
        return 10 ** (margin / (10 * self.exponent))

    def mean_power(self, dist: np.ndarray) -> np.ndarray:
        return self.tx_power - self.reference_loss - 10 * self.exponent * np.log10(np.maximum(dist, 1e-9))


def uniform_ranges(n: int, low: float, high: float, seed: int) -> np.ndarray:
    """Per-node radio ranges ``U[low, high]``, drawn once from the ``radio`` stream of ``seed``."""
    return stream(seed, "radio").uniform(low, high, n)


class RadioTopology:
    """Radio reception from positions: unit disk, or log-distance path loss.

    Unit disk: ``ranges`` is one range for every node, or node ``j``'s range ``r_j`` per node;
    ``i`` hears ``j`` when ``‖p_i − p_j‖ ≤ r_j`` (the sender's power sets the reach), so with
    unequal ranges links can be one-way. Candidates come from a KD-tree within the largest range,
    then each is kept if within its sender's range.

    Log-distance (``path_loss`` given; ``ranges`` unused): shadowing drawn per directed reception
    and round; candidates come from a KD-tree within ``path_loss.max_distance()``.
    """

    needs_positions = True

    def __init__(self, n: int, ranges: float | np.ndarray | None, seed: int,
                 path_loss: PathLoss | None = None) -> None:
        self.n, self.seed, self.path_loss = n, seed, path_loss
        self.ranges: np.ndarray | None = None  # per node, when they differ
        if path_loss is not None:
            self.reach = path_loss.max_distance()
        elif np.ndim(ranges) == 0:
            self.reach = float(ranges)
        else:
            self.ranges = np.asarray(ranges, dtype=np.float64)
            if self.ranges.shape != (n,):
                raise ValueError(f"ranges has shape {self.ranges.shape}, expected ({n},)")
            self.reach = float(self.ranges.max()) if n else 0.0
        self._cache_pos: np.ndarray | None = None
        self._cache: tuple | None = None

    def _candidates(self, positions: np.ndarray):
        if self._cache_pos is not None and np.array_equal(positions, self._cache_pos):
            return self._cache
        from scipy.spatial import cKDTree

        pairs = cKDTree(positions).query_pairs(self.reach, output_type="ndarray")
        a, b = pairs[:, 0], pairs[:, 1]
        recv, send = _sorted(np.concatenate([a, b]), np.concatenate([b, a]))
        dist = None  # link lengths, for per-node ranges and path loss only
        if self.ranges is not None or self.path_loss is not None:
            dist = np.linalg.norm(positions[recv] - positions[send], axis=1)
        if self.ranges is not None:
            keep = dist <= self.ranges[send]
            recv, send, dist = recv[keep], send[keep], dist[keep]
        self._cache_pos, self._cache = positions.copy(), (recv, send, dist)
        return self._cache

    def edges(self, k: int, positions: np.ndarray):
        recv, send, dist = self._candidates(positions)
        pl = self.path_loss
        if pl is None:
            return recv, send
        power = pl.mean_power(dist)
        if pl.shadowing > 0:
            power = power + stream(self.seed, "topology", k).normal(0.0, pl.shadowing, len(dist))
        ok = power >= pl.threshold
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
