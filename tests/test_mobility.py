"""Mobility models, the vectorized Trajectories.positions, and ``netemu mobility generate``."""

import filecmp
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from netemu.cli_mobility import mobility
from netemu.errors import ScenarioError
from netemu.rng import stream
from netemu.world.mobility import build_mobility
from netemu.world.trajectory import Trajectories
from netemu.world.traces import load_trace

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-6


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------
# Trajectories.positions: vectorized, same answers as the plain per-node loop
# ---------------------------------------------------------------------------------------------

def loop_positions(traj, t):
    out = np.empty((traj.n, 3))
    for k, (ts, ps) in enumerate(zip(traj.times, traj.points)):
        i = int(np.searchsorted(ts, t, side="right")) - 1
        if i < 0:
            out[k] = ps[0]
        elif i >= len(ts) - 1:
            out[k] = ps[-1]
        else:
            f = (t - ts[i]) / (ts[i + 1] - ts[i])
            out[k] = ps[i] + f * (ps[i + 1] - ps[i])
    return out


def test_positions_match_the_per_node_loop_with_jumps_and_ends():
    g = rng(1)
    times, points = [], []
    for k in range(300):
        m = int(g.integers(1, 40))
        t = np.sort(g.choice(np.arange(0.0, 60.0, 0.5), size=m))  # repeated times = jumps
        times.append(t)
        points.append(g.normal(size=(m, 3)))
    traj = Trajectories(times, points, list(range(300)))
    queries = np.concatenate([[-1.0, 0.0, 59.5, 100.0], np.arange(0.0, 60.0, 0.25), g.uniform(0, 60, 50)])
    for t in queries:
        assert np.array_equal(traj.positions(t), loop_positions(traj, t)), t


def test_positions_jump_later_wins_and_validation():
    traj = Trajectories([[0.0, 1.0, 1.0, 2.0]], [[[0, 0, 0], [1, 0, 0], [5, 5, 5], [5, 5, 5]]], [9])
    assert traj.positions(1.0).tolist() == [[5, 5, 5]]
    assert traj.positions(0.5).tolist() == [[0.5, 0, 0]]
    with pytest.raises(ValueError, match="non-decreasing"):
        Trajectories([[1.0, 0.0]], [[[0, 0, 0], [1, 1, 1]]], [0])
    with pytest.raises(ValueError, match="at least one breakpoint"):
        Trajectories([[]], [np.zeros((0, 3))], [0])


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------

RWP = {"model": "random-waypoint", "area": [300, 200], "speed": [2, 6], "pause": [1, 3], "stationary": False}
WALK = {"model": "random-walk", "area": [50, 30], "speed": [1, 8], "interval": 7.0}


def test_static_uniform_in_area_and_deterministic():
    a = build_mobility({"area": [300, 200]}, 500, 100, rng(4), Path("."))  # model defaults to static
    b = build_mobility({"model": "static", "area": [300, 200]}, 500, 100, rng(4), Path("."))
    p = a.positions(50)
    assert np.array_equal(p, b.positions(0))
    assert (p[:, 0] >= 0).all() and (p[:, 0] <= 300).all() and (p[:, 1] <= 200).all() and (p[:, 2] == 0).all()
    assert p[:, 0].max() > 250 and p[:, 1].max() > 150  # actually spread over the area


