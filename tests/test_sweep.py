"""Sweeps over grids × seeds: the outputs, the process pool against Ray, the tables' numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

import netemu
from netemu.cli import main

TINY = """\
seed = 1
name = "tiny"
[network]
nodes = 10
topology = "random"
p = 0.3
loss = 0.1
[run]
rounds = 20
[[protocols]]
name = "push-sum"
[[protocols]]
name = "gossip"
"""


def sweep_cli(*args):
    return CliRunner().invoke(main, ["sweep", *map(str, args)])


def check_table(out, finals, metric):
    """tables.md holds mean ± t-CI of the final values, recomputed here from sweep.csv."""
    text = (out / "tables.md").read_text()
    section = text.split(f"## {metric}\n")[1].split("\n## ")[0]
    for loss in (0.0, 0.3):
        row = next(line for line in section.splitlines() if line.startswith(f"| network.loss={loss:g} |"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        for proto, cell in zip(("push-sum", "gossip"), cells):
            v = finals[(finals["network.loss"] == loss) & (finals["protocol"] == proto)
                       & (finals["metric"] == metric)]["value"].to_numpy()
            assert len(v) == 3
            half = stats.t.ppf(0.975, 2) * v.std(ddof=1) / math.sqrt(3)
            assert cell == f"{v.mean():.4g} ± {half:.2g}"


def test_sweep_pool_and_ray_give_the_same_numbers(tmp_path, scenario_file):
    pytest.importorskip("ray", reason="the Ray executor needs pip install 'netemu[ray]'")
    path = scenario_file(TINY)
    pool, ray = tmp_path / "pool", tmp_path / "ray"
    r = sweep_cli(path, "--grid", "network.loss=0,0.3", "--seeds", "3", "--jobs", "2", "--out", pool)
    assert r.exit_code == 0, r.output
    finals = pd.read_csv(pool / "sweep.csv")
    # one row per run × protocol × final metric, a column per grid key and the seed
    assert list(finals.columns[:3]) == ["run", "network.loss", "seed"]
    assert len(finals) == 2 * 3 * 2 * 2
    assert set(finals["status"]) == {"ok"}
    assert sorted(set(finals["seed"])) == [1, 2, 3]
    assert finals.groupby("run").size().tolist() == [4] * 6
    # each run's folder holds that run's outputs, named by its id
    for rid, g in finals.groupby("run"):
        summary = json.loads((pool / "runs" / rid / "summary.json").read_text())
        assert summary["seed"] == g["seed"].iloc[0]
        assert summary["scenario"]["network"]["loss"] == g["network.loss"].iloc[0]
        last = summary["protocols"]["gossip"]["final"]["consensus_error"]
        assert g[(g["protocol"] == "gossip") & (g["metric"] == "consensus_error")]["value"].iloc[0] == last
    series = pd.read_csv(pool / "series.csv")
    assert len(series) == 6 * 2 * 21 * 2  # runs × protocols × rounds 0..20 × metrics
    check_table(pool, finals, "consensus_error")
    tex = (pool / "tables.tex").read_text()
    assert r"\begin{tabular}{lrr}" in tex and r"network.loss=0.3 & " in tex and r"$\pm$" in tex
    assert (pool / "band_consensus_error.png").stat().st_size > 10_000
    r = sweep_cli(path, "--grid", "network.loss=0,0.3", "--seeds", "3", "--ray", "auto", "--out", ray)
    assert r.exit_code == 0, r.output
    assert "6 to run on ray" in r.output
    for name in ("sweep.csv", "series.csv", "tables.md", "tables.tex"):
        assert (ray / name).read_bytes() == (pool / name).read_bytes(), name
    for rid in finals["run"].unique():
        assert (ray / "runs" / rid / "metrics.csv").read_bytes() == (pool / "runs" / rid / "metrics.csv").read_bytes()


def test_python_api_returns_the_same_tables(tmp_path, scenario_file):
    path = scenario_file(TINY)
    sw = netemu.sweep(path, grid={"network.loss": [0.0, 0.3]}, seeds=2, out=tmp_path / "o", jobs=1)
    assert sw.ok and sw.ran == 4 and sw.skipped == 0
    on_disk = pd.read_csv(tmp_path / "o" / "sweep.csv")
    assert np.array_equal(sw.finals["value"].to_numpy(), on_disk["value"].to_numpy())
    assert list(sw.finals["run"]) == list(on_disk["run"])
    t = sw.table("consensus_error")
    assert list(t.columns) == ["grid", "protocol", "mean", "ci95", "n", "diverged"]
    v = on_disk[(on_disk["network.loss"] == 0.3) & (on_disk["protocol"] == "push-sum")
                & (on_disk["metric"] == "consensus_error")]["value"].to_numpy()
    row = t[(t["grid"] == "network.loss=0.3") & (t["protocol"] == "push-sum")].iloc[0]
    assert row["mean"] == pytest.approx(v.mean(), rel=1e-12) and row["n"] == 2
    assert row["ci95"] == pytest.approx(stats.t.ppf(0.975, 1) * v.std(ddof=1) / math.sqrt(2), rel=1e-12)
    # the series is every point of every run; a second call runs nothing
    assert set(sw.series["metric"]) == {"consensus_error", "disagreement"}
    again = netemu.sweep(path, grid={"network.loss": [0.0, 0.3]}, seeds=2, out=tmp_path / "o", jobs=1)
    assert again.ran == 0 and again.skipped == 4
    with pytest.raises(netemu.NetemuError, match="metric 'consensus_eror' is not recorded.*consensus_error"):
        sw.table("consensus_eror")


def test_report_redraws_without_running(tmp_path, scenario_file):
    path = scenario_file(TINY)
    out = tmp_path / "o"
    assert sweep_cli(path, "--grid", "network.loss=0,0.3", "--seeds", "2", "-j", "1", "--out", out).exit_code == 0
    tables = (out / "tables.md").read_bytes()
    for f in ["tables.md", "tables.tex", "sweep.csv", "band_consensus_error.png"]:
        (out / f).unlink()
    stamp = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*")}
    r = CliRunner().invoke(main, ["report", str(out), "--x", "time"])
    assert r.exit_code == 0, r.output
    assert (out / "tables.md").read_bytes() == tables
    assert (out / "band_consensus_error.png").is_file() and (out / "sweep.csv").is_file()
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*")} == stamp  # nothing ran
    r = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "no sweep.json" in r.output


def test_the_scenario_files_sweep_table_is_a_grid(tmp_path, scenario_file):
    from netemu.sweeps.grid import plan

    path = scenario_file(TINY.replace("seed = 1", 'seed = 1\nsweep = { "network.loss" = [0.1, 0.3], '
                                                  '"network.p" = [0.2] }'))
    p = plan(path, seeds=2)
    assert p.grid == {"network.loss": [0.1, 0.3], "network.p": [0.2]}
    assert [(r.values["network.loss"], r.seed) for r in p.runs] == [(0.1, 1), (0.1, 2), (0.3, 1), (0.3, 2)]
    assert all(r.scenario.network["p"] == 0.2 for r in p.runs)
    assert len({r.id for r in p.runs}) == 4
    # --grid replaces the file's values of its key; the ids depend on the resolved scenario only
    q = plan(path, grids=("network.loss=0.3",), seeds=2)
    assert [r.id for r in q.runs] == [r.id for r in p.runs[2:]]
    # the shipped scenarios with a sweep table plan as netemu run's sweep expands them
    from netemu.scenario.load import load_sweep
    from tests.conftest import ROOT

    for name in ("pulm_consensus", "pulm_dgd_regression", "easgd_alpha"):
        shipped = ROOT / "scenarios" / f"{name}.toml"
        runs = plan(shipped).runs
        assert [r.scenario.resolved() for r in runs] == [sc.resolved() for _, sc in load_sweep(shipped)]


def test_progress_shows_done_failed_remaining(tmp_path, scenario_file):
    path = scenario_file(TINY)
    out = tmp_path / "o"
    r = sweep_cli(path, "--grid", "network.loss=0,0.3", "-j", "1", "--progress", "--out", out)
    assert r.exit_code == 0, r.output
    assert "done 0, failed 0, remaining 2" in r.output and "done 2, failed 0, remaining 0" in r.output
    assert "2/2" in r.output  # tqdm's count (with its rate and ETA)
    r = sweep_cli(path, "--grid", "network.loss=0,0.3,0.5", "-j", "1", "--progress", "--out", out)
    assert "2 already finished, 1 to run" in r.output and "done 2, failed 0, remaining 1" in r.output


def test_tables_leave_diverged_and_failed_runs_out_and_count_them():
    from netemu.sweeps.report import final_table, latex, markdown

    manifest = {"name": "t", "grid": {"network.loss": [0.1]}, "seeds": [1, 2, 3, 4],
                "runs": [{"id": f"r{s}", "values": {"network.loss": 0.1}, "seed": s} for s in (1, 2, 3, 4)]}
    rows = [("r1", "ok", 1.0, False), ("r2", "ok", 3.0, False), ("r3", "ok", float("inf"), True),
            ("r4", "failed", float("nan"), None)]
    finals = pd.DataFrame([{"run": r, "network.loss": 0.1, "seed": int(r[1]), "status": st,
                            "protocol": "p" if st == "ok" else None, "metric": "loss" if st == "ok" else None,
                            "value": v, "diverged": d, "error": None if st == "ok" else "boom"}
                           for r, st, v, d in rows])
    header, texts, stats_ = final_table(finals, manifest, "loss")
    half = stats.t.ppf(0.975, 1) * np.std([1.0, 3.0], ddof=1) / math.sqrt(2)
    assert header == ["grid", "p"]
    assert stats_[0][0] == (2.0, pytest.approx(half), 2, 1)  # mean, half-width, n, diverged
    assert texts == [["network.loss=0.1", f"2 ± {half:.2g} (1/4 diverged, 1/4 failed)"]]
    assert f"| network.loss=0.1 | 2 ± {half:.2g} (1/4 diverged, 1/4 failed) |" in markdown(finals, manifest, ["loss"])
    assert f"network.loss=0.1 & 2 $\\pm$ {half:.2g} (1/4 diverged, 1/4 failed) \\\\" in latex(finals, manifest, ["loss"])


def test_log_bands_are_t_intervals_of_log10_and_linear_ones_of_the_values():
    import pandas as pd
    from scipy.stats import t

    from netemu.sweeps.report import bands

    vals = {"a": [1e-2, 1e-4, 1e-6], "b": [0.5, 1.0, 2.0]}
    manifest = {"runs": [{"id": f"r{s}", "values": {"network.loss": 0.1}} for s in range(3)]}
    rows = [{"run": f"r{s}", "protocol": "p", "round": 5, "time": 5.0, "metric": m, "value": vals[m][s]}
            for m in vals for s in range(3)]
    series = pd.DataFrame(rows)
    q = t.ppf(0.975, 2)
    (xs, centre, lo, hi, n), = bands(series, manifest, "a", log=True).values()
    logs = np.log10(vals["a"])
    half = q * logs.std(ddof=1) / np.sqrt(3)
    assert n[0] == 3 and xs[0] == 5
    np.testing.assert_allclose([centre[0], lo[0], hi[0]], 10.0 ** (logs.mean() + np.array([0, -half, half])))
    assert lo[0] > 0
    (xs, centre, lo, hi, n), = bands(series, manifest, "b", log=False).values()
    v = np.array(vals["b"])
    half = q * v.std(ddof=1) / np.sqrt(3)
    np.testing.assert_allclose([centre[0], lo[0], hi[0]], v.mean() + np.array([0, -half, half]))
