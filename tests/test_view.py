"""Recording a run (``netemu.recording``) and ``netemu view`` (``netemu.view``, ``netemu.view_gif``).

The recording is checked against independent sources: positions against ``netemu mobility
positions``, per-node errors against the final state and the run's metrics, link counts against
the event trace. The page in a real browser: tests/test_view_browser.py.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import msgpack
import numpy as np
import pytest
from click.testing import CliRunner

from netemu import recording
from netemu.cli import main
from netemu.recording import FrameRecorder, load

ROOT = Path(__file__).resolve().parent.parent
SCEN = ROOT / "scenarios"


def run_cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r


def run(tmp_path, scenario, *sets, name="run"):
    out = tmp_path / name
    args = ["run", SCEN / scenario, "--out", out, "--no-progress", "--set", "output.plot=false"]
    for s in sets:
        args += ["--set", s]
    r = run_cli(*args)
    assert r.exit_code == 0, r.output
    return out


def one_line_error(r, *words):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# -- what is recorded ------------------------------------------------------------------------------

def test_positions_equal_mobility_positions(tmp_path):
    out = run(tmp_path, "ns2_replay.toml", "run.rounds=40", "output.frames_every=7")
    rec = load(out)
    assert rec.meta["layout"] == "positions" and rec.meta["frames_every"] == 7
    for label in rec.labels:
        a = rec.protocols[label]
        assert a["k"].tolist() == [0, 7, 14, 21, 28, 35, 40]  # every 7 rounds and the last
        times = a["t"]
        r = run_cli("mobility", "positions", ROOT / "traces" / "swarm_rwp.ns_movements",
                    "--at", ",".join(repr(float(t)) for t in times))
        assert r.exit_code == 0, r.output
        rows = list(csv.DictReader(io.StringIO(r.output)))
        expect = np.array([[float(row["x"]), float(row["y"])] for row in rows]).reshape(len(times), -1, 2)
        assert expect.shape == a["pos"].shape
        assert np.array_equal(a["pos"], expect.astype(np.float32))
        assert not np.array_equal(a["pos"][0], a["pos"][-1])  # the nodes moved


def _recorded_run(sc, label_index=0, every=3):
    """Run one protocol of ``sc`` with a FrameRecorder (as netemu run adds it); the runtime too."""
    from netemu.engine import build_run
    from netemu.runner import make_task, prepare
    from netemu.runtime.clock import SimClock
    from netemu.runtime.transport import SimTransport
    from netemu.scenario import build

    trajectories, topology, x0 = prepare(sc)
    task = make_task(sc)
    rec = FrameRecorder.for_run(sc, topology, x0, task)
    rec.every = every
    clock = SimClock()
    net = build.network(sc, trajectories, topology)
    rt = build_run(sc, sc.protocols[label_index], x0, clock, SimTransport(), net, task, (rec,))
    clock.run()
    return rec, rt, x0, task


def _scenario(name, *sets):
    from netemu.scenario.load import load_sweep

    return load_sweep(SCEN / name, tuple(sets))[0][1]  # a sweep's first combination


def test_last_frame_errors_equal_final_state_consensus():
    sc = _scenario("radio_swarm.toml", "run.rounds=31")
    for i in range(len(sc.protocols)):
        rec, rt, x0, _ = _recorded_run(sc, i)
        tr = rec.tracks[sc.protocols[i]["label"]]
        x = np.asarray(rt.proto.estimate(), dtype=np.float64)
        final = np.max(np.abs(x - x0.mean(axis=0)), axis=1)
        assert tr.k[-1] == 31 and tr.k[:3] == [0, 3, 6]
        assert np.array_equal(tr.err[-1], final.astype(np.float32))
        # every frame: the worst node's error is the run's consensus_error of that round
        metric = {k: m["consensus_error"] for k, t, m in rt.res.rows}
        for k, err in zip(tr.k, tr.err):
            assert err.max() == np.float32(metric[k])


def test_last_frame_errors_equal_final_state_loss():
    sc = _scenario("pulm_dgd_regression.toml", "run.rounds=12")
    rec, rt, _, task = _recorded_run(sc, 0, every=5)
    tr = rec.tracks[sc.protocols[0]["label"]]
    assert rec.meta()["error"] == "loss at the node's own iterate" and rec.meta()["layout"].startswith("spring")
    x = np.asarray(rt.proto.estimate(), dtype=np.float64)
    final = np.array([task.evaluate(xi)["loss"] for xi in x])
    assert tr.k == [0, 5, 10, 12]
    np.testing.assert_allclose(tr.err[-1], final, rtol=2e-6)
    assert np.ptp(final) > 0  # the nodes differ: a per-node error, not the mean's
    # the curve beneath the animation is the run's loss metric
    loss = [m.get("loss", np.nan) for _, _, m in rt.res.rows]
    np.testing.assert_array_equal(np.array([c[2] for c in tr.curve]), np.array(loss))


def test_errors_fall_back_to_the_distance_to_the_mean(monkeypatch):
    monkeypatch.setattr(recording, "NODE_LOSS_BUDGET", 0)
    sc = _scenario("pulm_dgd_regression.toml", "run.rounds=4")
    rec, rt, _, _ = _recorded_run(sc, 0, every=2)
    assert rec.meta()["error"] == "distance to the nodes' mean (2-norm)"
    x = np.asarray(rt.proto.estimate(), dtype=np.float64)
    expect = np.linalg.norm(x - x.mean(axis=0), axis=1)
    np.testing.assert_allclose(rec.tracks[sc.protocols[0]["label"]].err[-1], expect, rtol=1e-6)


FL = {"seed": 3, "name": "fl",
      "network": {"nodes": 21, "topology": "random", "p": 0.0,
                  "uplink": {"server": 0, "latency": 0.01, "bandwidth": 1e5, "loss": 0.05}},
      "run": {"rounds": 24, "period": 0.25},
      "task": {"kind": "logistic", "samples": 50, "features": 10},
      "output": {"plot": False},
      "compute": {"step_time": {"dist": "lognormal", "median": 0.02, "sigma": 0.5},
                  "stragglers": {"fraction": 0.1, "slowdown": 10, "persistent": True}},
      "protocols": [{"name": "fedasync", "lr": 0.05}, {"name": "fedavg", "lr": 0.05}]}


def _fl(**run):
    from netemu.scenario.load import from_dict

    return from_dict({**FL, "run": {**FL["run"], **run}})


@pytest.mark.parametrize("index", [0, 1])
def test_fl_frames_show_each_nodes_own_model(index):
    """FL: estimate() is the server's model only; the frames hold the loss at every node's own
    model (node_models: the server's global one, each client's last received), the server at the
    centre of the layout, and the frames are samples of simulated time."""
    sc = _fl()
    rec, rt, _, task = _recorded_run(sc, index, every=4)
    proto = rt.proto
    tr = rec.tracks[sc.protocols[index]["label"]]
    assert rt.proto.estimate().shape[0] == 1 and tr.err[-1].shape == (21,)
    models = proto.node_models()
    assert models.shape == (21, proto.P)
    direct = np.array([task.evaluate(m)["loss"] for m in models])
    np.testing.assert_allclose(tr.err[-1], direct, rtol=2e-6)
    # the server's node: the global model, whose loss is the run's last loss metric
    assert np.array_equal(models[0], proto.x)
    np.testing.assert_allclose(tr.err[-1][0], rt.res.rows[-1][2]["loss"], rtol=2e-6)
    # clients differ from the server at some frame: stale models cost loss
    assert any(np.ptp(e) > 0 for e in tr.err)
    # a client training now holds the model it trains from, as it arrived
    for c, job in proto.trainer.x.items():
        start = job[0] if isinstance(job, tuple) else job
        assert np.array_equal(models[c], start)
    # the layout: the server at the centre, the clients on the unit circle, the same every frame
    pos = np.asarray(tr.pos)
    assert np.array_equal(pos[:, 0], np.zeros((len(pos), 2)))
    np.testing.assert_allclose(np.linalg.norm(pos[:, 1:], axis=2), 1.0, rtol=1e-6)
    assert len({tuple(np.round(q, 5)) for q in pos[-1, 1:]}) == 20
    meta = rec.meta()["protocols"][0]
    assert meta["server"] == 0 and meta["clock"] == "time"
    assert meta["layout"].startswith("server (node 0) at the centre")
    assert meta["error"].startswith("loss at each node's own model")
    assert tr.t == [k * 0.25 for k in tr.k]
    # the links are the downloads and uploads: each joins the server and a client; fedasync applies
    # every upload that arrives, and every lost one is a dropped update
    ok, lost = np.concatenate(tr.ok), np.concatenate(tr.lost)
    assert np.all((ok == 0).sum(axis=1) == 1) and np.all((lost == 0).sum(axis=1) == 1)
    if sc.protocols[index]["name"] == "fedasync":
        m = rt.res.rows[-1][2]
        assert (ok[:, 0] == 0).sum() == m["updates_applied"] > 0
        assert (lost[:, 0] == 0).sum() == m["updates_dropped"] > 0


def test_fl_recording_leaves_metrics_unchanged_and_the_page_says_time(tmp_path):
    from netemu.runner import run_scenario
    from netemu.view import figure

    sc = _fl()
    run_scenario(sc, tmp_path / "on", progress=False)
    off = _fl()
    off.output["record"] = False
    run_scenario(off, tmp_path / "off", progress=False)
    assert (tmp_path / "on" / "metrics.csv").read_bytes() == (tmp_path / "off" / "metrics.csv").read_bytes()
    assert not (tmp_path / "off" / "recording.npz").exists()
    rec = load(tmp_path / "on")
    fig = figure(rec, rec.labels)
    lay = fig["layout"]
    assert lay["xaxis3"]["title"]["text"] == "time (s)"  # the curve beneath the two panels
    assert lay["sliders"][0]["currentvalue"]["prefix"] == "time (s) "
    a = rec.protocols["fedasync"]
    assert [s["label"] for s in lay["sliders"][0]["steps"]] == [f"{t:.6g}" for t in a["t"]]
    assert a["t"][-1] == 6.0 and lay["sliders"][0]["steps"][-1]["label"] == "6"
    notes = " ".join(x["text"] for x in lay["annotations"])
    assert "server (node 0) at the centre" in notes and "the model it last received" in notes
    # the server's marker is drawn at the centre of each panel, larger than the clients'
    for trace in (fig["data"][2], fig["data"][5]):
        x, y, size = typed(trace["x"]), typed(trace["y"]), typed(trace["marker"]["size"])
        assert (x[0], y[0]) == (0.0, 0.0) and np.all(np.hypot(x[1:], y[1:]) > 0.99)
        assert size[0] > size[1] and np.all(size[1:] == size[1])
        role = np.asarray(typed(trace["customdata"]))[:, 2]
        assert role[0] == "server" and set(role[1:]) == {"client"}
    # the GIF / PNG drawing: the same axis and the frame's time in its title
    from netemu.view_gif import drawing

    fig, draw, total = drawing(rec, rec.labels)
    draw(total - 1)
    assert fig.axes[-1].get_xlabel() == "time (s)" and fig.texts[0].get_text().endswith("t = 6 s")
    offsets = fig.axes[0].collections[-1].get_offsets()
    assert np.array_equal(np.asarray(offsets[0]), [0.0, 0.0])


def _fl_offline(**run):
    """The FL scenario with clients going offline (``[compute.availability]``)."""
    sc = _fl(**run)
    sc.compute["availability"] = {"kind": "periods", "on": 1.0, "off": 0.5}
    return sc


@pytest.mark.parametrize("index", [0, 1])
def test_fl_states_at_the_last_frame_equal_the_servers_status(index):
    """node_states: 0 idle, 1 training (busy), 2 offline, 3 server, recorded as uint8 per frame;
    at the last frame they are the server's status and the availability at the run's end, and
    their counts are the run's last clients_* metrics."""
    sc = _fl_offline()
    rec, rt, _, _ = _recorded_run(sc, index, every=4)
    proto = rt.proto
    tr = rec.tracks[sc.protocols[index]["label"]]
    assert rec.meta()["protocols"][0]["states"] == ["idle", "training", "offline", "server"]
    last = tr.state[-1]
    assert last.dtype == np.uint8 and last.shape == (21,) and len(tr.state) == len(tr.k)
    on = np.ones(21, dtype=bool)  # the server's view of availability (at its clock, as its metrics)
    on[proto.clients] = proto.online()
    assert not on.all()
    assert last[0] == 3
    for c in range(1, 21):
        want = 2 if not on[c] else (1 if proto.status[c] == 1 else 0)
        assert last[c] == want, (c, proto.status[c], on[c])
    m = rt.res.rows[-1][2]
    assert [np.count_nonzero(last[1:] == s) for s in (0, 1, 2)] == \
        [m["clients_idle"], m["clients_training"], m["clients_offline"]]
    seen = set(np.concatenate(tr.state).tolist())
    assert {1, 2, 3} <= seen and (0 in seen or index == 0)  # fedasync restarts a client at once