def test_static_positions_files(tmp_path):
    xy = np.arange(10.0).reshape(5, 2)
    np.save(tmp_path / "p2.npy", xy)
    np.save(tmp_path / "p3.npy", np.arange(15).reshape(5, 3))
    (tmp_path / "p.csv").write_text("x,y,z\n0,1,2\n3,4,5\n")
    t2 = build_mobility({"positions": "p2.npy"}, 5, 10, rng(), tmp_path)
    assert np.array_equal(t2.positions(3)[:, :2], xy) and (t2.positions(3)[:, 2] == 0).all()
    t3 = build_mobility({"positions": str(tmp_path / "p3.npy")}, 5, 10, rng(), Path("/"))
    assert np.array_equal(t3.positions(0), np.arange(15.0).reshape(5, 3))
    t_csv = build_mobility({"positions": "p.csv"}, 2, 10, rng(), tmp_path)
    assert t_csv.positions(0).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("cfg, n, message", [
    ({"positions": "nope.npy"}, 5, "[mobility] positions = 'nope.npy': no such file"),
    ({"positions": "p2.npy"}, 4, "[mobility] positions = 'p2.npy' has 5 positions but [network] nodes = 4"),
    ({"positions": "flat.npy"}, 5,
     "[mobility] positions = 'flat.npy' has shape [5]; expected [5, 2] or [5, 3]"),
    ({"positions": "words.npy"}, 2, "[mobility] positions = 'words.npy' has dtype <U1"),
    ({"positions": "bad.csv"}, 2, "[mobility] positions = 'bad.csv': line 3 'a,b' does not hold numbers"),
    ({"positions": "nohead.csv"}, 2, "the first line must name the columns x,y[,z]"),
    ({"positions": "p.txt"}, 2, "use a .npy array [n, 2|3] or a .csv"),
    ({"model": "random-waypoint", "speed": [-1, 2]}, 2, "[mobility] speed = [-1, 2]: values must be >= 0"),
    ({"model": "random-waypoint", "speed": [5, 1]}, 2,
     "[mobility] speed = [5, 1] has min > max; write [min, max]"),
    ({"model": "random-waypoint", "speed": [0, 1]}, 2, "random-waypoint needs a minimum speed > 0"),
    ({"model": "random-waypoint", "pause": [3, 1]}, 2, "[mobility] pause = [3, 1] has min > max"),
    ({"model": "random-walk", "speed": "fast"}, 2, "[mobility] speed = 'fast' must be a list of two numbers"),
    ({"model": "random-walk", "interval": 0}, 2, "[mobility] interval = 0 must be a number of seconds > 0"),
    ({"area": [100, -5]}, 2, "[mobility] area = [100, -5]: both values must be > 0"),
    ({"model": "random-waypont"}, 2, "did you mean 'random-waypoint'?"),
    ({"model": "trace"}, 2, 'model = "trace" needs file'),
    ({"model": "trace", "file": "missing.tcl"}, 2, "[mobility] file = 'missing.tcl': no such file"),
    ({"model": "trace", "file": "two.tcl"}, 50,
     "trace two.tcl has 2 nodes but [network] nodes = 50; set nodes = 2 or use another trace"),
    ({"model": "trace", "file": "two.tcl", "format": "nss2"}, 2, "did you mean 'ns2'?"),
])
def test_errors_name_value_place_and_fix(tmp_path, cfg, n, message):
    np.save(tmp_path / "p2.npy", np.zeros((5, 2)))
    np.save(tmp_path / "flat.npy", np.zeros(5))
    np.save(tmp_path / "words.npy", np.array([["a", "b"], ["c", "d"]]))
    (tmp_path / "bad.csv").write_text("x,y\n1,2\na,b\n")
    (tmp_path / "nohead.csv").write_text("1,2\n3,4\n")
    (tmp_path / "p.txt").write_text("1 2\n")
    (tmp_path / "two.tcl").write_text("$node_(0) set X_ 1\n$node_(5) set X_ 2\n")
    with pytest.raises(ScenarioError) as e:
        build_mobility(cfg, n, 10.0, rng(), tmp_path)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_trace_model_resolves_against_base_dir_and_orders_ids(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "t.tcl").write_text('$node_(9) set X_ 9\n$node_(4) set X_ 4\n'
                                            '$ns_ at 0 "$node_(4) setdest 4 10 1"\n')
    traj = build_mobility({"model": "trace", "file": "sub/t.tcl"}, 2, 10, rng(), tmp_path)
    assert traj.ids == [4, 9]
    assert traj.positions(5).tolist() == [[4, 5, 0], [9, 0, 0]]


def segment_speeds(traj):
    out = []
    for ts, ps in zip(traj.times, traj.points):
        dt, d = np.diff(ts), np.linalg.norm(np.diff(ps, axis=0), axis=1)
        out.append(d[dt > 0] / dt[dt > 0])
    return np.concatenate(out)


def test_random_waypoint_properties():
    traj = build_mobility(RWP, 40, 500.0, rng(5), Path("."))
    assert traj.n == 40 and traj.ids == list(range(40))
    speeds = segment_speeds(traj)
    moving = speeds[speeds > 0]
    assert moving.min() >= 2 - 1e-9 and moving.max() <= 6 + 1e-9
    for ts, ps in zip(traj.times, traj.points):
        assert ts[0] == 0 and ts[-1] >= 500.0
        still = np.all(ps[1:] == ps[:-1], axis=1)  # pauses: between 1 and 3 s
        pauses = np.diff(ts)[still]
        assert len(pauses) and pauses.min() >= 1 and pauses.max() <= 3
    for t in np.linspace(0, 600, 61):
        p = traj.positions(t)
        assert (p[:, :2] >= 0).all() and (p[:, 0] <= 300).all() and (p[:, 1] <= 200).all()


