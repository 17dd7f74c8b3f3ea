"""The ``netemu`` command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from netemu import __version__
from netemu.errors import NetemuError


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that staging folders are removed on the way out."""


def _on_sigterm(signum, frame):
    raise Terminated()


class Group(click.Group):
    """Turns user errors into one line on stderr and exit status 2, without a traceback; Ctrl-C
    and SIGTERM end with status 130 and 143 after removing the run's temporary folders."""

    def invoke(self, ctx):
        import signal

        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (a test runner, an embedding program)
            pass
        try:
            return super().invoke(ctx)
        except NetemuError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: no results were written for the unfinished run", err=True)
            sys.exit(130)
        except Terminated:
            click.echo("terminated: no results were written for the unfinished run", err=True)
            sys.exit(143)


@click.group(cls=Group)
@click.version_option(__version__, prog_name="netemu")
def main() -> None:
    """Emulate broadcast networks and run decentralized protocols on them."""


@main.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output folder (default: results/<scenario name>)")
@click.option("--seed", type=int, default=None, help="override the scenario's seed")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a scenario value, e.g. --set network.loss=0.3 (repeatable)")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal)")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="run a sweep's combinations in this many processes")
@click.option("--max-memory", "max_memory", default=None, metavar="SIZE",
              help="memory a run may use, e.g. 100G or 512M (default: what is available); a run whose "
                   "estimate is larger is refused before it starts")
def run(scenario: Path, out: Path | None, seed: int | None, overrides: tuple, progress, jobs: int,
        max_memory: str | None) -> None:
    """Run SCENARIO (a TOML file) in simulated time and write metrics.csv, summary.json, plots."""
    from dataclasses import replace

    from netemu.scenario import preflight
    from netemu.scenario.load import load_sweep

    limit = preflight.parse_size(max_memory) if max_memory is not None else None
    runs = [(label, replace(sc, max_memory=limit)) for label, sc in load_sweep(scenario, overrides, seed)]
    for _, sc in runs:  # every combination is sized before any runs
        preflight.check(sc)
    out_given = out is not None
    out = out or Path("results") / scenario.stem

    def log(r):
        f = r.final()
        if "loss" in f:  # optimization run
            flag = f"  DIVERGED at round {r.diverged_at_round}" if r.diverged else ""
            acc = f"  accuracy {f['accuracy']:6.3f}" if "accuracy" in f else ""
            ppl = f"  perplexity {f['perplexity']:8.3f}" if "perplexity" in f else ""
            if "time_to_target" in r.extra:  # [run] target_loss given: the time to it (FL: and the updates applied)
                ttt = r.extra["time_to_target"]
                more = f"  target at {'never' if ttt is None else f'{ttt:g} s':>7}"
                if "updates_applied" in f:
                    more += f"  updates {int(f['updates_applied']):>6}"
            else:
                more = f"  straggler rounds {r.extra.get('straggler_rounds', 0):>6}"
            click.echo(f"  {r.label:<14} loss {f['loss']:10.4e}  grad_norm_sq {f['grad_norm_sq']:10.3e}{acc}{ppl}"
                       f"{more}  {r.wall_seconds:6.2f} s{flag}")
            return
        err = f.get("consensus_error", float("nan"))
        flag = "  DIVERGED" if r.diverged else ""
        click.echo(f"  {r.label:<14} consensus_error {err:10.3e}  deliveries {r.counters['deliveries']:>9}  "
                   f"drops {r.counters['drops']:>8}  late {r.counters['late']:>6}  "
                   f"{r.wall_seconds:6.2f} s{flag}")

    from netemu.sweep import run_all

    def announce(label, sc, target):
        click.echo(f"{sc.name or scenario.stem}" + (f" [{label}]" if label else "") + f" -> {target}/")

    from netemu.outputs import remove_stages, write_error

    from netemu.errors import ScenarioError

    try:
        done = run_all(runs, out, jobs=jobs, progress=progress, announce=announce, log=log)
    except ScenarioError:  # bad input (a file, a value): nothing is written
        raise
    except Exception as e:  # the input was valid but the run failed: its error is the output set
        if out_given:
            write_error(out, f"error: {e}")
        raise
    except BaseException:  # interrupted: leave no temporary folder behind (a killed worker's too)
        remove_stages(out.parent)
        remove_stages(out)
        raise
    if len(runs) > 1 and runs[0][1].output["plot"]:
        from netemu.sweep import PANEL_METRICS, plot_panels

        title = runs[0][1].name or scenario.stem
        for metric in PANEL_METRICS:
            if plot_panels(out / f"{metric}.png", done, metric, title):
                click.echo(f"wrote {out}/{metric}.png")


