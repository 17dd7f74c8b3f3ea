"""Directed and asymmetric networks: directed-random latent graphs, per-node radio ranges.

The asymmetric-link rate is checked against geometry derived here, independently of netemu: the
distance D between two uniform points of an a×a square has, for d ≤ a (s = d / a), the CDF
F(s) = π s² − 8/3 s³ + s⁴/2. With ranges r_i, r_j iid U[low, high] (high ≤ a), the pair {i, j}
is one-way when min(r_i, r_j) < D ≤ max(r_i, r_j), so P(one-way) = E|F(r_i) − F(r_j)|.
"""

import math

import networkx as nx
import numpy as np
import pytest
from scipy import integrate

from netemu.errors import ScenarioError
from netemu.runner import run_scenario
from netemu.scenario import build
from netemu.scenario.load import from_dict
from netemu.world.topology import LatentTopology, RadioTopology, directed_random_graph, latent_graph


def scenario(network: dict, protocols=("pulm",), seed: int = 3, rounds: int = 10, mobility=None):
    data = {"seed": seed, "network": network, "run": {"rounds": rounds}, "output": {"plot": False},
            "protocols": [{"name": p} for p in protocols]}
    if mobility:
        data["mobility"] = mobility
    return from_dict(data)


def edge_set(recv, send) -> set:
    return set(zip(recv.tolist(), send.tolist()))


# -- directed-random latent graphs ---------------------------------------------------------------

@pytest.mark.parametrize("n,p", [(8, 0.3), (20, 0.15), (40, 0.1), (15, 0.6)])
def test_directed_random_is_strongly_connected_and_not_symmetric(n, p):
    for seed in range(5):
        g = latent_graph("directed-random", n, seed, edge_prob=p)
        assert g.is_directed() and g.number_of_nodes() == n
        assert nx.is_strongly_connected(g)
        assert not any(u == v for u, v in g.edges())
        one_way = [(u, v) for u, v in g.edges() if not g.has_edge(v, u)]
        assert one_way, "p < 1 gives one-way links"
    # same seed, same graph; other seed, another graph
    assert set(latent_graph("directed-random", 20, 1, edge_prob=0.2).edges()) == \
        set(latent_graph("directed-random", 20, 1, edge_prob=0.2).edges())
    assert set(latent_graph("directed-random", 20, 1, edge_prob=0.2).edges()) != \
        set(latent_graph("directed-random", 20, 2, edge_prob=0.2).edges())


def test_directed_random_edge_share_and_complete_graph():
    # p = 1: the complete digraph; large p: no redraw is needed, so the edge share estimates p
    assert latent_graph("directed-random", 6, 0, edge_prob=1.0).number_of_edges() == 30
    g = latent_graph("directed-random", 200, 0, edge_prob=0.3)
    share, pairs = g.number_of_edges() / (200 * 199), 200 * 199
    assert abs(share - 0.3) < 5 * math.sqrt(0.3 * 0.7 / pairs)


def test_directed_random_redraws_from_the_same_stream_then_gives_up():
    rng = np.random.default_rng(0)
    g = directed_random_graph(30, 0.1, rng)  # near ln(30)/30 ≈ 0.11: often needs redraws
    assert nx.is_strongly_connected(g)
    with pytest.raises(ScenarioError) as e:
        directed_random_graph(30, 0.0, np.random.default_rng(0), tries=5)
    assert "[network] edge_prob = 0" in str(e.value) and "5 draws" in str(e.value)


def test_scenario_directed_random_with_disconnect_is_the_nominal_graph():
    sc = scenario({"nodes": 20, "topology": "latent", "graph": "directed-random", "edge_prob": 0.2,
                   "disconnect": 0.3})
    t = build.topology(sc)
    assert isinstance(t, LatentTopology)
    full = edge_set(t.recv, t.send)
    g = nx.DiGraph([(j, i) for i, j in full])  # u→v: v hears u
    assert nx.is_strongly_connected(g) and any((j, i) not in full for i, j in full)
    # disconnections thin the nominal graph round by round (the out-degrees see them)
    net = build.network(sc)
    r = net.round(0)
    assert edge_set(r.recv, r.send) < full
    assert np.array_equal(r.out_degree, np.bincount(r.send, minlength=20))