def test_random_walk_reflects_at_the_border():
    traj = build_mobility(WALK, 30, 200.0, rng(6), Path("."))
    for ts, ps in zip(traj.times, traj.points):
        assert ts[-1] >= 200.0
        at_change = np.isclose(ts / 7.0, np.round(ts / 7.0), atol=1e-9)
        on_border = (np.isclose(ps[:, 0], 0, atol=1e-7) | np.isclose(ps[:, 0], 50, atol=1e-7)
                     | np.isclose(ps[:, 1], 0, atol=1e-7) | np.isclose(ps[:, 1], 30, atol=1e-7))
        assert (at_change | on_border).all()  # a breakpoint is a direction change or a bounce
    speeds = segment_speeds(traj)
    assert speeds.min() >= 1 - 1e-6 and speeds.max() <= 8 + 1e-6  # reflection keeps the speed
    bounces = sum(int((~np.isclose(ts / 7.0, np.round(ts / 7.0))).sum()) for ts in traj.times)
    assert bounces > 30
    for t in np.linspace(0, 250, 251):
        p = traj.positions(t)
        assert (p[:, :2] >= -1e-9).all() and (p[:, 0] <= 50 + 1e-9).all() and (p[:, 1] <= 30 + 1e-9).all()


@pytest.mark.parametrize("cfg", [RWP, WALK, {"model": "static"}], ids=["rwp", "walk", "static"])
def test_same_seed_same_trajectories_and_longer_horizon_only_appends(cfg):
    a = build_mobility(cfg, 20, 100.0, rng(7), Path("."))
    b = build_mobility(cfg, 20, 100.0, rng(7), Path("."))
    c = build_mobility(cfg, 20, 300.0, rng(7), Path("."))
    d = build_mobility(cfg, 20, 100.0, rng(8), Path("."))
    for t in np.linspace(0, 100, 41):
        assert np.array_equal(a.positions(t), b.positions(t))
        assert np.abs(a.positions(t) - c.positions(t)).max() < 1e-9
    assert not np.array_equal(a.positions(50), d.positions(50))


def test_models_use_only_the_given_generator():
    np.random.seed(1)
    a = build_mobility(RWP, 5, 50.0, rng(2), Path("."))
    np.random.seed(2)
    b = build_mobility(RWP, 5, 50.0, rng(2), Path("."))
    assert np.array_equal(a.positions(20), b.positions(20))


# ---------------------------------------------------------------------------------------------
# netemu mobility generate
# ---------------------------------------------------------------------------------------------

def test_generate_writes_what_build_mobility_draws(tmp_path):
    out = tmp_path / "w.ns_movements"
    args = ["generate", "--model", "random-walk", "--nodes", "7", "--area", "80,60", "--duration", "90",
            "--seed", "3", "--speed", "1,4", "--interval", "5", "--out", str(out)]
    result = CliRunner().invoke(mobility, args)
    assert result.exit_code == 0, result.output
    cfg = {"model": "random-walk", "area": [80, 60], "speed": [1, 4], "interval": 5.0}
    want = build_mobility(cfg, 7, 90.0, stream(3, "mobility"), tmp_path)
    got = load_trace(out)
    for t in np.linspace(0, 100, 201):
        assert np.abs(got.positions(t) - want.positions(t)).max() < TOL, t


def test_committed_swarm_trace_is_what_its_readme_command_makes(tmp_path, monkeypatch):
    committed = ROOT / "traces" / "swarm_rwp.ns_movements"
    readme = (ROOT / "traces" / "README.md").read_text()
    command = next(line.strip(" `") for line in readme.splitlines() if "mobility generate" in line)
    args = shlex.split(command)
    args = args[args.index("generate"):]
    args[args.index("--out") + 1] = str(tmp_path / "again.ns_movements")
    result = CliRunner().invoke(mobility, args)
    assert result.exit_code == 0, result.output
    assert filecmp.cmp(committed, tmp_path / "again.ns_movements", shallow=False)
    traj = load_trace(committed)
    assert traj.n == 50 and traj.end_time() >= 300
    for t in np.linspace(0, 300, 31):
        p = traj.positions(t)
        assert (p[:, :2] >= -TOL).all() and (p[:, :2] <= 500 + TOL).all()


@pytest.mark.parametrize("args, message", [
    (["positions", "x.tcl", "--at", "1,abc"], "'abc' is not a number"),
    (["positions", "x.tcl", "--at", "1,-2"], "times must be >= 0"),
    (["generate", "--model", "static", "--nodes", "3", "--duration", "5", "--speed", "5,1", "--out", "o"],
     "expected 0 <= min <= max"),
    (["generate", "--model", "static", "--nodes", "3", "--duration", "5", "--area", "5", "--out", "o"],
     "expected width,height"),
])
def test_cli_bad_parameters(args, message):
    result = CliRunner().invoke(mobility, args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_cli_missing_trace_is_a_netemu_error(tmp_path):
    from netemu.errors import TraceError

    result = CliRunner().invoke(mobility, ["positions", str(tmp_path / "none.tcl"), "--at", "0"])
    assert isinstance(result.exception, TraceError) and "no such trace file" in str(result.exception)
