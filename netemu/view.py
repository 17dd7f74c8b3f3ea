"""``netemu view``: a run's recording (``recording.npz``, see ``netemu.recording``) as one
self-contained HTML page, drawn with plotly (its script inlined: no server, no network).

The page has one panel per chosen protocol, side by side and synced (the frames of one figure),
and beneath them the run's error curve (``consensus_error``, or ``loss``) of each protocol with a
cursor at the current frame. In a panel, nodes are coloured by ``log10`` of their error (one colour
scale for all panels; hovering a node shows its error and radio range), links that delivered a
message since the previous frame are drawn faint and those that lost one red. Play, pause and a
time slider run the frames. Round protocols are shown against the round, event protocols (FL,
asynchronous gossip) against simulated time in seconds (``clock`` in the recording). A protocol
with a server (FL) has it drawn at the centre and its clients on a circle when the network has no
positions; its delivered and lost links are then the frame's downloads and uploads.

A panel shows at most ``links`` links per frame and kind, every k-th of the recorded ones (which
are themselves capped at ``netemu.recording.LINK_CAP``); the hover and the title say how many there
were. Protocols that stopped early (a diverged run) keep their last frame.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

import numpy as np

from netemu.errors import NetemuError
from netemu.recording import Recording

VIEW_LINKS = 500  # links drawn per frame, kind and panel
FRAME_MS = 80  # milliseconds per frame when playing
OK_COLOUR, LOST_COLOUR = "rgba(70, 110, 190, 0.22)", "rgba(220, 30, 30, 0.7)"
# a node's state (``recording.NODE_STATES``) as its marker: plotly's symbol numbers (0 circle,
# 100 circle-open, 4 x, 1 square), matplotlib's markers, and the legend's words
SYMBOLS = {"idle": 100, "training": 0, "offline": 4, "server": 1}
MPL_MARKERS = {"idle": "open", "training": "o", "offline": "x", "server": "s"}
LEGEND = {"idle": "○ idle", "training": "● training", "offline": "× offline", "server": "■ server"}


def choose(rec: Recording, protocols: tuple) -> list[str]:
    """The protocols to show: those named (checked against the run), or the run's first two."""
    if not protocols:
        return rec.labels[:2]
    for name in protocols:
        if name not in rec.protocols:
            raise NetemuError(f"--protocol {name}: the run has no protocol of that name; it has "
                              f"{', '.join(rec.labels)}")
    return list(dict.fromkeys(protocols))


def check_target(path: Path, option: str) -> Path:
    """``path`` as an output file whose folder exists (else a one-line error)."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NetemuError(f"{option} {path}: the folder {folder} does not exist; create it or choose "
                          f"another path")
    if path.is_dir():
        raise NetemuError(f"{option} {path}: is a folder; give a file name")
    return path


def typed(a) -> dict:
    """A float32 array in plotly's typed-array form (base64; NaN kept, for gaps in lines)."""
    return {"dtype": "f4", "bdata": base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()}


def finite_log10(err: np.ndarray, floor: float = 1e-16) -> np.ndarray:
    """``log10`` of errors, with zeros at ``floor`` and non-finite values kept NaN-free at the
    largest finite value (a diverged node shows as the worst)."""
    e = np.asarray(err, dtype=np.float64)
    good = np.isfinite(e)
    top = float(e[good].max()) if good.any() else 1.0
    e = np.where(good, e, top)
    return np.log10(np.maximum(e, floor))


def states(rec: Recording, label: str) -> tuple[np.ndarray | None, list[str]]:
    """A protocol's recorded node states ``[F, n]`` (codes into the names) and the names; None
    where it records none."""
    a, names = rec.protocols[label], info(rec, label)["states"]
    return (a["state"], names) if names and "state" in a else (None, [])


def symbols(codes: np.ndarray, names: list[str]) -> list[int]:
    """The plotly marker symbols of one frame's state codes."""
    return np.asarray([SYMBOLS[nm] for nm in names], dtype=np.int64)[codes].tolist()


