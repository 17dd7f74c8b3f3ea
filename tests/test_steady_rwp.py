"""Steady-state random waypoint: ``[mobility] stationary = true`` starts every node in the model's
stationary distribution, so that the spatial density and the speed do not drift with time.

Statistical checks use 5,000 independent nodes (nodes draw independent trajectories) and a fixed
seed, and allow Z = 4 standard errors (a two-sided normal tail of 6e-5: a correct model fails one
comparison with a fresh seed about once in 16,000; the dozen comparisons of the drift test
together about once in 1,300). Standard errors are binomial for shares, sqrt(p (1 - p) / n), and
CLT ones, sample sd / sqrt(n), for means. Values at t = 0 and at a later t are treated as
independent samples; they are positively correlated when t is small (the same nodes, on the same
legs), which only makes the difference's true standard error smaller, so the tolerance is safe.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from netemu.cli_mobility import mobility
from netemu.errors import ScenarioError
from netemu.params import check_table
from netemu.rng import stream
from netemu.scenario.schema import MOBILITY
from netemu.world.mobility import build_mobility, mean_distance, paused_probability
from netemu.world.traces import load_trace
from netemu.world.trajectory import Trajectories

Z = 4.0
N = 5000
LATE = 3000.0
AREA = [1000.0, 1000.0]
SPEED = [1.0, 5.0]
V_MEAN = (SPEED[1] - SPEED[0]) / math.log(SPEED[1] / SPEED[0])  # time-weighted mean speed, 2.4853


def rwp(pause, stationary=True, n=N, horizon=LATE, seed=1, area=AREA, speed=SPEED):
    cfg = {"model": "random-waypoint", "area": area, "speed": speed, "pause": pause,
           "stationary": stationary}
    return build_mobility(cfg, n, horizon, np.random.default_rng(seed), Path("."))


def central_share(traj, t):
    xy = traj.positions(t)[:, :2]
    lo, hi = np.array(AREA) / 4, 3 * np.array(AREA) / 4
    return float(((xy > lo) & (xy < hi)).all(axis=1).mean())


def speeds_at(traj, t):
    """Each node's speed at time t, read off its segment (0 while paused)."""
    out = np.zeros(traj.n)
    for k, (ts, ps) in enumerate(zip(traj.times, traj.points)):
        i = int(np.searchsorted(ts, t, side="right")) - 1
        if 0 <= i < len(ts) - 1 and ts[i + 1] > ts[i]:
            out[k] = np.linalg.norm(ps[i + 1] - ps[i]) / (ts[i + 1] - ts[i])
    return out


def remaining_distances(traj, t):
    """Distance left to the current waypoint of every node moving at time t."""
    out = []
    for ts, ps in zip(traj.times, traj.points):
        i = int(np.searchsorted(ts, t, side="right")) - 1
        if 0 <= i < len(ts) - 1 and ts[i + 1] > ts[i] and np.any(ps[i + 1] != ps[i]):
            out.append(np.linalg.norm(ps[i + 1] - ps[i]) * (ts[i + 1] - t) / (ts[i + 1] - ts[i]))
    return np.array(out)


def share_tolerance(p0, p1, n=N):
    p = (p0 + p1) / 2
    return Z * math.sqrt(2 * p * (1 - p) / n)


# ---------------------------------------------------------------------------------------------
# the stationary start does not drift
# ---------------------------------------------------------------------------------------------

def test_mean_distance_closed_form():
    # the square's constant: (2 + sqrt 2 + 5 asinh 1) / 15 = 0.52140543...
    assert mean_distance(np.array([3.0, 3.0])) == pytest.approx(3 * (2 + math.sqrt(2) + 5 * math.asinh(1)) / 15,
                                                                 rel=1e-13)
    assert mean_distance(np.array([1.0, 1e-9])) == pytest.approx(1 / 3, rel=1e-9)  # a segment: a/3
    g = np.random.default_rng(0)
    for area in ([300.0, 200.0], [1000.0, 10.0]):
        d = np.hypot(*(g.uniform(size=(400_000, 2)) * area - g.uniform(size=(400_000, 2)) * area).T)
        se = d.std() / math.sqrt(d.size)
        assert abs(mean_distance(np.array(area)) - d.mean()) < Z * se, area