def test_fl_wait_for_all_fedavg_shows_whom_the_round_waits_on():
    """Wait-for-all FedAvg with stragglers: at some frame some clients train (the round waits on
    them) while others already sent their update and are idle."""
    sc = _fl()
    rec, rt, _, _ = _recorded_run(sc, 1, every=1)
    assert sc.protocols[1]["name"] == "fedavg" and sc.protocols[1].get("deadline") is None
    tr = rec.tracks[sc.protocols[1]["label"]]
    mixed = [f for f, s in enumerate(tr.state) if (s[1:] == 1).any() and (s[1:] == 0).any()]
    assert mixed, [np.bincount(s, minlength=4).tolist() for s in tr.state]


def test_fl_page_and_gif_markers_follow_the_states(tmp_path):
    """The page's marker symbol of every node in every frame is its recorded state's (filled circle
    training, open circle idle, x offline, square server), with the legend in the subtitle; the
    GIF/PNG drawing puts each state's nodes in that state's scatter; metrics.csv is the same with
    recording on and off."""
    from netemu.runner import run_scenario
    from netemu.view import figure
    from netemu.view_gif import drawing

    sc = _fl_offline()
    run_scenario(sc, tmp_path / "on", progress=False)
    off = _fl_offline()
    off.output["record"] = False
    run_scenario(off, tmp_path / "off", progress=False)
    assert (tmp_path / "on" / "metrics.csv").read_bytes() == (tmp_path / "off" / "metrics.csv").read_bytes()
    rec = load(tmp_path / "on")
    fig = figure(rec, rec.labels)
    symbol = {0: 100, 1: 0, 2: 4, 3: 1}  # plotly: circle-open, circle, x, square
    for p, lb in enumerate(rec.labels):
        st = rec.protocols[lb]["state"]
        assert st.dtype == np.uint8 and st.shape == rec.protocols[lb]["err"].shape
        assert fig["data"][3 * p + 2]["marker"]["symbol"] == [symbol[c] for c in st[0].tolist()]
        for f, frame in enumerate(fig["frames"]):
            g = min(f, len(st) - 1)
            assert frame["data"][3 * p + 2]["marker"]["symbol"] == [symbol[c] for c in st[g].tolist()]
    notes = " ".join(x["text"] for x in fig["layout"]["annotations"])
    assert "node marker: ○ idle, ● training, × offline, ■ server" in notes
    plt_fig, draw, total = drawing(rec, rec.labels)
    for f in (0, total // 2, total - 1):
        draw(f)
        for p, lb in enumerate(rec.labels):
            st = rec.protocols[lb]["state"][min(f, len(rec.protocols[lb]["state"]) - 1)]
            pos = rec.protocols[lb]["pos"][0]
            colls = plt_fig.axes[p].collections[2:]  # after the delivered and lost links
            assert len(colls) == 4
            for code, coll in enumerate(colls):
                assert np.array_equal(np.asarray(coll.get_offsets()).reshape(-1, 2), pos[st == code])


def typed(v):
    """An array of a plotly figure dict: plotly's typed-array form decoded, or the list as it is."""
    import base64

    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]).newbyteorder("<"))
    return np.asarray(v)


