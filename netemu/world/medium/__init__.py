"""The shared radio medium (``[network.mac]``): airtime, carrier sense, collisions, interference.

``model = "ideal"`` (the default) is no medium at all: every reception is independent of the
others, as before. ``"aloha"`` and ``"csma"`` make a transmission occupy the medium for its
airtime, ``preamble + 8 · bytes / bitrate``, and a reception succeed only if no other transmission
overlapping it in time is heard at the receiver (protocol model: within the interference range,
the receiver's own transmissions included), or if its SINR stays above a threshold (physical model:
log-distance path loss, noise, capture of the strongest). Broadcasts are not acknowledged or
retransmitted. Independent or bursty loss still applies to the receptions that survive; drops are
counted by reason: ``collision``, ``loss``, ``late`` (and ``busy`` for frames that exhaust
``attempts``).

- ``access.py``: when transmissions start (ALOHA, non-persistent CSMA; a round's CSMA vectorized);
- ``resolve.py``: collision resolution vectorized over a set of transmissions (intervals sorted per
  receiver);
- the runtime drives them: ``netemu.runtime.medium_rounds`` (a round protocol's broadcasts through
  the medium) and ``netemu.runtime.medium_events`` (event protocols' broadcasts and unicasts).

docs/medium.md describes the model, the checks against theory and ns-3, and the costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from netemu.world.medium.resolve import ByReceiver, Pairs

DEFAULT_SLOT = 20e-6  # s, 802.11b's slot time


@dataclass
class MacConfig:
    model: str = "ideal"
    bitrate: float = 1e6
    preamble: float = 0.0
    slot: float | None = None
    cw: int = 15
    propagation: float = 0.0
    attempts: int = 0
    carrier_sense_range: float | None = None
    interference_range: float | None = None
    reception: str = "protocol"
    sinr_threshold: float | None = None
    tx_power: float | None = None
    reference_loss: float | None = None
    path_loss_exponent: float | None = None
    noise: float = -95.0

    @classmethod
    def from_table(cls, table: dict | None) -> "MacConfig":
        return cls(**{k: v for k, v in (table or {}).items()})

    @property
    def unit_slot(self) -> float:
        """The backoff slot (CSMA's default when not given)."""
        return self.slot if self.slot is not None else DEFAULT_SLOT


class Stats:
    """What the medium counts over a run (summary.json ``mac``) and since the last sample."""

    FIELDS = ("transmissions", "clean_transmissions", "busy_drops", "receptions", "collisions",
              "late", "airtime", "access_delay", "busy_time")

    def __init__(self) -> None:
        self.total = dict.fromkeys(self.FIELDS, 0.0)
        self.since = dict.fromkeys(self.FIELDS, 0.0)

    def add(self, **kw) -> None:
        for k, v in kw.items():
            self.total[k] += v
            self.since[k] += v


class Geometry:
    """Who senses and who is disturbed by whom, for one nominal graph (and positions):
    ``pairs``: per sender, where its signal counts (interference range ∪ its receivers ∪ itself),
    with powers for the SINR model; ``cs_indptr, cs_indices``: per node, the senders it senses
    (carrier-sense range, or its receivers' relation by default, itself included)."""

    def __init__(self, cfg: MacConfig, n: int, recv: np.ndarray, send: np.ndarray, pos: np.ndarray | None,
                 mw_noise: float) -> None:
        self.n = n
        self_idx = np.arange(n)
        i_recv, i_send = recv, send
        if cfg.interference_range is not None:
            a, b = _within(pos, cfg.interference_range)
            i_recv, i_send = np.concatenate([recv, a]), np.concatenate([send, b])
        ek = send * n + recv
        at = None  # each edge's place in the sorted keys, when known without a search
        if i_send is send and len(ek) and bool(np.all(ek[1:] > ek[:-1])) and not np.any(send == recv):
            # the edges already sorted, distinct, no self pair: merge the self pairs in by counting
            # (i·n + i < s·n + r exactly for i < s, or i = s < r)
            at = np.arange(len(ek)) + send + (send < recv)
            sk = self_idx * n + self_idx
            at_self = self_idx + np.searchsorted(ek, sk)
            dt = np.result_type(ek.dtype, sk.dtype)
            key, ps, pr = (np.empty(len(ek) + n, dtype=dt) for _ in range(3))
            key[at], key[at_self] = ek, sk
            ps[at], ps[at_self] = send, self_idx
            pr[at], pr[at_self] = recv, self_idx
        else:
            key = _unique(np.concatenate([i_send * n + i_recv, self_idx * n + self_idx]))
            ps, pr = key // n, key % n
        indptr = np.searchsorted(ps, np.arange(n + 1))
        power = None
        if cfg.reception == "sinr":
            d = np.linalg.norm(pos[pr] - pos[ps], axis=1)
            dbm = cfg.tx_power - cfg.reference_loss - 10 * cfg.path_loss_exponent * np.log10(np.maximum(d, 1.0))
            power = 10 ** (dbm / 10) / mw_noise  # in units of the noise power
            power[ps == pr] = np.inf
        self.pairs = Pairs(indptr, pr, n, power)
        # each reception edge's column in its sender's row of pairs (the rows hold every edge)
        self.edge_col = (np.searchsorted(key, ek) if at is None else at) - indptr[send]
        self._cs: tuple | None = None  # (cs_indptr, cs_indices), built when first asked for (CSMA)
        self._cs_range = cfg.carrier_sense_range
        self._pos = None if pos is None or self._cs_range is None else pos.copy()  # the positions of now
        self._edges = (recv, send)
        self._by_receiver: ByReceiver | None = None
        self._sender_rows: tuple | bool | None = None
        self.cs_padded: list = []  # the carrier-sense rows padded (access.padded_rows), once asked for

    @property
    def cs_indptr(self) -> np.ndarray:
        return self._carrier_sense()[0]

    @property
    def cs_indices(self) -> np.ndarray:
        return self._carrier_sense()[1]

    def _carrier_sense(self) -> tuple:
        if self._cs is None:
            n = self.n
            if self._cs_range is not None:
                c_recv, c_send = _within(self._pos, self._cs_range)
            else:
                c_recv, c_send = self._edges
            self_idx = np.arange(n)
            ck = _unique(np.concatenate([c_recv * n + c_send, self_idx * n + self_idx]))
            self._cs = (np.searchsorted(ck // n, np.arange(n + 1)), ck % n)
        return self._cs

    @property
    def sender_rows(self) -> tuple | None:
        """``(senders, starts)``: the reception edges' senders and where each one's edges start,
        when the edges are grouped by sender in sender order (else None); once per graph."""
        if self._sender_rows is None:
            send = self._edges[1]
            grouped = bool(len(send)) and bool(np.all(send[1:] >= send[:-1]))
            starts = np.flatnonzero(np.concatenate([[True], send[1:] != send[:-1]])) if grouped else None
            self._sender_rows = (send[starts], starts) if grouped else False
        return self._sender_rows or None

    @property
    def by_receiver(self) -> ByReceiver:
        """The pairs by receiver (``resolve.ByReceiver``), built at the first round that asks."""
        if self._by_receiver is None:
            self._by_receiver = ByReceiver(self.pairs, *self._edges, self.edge_col)
        return self._by_receiver


def _unique(x: np.ndarray) -> np.ndarray:
    """``np.unique`` of integers by one in-place sort (numpy's hash-based unique is slower here)."""
    x.sort()
    keep = np.empty(len(x), dtype=bool)
    keep[:1] = True
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x[keep]


def _within(pos: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Both directions of every pair of nodes within ``r`` of each other."""
    from scipy.spatial import cKDTree

    pairs = cKDTree(pos).query_pairs(r, output_type="ndarray")
    return np.concatenate([pairs[:, 0], pairs[:, 1]]), np.concatenate([pairs[:, 1], pairs[:, 0]])


class Medium:
    """The shared medium of one protocol run (one per ``Network``)."""

    def __init__(self, cfg: MacConfig, n: int, seed: int) -> None:
        self.cfg, self.n, self.seed = cfg, n, seed
        self.slotted = cfg.model == "aloha" and cfg.slot is not None
        self.tau = cfg.propagation
        self.threshold = None if cfg.reception != "sinr" else 10 ** (cfg.sinr_threshold / 10)
        self.mw_noise = 10 ** (cfg.noise / 10)
        self.stats = Stats()
        self._geo: tuple | None = None  # (recv, pos, Geometry) of the last graph
        self.last = (np.full(n, np.nan), np.full(n, np.nan))  # each node's latest transmission (s, e)
        self.prev = (np.full(n, np.nan), np.full(n, np.nan))  # the one before (its tail, with τ > 0)
        self.watermark = np.full(n, -np.inf)  # busy time counted up to here, per node
        self.sweeps = 0
        self._sampled = 0.0  # time of the last metrics sample

    def airtime(self, nbytes) -> float | np.ndarray:
        return self.cfg.preamble + 8.0 * np.asarray(nbytes, dtype=np.float64) / self.cfg.bitrate

    def geometry(self, recv: np.ndarray, send: np.ndarray, pos: np.ndarray | None) -> Geometry:
        g = self._geo
        if g is not None and g[0] is recv and (pos is None or g[1] is pos or np.array_equal(g[1], pos)):
            return g[2]
        geo = Geometry(self.cfg, self.n, recv, send, pos, self.mw_noise)
        self._geo = (recv, None if pos is None else pos.copy(), geo)
        return geo

    def record(self, nodes: np.ndarray, s: np.ndarray, e: np.ndarray) -> None:
        """Nodes ``nodes`` start transmissions ``[s, e)`` (each node once)."""
        self.prev[0][nodes], self.prev[1][nodes] = self.last[0][nodes], self.last[1][nodes]
        self.last[0][nodes], self.last[1][nodes] = s, e

    def sample(self, t: float) -> dict:
        """Metrics since the last sample (at ``t``): the share of the receptions on the air lost
        to collisions, and the channel utilisation (mean share of the time a node hears at least
        one transmission)."""
        period, self._sampled = t - self._sampled, t
        c = self.stats.since
        share = c["collisions"] / c["receptions"] if c["receptions"] else 0.0
        util = c["busy_time"] / (self.n * period) if period > 0 else 0.0
        self.stats.since = dict.fromkeys(Stats.FIELDS, 0.0)
        return {"collision_share": float(share), "channel_utilisation": float(util)}

    def summary(self, duration: float) -> dict:
        c = self.stats.total
        tx = c["transmissions"]
        return {"model": self.cfg.model, "reception": self.cfg.reception,
                "transmissions": int(tx), "clean_transmissions": int(c["clean_transmissions"]),
                "busy_drops": int(c["busy_drops"]), "receptions": int(c["receptions"]),
                "collisions": int(c["collisions"]), "late": int(c["late"]),
                "collision_share": c["collisions"] / c["receptions"] if c["receptions"] else 0.0,
                "channel_utilisation": c["busy_time"] / (self.n * duration) if duration > 0 else 0.0,
                "mean_access_delay": c["access_delay"] / tx if tx else 0.0,
                "airtime": c["airtime"]}


def build(cfg: MacConfig | dict | None, n: int, seed: int) -> Medium | None:
    """The medium of ``[network.mac]``, or None for ``model = "ideal"``."""
    if isinstance(cfg, dict) or cfg is None:
        cfg = MacConfig.from_table(cfg)
    return None if cfg.model == "ideal" else Medium(cfg, n, seed)


__all__ = ["MacConfig", "Medium", "Geometry", "build"]