@main.command("sweep")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--grid", "grids", multiple=True, metavar="KEY=V1,V2,…",
              help="a scenario key and its values, e.g. --grid network.loss=0,0.1,0.3 (repeatable; over "
                   "the file's sweep table)")
@click.option("--seeds", type=int, default=1, show_default=True,
              help="seeds per grid combination, from the scenario's seed on")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="local worker processes (default: the cores)")
@click.option("--ray", "ray", default=None, metavar="auto|ADDRESS",
              help="run on Ray instead: auto (Ray running here, else a new local instance) or a "
                   "cluster's HOST:PORT / ray://HOST:PORT")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="sweep folder (default: results/<scenario name>-sweep); finished runs there are kept")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a scenario value")
@click.option("--x", "x_axis", type=click.Choice(["round", "time"]), default="round", show_default=True,
              help="x-axis of the band plots")
@click.option("--progress/--no-progress", default=None, help="progress bar (default: on a terminal)")
@click.option("--max-memory", "max_memory", default=None, metavar="SIZE", help="memory one run may use")
def sweep_cmd(scenario: Path, grids: tuple, seeds: int, jobs, ray, out, overrides: tuple, x_axis: str,
              progress, max_memory) -> None:
    """Run SCENARIO over grids × seeds; write DIR/runs/<id>/, sweep.csv, series, bands, tables.
    Exit status 1 when a run failed (see DIR/failed.csv); run it again to finish what is missing."""
    from netemu.sweeps import run_sweep

    out = out or Path("results") / f"{scenario.stem}-sweep"
    try:
        res = run_sweep(scenario, seeds=seeds, out=out, jobs=jobs, ray=ray, progress=progress, x=x_axis,
                        max_memory=max_memory, grids=grids, overrides=overrides, echo=click.echo)
    except (KeyboardInterrupt, Terminated):
        click.echo(f"stopped: the finished runs are kept in {out}/runs; run the same command again to "
                   f"run the rest", err=True)
        raise
    _sweep_done(res)
    if len(res.failed):
        click.echo(f"{len(res.failed)} of {len(res.manifest['runs'])} runs failed; see {res.out}/failed.csv",
                   err=True)
        sys.exit(1)


def _sweep_done(res) -> None:
    for f in [res.out / "sweep.csv", res.out / "tables.md"]:
        click.echo(f"wrote {f}")
    bands = sorted(res.out.glob("band_*.png"))
    if bands:
        click.echo(f"wrote {', '.join(str(b) for b in bands)}")


@main.command("report")
@click.argument("dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--x", "x_axis", type=click.Choice(["round", "time"]), default="round", show_default=True,
              help="x-axis of the band plots")
def report_cmd(dir: Path, x_axis: str) -> None:
    """Redraw a sweep's sweep.csv, series, band plots and tables from DIR, running nothing."""
    from netemu.sweeps import redraw

    res = redraw(dir, x=x_axis)
    _sweep_done(res)
    missing = len(res.manifest["runs"]) - res.finals.loc[res.finals["status"] == "ok", "run"].nunique()
    if missing:
        click.echo(f"{missing} of {len(res.manifest['runs'])} runs have no results "
                   f"({len(res.failed)} failed)", err=True)


@main.command("plot-sweep")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--x", "x_key", required=True, metavar="KEY",
              help="dotted scenario key (network.loss, protocols.0.alpha), or protocols.KEY for each "
                   "protocol's own KEY (several protocols per run)")
@click.option("--metric", default="loss", show_default=True, help="final metric on the y-axis")
@click.option("--at-time", type=float, default=None, metavar="SECONDS",
              help="the metric at this simulated time instead of the final one (one time budget)")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="figure file (default: DIR/<metric>_vs_<KEY>.png of the first DIR)")