def test_strong_connectivity_failure_names_the_key(tmp_path):
    sc = scenario({"nodes": 30, "topology": "latent", "graph": "directed-random", "edge_prob": 0.01})
    with pytest.raises(ScenarioError) as e:
        run_scenario(sc, tmp_path / "out", progress=False)
    msg = str(e.value)
    assert "[network] edge_prob = 0.01" in msg and "1000 draws" in msg and "raise edge_prob" in msg
    assert "\n" not in msg
    assert not (tmp_path / "out").exists()


def test_pulm_exact_on_directed_random_under_loss_push_sum_not(tmp_path):
    # PULM's memory converges slowly on sparse fixed digraphs (about 1% per round at 20 nodes and
    # edge_prob 0.2): a small, denser graph reaches round-off within a fast run
    net = {"nodes": 12, "topology": "latent", "graph": "directed-random", "edge_prob": 0.4,
           "disconnect": 0.1, "loss": 0.2}
    res = {r.label: r.final() for r in run_scenario(
        scenario(net, ("pulm", "push-sum"), rounds=1200), tmp_path / "lossy", progress=False)}
    assert res["pulm"]["consensus_error"] < 1e-10
    assert res["push-sum"]["consensus_error"] > 1e-2
    # without loss push-sum is exact too: its failure above comes from the lost shares
    clean = {r.label: r.final() for r in run_scenario(
        scenario({**net, "loss": 0.0}, ("pulm", "push-sum"), rounds=1200), tmp_path / "clean",
        progress=False)}
    assert clean["push-sum"]["consensus_error"] < 1e-10
    assert clean["pulm"]["consensus_error"] < 1e-10


# -- heterogeneous radio ranges ------------------------------------------------------------------

AREA, LOW, HIGH = 400.0, 50.0, 150.0


def radio(n: int, seed: int, low=LOW, high=HIGH):
    sc = scenario({"nodes": n, "topology": "radio", "range": {"dist": "uniform", "low": low, "high": high}},
                  seed=seed, mobility={"model": "static", "area": [AREA, AREA]})
    t = build.topology(sc)
    pos = build.trajectories(sc).positions(0.0)
    recv, send = t.edges(0, pos)
    return t, pos, recv, send


def test_heterogeneous_ranges_equal_brute_force_and_are_asymmetric():
    t, pos, recv, send = radio(150, 7)
    r = t.ranges
    assert r.shape == (150,) and r.min() >= LOW and r.max() <= HIGH and np.ptp(r) > 0.5 * (HIGH - LOW)
    d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    want = {(i, j) for i in range(150) for j in range(150) if i != j and d[i, j] <= r[j]}
    got = edge_set(recv, send)
    assert got == want
    one_way = {(i, j) for i, j in got if (j, i) not in got}
    assert one_way and len(one_way) < len(got)
    # each one-way link i hears j lies between the two ranges
    assert all(r[i] < d[i, j] <= r[j] for i, j in one_way)
    # sorted by sender, then receiver; the nominal out-degree is the count within the sender's reach
    assert np.all(np.diff(send * 150 + recv) > 0)
    assert np.array_equal(np.bincount(send, minlength=150), (d <= r[None, :]).sum(0) - 1)
    # ranges are drawn once: the same at every round and position, and per seed
    assert np.array_equal(build.topology(scenario(
        {"nodes": 150, "topology": "radio", "range": {"dist": "uniform", "low": LOW, "high": HIGH}},
        seed=7)).ranges, r)


def test_one_number_range_is_symmetric_and_unchanged():
    rng = np.random.default_rng(5)
    pos = np.c_[rng.uniform(0, 300, (80, 2)), np.zeros(80)]
    recv, send = RadioTopology(80, 60.0, 1).edges(0, pos)
    got = edge_set(recv, send)
    assert got == {(j, i) for i, j in got}
    same = RadioTopology(80, np.full(80, 60.0), 1).edges(0, pos)
    assert edge_set(*same) == got


def _distance_cdf(d: float, a: float) -> float:
    s = d / a
    assert 0 <= s <= 1
    return math.pi * s**2 - 8 / 3 * s**3 + s**4 / 2


def expected_one_way(a=AREA, low=LOW, high=HIGH) -> tuple[float, float]:
    """(P(pair one-way), P(pair linked in some direction)) by numerical integration."""
    w = (high - low) ** 2
    one = integrate.dblquad(lambda x, y: abs(_distance_cdf(x, a) - _distance_cdf(y, a)),
                            low, high, low, high)[0] / w
    linked = integrate.dblquad(lambda x, y: _distance_cdf(max(x, y), a), low, high, low, high)[0] / w
    return one, linked


