"""Traffic generator: Poisson broadcasts of a fixed size per node, to measure the medium alone.

Node ``i`` broadcasts at the ticks of a Poisson process of rate ``rate`` (per second; the
straggler settings of ``[compute]`` scale it like every Poisson clock, ``protocols/clocks.py``).
Each message is ``bytes`` long on the wire (its msgpack encoding, header included; a size below the
header's is rounded up to it) and carries nothing a node uses: the state stays ``x⁰`` and the
consensus metrics stay flat. What the run measures is the channel: deliveries, drops by reason,
and with a shared medium (``[network.mac]``) the collision share, utilisation and access delay.
This is the offered load of the classical throughput analyses (Abramson 1970, ALOHA; Roberts 1975,
slotted ALOHA; Kleinrock & Tobagi 1975, CSMA): ``G = n · rate · airtime``.
"""

from __future__ import annotations

import numpy as np

from netemu import wire
from netemu.params import Key
from netemu.protocol import EventProtocol
from netemu.protocols.clocks import RATE, PoissonClock

BYTES = Key("int", 100, lo=1, hi=10**8, example="100", doc="encoded size of each message, bytes")


class Traffic(EventProtocol):
    name = "traffic"
    paper = "Poisson offered load of Abramson 1970, Roberts 1975, Kleinrock & Tobagi 1975"
    params = {"rate": RATE, "bytes": BYTES}

    def start(self, x0: np.ndarray) -> None:
        self.x = np.array(x0, dtype=np.float64)
        n = self.ctx.n
        head = wire.message_bytes({"pad": np.zeros((n, 0), dtype=np.uint8)}, n)
        self.pad = max(0, int(self.p.get("bytes", BYTES.default)) - head)
        self.clock = PoissonClock(self.ctx, self.p.get("rate", RATE.default))

    def on_start(self) -> None:
        self.clock.start()

    def on_timer(self, nodes: np.ndarray, tag) -> None:
        self.ctx.broadcast(nodes, {"pad": np.zeros((len(nodes), self.pad), dtype=np.uint8)})
        self.clock.next(nodes)

    def estimate(self) -> np.ndarray:
        return self.x
