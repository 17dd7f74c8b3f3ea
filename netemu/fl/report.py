"""What an FL run reports beyond metrics.csv: time to a target loss, a table per protocol, plots.

- ``time_to_target(rows, target)``: the first sampled simulated time at which ``loss <= target``
  (summary.json ``time_to_target``; ``[run] target_loss``), None if never.
- ``write_table(path, results, target)``: ``fl_table.csv``, one line per protocol: time to the
  target, final loss (and accuracy or perplexity when the task has them), bytes up and down,
  updates applied, dropped and retried, mean staleness.
- ``write_plots(stage, results, title, plotter)``: staleness, bytes_up, updates_applied and
  clients_training against simulated time, one line per protocol.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

FL_PROTOCOLS = ("fedavg", "fedasync", "fedbuff", "fedfix")
PLOTS = (("staleness", False), ("bytes_up", True), ("updates_applied", False), ("clients_training", False))
COLUMNS = ("loss", "accuracy", "perplexity", "bytes_up", "bytes_down", "updates_applied", "updates_dropped",
           "updates_retried", "staleness")


def time_to_target(rows, target: float) -> float | None:
    """The time of the first row whose ``loss`` is at most ``target``."""
    for _, t, m in rows:
        v = m.get("loss")
        if v is not None and math.isfinite(v) and v <= target:
            return float(t)
    return None


def is_fl(results) -> bool:
    return any(r.name in FL_PROTOCOLS for r in results)


def _last(rows, name: str):
    for _, _, m in reversed(rows):
        if name in m:
            return m[name]
    return None


def write_table(path: Path, results, target: float | None) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("protocol", "time_to_target") + tuple(f"final_{c}" if c in ("loss", "accuracy", "perplexity")
                                                          else c for c in COLUMNS))
        for r in results:
            ttt = time_to_target(r.rows, target) if target is not None else None
            vals = [_last(r.rows, c) for c in COLUMNS]
            w.writerow([r.label, "" if ttt is None else repr(ttt)] + ["" if v is None else repr(float(v)) for v in vals])


def write_plots(stage: Path, results, title: str, plotter) -> None:
    for metric, log in PLOTS:
        plotter.metric(stage / f"{metric}_time.png", results, metric, title, x="time", log=log)