def _trace_counts(path):
    """Per (protocol, round): Counter of rx and drops, and the multisets of their links."""
    counts, links = Counter(), {}
    with open(path, "rb") as f:
        up = msgpack.Unpacker(f, raw=False)
        next(up)
        for rec in up:
            if rec["e"] in ("rx", "drop"):
                kind = "ok" if rec["e"] == "rx" else "lost"
                counts[rec["p"], rec["r"], kind] += 1
                links.setdefault((rec["p"], rec["r"], kind), []).append((rec["dst"], rec["src"]))
    return counts, links


EVENT = """seed = 4
[network]
nodes = 30
topology = "radio"
range = 150.0
loss = 0.2
[mobility]
model = "random-waypoint"
area = [400, 400]
[run]
rounds = 20
[task]
dim = 2
[[protocols]]
name = "async-push-sum"
"""


@pytest.mark.parametrize("scenario,sets", [
    ("radio_swarm.toml", ["run.rounds=25", "output.frames_every=3"]),  # loss, late and delay drops
    ("pulm_consensus.toml", ["run.rounds=20", "output.frames_every=3"]),
    ("event", ["output.frames_every=4"]),  # an event protocol: frames every 4 periods
])
def test_link_counts_add_up_to_the_trace(tmp_path, scenario, sets):
    if scenario == "event":
        scenario = tmp_path / "event.toml"
        scenario.write_text(EVENT)
    out = run(tmp_path, scenario, "output.trace=true", *sets)
    out = sorted(p.parent for p in out.rglob("recording.npz"))[0]  # a sweep's first combination
    rec = load(out)
    # the frames' clock: simulated time for an event protocol, the round for round protocols
    assert {p["clock"] for p in rec.meta["protocols"]} == {"time" if str(scenario).endswith("event.toml") else "round"}
    counts, links = _trace_counts(out / "events.msgpack")
    for label in rec.labels:
        a = rec.protocols[label]
        ks = a["k"].tolist()
        for f in range(len(ks)):
            rounds = range(ks[f - 1] if f else 0, ks[f])  # a frame holds the rounds since the previous one
            for kind in ("ok", "lost"):
                expect = sum(counts[label, r, kind] for r in rounds)
                assert a["n_" + kind][f] == expect
                got = rec.links(label, kind, f)
                assert len(got) == expect <= recording.LINK_CAP  # not capped here
                want = Counter(pair for r in rounds for pair in links.get((label, r, kind), []))
                assert Counter(map(tuple, got.tolist())) == want
        assert a["n_ok"].sum() > 0 and a["n_lost"].sum() > 0