@click.option("--mark", "marks", multiple=True, metavar="VALUE[=TEXT]",
              help="a vertical line at VALUE, labelled TEXT (repeatable), e.g. --mark '0.111=2/(m+2)'")
@click.option("--best", type=click.Choice(["auto", "min", "max", "none"]), default="auto", show_default=True,
              help="star each line's best point (auto: max for accuracy, min otherwise)")
@click.option("--logx/--linx", default=None, help="x scale (default: log when x spans a factor 10 or more)")
@click.option("--logy/--liny", default=None, help="y scale (default: linear for accuracy, else log)")
@click.option("--title", default=None, help="figure title")
@click.option("--name", "names", multiple=True, metavar="SERIES=TEXT",
              help="legend text of a series (as printed), e.g. --name 'network.loss=0=lossless' (repeatable)")
def plot_sweep_cmd(dirs: tuple, x_key: str, metric: str, at_time: float | None, out: Path | None,
                   marks: tuple, best: str, logx, logy, title, names: tuple) -> None:
    """Final METRIC (or the one --at-time) of every run under DIRS (netemu run output folders,
    sweeps included) against the swept value KEY: one line per setting, the best point starred;
    prints the points."""
    from netemu.sweep import plot_sweep, sweep_points

    points = sweep_points(list(dirs), x_key, metric, at_time)
    best = ("max" if metric == "accuracy" else "min") if best == "auto" else best
    parsed = []
    for m in marks:
        value, _, text = m.partition("=")
        try:
            parsed.append((float(value), text or value))
        except ValueError:
            raise click.BadParameter(f"{m!r}: expected VALUE[=TEXT], e.g. 0.111=2/(m+2)",
                                     param_hint="--mark") from None
    series = {p["series"] for p in points}
    legend = {}
    for item in names:  # the series name itself may hold "=": match the longest known prefix
        hit = max((s for s in series if item.startswith(s + "=")), key=len, default=None)
        if hit is None:
            raise click.BadParameter(f"{item!r}: expected SERIES=TEXT with SERIES one of "
                                     f"{', '.join(sorted(map(repr, series)))}", param_hint="--name")
        legend[hit] = item[len(hit) + 1:]
    out = out or Path(dirs[0]) / f"{metric}_vs_{x_key}.png"
    bests = plot_sweep(out, points, metric, x_key, marks=parsed, best=best, logx=logx, logy=logy,
                       title=title, names=legend, at_time=at_time)
    width = max(len("series"), *(len(p["series"]) for p in points)) + 2
    click.echo(f"{'series':<{width}}{x_key:>18}  {metric:>12}")
    for p in points:
        flag = "  diverged" if p["diverged"] else ""
        click.echo(f"{p['series']:<{width}}{str(p['x']):>18}  {p['value']:12.5g}{flag}")
    for s, b in bests.items():
        click.echo(f"best {metric} ({best}) of {s or metric}: {b['value']:.5g} at {x_key} = {b['x']}")
    click.echo(f"wrote {out}")


@main.command("protocols")
def protocols_cmd() -> None:
    """List the registered protocols and their papers."""
    from netemu import registry

    for name in registry.names():
        try:
            cls = registry.get(name)
            click.echo(f"{name:<14} {cls.paper}")
        except Exception as e:  # a broken third-party plugin must not hide the others
            click.echo(f"{name:<14} (cannot load: {e})")


@main.group()
def trace() -> None:
    """Inspect event traces (events.msgpack)."""


@trace.command("summary")
@click.argument("file", type=click.Path(path_type=Path))
def trace_summary(file: Path) -> None:
    """Counts of transmissions, receptions and drops per protocol in FILE."""
    from netemu.tracefile import summarize

    click.echo(summarize(file))


def _add_optional_commands() -> None:
    try:
        from netemu.cli_mobility import mobility
    except ImportError:
        return
    main.add_command(mobility)


_add_optional_commands()


def _add_live_command() -> None:
    from netemu.live.cli import live

    main.add_command(live)


_add_live_command()


def _add_view_command() -> None:
    from netemu.cli_view import view

    main.add_command(view)


_add_view_command()
