"""Every shipped scenario's metrics.csv is byte-identical to the one recorded in
``tests/data/golden_metrics.json`` (the commit before the event runtime; see that file's notes
for each later, explained change)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests/data/golden_metrics.json").read_text())["sha256"]
SCENARIOS = sorted({key.split("/")[0] for key in GOLDEN})


@pytest.mark.parametrize("name", SCENARIOS)
def test_shipped_scenario_metrics_unchanged(name, tmp_path):
    out = tmp_path / name
    subprocess.run([sys.executable, "-m", "netemu", "run", str(ROOT / "scenarios" / f"{name}.toml"),
                    "--out", str(out), "--no-progress", "--set", "output.plot=false"],
                   check=True, capture_output=True, cwd=ROOT)
    for key, digest in GOLDEN.items():
        if key.split("/")[0] != name:
            continue
        got = hashlib.sha256((tmp_path / key / "metrics.csv").read_bytes()).hexdigest()
        assert got == digest, f"{key}/metrics.csv changed"