def test_links_beyond_the_cap_are_a_keyed_sample(tmp_path, monkeypatch):
    monkeypatch.setattr(recording, "LINK_CAP", 100)
    outs = [run(tmp_path, "radio_swarm.toml", "run.rounds=6", "output.frames_every=2", "output.trace=true",
                name=f"run{i}") for i in range(2)]
    rec = load(outs[0])
    _, links = _trace_counts(outs[0] / "events.msgpack")
    a = rec.protocols["pulm"]
    assert rec.meta["link_cap"] == 100
    capped = 0
    for f in range(1, len(a["k"])):
        got = rec.links("pulm", "ok", f)
        assert len(got) == min(100, a["n_ok"][f])
        capped += a["n_ok"][f] > 100
        pool = Counter(p for r in range(a["k"][f - 1], a["k"][f]) for p in links[("pulm", r, "ok")])
        assert not Counter(map(tuple, got.tolist())) - pool  # a sub-multiset of what was delivered
    assert capped > 0
    # the same seed: the same bytes; and the same when the links are capped in pieces between frames
    assert (outs[0] / "recording.npz").read_bytes() == (outs[1] / "recording.npz").read_bytes()
    monkeypatch.setattr(recording, "COMPACT", 3)
    pieces = run(tmp_path, "radio_swarm.toml", "run.rounds=6", "output.frames_every=2", "output.trace=true",
                 name="pieces")
    assert (pieces / "recording.npz").read_bytes() == (outs[0] / "recording.npz").read_bytes()


