"""What recording a run and ``netemu view`` cost, in one invocation.

1. Recording overhead: ``scenarios/radio_swarm.toml`` (50 nodes, 300 rounds, 3 protocols) run by
   ``netemu.runner.run_scenario`` with ``[output] record = true`` and ``false`` (plots off in both),
   interleaved, ``--repeats`` times each after one warm-up run; the median and the minimum of wall
   and CPU time (user + system of this process; on a machine shared with other work the minimum
   is the steadier) and their ratios on / off; the size of ``recording.npz``.
2. ``netemu view``: time (loading the recording and writing the page, in this process, plotly
   imported once before) and size of the page for
   - 50 nodes × 301 frames: the radio_swarm recording of step 1 (pulm and push-sum shown);
   - 2000 nodes × 301 frames: the same swarm with 2000 nodes in a field of 3162 m × 3162 m (the
     density of 50 nodes in 500 m × 500 m), 300 rounds, pulm and push-sum; links are capped at
     2000 per frame and kind in the recording and 500 in the page.
   ``--gif`` also times the GIF of the 50-node run (every third frame).

Run:  python benchmarks/bench_view.py [--repeats 3] [--gif]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIG = """name = "Radio swarm, 2000 nodes (benchmarks/bench_view.py)"
seed = 7
[network]
nodes = 2000
topology = "radio"
range = 120.0
loss = 0.1
[mobility]
model = "random-waypoint"
area = [3162, 3162]
speed = [2, 10]
pause = [0, 5]
[run]
rounds = 300
[task]
dim = 4
[output]
plot = false
[[protocols]]
name = "pulm"
[[protocols]]
name = "push-sum"
"""


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def run(path: Path, out: Path, *sets: str):
    from netemu.runner import run_scenario
    from netemu.scenario.load import load

    sc = load(path, ("output.plot=false", *sets))
    return timed(lambda: run_scenario(sc, out, progress=False))


def view(folder: Path, html: Path):
    from netemu import recording, view as v

    def page():
        rec = recording.load(folder)
        labels = v.choose(rec, ())
        return v.write_html(rec, labels, html), rec

    return timed(page)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--gif", action="store_true", help="also time the GIF of the 50-node run")
    args = ap.parse_args()
    importlib.import_module("plotly.io")  # imported once, before any timing

    swarm = ROOT / "scenarios" / "radio_swarm.toml"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run(swarm, tmp / "warm")  # imports, caches
        times = {"on": [], "off": []}
        for _ in range(args.repeats):
            for mode in ("on", "off"):
                w, c, _ = run(swarm, tmp / mode, f"output.record={'true' if mode == 'on' else 'false'}")
                times[mode].append((w, c))
        rec_bytes = (tmp / "on" / "recording.npz").stat().st_size
        print(f"recording overhead, scenarios/radio_swarm.toml (50 nodes, 300 rounds, 3 protocols, "
              f"301 frames each), {args.repeats} runs each:")
        for name, stat in (("median", statistics.median), ("min", min)):
            v = {m: (stat(t[0] for t in r), stat(t[1] for t in r)) for m, r in times.items()}
            print(f"  {name:<6} record off  wall {v['off'][0]:6.2f} s  cpu {v['off'][1]:6.2f} s   record on  "
                  f"wall {v['on'][0]:6.2f} s  cpu {v['on'][1]:6.2f} s   ratio on/off  wall "
                  f"{v['on'][0] / v['off'][0]:.3f}  cpu {v['on'][1] / v['off'][1]:.3f}")
        print(f"  recording.npz {rec_bytes / 1e6:.2f} MB")

        print("netemu view (page: plotly inlined, 2 protocols side by side):")
        w, c, (size, rec) = view(tmp / "on", tmp / "swarm.html")
        frames = len(rec.protocols[rec.labels[0]]["k"])
        print(f"  {rec.meta['nodes']:>5} nodes x {frames} frames  view wall {w:6.2f} s  cpu {c:6.2f} s  "
              f"page {size / 1e6:6.1f} MB")
        (tmp / "big.toml").write_text(BIG)
        w, c, _ = run(tmp / "big.toml", tmp / "big")
        big_bytes = (tmp / "big" / "recording.npz").stat().st_size
        vw, vc, (size, rec) = view(tmp / "big", tmp / "big.html")
        frames = len(rec.protocols[rec.labels[0]]["k"])
        print(f"  {rec.meta['nodes']:>5} nodes x {frames} frames  view wall {vw:6.2f} s  cpu {vc:6.2f} s  "
              f"page {size / 1e6:6.1f} MB   (the run: {w:.1f} s, recording.npz {big_bytes / 1e6:.1f} MB)")
        if args.gif:
            from netemu import recording, view_gif

            rec = recording.load(tmp / "on")
            gw, gc, size = timed(lambda: view_gif.write_gif(rec, rec.labels[:2], tmp / "swarm.gif", step=3))
            print(f"  GIF, 50 nodes x 101 frames (every third)  wall {gw:6.2f} s  cpu {gc:6.2f} s  "
                  f"{size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