def test_expected_one_way_share_agrees_with_a_monte_carlo():
    # guards the formula: points, distances and ranges drawn here, not by netemu
    one, linked = expected_one_way()
    rng = np.random.default_rng(2024)
    m = 400_000
    p, q = rng.uniform(0, AREA, (m, 2)), rng.uniform(0, AREA, (m, 2))
    d = np.linalg.norm(p - q, axis=1)
    r = rng.uniform(LOW, HIGH, (m, 2))
    mc_one = np.mean((d > r.min(1)) & (d <= r.max(1)))
    mc_linked = np.mean(d <= r.max(1))
    assert abs(mc_one - one) < 5 * math.sqrt(one * (1 - one) / m)
    assert abs(mc_linked - linked) < 5 * math.sqrt(linked * (1 - linked) / m)


def test_asymmetric_link_rate_matches_geometry():
    """Disjoint pairs (0, 1), (2, 3), … of independent realizations are independent Bernoulli
    trials, so the count of one-way pairs is binomial: compared within 4 standard deviations."""
    one, linked = expected_one_way()
    n, seeds = 200, 100
    trials = one_way = linked_pairs = 0
    for seed in range(seeds):
        _, _, recv, send = radio(n, seed)
        links = edge_set(recv, send)
        for i in range(0, n, 2):
            a, b = (i, i + 1) in links, (i + 1, i) in links
            trials += 1
            one_way += a != b
            linked_pairs += a or b
    rate = one_way / trials
    tol = 4 * math.sqrt(one * (1 - one) / trials)
    assert abs(rate - one) < tol, (rate, one, tol)
    # among linked pairs (binomial given their count), the one-way share
    share, want = one_way / linked_pairs, one / linked
    assert abs(share - want) < 4 * math.sqrt(want * (1 - want) / linked_pairs), (share, want)


# -- bad inputs --------------------------------------------------------------------------------

RADIO = {"nodes": 10, "topology": "radio"}


@pytest.mark.parametrize("network,expected", [
    ({**RADIO, "range": {"dist": "uniform", "low": 150, "high": 80}},
     ["[network] range", "low = 150.0 > high = 80.0", "low <= high"]),
    ({**RADIO, "range": {"dist": "uniform", "low": 0, "high": 80}},
     ["[network] range.low = 0.0", "within (0, "]),
    ({**RADIO, "range": {"dist": "uniform", "low": -10, "high": 80}},
     ["[network] range.low = -10.0", "within (0, "]),
    ({**RADIO, "range": {"dist": "normal", "low": 10, "high": 80}},
     ["[network] range.dist = 'normal'", "uniform"]),
    ({**RADIO, "range": {"low": 10, "high": 80}}, ["[network] range.dist is missing", 'dist = "uniform"']),
    ({**RADIO, "range": {"dist": "uniform", "low": 10}}, ["[network] range.high is missing"]),
    ({**RADIO, "range": {"dist": "uniform", "low": 10, "hgh": 80}},
     ["[network] range.hgh", "did you mean 'high'"]),
    ({**RADIO, "range": "far"}, ["[network] range = 'far'", "a number", "or a table"]),
    ({**RADIO, "range": -5}, ["[network] range = -5.0", "within (0, "]),
    ({**RADIO, "reception": "log-distance", "range": {"dist": "uniform", "low": 10, "high": 80}},
     ["[network] range", "reception = \"unit-disk\"", "log-distance"]),
    ({"nodes": 10, "topology": "latent", "graph": "directed-random", "p": 0.3},
     ["[network] p = 0.3", "edge_prob = 0.3"]),
])
def test_bad_inputs_name_the_key(network, expected):
    with pytest.raises(ScenarioError) as e:
        scenario(network)
    msg = str(e.value)
    assert "\n" not in msg
    for want in expected:
        assert want in msg, msg


def test_bad_range_through_the_cli(scenario_file, tmp_path):
    from click.testing import CliRunner

    from netemu.cli import main

    path = scenario_file("""
        [network]
        nodes = 6
        topology = "radio"
        range = { dist = "uniform", low = 150, high = 80 }
        [[protocols]]
        name = "pulm"
    """)
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "[network] range has low = 150.0 > high = 80.0" in lines[0]
    assert str(path) in lines[0]