def test_recording_leaves_metrics_unchanged_and_follows_record(tmp_path):
    on = run(tmp_path, "radio_swarm.toml", "run.rounds=20", name="on")
    off = run(tmp_path, "radio_swarm.toml", "run.rounds=20", "output.record=false", name="off")
    assert (on / "recording.npz").is_file() and not (off / "recording.npz").exists()
    assert (on / "metrics.csv").read_bytes() == (off / "metrics.csv").read_bytes()
    big = _scenario("radio_swarm.toml", "network.nodes=2001")
    assert not recording.enabled(big) and recording.enabled(_scenario("radio_swarm.toml", "network.nodes=2000"))
    assert recording.enabled(_scenario("radio_swarm.toml", "network.nodes=2001", "output.record=true"))
    assert recording.frames_every(_scenario("radio_swarm.toml", "run.rounds=3000")) == 10
    assert recording.frames_every(_scenario("radio_swarm.toml", "run.rounds=50")) == 1


# -- netemu view ---------------------------------------------------------------------------------

def external_refs(text: str) -> list:
    """The tags of an HTML page that load something from elsewhere."""
    from html.parser import HTMLParser

    found = []

    class Refs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if (tag in ("script", "img", "iframe") and a.get("src")) or (tag == "link" and a.get("href")):
                found.append((tag, a))

    Refs().feed(text)
    return found


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    return run(tmp_path_factory.mktemp("swarm"), "radio_swarm.toml", "run.rounds=30")


