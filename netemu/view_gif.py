"""``netemu view DIR --gif FILE.gif``: the page's animation (``netemu.view``) as a GIF, drawn with
matplotlib and written by its Pillow writer: the chosen protocols side by side, nodes coloured by
``log10`` of their error on one scale, links that delivered faint and lost red, the error curve
beneath with a cursor at the frame's round (event protocols: its simulated time), a server (FL)
at the centre when the network has no positions, and a node's state (FL: training, idle, offline,
server) as its marker, as on the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netemu.recording import Recording
from netemu.view import LEGEND, MPL_MARKERS, _write, colour_range, finite_log10, frame_index, info, states, thin_links, timeline

GIF_LINKS = 300  # links drawn per frame, kind and panel
GIF_DPI = 80
GIF_FPS = 10


def drawing(rec: Recording, labels: list[str], links: int = GIF_LINKS, step: int = 1):
    """The figure and ``draw(f)``, which shows animation frame ``f`` (every ``step``-th recorded
    one); and the number of such frames."""
    from matplotlib.collections import LineCollection

    from netemu.outputs import log_yaxis, new_figure

    meta, P = rec.meta, len(labels)
    idx = [i[::step] for i in frame_index(rec, labels)]
    total = len(idx[0])
    cmin, cmax = colour_range(rec, labels)
    fig = new_figure(figsize=(4.2 * P + 0.8, 5.6), dpi=GIF_DPI)
    grid = fig.add_gridspec(2, P, height_ratios=[3, 1.1], left=0.07, right=0.9, bottom=0.08, top=0.9,
                            hspace=0.28, wspace=0.08)
    pos_all = np.concatenate([rec.protocols[lb]["pos"].reshape(-1, 2) for lb in labels])
    lo, hi = np.nanmin(pos_all, axis=0), np.nanmax(pos_all, axis=0)
    pad = 0.04 * max(float((hi - lo).max()), 1e-9)
    radio = meta["layout"] == "positions"
    size = 18 if meta["nodes"] <= 200 else 4
    key, axis_title = timeline(rec, labels)
    panels = []
    for p, lb in enumerate(labels):
        ax = fig.add_subplot(grid[0, p])
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(lo[1] - pad, hi[1] + pad)
        ax.set_aspect("equal")
        ax.set_title(lb, fontsize=10)
        if not radio:
            ax.set_xticks([])
            ax.set_yticks([])
        ok = ax.add_collection(LineCollection([], colors=[(0.27, 0.43, 0.75, 0.22)], linewidths=0.6))
        lost = ax.add_collection(LineCollection([], colors=[(0.86, 0.12, 0.12, 0.7)], linewidths=0.8))
        sizes = np.full(meta["nodes"], float(size))
        hub = info(rec, lb)["server"]
        if hub is not None:
            sizes[hub] = 4 * size
        st, names = states(rec, lb)
        dots = {}  # one scatter per state (markers cannot vary within one): state code -> it
        for c, nm in (enumerate(names) if st is not None else [(None, "training")]):
            mk = MPL_MARKERS.get(nm, "o")
            zero = np.zeros(meta["nodes"])  # placeholders until draw(f): the colour map needs data
            dots[c] = ax.scatter(zero, zero, c=zero, s=sizes, marker="o" if mk == "open" else mk, cmap="viridis",
                                 vmin=cmin, vmax=cmax, zorder=3, linewidths=0 if mk in ("o", "s") else 1.2)
            if mk == "open":  # an open circle: the edge takes the colour
                dots[c].set_facecolor("none")
                dots[c].set_edgecolor(None)
        panels.append((ok, lost, dots, sizes, st))
    fig.colorbar(next(iter(panels[0][2].values())), ax=[fig.axes[p] for p in range(P)], fraction=0.03, pad=0.02,
                 label="log10 loss" if all(info(rec, lb)["error"].startswith("loss") for lb in labels)
                 else "log10 error")
    curve = fig.add_subplot(grid[1, :])
    for lb in labels:
        a = rec.protocols[lb]
        y = a["curve"].astype(np.float64)
        good = np.isfinite(y) & (y > 0)
        curve.plot(a["curve_" + key][good], y[good], lw=1.3, label=lb)
    if curve.lines:
        log_yaxis(curve)
    curve.set_xlabel(axis_title, fontsize=9)
    curve.set_ylabel(meta["metric"].replace("_", " "), fontsize=9)
    curve.legend(fontsize=8, loc="upper right")
    cursor = curve.axvline(0, color="black", lw=1, ls=":")
    title = fig.suptitle("", fontsize=10)
    names = list(dict.fromkeys(nm for lb in labels for nm in states(rec, lb)[1]))
    if names:  # what the markers mean, as in the page's subtitle
        fig.text(0.5, 0.935, "   ".join(LEGEND.get(nm, nm) for nm in names), ha="center", fontsize=8)

    def draw(f: int):
        ks = []
        for p, lb in enumerate(labels):
            a = rec.protocols[lb]
            g = int(idx[p][f])
            pos = a["pos"][g]
            ok, lost, dots, sizes, st = panels[p]
            for coll, kind in ((ok, "ok"), (lost, "lost")):
                li = thin_links(rec.links(lb, kind, g), links)
                coll.set_segments(np.stack([pos[li[:, 1]], pos[li[:, 0]]], axis=1))
            logs = finite_log10(a["err"][g])
            for c, sc in dots.items():
                m = slice(None) if c is None else st[g] == c
                sc.set_offsets(pos[m])
                sc.set_array(logs[m])
                sc.set_sizes(sizes[m])
            ks.append(a[key][g])
        cursor.set_xdata([max(ks)] * 2)
        now = f"round {int(max(ks))}" if key == "k" else f"t = {float(max(ks)):.6g} s"
        title.set_text(f"{meta.get('name') or ''}  —  {now}")
        return []

    return fig, draw, total


def write_gif(rec: Recording, labels: list[str], out: Path, links: int = GIF_LINKS, step: int = 1) -> int:
    """Write the animation to ``out`` (every ``step``-th frame); its size in bytes."""
    import tempfile

    from matplotlib.animation import FuncAnimation, PillowWriter

    fig, draw, total = drawing(rec, labels, links, step)
    anim = FuncAnimation(fig, draw, frames=total, blit=False, cache_frame_data=False)
    out = Path(out)
    with tempfile.NamedTemporaryFile(suffix=".gif", dir=out.parent if str(out.parent) else ".") as tmp:
        anim.save(tmp.name, writer=PillowWriter(fps=GIF_FPS), dpi=GIF_DPI)
        return _write(out, Path(tmp.name).read_bytes())


def write_png(rec: Recording, labels: list[str], out: Path, frame: int | None = None, links: int = GIF_LINKS,
              dpi: int = 110) -> int:
    """Write animation frame ``frame`` (default: the middle one) as a PNG; its size in bytes."""
    import io

    fig, draw, total = drawing(rec, labels, links)
    frame = total // 2 if frame is None else frame
    if not 0 <= frame < total:
        from netemu.errors import NetemuError

        raise NetemuError(f"--frame {frame}: the recording has frames 0..{total - 1}; choose one of them")
    draw(frame)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return _write(out, buf.getvalue())
