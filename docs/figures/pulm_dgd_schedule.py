"""docs/figures/pulm_dgd_schedule.png from a run of scenarios/pulm_dgd_schedule.toml:

    netemu run scenarios/pulm_dgd_schedule.toml --out results/pulm_dgd_schedule
    python docs/figures/pulm_dgd_schedule.py results/pulm_dgd_schedule

opt_gap against communication round, one panel per loss value: each round's value faint, its
running mean over 100 rounds solid (a floor is a fluctuation; the mean shows its level). The
y-axis starts at 1e-5, so Push-DIGing's fall to rounding level (≤ 1e-15) leaves the panel.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

out = Path(sys.argv[1])
dirs = sorted(out.glob("network.loss=*"))
fig, axes = plt.subplots(1, len(dirs), figsize=(5.2 * len(dirs), 4.0), dpi=120, sharey=True, squeeze=False)
for ax, d in zip(axes[0], dirs):
    m = pd.read_csv(d / "metrics.csv")
    m = m[m.metric == "opt_gap"]
    for i, (proto, g) in enumerate(m.groupby("protocol", sort=False)):
        y = g["value"].to_numpy(dtype=float)
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
        x = g["round"].to_numpy()
        color = f"C{i}"
        ax.plot(x, y, color=color, lw=0.6, alpha=0.25)
        mean = pd.Series(y).rolling(100, min_periods=100).mean()
        ax.plot(x, mean, color=color, lw=1.8, label=proto)
        if proto == "push-diging":  # leaves the panel: say where it goes
            tiny = np.flatnonzero(~(np.abs(g["value"].to_numpy()) > 1e-14))
            if not np.isfinite(g["value"].to_numpy()[-1]):
                text = f"push-diging diverges (inf at round {x[np.isfinite(g['value'].to_numpy())][-1] + 1})"
            elif len(tiny):
                text = f"push-diging: |opt_gap| ≤ 1e-14 from round {x[tiny[0]]}"
            else:
                text = None
            if text:
                ax.text(0.98, 0.03, text, transform=ax.transAxes, ha="right", fontsize=8, color=color)
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1e2)
    ax.set_title(d.name, fontsize=9)
    ax.set_xlabel("communication round")
    ax.grid(True, which="both", alpha=0.3)
axes[0][0].set_ylabel("opt_gap = F(x̄) − F*")
axes[0][0].legend(fontsize=8, loc="upper right")
fig.suptitle("quadratic task, 10 nodes, random graph p = 0.5 (scenarios/pulm_dgd_schedule.toml)", fontsize=10)
fig.tight_layout()
fig.savefig(Path(__file__).with_suffix(".png"))
