"""Fixed costs of a run: what is imported when, plots written on one figure, the task loaded once.

Timings are not asserted here (these machines are noisy): ``benchmarks/bench_overhead.py``
measures them as ratios against a bare start-up.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import netemu
from netemu.outputs import MAX_POINTS, Plotter, plain_math, thin
from netemu.runner import run_scenario, write_results
from netemu.runtime.results import RunResult

ROOT = Path(__file__).resolve().parents[1]

CONSENSUS = """
    seed = 1
    [network]
    nodes = 5
    topology = "random"
    p = 0.5
    [run]
    rounds = 1
    [task]
    kind = "consensus"
    dim = 2
    [output]
    plot = {plot}
    [[protocols]]
    name = "push-sum"
"""


def _python(code: str, cwd: Path) -> None:
    """Run ``code`` in a fresh interpreter (a clean ``sys.modules``); fail with its stderr."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("plot", [False, True])
def test_consensus_run_imports_neither_torch_nor_unneeded_plotting(plot, tmp_path):
    (tmp_path / "s.toml").write_text(textwrap.dedent(CONSENSUS.format(plot=str(plot).lower())))
    _python(f"""
        import sys
        from pathlib import Path
        import netemu
        from netemu.runner import run_scenario
        run_scenario(netemu.load("s.toml"), Path("out"), progress=False)
        assert Path("out/metrics.csv").is_file()
        assert "torch" not in sys.modules, "a consensus run imported torch"
        assert "matplotlib.pyplot" not in sys.modules, "pyplot imported (plots use a bare Agg figure)"
        plotted = "matplotlib" in sys.modules
        assert plotted == {plot}, f"matplotlib imported: {{plotted}}, plot = {plot}"
        assert Path("out/consensus_error.png").is_file() == {plot}
    """, tmp_path)


def test_command_line_start_imports_no_heavy_module():
    _python("""
        import sys
        import netemu.cli
        heavy = [m for m in ("numpy", "scipy", "torch", "matplotlib", "pandas") if m in sys.modules]
        assert not heavy, f"import netemu.cli imported {heavy}"
    """, ROOT)


def test_help_and_protocols_do_not_import_matplotlib():
    _python("""
        import sys
        from netemu.cli import main
        for args in (["--help"], ["protocols"], ["run", "--help"], ["mobility", "--help"]):
            try:
                main(args, standalone_mode=False)
            except SystemExit:
                pass
            assert "matplotlib" not in sys.modules, f"netemu {' '.join(args)} imported matplotlib"
    """, ROOT)


def test_cli_mobility_formats_match_the_readers():
    from netemu.cli_mobility import FORMATS
    from netemu.world import traces

    assert FORMATS == traces.FORMATS


def test_thin_keeps_short_series_and_the_ends_of_long_ones():
    xs = np.arange(MAX_POINTS, dtype=float)
    assert thin(xs, xs)[0] is xs  # up to MAX_POINTS points: untouched
    n = 3 * MAX_POINTS + 7
    xs = np.arange(n, dtype=float)
    ys = np.where(xs < n - 5, 1.0 / (1 + xs), np.nan)  # a diverged tail
    tx, ty = thin(xs, ys)
    assert len(tx) <= MAX_POINTS + 2
    assert tx[0] == 0 and tx[-1] == n - 1  # never drops the first or the last point
    assert n - 6 in tx  # nor the last finite one: the line ends where the data do
    assert np.array_equal(ty, ys[tx.astype(int)], equal_nan=True)
    assert np.all(np.diff(tx) > 0)


def test_plain_math_log_labels():
    assert plain_math(r"$\mathdefault{10^{-3}}$") == "10⁻³"
    assert plain_math(r"$\mathdefault{2\times10^{-3}}$") == "2×10⁻³"
    assert plain_math(r"$\mathdefault{10^{12}}$") == "10¹²"
    assert plain_math("0.5") == "0.5" and plain_math("") == ""
    assert plain_math(r"$\alpha$") == r"$\alpha$"  # anything else: unchanged


