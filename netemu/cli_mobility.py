"""``netemu mobility``: look inside movement traces and generate new ones.

``netemu mobility positions TRACE --at 0,10,60`` prints ``time,node,x,y,z`` rows (one per time
and node, nodes numbered as in the trace) with every float written in full (``repr``), so that
two tools can be compared to the micrometre. The output is itself a CSV trace.

``netemu mobility generate --model random-waypoint --nodes 50 … --out swarm.ns_movements`` draws
a model from ``netemu.world.mobility`` with the ``mobility`` random stream of ``--seed`` (the
stream a scenario with that seed uses) and writes it as an ns-2 movement file that ns-3's
``Ns2MobilityHelper`` reads back to the same motion.
"""

from __future__ import annotations

import math
from pathlib import Path

import click

# netemu.world.traces.FORMATS, written out so that building the command line (``netemu --help``)
# does not import numpy and the trace readers; tests/test_overhead.py checks that they agree
FORMATS = ("auto", "ns2", "one", "bonnmotion", "csv")


def _numbers(text: str, what: str, example: str) -> list[float]:
    values = []
    for part in text.split(","):
        try:
            v = float(part.strip())
        except ValueError:
            raise click.BadParameter(f"{part.strip()!r} is not a number; write {what} separated "
                                     f"by commas, e.g. {example}") from None
        if not math.isfinite(v):
            raise click.BadParameter(f"{part.strip()!r} is not a finite number; e.g. {example}")
        values.append(v)
    return values


def _times(ctx, param, text: str) -> list[float]:
    times = _numbers(text, "times in seconds", "--at 0,10.5,60")
    if any(t < 0 for t in times):
        raise click.BadParameter("times must be >= 0 seconds, e.g. --at 0,10.5,60")
    return times


def _range(ctx, param, text: str) -> list[float]:
    example = f"--{param.name} {param.default}"
    pair = _numbers(text, "two numbers", example)
    if len(pair) != 2:
        raise click.BadParameter(f"expected two numbers min,max, e.g. {example}")
    if pair[0] < 0 or pair[1] < 0 or pair[0] > pair[1]:
        raise click.BadParameter(f"expected 0 <= min <= max, e.g. {example}")
    return pair


def _area(ctx, param, text: str) -> list[float]:
    pair = _numbers(text, "width,height in metres", "--area 500,500")
    if len(pair) != 2 or not all(v > 0 for v in pair):
        raise click.BadParameter("expected width,height in metres, both > 0, e.g. --area 500,500")
    return pair


@click.group()
def mobility() -> None:
    """Movement traces: print positions, generate traces."""


@mobility.command()
@click.argument("trace", type=click.Path(path_type=Path))
@click.option("--at", "times", required=True, callback=_times, metavar="T1,T2,…",
              help="times in seconds, comma-separated")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
              help="trace format (auto: from the file name and its first lines)")
@click.option("--strict", is_flag=True, help="malformed lines are errors, not warnings")
def positions(trace: Path, times: list[float], fmt: str, strict: bool) -> None:
    """Print TRACE's node positions at the given times as CSV: time,node,x,y,z."""
    from netemu.world.traces import load_trace

    traj = load_trace(trace, fmt, strict)
    out = ["time,node,x,y,z"]
    for t in times:
        for node, (x, y, z) in zip(traj.ids, traj.positions(t)):
            out.append(f"{t!r},{node},{float(x)!r},{float(y)!r},{float(z)!r}")
    click.echo("\n".join(out))


@mobility.command()
@click.option("--model", required=True, type=click.Choice(("random-waypoint", "random-walk", "static")))
@click.option("--nodes", required=True, type=click.IntRange(min=1), help="number of nodes")
@click.option("--area", default="1000,1000", show_default=True, callback=_area, metavar="W,H",
              help="width,height in metres")
@click.option("--duration", required=True, type=click.FloatRange(min=0, min_open=True),
              help="seconds of movement to draw")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0))
@click.option("--speed", default="1,5", show_default=True, callback=_range, metavar="MIN,MAX",
              help="speed range, m/s")
@click.option("--pause", default="0,10", show_default=True, callback=_range, metavar="MIN,MAX",
              help="random-waypoint: pause range, s")
@click.option("--interval", default=10.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="random-walk: seconds between direction changes")
@click.option("--stationary/--no-stationary", default=True, show_default=True,
              help="random-waypoint: start in the stationary distribution (--no-stationary: "
                   "uniform positions and speeds, as before)")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="ns-2 movement file to write (e.g. swarm.ns_movements)")
def generate(model: str, nodes: int, area: list, duration: float, seed: int, speed: list,
             pause: list, interval: float, stationary: bool, out: Path) -> None:
    """Draw a mobility model and write it as an ns-2 movement file."""
    cfg = {"model": model, "area": area, "speed": speed, "pause": pause, "interval": interval,
           "stationary": stationary}
    from netemu.rng import stream
    from netemu.world.mobility import build_mobility
    from netemu.world.traces import write_ns2

    traj = build_mobility(cfg, nodes, duration, stream(seed, "mobility"), Path.cwd())
    write_ns2(traj, out)
    click.echo(f"wrote {out}: {nodes} nodes, {model}, {duration:g} s")