@pytest.mark.parametrize("pause", [[0.0, 0.0], [10.0, 50.0]], ids=["no-pause", "pause-10-50"])
def test_central_share_and_mean_speed_do_not_drift(pause):
    traj = rwp(pause)
    q = paused_probability(np.array(AREA), np.array(SPEED), np.array(pause))
    assert (q == 0) if pause[1] == 0 else (0.12 < q < 0.13)  # 30 / (30 + 521.4 * 0.4024)
    s0, v0, r0 = central_share(traj, 0.0), speeds_at(traj, 0.0), remaining_distances(traj, 0.0)
    z0 = (v0 == 0).mean()
    assert s0 > 0.25 + 0.1  # nodes crowd the centre from the start (about 0.45 when moving)
    # the values at t = 0 are the stationary ones: paused share q, mean speed (1 - q) * V_MEAN
    assert abs(v0.mean() - (1 - q) * V_MEAN) < Z * v0.std() / math.sqrt(N)
    assert abs(z0 - q) < Z * math.sqrt(q * (1 - q) / N) + 1e-12
    # ...and stay so: after the first pauses (30 s), after the first legs (300 s), much later
    for t in (30.0, 300.0, LATE):
        s1, v1, r1 = central_share(traj, t), speeds_at(traj, t), remaining_distances(traj, t)
        assert abs(s0 - s1) < share_tolerance(s0, s1), (t, s0, s1)
        assert abs(v0.mean() - v1.mean()) < Z * math.sqrt((v0.var() + v1.var()) / N), (t, v0.mean(), v1.mean())
        z1 = (v1 == 0).mean()
        assert abs(z0 - z1) < share_tolerance(z0, z1) + 1e-12, (t, z0, z1)
        # the distance left to the waypoint: sensitive to the leg's length weighting and to the
        # uniform position along it (both are about 14 standard errors off when left out)
        assert abs(r0.mean() - r1.mean()) < Z * math.sqrt(r0.var() / r0.size + r1.var() / r1.size), t


def test_time_average_speed_is_the_harmonic_mean_formula():
    traj = rwp([0.0, 0.0])
    end = traj.positions(LATE)
    per_node = np.empty(N)
    for k, (ts, ps) in enumerate(zip(traj.times, traj.points)):
        path = np.concatenate([ps[ts < LATE], end[k:k + 1]])
        per_node[k] = np.linalg.norm(np.diff(path, axis=0), axis=1).sum() / LATE
    # Stationary from t = 0, so E[distance over [0, T]] = T * V_MEAN exactly, for any T.
    assert abs(per_node.mean() - V_MEAN) < Z * per_node.std() / math.sqrt(N), per_node.mean()
    assert abs(per_node.mean() - np.mean(SPEED)) > 0.4  # not the mean of the speed draws (3.0)


def test_initial_state_distributions():
    """Remaining pauses follow the residual-life density, speeds the 1/v density (KS tests)."""
    pause = [10.0, 50.0]
    traj = rwp(pause)
    first_moves = np.array([np.any(ps[1] != ps[0]) for ps in traj.points])
    left = np.array([ts[1] for ts, m in zip(traj.times, first_moves) if not m])
    a, b, mean = pause[0], pause[1], sum(pause) / 2

    def residual_cdf(t):
        t = np.clip(t, 0, b)
        return np.where(t < a, t, a + ((b - a) ** 2 - (b - t) ** 2) / (2 * (b - a))) / mean

    assert left.size > 500  # about 0.125 * 5000
    # KS p-values: a correct sampler gives p < 1e-4 once in 10,000 seeds
    assert stats.kstest(left, residual_cdf).pvalue > 1e-4
    assert stats.kstest(left, stats.uniform(a, b - a).cdf).pvalue < 1e-4  # a full pause is told apart
    v0 = speeds_at(traj, 0.0)[first_moves]
    log_cdf = lambda v: np.log(np.clip(v, *SPEED) / SPEED[0]) / math.log(SPEED[1] / SPEED[0])  # noqa: E731
    assert stats.kstest(v0, log_cdf).pvalue > 1e-4
    assert stats.kstest(v0, stats.uniform(SPEED[0], SPEED[1] - SPEED[0]).cdf).pvalue < 1e-4


# ---------------------------------------------------------------------------------------------
# stationary = false: the old uniform start, same draws
# ---------------------------------------------------------------------------------------------

