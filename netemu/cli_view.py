"""``netemu view DIR``: a run's recording as an animated page (``netemu.view``) or a GIF
(``netemu.view_gif``). Building the command line imports neither numpy nor plotly."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("view")
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--protocol", "protocols", multiple=True, metavar="NAME",
              help="a protocol of the run to show (repeatable; default: the run's first two), side by side")
@click.option("--out", type=click.Path(path_type=Path), default=None, metavar="FILE.html",
              help="the page to write (default: DIR/view.html; with --gif or --png alone, no page)")
@click.option("--gif", type=click.Path(path_type=Path), default=None, metavar="FILE.gif",
              help="also write the animation as a GIF (matplotlib, Pillow writer)")
@click.option("--png", type=click.Path(path_type=Path), default=None, metavar="FILE.png",
              help="also write one frame as a PNG (matplotlib), the middle one or --frame's")
@click.option("--frame", type=int, default=None, metavar="N", help="--png: the frame to draw (from 0)")
@click.option("--links", type=click.IntRange(min=0), default=None, metavar="N",
              help="links drawn per frame, kind and panel (default: 500 in the page, 300 in a GIF)")
@click.option("--step", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="GIF: every N-th recorded frame")
def view(folder: Path, protocols: tuple, out: Path | None, gif: Path | None, png: Path | None,
         frame: int | None, links: int | None, step: int) -> None:
    """Animate the run recorded in DIR (netemu run --out DIR): nodes coloured by their error, links
    that delivered (faint) and lost (red) messages, the error curve beneath; one self-contained
    HTML file (no server, no network)."""
    from netemu import recording, view as v

    html = out if out is not None else (None if gif is not None or png is not None else folder / "view.html")
    if html is not None and out is not None:
        v.check_target(html, "--out")
    if gif is not None:
        v.check_target(gif, "--gif")
    if png is not None:
        v.check_target(png, "--png")
    rec = recording.load(folder)
    labels = v.choose(rec, protocols)
    if html is not None:
        size = v.write_html(rec, labels, html, v.VIEW_LINKS if links is None else links)
        click.echo(f"wrote {html} ({size / 1e6:.1f} MB, {len(v.frame_index(rec, labels)[0])} frames, "
                   f"{', '.join(labels)})")
    if gif is not None:
        from netemu import view_gif

        size = view_gif.write_gif(rec, labels, gif, view_gif.GIF_LINKS if links is None else links, step)
        click.echo(f"wrote {gif} ({size / 1e6:.1f} MB)")
    if png is not None:
        from netemu import view_gif

        size = view_gif.write_png(rec, labels, png, frame, view_gif.GIF_LINKS if links is None else links)
        click.echo(f"wrote {png} ({size / 1e3:.0f} kB)")