def test_view_writes_a_self_contained_page(swarm, tmp_path):
    html = tmp_path / "v.html"
    r = run_cli("view", swarm, "--protocol", "gossip", "--protocol", "pulm", "--out", html)
    assert r.exit_code == 0, r.output
    assert "31 frames" in r.output and "gossip, pulm" in r.output
    text = html.read_text()
    assert external_refs(text) == []  # no <script src>, <link href>, <img src>: the script is inlined
    assert len(text) > 3_000_000  # plotly.js itself (about 4.6 MB) is in the page
    assert "Plotly.addFrames" in text and '"name":"30"' in text and '"name":"31"' not in text
    assert '"title":{"text":"round"}' in text  # round protocols: the curve's x axis is the round
    assert text.index("gossip") < text.index("pulm")
    # the default: the run's first two protocols, into DIR/view.html
    r = run_cli("view", swarm)
    assert r.exit_code == 0, r.output
    assert "pulm, push-sum" in r.output and (swarm / "view.html").is_file()


def test_view_gif(swarm, tmp_path):
    from PIL import Image

    gif = tmp_path / "v.gif"
    r = run_cli("view", swarm, "--gif", gif, "--step", "4")
    assert r.exit_code == 0, r.output
    with Image.open(gif) as im:
        assert im.n_frames == 8  # frames 0, 4, …, 28 of 31
        im.seek(7)
        px = np.asarray(im.convert("RGB"))
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 20
    assert not (tmp_path / "view.html").exists()  # --gif alone writes no page
    png = tmp_path / "f.png"
    r = run_cli("view", swarm, "--png", png, "--frame", "30", "--protocol", "gossip")
    assert r.exit_code == 0, r.output
    with Image.open(png) as im:
        assert im.size[0] > 400
    one_line_error(run_cli("view", swarm, "--png", png, "--frame", "31"), "--frame 31", "0..30")


# -- bad input -------------------------------------------------------------------------------------

def test_folder_without_a_recording(tmp_path):
    out = run(tmp_path, "radio_swarm.toml", "run.rounds=3", "output.record=false")
    one_line_error(run_cli("view", out), "no recording.npz", "netemu run SCENARIO --out", "record = true")
    one_line_error(run_cli("view", tmp_path / "nowhere"), "no such folder")
    sweep = run(tmp_path, "pulm_consensus.toml", "run.rounds=3", name="sweep")
    one_line_error(run_cli("view", sweep), "a sweep's folder", str(sweep / "network.loss=0.1"), "2 with a recording")


def test_unknown_protocol(swarm):
    one_line_error(run_cli("view", swarm, "--protocol", "pushsum"), "--protocol pushsum",
                   "pulm, push-sum, gossip")


def test_gif_in_a_missing_folder(swarm, tmp_path):
    one_line_error(run_cli("view", swarm, "--gif", tmp_path / "no" / "x.gif"), "--gif", "does not exist")
    one_line_error(run_cli("view", swarm, "--out", tmp_path / "no" / "x.html"), "--out", "does not exist")


@pytest.mark.parametrize("value,words", [
    ("0", ["[output] frames_every", "0"]),
    ("-3", ["[output] frames_every"]),
    ("1.5", ["[output] frames_every", "whole number"]),
])
def test_frames_every_below_one(tmp_path, value, words):
    r = run_cli("run", SCEN / "radio_swarm.toml", "--out", tmp_path / "o", "--set", f"output.frames_every={value}")
    one_line_error(r, *words)
    assert not (tmp_path / "o").exists()


def test_record_must_be_a_bool_or_auto(tmp_path):
    r = run_cli("run", SCEN / "radio_swarm.toml", "--out", tmp_path / "o", "--set", 'output.record="yes"')
    one_line_error(r, "[output] record", "true, false or \"auto\"")


def test_log_ticks_label_decades_or_1_2_5_and_cover_the_range():
    from netemu.view import log_ticks

    wide = log_ticks(3e-7, 2.0)
    assert wide["tickvals"] == [10.0 ** e for e in range(-6, 1)]
    narrow = log_ticks(0.19, 2.3)
    assert narrow["tickvals"] == [0.2, 0.5, 1.0, 2.0]
    assert narrow["ticktext"] == ["0.2", "0.5", "1", "2"]
    assert log_ticks(0.0, 1.0) == {}


def test_log_ticks_leave_a_range_within_one_step_to_plotly():
    from netemu.view import log_ticks

    assert log_ticks(0.45, 0.7) == {}