def old_random_waypoint(n, area, speed, pause, horizon, rng):
    """The model before the stationary start, copied verbatim: stationary = false must match it."""
    pos = rng.uniform(size=(n, 2)) * area
    t = np.zeros(n)
    times, points = [[0.0] for _ in range(n)], [[p.copy()] for p in pos]
    while True:
        active = np.flatnonzero(t < horizon)
        if active.size == 0:
            break
        dest = rng.uniform(size=(n, 2)) * area
        v = rng.uniform(speed[0], speed[1], size=n)
        rest = rng.uniform(pause[0], pause[1], size=n)
        arrive = t[active] + np.hypot(*(dest[active] - pos[active]).T) / v[active]
        for i, ta in zip(active, arrive):
            times[i].append(ta)
            points[i].append(dest[i].copy())
        paused = active[rest[active] > 0]
        t[active] = arrive
        t[paused] += rest[paused]
        for i in paused:
            times[i].append(t[i])
            points[i].append(dest[i].copy())
        pos[active] = dest[active]
    return Trajectories(times, [np.c_[np.array(p), np.zeros(len(p))] for p in points], list(range(n)))


def test_non_stationary_is_the_old_uniform_start_and_drifts():
    old = old_random_waypoint(50, np.array([300.0, 200.0]), [2.0, 6.0], [1.0, 3.0], 400.0,
                              np.random.default_rng(3))
    new = rwp([1.0, 3.0], stationary=False, n=50, horizon=400.0, seed=3, area=[300.0, 200.0],
              speed=[2.0, 6.0])
    for a, b in zip(old.times + old.points, new.times + new.points):
        assert np.array_equal(a, b)  # same draws, same floats

    traj = rwp([0.0, 0.0], stationary=False)
    s0, s1 = central_share(traj, 0.0), central_share(traj, LATE)
    assert abs(s0 - 0.25) < Z * math.sqrt(0.25 * 0.75 / N), s0  # uniform start
    assert abs(s0 - s1) > 3 * share_tolerance(s0, s1), (s0, s1)  # the drift check catches it
    stationary_s0 = central_share(rwp([0.0, 0.0]), 0.0)
    assert abs(stationary_s0 - s0) > 3 * share_tolerance(stationary_s0, s0)
    v0 = speeds_at(traj, 0.0)
    assert abs(v0.mean() - np.mean(SPEED)) < Z * v0.std() / math.sqrt(N)  # uniform speeds: 3.0
    assert abs(v0.mean() - V_MEAN) > 3 * Z * v0.std() / math.sqrt(N)


# ---------------------------------------------------------------------------------------------
# keys, errors, CLI
# ---------------------------------------------------------------------------------------------

def test_speed_min_zero_with_stationary_is_an_error_naming_the_key():
    with pytest.raises(ScenarioError, match=r"\[mobility\] speed = \[0, 5\]: random-waypoint needs a "
                                            r"minimum speed > 0 .*stationary = true.*e\.g\. speed = \[1, 5\]"):
        build_mobility({"model": "random-waypoint", "speed": [0, 5]}, 3, 10.0, np.random.default_rng(), Path("."))
    with pytest.raises(ScenarioError, match=r"\[mobility\] stationary = 'yes' must be true or false"):
        build_mobility({"model": "random-waypoint", "stationary": "yes"}, 3, 10.0, np.random.default_rng(),
                       Path("."))
    with pytest.raises(ScenarioError, match=r"s\.toml: \[mobility\] stationary"):
        check_table({"stationary": "yes"}, MOBILITY, "s.toml", "mobility")
    assert check_table({}, MOBILITY, "s.toml", "mobility")["stationary"] is True


def test_equal_speeds_and_equal_pauses_are_handled():
    traj = rwp([5.0, 5.0], n=2000, horizon=100.0, speed=[3.0, 3.0])
    moving = speeds_at(traj, 0.0)
    assert np.allclose(moving[moving > 0], 3.0)
    left = np.array([ts[1] for ts, ps in zip(traj.times, traj.points) if np.all(ps[1] == ps[0])])
    assert left.size and left.min() > 0 and left.max() <= 5.0  # residual of a fixed pause: U(0, 5)


@pytest.mark.parametrize("flag", ["--stationary", "--no-stationary", None])
def test_generate_stationary_option(tmp_path, flag):
    out = tmp_path / "w.ns_movements"
    args = ["generate", "--model", "random-waypoint", "--nodes", "9", "--area", "80,60", "--duration", "60",
            "--seed", "3", "--speed", "1,4", "--pause", "2,6", "--out", str(out)] + ([flag] if flag else [])
    result = CliRunner().invoke(mobility, args)
    assert result.exit_code == 0, result.output
    cfg = {"model": "random-waypoint", "area": [80, 60], "speed": [1, 4], "pause": [2, 6],
           "stationary": flag != "--no-stationary"}
    want = build_mobility(cfg, 9, 60.0, stream(3, "mobility"), tmp_path)
    got = load_trace(out)
    for t in np.linspace(0, 70, 141):
        assert np.abs(got.positions(t) - want.positions(t)).max() < 1e-6, t