def thin_links(links: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of ``links``: every k-th one (k = ceil(L / limit))."""
    return links if len(links) <= limit else links[::-(-len(links) // limit)]


def segments(pos: np.ndarray, links: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y arrays of line segments sender → receiver, NaN between segments (plotly's gaps)."""
    xy = np.full((len(links), 3, 2), np.nan, dtype=np.float32)
    xy[:, 0] = pos[links[:, 1]]
    xy[:, 1] = pos[links[:, 0]]
    xy = xy.reshape(-1, 2)
    return xy[:, 0], xy[:, 1]


def info(rec: Recording, label: str) -> dict:
    """What the recording says of one protocol: ``clock``, ``layout``, ``error`` and ``server``
    (recordings that predate them: the run's layout and error, rounds, no server)."""
    meta = rec.meta
    p = next((q for q in meta["protocols"] if q["label"] == label), {})
    return {"clock": p.get("clock", "round"), "layout": p.get("layout", meta["layout"]),
            "error": p.get("error", meta["error"]), "server": p.get("server"), "states": p.get("states")}


def timeline(rec: Recording, labels: list[str]) -> tuple[str, str]:
    """``("t", "time (s)")`` when a shown protocol is an event one (its frames are samples of
    simulated time), else ``("k", "round")``: the key of the frames' x values and its label."""
    if any(info(rec, lb)["clock"] == "time" for lb in labels):
        return "t", "time (s)"
    return "k", "round"


def subtitle(rec: Recording, labels: list[str], links: int) -> str:
    """What the colours, the links and the layout mean (one line per distinct description)."""
    infos = [info(rec, lb) for lb in labels]
    errors = list(dict.fromkeys(i["error"] for i in infos))
    colour = (f"node colour: log10 of the {errors[0]}" if len(errors) == 1 else
              "node colour: log10 of the " + "; ".join(f"{i['error']} ({lb})" for lb, i in zip(labels, infos)))
    parts = [colour, f"links: blue delivered, red lost since the previous frame (at most {links} per kind drawn)"]
    layouts = [i["layout"] for i in infos if i["server"] is not None and i["layout"] != "positions"]
    if layouts:
        parts.append("layout: " + layouts[0] + "; links are its downloads and uploads")
    names = list(dict.fromkeys(nm for i in infos for nm in (i["states"] or [])))
    if names:
        parts.append("node marker: " + ", ".join(LEGEND.get(nm, nm) for nm in names))
    return "<br>".join(parts)


def frame_index(rec: Recording, labels: list[str]) -> list[np.ndarray]:
    """Per protocol, the frame it shows at each animation frame (its last one once it stopped)."""
    total = max(len(rec.protocols[lb]["k"]) for lb in labels)
    return [np.minimum(np.arange(total), len(rec.protocols[lb]["k"]) - 1) for lb in labels]


def log_ticks(lo: float, hi: float) -> dict:
    """Tick settings of a log axis from ``lo`` to ``hi``: one labelled tick per decade, or 1, 2, 5
    per decade when the range spans fewer than three (plotly would label every digit); plotly's own
    ticks when that leaves fewer than two."""
    if not (0 < lo <= hi < np.inf):
        return {}
    e0, e1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    steps = (1.0,) if e1 - e0 >= 3 else (1.0, 2.0, 5.0)
    vals = [m * 10.0 ** e for e in range(e0, e1 + 1) for m in steps if lo / 1.5 <= m * 10.0 ** e <= hi * 1.5]
    if sum(lo <= v <= hi for v in vals) < 2:  # a range within one step: plotly's own ticks
        return {}
    return dict(tickmode="array", tickvals=vals, ticktext=[f"{v:.3g}" for v in vals])


def colour_range(rec: Recording, labels: list[str]) -> tuple[float, float]:
    """The colour scale's ends: the 1st and 99th percentiles of every shown ``log10`` error."""
    logs = np.concatenate([finite_log10(rec.protocols[lb]["err"]).ravel() for lb in labels])
    if not len(logs):
        return -1.0, 0.0
    lo, hi = np.percentile(logs, [1, 99])
    return float(lo), float(max(hi, lo + 1e-6))


def figure(rec: Recording, labels: list[str], links: int = VIEW_LINKS):
    """The plotly figure as a dict (frames unvalidated: building 300 validated frames costs more than
    the rest): panels, curve, frames, play/pause and slider."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    meta, P = rec.meta, len(labels)
    n = meta["nodes"]
    idx = frame_index(rec, labels)
    total = len(idx[0])
    radio = meta["layout"] == "positions"
    ranges = np.asarray(meta["ranges"] if meta.get("ranges") else np.full(n, np.nan), dtype=np.float64)
    range_text = [f"{r:g} m" if np.isfinite(r) else "none (no radio positions)" for r in ranges]
    key, axis_title = timeline(rec, labels)
    scale = "loss" if all(info(rec, lb)["error"].startswith("loss") for lb in labels) else "error"
    cmin, cmax = colour_range(rec, labels)
    fig = make_subplots(rows=2, cols=P, specs=[[{}] * P, [{"colspan": P}] + [None] * (P - 1)],
                        row_heights=[0.74, 0.26], vertical_spacing=0.09, horizontal_spacing=0.04,
                        subplot_titles=[*labels, f"{meta['metric']} (log scale)"])
    moving = []  # indices of the traces that frames update
    pos_all = np.concatenate([rec.protocols[lb]["pos"].reshape(-1, 2) for lb in labels])
    lo, hi = np.nanmin(pos_all, axis=0), np.nanmax(pos_all, axis=0)
    pad = 0.04 * max(float((hi - lo).max()), 1e-9)
    still = [bool(np.all(rec.protocols[lb]["pos"] == rec.protocols[lb]["pos"][:1])) for lb in labels]

    def panel(p: int, f: int) -> list[dict]:
        a = rec.protocols[labels[p]]
        g = int(idx[p][f])
        pos = a["pos"][g]
        ok, lost = (thin_links(rec.links(labels[p], kind, g), links) for kind in ("ok", "lost"))
        okx, oky = segments(pos, ok)
        lox, loy = segments(pos, lost)
        node = dict(marker=dict(color=typed(finite_log10(a["err"][g]))))
        st, names = states(rec, labels[p])
        if st is not None:
            node["marker"]["symbol"] = symbols(st[g], names)
        if not still[p] or f == 0:
            node.update(x=typed(pos[:, 0]), y=typed(pos[:, 1]))
        return [dict(x=typed(okx), y=typed(oky)), dict(x=typed(lox), y=typed(loy)), node]

    for p, lb in enumerate(labels):
        first = panel(p, 0)
        a = rec.protocols[lb]
        show = p == 0
        fig.add_trace(go.Scatter(**first[0], mode="lines", name="delivered",
                                 line=dict(color=OK_COLOUR, width=1), hoverinfo="skip",
                                 legendgroup="ok", showlegend=show), row=1, col=p + 1)
        fig.add_trace(go.Scatter(**first[1], mode="lines", name="lost",
                                 line=dict(color=LOST_COLOUR, width=1.1), hoverinfo="skip",
                                 legendgroup="lost", showlegend=show), row=1, col=p + 1)
        hub = info(rec, lb)["server"]
        role = ["server" if i == hub else ("client" if hub is not None else "") for i in range(n)]
        size = np.full(n, 8 if n <= 200 else 4)
        if hub is not None:
            size[hub] = 16
        fig.add_trace(go.Scatter(
            x=first[2]["x"], y=first[2]["y"], mode="markers", name=f"nodes ({lb})", showlegend=False,
            marker=dict(color=first[2]["marker"]["color"], coloraxis="coloraxis", size=size,
                        symbol=first[2]["marker"].get("symbol", "circle"),
                        # open circles (idle clients) are drawn by this line alone: wider
                        line=dict(width=1.2 if states(rec, lb)[0] is not None else 0.5 if n <= 200 else 0,
                                  color="white")),
            customdata=np.stack([np.arange(n), range_text, role], axis=1),
            hovertemplate=(f"<b>{lb}</b> %{{customdata[2]}} node %{{customdata[0]}}<br>log10 {scale} "
                           "%{marker.color:.3f}<br>radio range %{customdata[1]}<extra></extra>")),
            row=1, col=p + 1)
        moving += [3 * p, 3 * p + 1, 3 * p + 2]
        ax = "" if p == 0 else str(p + 1)
        fig.update_layout({f"xaxis{ax}": dict(range=[lo[0] - pad, hi[0] + pad], showgrid=False, zeroline=False,
                                              showticklabels=radio, constrain="domain"),
                           f"yaxis{ax}": dict(range=[lo[1] - pad, hi[1] + pad], showgrid=False, zeroline=False,
                                              showticklabels=radio, scaleanchor=f"x{ax}", scaleratio=1)})
    # the curve beneath, with a cursor at the current frame
    curves = []
    for lb in labels:
        a = rec.protocols[lb]
        y = a["curve"].astype(np.float64)
        good = np.isfinite(y) & (y > 0)
        curves.append(y[good])
        fig.add_trace(go.Scatter(x=a["curve_" + key][good], y=y[good].astype(np.float32), mode="lines", name=lb,
                                 line=dict(width=1.6), legendgroup=f"curve-{lb}"), row=2, col=1)
    ys = np.concatenate(curves) if curves else np.zeros(0)
    ylo, yhi = (float(ys.min()), float(ys.max())) if len(ys) else (1e-3, 1.0)
    now = [max(rec.protocols[lb][key][idx[p][f]] for p, lb in enumerate(labels)) for f in range(total)]
    cursor_k = [int(v) if key == "k" else float(v) for v in now]
    fig.add_trace(go.Scatter(x=[cursor_k[0]] * 2, y=[ylo, yhi], mode="lines", name="now", showlegend=False,
                             line=dict(color="black", width=1.2, dash="dot"), hoverinfo="skip"), row=2, col=1)
    cursor = len(fig.data) - 1
    moving.append(cursor)
    fig.update_yaxes(type="log", row=2, col=1, **log_ticks(ylo, yhi))
    fig.update_xaxes(title_text=axis_title, row=2, col=1)
    frames = []
    for f in range(total):
        data = [t for p in range(P) for t in panel(p, f)]
        data.append(dict(x=[cursor_k[f]] * 2, y=[ylo, yhi]))
        frames.append(dict(name=str(f), data=data, traces=moving))
    sub = subtitle(rec, labels, links)
    top = 76 + 17 * sub.count("<br>")
    steps = [dict(method="animate", label=str(k) if key == "k" else f"{k:.6g}",
                  args=[[str(f)], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                       transition=dict(duration=0))]) for f, k in enumerate(cursor_k)]
    fig.update_layout(
        title=dict(text=meta.get("name") or "", x=0.01, y=0.995, yanchor="top"),
        annotations=[*fig.layout.annotations,
                     dict(text=sub, xref="paper", yref="paper", x=0, y=1 + 28 / 660, xanchor="left",
                          yanchor="bottom", align="left", showarrow=False, font=dict(size=12))],
        coloraxis=dict(colorscale="Viridis", cmin=cmin, cmax=cmax,
                       colorbar=dict(title=dict(text=f"log10 {scale}"), len=0.7, y=0.63)),
        height=700 + top, width=max(700, 520 * P + 160), plot_bgcolor="white", margin=dict(t=top, b=40),
        legend=dict(x=1.01, y=0.24, xanchor="left", yanchor="top"),
        updatemenus=[dict(type="buttons", direction="left", x=0.0, y=-0.02, xanchor="left", yanchor="top",
                          showactive=False, pad=dict(t=40, r=10),
                          buttons=[dict(label="Play", method="animate",
                                        args=[None, dict(frame=dict(duration=FRAME_MS, redraw=False),
                                                         fromcurrent=True, transition=dict(duration=0))]),
                                   dict(label="Pause", method="animate",
                                        args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                                           transition=dict(duration=0))])])],
        sliders=[dict(active=0, steps=steps, x=0.12, len=0.88, y=-0.02, yanchor="top", pad=dict(t=30),
                      currentvalue=dict(prefix=axis_title + " ", visible=True))])
    return {**fig.to_plotly_json(), "frames": frames}


def write_html(rec: Recording, labels: list[str], out: Path, links: int = VIEW_LINKS) -> int:
    """Write the page to ``out`` (atomically: a temporary file renamed into place); its size."""
    import plotly.io as pio

    html = pio.to_html(figure(rec, labels, links), include_plotlyjs=True, full_html=True, div_id="netemu-view",
                       auto_play=False, validate=False)
    return _write(out, html.encode("utf-8"))


def _write(out: Path, data: bytes) -> int:
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)
