"""docs/figures/ns3_broadcast.png from benchmarks/data/ns3_broadcast.csv (benchmarks/ns3_broadcast.py):

    python docs/figures/ns3_broadcast.py

Broadcast delivery ratio against the offered load per neighbourhood, one colour per node count
(density), ns-3's 802.11b ad hoc broadcast solid, netemu's CSMA dashed, on the same geometry and
Poisson traffic.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

root = Path(__file__).resolve().parents[2]
d = pd.read_csv(root / "benchmarks" / "data" / "ns3_broadcast.csv")
fig, ax = plt.subplots(figsize=(6.8, 4.4), dpi=120)
for i, (n, g) in enumerate(d.groupby("nodes")):
    for sim, ls, mk in (("ns-3", "-", "o"), ("netemu", "--", "s")):
        h = g[g.simulator == sim].sort_values("offered_load")
        deg = h["mean_neighbours"].iloc[0]
        ax.plot(h["offered_load"], h["delivery_ratio"], ls=ls, marker=mk, color=f"C{i}", ms=4,
                label=f"{sim}, {n} nodes ({deg:.1f} neighbours)")
ax.set_xscale("log")
ax.set_xlabel("offered load per neighbourhood  (neighbours + 1) · rate · airtime")
ax.set_ylabel("broadcast delivery ratio")
ax.set_title("802.11b broadcast, 1 Mb/s, 50 m, 200 m × 200 m: ns-3 (solid) vs netemu csma (dashed)", fontsize=8)
ax.set_ylim(0, 1.02)
ax.legend(fontsize=6.5, ncol=2)
fig.tight_layout()
fig.savefig(Path(__file__).with_suffix(".png"))