def _results(rounds: int) -> list:
    """Three protocols' metrics over ``rounds`` rounds (one blows up half way)."""
    k = np.arange(rounds + 1)
    rng = np.random.default_rng(0)
    out = []
    for i, label in enumerate(("pulm-dgd", "dgd", "local-sgd")):
        loss = np.exp(-k / (300 * (i + 1))) + 0.01 * rng.random(len(k))
        if i == 2:
            loss = np.where(k < rounds // 2, np.exp(k / 100.0), np.inf)
        r = RunResult(label, label)
        r.rows = [(int(j), 0.05 * j, {"loss": float(v), "grad_norm_sq": float(v) ** 2,
                                      "accuracy": float(1 - np.exp(-j / 200)), "disagreement": 1e-3 / (1 + j)})
                  for j, v in zip(k, loss)]
        out.append(r)
    return out


def test_plots_of_a_three_protocol_2000_round_run_are_written(tmp_path):
    sc = netemu.load({"name": "plots", "network": {"nodes": 4}, "run": {"rounds": 2000},
                      "task": {"kind": "logistic"},
                      "protocols": [{"name": "pulm-dgd"}, {"name": "dgd"}, {"name": "local-sgd"}]})
    write_results(tmp_path, sc, _results(2000), task=object())
    expected = ["loss", "loss_time", "grad_norm_sq", "grad_norm_sq_time", "accuracy", "accuracy_time",
                "disagreement"]
    assert sorted(p.stem for p in tmp_path.glob("*.png")) == sorted(expected)
    for name in expected:
        data = (tmp_path / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, name


def test_plotter_reuses_one_figure_and_skips_missing_metrics(tmp_path):
    plots = Plotter()
    fig = plots.fig
    res = _results(50)
    assert plots.metric(tmp_path / "a.png", res, "loss", "t", cap=100.0)
    assert not plots.metric(tmp_path / "b.png", res, "no_such_metric", "t")
    assert plots.metric(tmp_path / "c.png", res, "accuracy", "t", log=False)
    assert plots.fig is fig and len(fig.axes) == 1
    assert plots.ax.get_yscale() == "linear" and not (tmp_path / "b.png").exists()


def test_a_reused_figure_draws_what_a_fresh_one_draws(tmp_path):
    """Nothing of one plot (log scale, capped limits, colours, legend, margins) leaks into the next."""
    res, long = _results(300), _results(3000)
    plots = Plotter()
    jobs = [(long, "loss", dict(cap=100.0)), (res, "accuracy", dict(log=False, x="time")),
            (long, "disagreement", {}), (res, "loss", dict(x="time", cap=100.0)), (res, "accuracy", dict(log=False))]
    for i, (r, metric, kw) in enumerate(jobs):
        assert plots.metric(tmp_path / f"reused{i}.png", r, metric, "t", **kw)
        assert Plotter().metric(tmp_path / f"fresh{i}.png", r, metric, "t", **kw)
        assert (tmp_path / f"reused{i}.png").read_bytes() == (tmp_path / f"fresh{i}.png").read_bytes(), jobs[i][1:]


def test_sweep_panels_are_written(tmp_path):
    from netemu.sweep import plot_panels

    res = _results(3000)
    assert plot_panels(tmp_path / "loss.png", [("a=1", res), ("a=2", res)], "loss", "sweep")
    assert (tmp_path / "loss.png").stat().st_size > 5000
    assert not plot_panels(tmp_path / "none.png", [("a=1", res)], "no_such_metric", "sweep")


def test_digits_task_is_loaded_once_for_three_protocols(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from netemu.tasks import digits

    calls = []
    real = digits.load

    def counted():
        calls.append(1)
        return real()

    monkeypatch.setattr(digits, "load", counted)
    sc = netemu.load({"seed": 3, "network": {"nodes": 4, "topology": "random", "p": 0.5},
                      "run": {"rounds": 2}, "task": {"kind": "digits", "model": "mlp", "hidden": 8},
                      "compute": {"device": "cpu"}, "output": {"plot": False},
                      "protocols": [{"name": "dgd"}, {"name": "pulm-dgd"}, {"name": "local-sgd"}]})
    results = run_scenario(sc, tmp_path / "out", progress=False)
    assert [r.label for r in results] == ["dgd", "pulm-dgd", "local-sgd"]
    assert len(calls) == 1
