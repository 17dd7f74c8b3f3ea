import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture
def scenario_file(tmp_path):
    """Write a scenario TOML (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "s.toml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p

    return write


def read_metrics(path):
    """metrics.csv → {protocol: {metric: [values by round]}}."""
    out: dict = {}
    lines = Path(path).read_text().splitlines()
    assert lines[0] == "protocol,round,time,metric,value"
    for line in lines[1:]:
        p, k, t, m, v = line.split(",")
        out.setdefault(p, {}).setdefault(m, []).append(float(v))
    return out
