"""The PULM paper's headline: under loss after transmission PULM reaches the exact mean,
push-sum and gossip settle on a biased value (random graphs, 500 rounds)."""

import pytest
from click.testing import CliRunner

from conftest import read_metrics
from netemu.cli import main

CASES = [  # nodes, p, loss, seed: the corners of the acceptance range
    (20, 0.2, 0.2, 1),
    (30, 0.15, 0.3, 2),
    (40, 0.1, 0.35, 3),
    (40, 0.2, 0.2, 5),
]


@pytest.mark.parametrize("n,p,loss,seed", CASES)
def test_pulm_exact_push_sum_and_gossip_biased(n, p, loss, seed, scenario_file, tmp_path):
    path = scenario_file(f"""
        seed = {seed}
        [network]
        nodes = {n}
        topology = "random"
        p = {p}
        loss = {loss}
        [run]
        rounds = 500
        [task]
        dim = 2
        [output]
        plot = false
        [[protocols]]
        name = "pulm"
        [[protocols]]
        name = "push-sum"
        [[protocols]]
        name = "gossip"
    """)
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    m = read_metrics(tmp_path / "out" / "metrics.csv")
    ratio = {proto: m[proto]["consensus_error"][-1] / m[proto]["consensus_error"][0] for proto in m}
    assert ratio["pulm"] < 1e-3
    assert ratio["push-sum"] > 3e-3
    assert ratio["gossip"] > 3e-3
    # without loss push-sum is exact too (the bias comes from the loss, not the graph)
    r = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out0"),
                                  "--set", "network.loss=0", "--set", "run.rounds=300"])
    assert r.exit_code == 0, r.output
    m0 = read_metrics(tmp_path / "out0" / "metrics.csv")
    assert m0["push-sum"]["consensus_error"][-1] / m0["push-sum"]["consensus_error"][0] < 1e-6
