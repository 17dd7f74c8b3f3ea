"""``netemu live``: run a scenario in wall-clock time over real UDP datagrams (loopback unless
``[live] host`` says otherwise).

Exit statuses: 0 done; 2 a user error (bad scenario, key file, port, missing external node);
3 the run lost more than ``[live] max_drop_share`` of its datagrams; 4 an external node departed
with ``[live] on_departure = "fail"``; 130 interrupted (Ctrl-C). Outputs are written for 3, 4
and 130.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("live")
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option("--time-scale", type=float, default=None,
              help="simulated seconds per wall-clock second (overrides [live] time_scale)")
@click.option("--port-base", type=int, default=None,
              help="UDP port of the medium; local node i uses port-base + 1 + i; 0: ephemeral")
@click.option("--duration", type=float, default=None,
              help="wall-clock seconds to run: replaces [run] rounds by duration * time_scale / period")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="output folder (default: results/<scenario name>-live)")
@click.option("--seed", type=int, default=None, help="override the scenario's seed")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a scenario value, e.g. --set live.external=[7] (repeatable)")
@click.option("--insecure", is_flag=True, default=False,
              help="allow [live] host to be a non-loopback address without [live] key_file (anyone who "
                   "reaches the port can then join, forge and flood the run)")
def live(scenario: Path, time_scale, port_base, duration, out, seed, overrides, insecure) -> None:
    """Run SCENARIO live: every node a UDP endpoint, a medium forwarding datagrams as the channel
    model says, round timers in wall-clock time. Writes the same files as 'netemu run'; Ctrl-C
    stops and writes what was done so far.

    Exit status: 0 done, 2 user error, 3 too many datagrams lost ([live] max_drop_share), 4 an
    external node departed with [live] on_departure = "fail", 130 interrupted."""
    from netemu.live.config import security, with_overrides
    from netemu.live.runtime import failure, interrupted, run_live
    from netemu.scenario.load import load

    sc = with_overrides(load(scenario, overrides, seed), time_scale, port_base, duration)
    out = out or Path("results") / f"{scenario.stem}-live"
    lv = sc.live
    if insecure and not lv.get("key_file") and not _loopback(security(sc, lv, insecure=True)["bind"]):
        click.echo(f"warning: --insecure: the medium binds {lv['host']} without [live] key_file; anyone "
                   f"who can reach its port can join, forge datagrams and flood the run", err=True)

    def listening(session) -> None:
        host, port = session.bound
        rounds, wall = sc.run["rounds"], sc.run["rounds"] * sc.run["period"] / lv["time_scale"]
        auth = ", authenticated" if lv.get("key_file") else ""
        click.echo(f"{session.p['label']}: medium {host}:{port}{auth}, {rounds} rounds in about {wall:.1f} s")
        if lv["external"]:
            key = f" --key-file {lv['key_file']}" if lv.get("key_file") else ""
            from netemu import registry
            from netemu.live.external import is_fl

            client = "fl_client.py" if is_fl(registry.get(session.p["name"])) else "live_client.py"
            click.echo(f"  waiting up to {lv['join_timeout']:g} s for external node(s) {lv['external']}: "
                       f"python examples/{client} {port} --id {lv['external'][0]}{key}")
        sys.stdout.flush()

    def log(r) -> None:
        f = r.final()
        metric = "loss" if "loss" in f else "consensus_error"
        err = f.get(metric, float("nan"))
        bad = sum(r.extra["rejected"].values())
        lost = r.extra["datagrams"]["dropped"]
        live_ = r.extra["live"]
        flag = ("  INTERRUPTED" if live_["interrupted"] else "  FAILED" if live_["failure"]
                else "  DIVERGED" if r.diverged else "")
        click.echo(f"{r.label:<14} {metric} {err:10.3e}  deliveries {r.counters['deliveries']:>8}  "
                   f"drops {r.counters['drops']:>6}  late {r.counters['late']:>5}  rejected {bad:>5}  "
                   f"dropped {lost:>5}  {r.wall_seconds:6.2f} s{flag}")
        for i in live_["departed"]:
            click.echo(f"  external node {i} departed (silent for more than [live] timeout = {lv['timeout']:g} s)")

    try:
        results = run_live(sc, out, on_listen=listening, log=log, insecure=insecure)
    except KeyboardInterrupt:  # Python 3.10: asyncio.run re-raises it after the outputs are written
        click.echo("interrupted: the outputs hold the rounds completed so far", err=True)
        sys.exit(130)
    plot = ", plots" if sc.output["plot"] else ""
    trace = ", events.msgpack" if sc.output["trace"] else ""
    click.echo(f"wrote {out}/metrics.csv, summary.json{trace}{plot}")
    if interrupted(results):
        click.echo("interrupted: the outputs hold the rounds completed so far", err=True)
        sys.exit(130)
    failed = failure(results)
    if failed is not None:
        click.echo(f"error: {failed['message']}", err=True)
        sys.exit(failed["status"])


def _loopback(address: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(address).is_loopback
