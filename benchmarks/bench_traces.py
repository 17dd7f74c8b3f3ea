"""Lines per second of netemu's ns-2 reader against a plain line-by-line reader.

Two traces are generated in a temporary folder (or ``--dir``):

- *large*: about ``--size`` MB (default 200) of random-waypoint ``setdest`` lines for
  ``--nodes`` nodes (default 1,000), sorted by time across nodes as ns-2's ``setdest`` tool
  writes them, after three ``set X_/Y_/Z_`` lines per node; numbers written with ``repr`` (full
  precision, about 95 characters a line);
- *many nodes*: ``--many`` nodes (default 20,000), each with its three ``set`` lines followed by
  ten ``setdest`` lines, node after node (as BonnMotion writes), so every piece of the file
  mixes line kinds;
- *ONE*: a ONE ``ExternalMovement`` trace of ``--nodes`` nodes sampled every second, about a
  quarter of ``--size`` MB.

For each, in this one invocation (so the ratios are comparable):

- plain: a straightforward Python loop that splits each line and parses its floats, without
  ns-3's planning (a floor for any reader that looks at every line);
- netemu: ``netemu.world.traces.read_ns2`` (parse, ns-3's planning, replay into trajectories),
  or ``read_one`` (parse, shift, sort per node);
- replay: ``Trajectories.positions`` at 100 instants spread over the trace.

Run:  python benchmarks/bench_traces.py [--size 200] [--nodes 1000] [--many 20000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from netemu.world.traces import TraceWarning, read_ns2, read_one

LINE_BYTES = 95  # about what one repr-written setdest line takes


def _inits(ids, rng, area) -> list[str]:
    out = []
    for i in ids:
        x, y = rng.uniform(0, area, 2).tolist()
        out.append(f"$node_({i}) set X_ {x!r}\n$node_({i}) set Y_ {y!r}\n$node_({i}) set Z_ 0.0\n")
    return out


def _legs(rng, nodes: int, legs: int, area: float):
    """Random-waypoint legs: start time, node, destination, speed; per node in time order."""
    dest = rng.uniform(0, area, (nodes, legs, 2))
    speed = rng.uniform(1, 20, (nodes, legs))
    start = np.cumsum(rng.uniform(1, 60, (nodes, legs)), axis=1)
    start -= start[:, :1]
    return start, dest, speed


def _setdest(t, n, x, y, v) -> list[str]:
    return [f'$ns_ at {a!r} "$node_({b}) setdest {c!r} {d!r} {e!r}"\n'
            for a, b, c, d, e in zip(t.tolist(), n.tolist(), x.tolist(), y.tolist(), v.tolist())]


def large_trace(path: Path, size_mb: float, nodes: int, seed: int = 1, area: float = 1000.0) -> None:
    rng = np.random.default_rng(seed)
    legs = max(1, int(size_mb * 1e6 / LINE_BYTES / nodes))
    start, dest, speed = _legs(rng, nodes, legs, area)
    order = np.argsort(start, axis=None, kind="stable")  # all nodes' legs in time order
    ni, li = np.unravel_index(order, start.shape)
    with open(path, "w") as f:
        f.writelines(_inits(range(nodes), rng, area))
        for a in range(0, len(ni), 200_000):
            n, k = ni[a:a + 200_000], li[a:a + 200_000]
            f.writelines(_setdest(start[n, k], n, dest[n, k, 0], dest[n, k, 1], speed[n, k]))


def many_nodes_trace(path: Path, nodes: int, legs: int = 10, seed: int = 2, area: float = 5000.0) -> None:
    rng = np.random.default_rng(seed)
    start, dest, speed = _legs(rng, nodes, legs, area)
    inits = _inits(range(nodes), rng, area)
    ids = np.repeat(np.arange(nodes), legs).reshape(nodes, legs)
    with open(path, "w") as f:
        for i in range(nodes):
            f.write(inits[i])
            f.writelines(_setdest(start[i], ids[i], dest[i, :, 0], dest[i, :, 1], speed[i]))


def one_trace(path: Path, size_mb: float, nodes: int, seed: int = 3, area: float = 1000.0) -> None:
    rng = np.random.default_rng(seed)
    steps = max(2, int(size_mb * 1e6 / 45 / nodes))  # about 45 characters a sample
    with open(path, "w") as f:
        f.write(f"0 {steps} 0 {area} 0 {area}\n")
        for k in range(steps):
            xy = rng.uniform(0, area, (nodes, 2)).tolist()
            f.writelines(f"{k} {i} {x!r} {y!r}\n" for i, (x, y) in enumerate(xy))


def plain_one_reader(path: Path) -> int:
    lines, values = 0, []
    with open(path) as f:
        for line in f:
            lines += 1
            tok = line.split()
            if len(tok) == 4:
                values.append((float(tok[0]), int(tok[1]), float(tok[2]), float(tok[3])))
    return lines


def plain_reader(path: Path) -> int:
    """Split every line and parse its numbers; no checks beyond that, no planning."""
    lines = 0
    values = []
    with open(path) as f:
        for line in f:
            lines += 1
            tok = line.split()
            if len(tok) == 8:
                values.append((float(tok[2]), float(tok[5]), float(tok[6]), float(tok[7].rstrip('"'))))
            elif len(tok) == 4:
                values.append((float(tok[3]),))
    return lines


def _best(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def bench(name: str, path: Path, repeats: int, one: bool = False) -> None:
    with open(path, "rb") as f:
        lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))
    print(f"{name}: {path.stat().st_size / 1e6:.1f} MB, {lines:,} lines")
    plain_s, _ = _best(lambda: (plain_one_reader if one else plain_reader)(path), repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TraceWarning)  # the generated traces are clean
        netemu_s, traj = _best(lambda: (read_one if one else read_ns2)(path), repeats)
    instants = np.linspace(0.0, traj.end_time(), 100)
    replay_s, _ = _best(lambda: [traj.positions(t) for t in instants], repeats)
    print(f"  plain line-by-line reader (split + float, no planning)  {plain_s:7.2f} s  "
          f"{lines / plain_s:>12,.0f} lines/s")
    what = "read_one (parse + shift + sort per node)      " if one else \
        "read_ns2 (parse + ns-3 planning + trajectories)"
    print(f"  netemu {what}  {netemu_s:7.2f} s  "
          f"{lines / netemu_s:>12,.0f} lines/s   ({traj.n:,} nodes)")
    print(f"  ratio netemu / plain (lines/s)                          {plain_s / netemu_s:7.2f}")
    print(f"  replay: positions of all nodes at 100 instants          {replay_s:7.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=200.0, help="MB of the large trace (default 200)")
    ap.add_argument("--nodes", type=int, default=1000, help="nodes of the large trace (default 1000)")
    ap.add_argument("--many", type=int, default=20000, help="nodes of the many-node trace (default 20000)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each reader; the best counts")
    ap.add_argument("--dir", type=Path, default=None, help="write (and keep) the traces here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        big, many = folder / "large.ns_movements", folder / "many_nodes.ns_movements"
        one = folder / "samples.one"
        t = time.perf_counter()
        large_trace(big, args.size, args.nodes)
        many_nodes_trace(many, args.many)
        one_trace(one, args.size / 4, args.nodes)
        print(f"(traces generated in {time.perf_counter() - t:.1f} s)")
        bench(f"ns-2 large trace, {args.nodes:,} nodes", big, args.repeats)
        bench(f"ns-2 many-node trace, {args.many:,} nodes x 10 setdest", many, args.repeats)
        bench(f"ONE trace, {args.nodes:,} nodes", one, args.repeats, one=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
