"""docs/figures/csma_pulm_pushsum.png from a run of scenarios/csma_pulm_pushsum.toml:

    netemu run scenarios/csma_pulm_pushsum.toml --out results/csma_pulm_pushsum
    python docs/figures/csma_pulm_pushsum.py results/csma_pulm_pushsum

Left: consensus error against simulated time, one colour per protocol, one line style per
bitrate. Right: what became of the receptions each protocol put on the air, per bitrate (from
summary.json's ``mac``): lost to collisions, late (not over by the round's end), delivered.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

out = Path(sys.argv[1])
dirs = sorted(out.glob("network.mac.bitrate=*"), key=lambda d: float(d.name.split("=")[1]))
styles = ["-", "--", ":"]
fig, (ax, bx) = plt.subplots(1, 2, figsize=(11.5, 4.2), dpi=120, gridspec_kw={"width_ratios": [1.4, 1]})
rows = []
for d, ls in zip(dirs, styles):
    rate = float(d.name.split("=")[1])
    label = f"{rate / 1e6:g} Mb/s"
    m = pd.read_csv(d / "metrics.csv")
    m = m[m.metric == "consensus_error"]
    for i, (proto, g) in enumerate(m.groupby("protocol", sort=False)):
        ax.plot(g["time"], g["value"], color=f"C{i}", ls=ls, lw=1.5, label=f"{proto}, {label}")
    summary = json.loads((d / "summary.json").read_text())
    for proto, p in summary["protocols"].items():
        mac = p["mac"]
        heard = p["deliveries"] + p["drops"] + p["late"]
        rows.append((f"{proto}\n{label}", mac["collisions"] / heard, p["late"] / heard, p["deliveries"] / heard))
ax.set_yscale("log")
ax.set_xlabel("simulated time (s)")
ax.set_ylabel("consensus error  max_i ‖x_i − x̄⁰‖∞")
ax.set_title("100 nodes, CSMA: error against time")
ax.legend(fontsize=7, ncol=2)
names = [r[0] for r in rows]
col, late, ok = ([r[k] for r in rows] for k in (1, 2, 3))
bx.bar(names, col, color="C3", label="collision")
bx.bar(names, late, bottom=col, color="C7", label="late")
bx.bar(names, ok, bottom=[a + b for a, b in zip(col, late)], color="C2", label="delivered")
bx.set_ylabel("share of the receptions on the air")
bx.set_title("where the receptions went")
bx.tick_params(axis="x", labelsize=7)
bx.legend(fontsize=7, loc="lower right")
fig.tight_layout()
fig.savefig(Path(__file__).with_suffix(".png"))
