"""A sweep's folder: ``DIR/sweep.json`` (the plan), ``DIR/runs/<id>/`` (one run's outputs).

A run folder is written as a whole (``netemu.outputs.staged``: a hidden staging folder renamed
into place), so it either holds a finished run's ``metrics.csv`` and ``summary.json`` (and
plots), a failed run's ``error.txt``, or does not exist. A run is *finished* when its folder holds
``summary.json``; a re-run skips those and runs the others (failed ones again).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from netemu import __version__
from netemu.errors import ScenarioError
from netemu.outputs import STAGE_PREFIX, remove_stages, staged

MANIFEST = "sweep.json"
OUTPUTS = ("sweep.csv", "failed.csv", "series.parquet", "series.csv", "tables.md", "tables.tex")


def check_out(out: Path, plan) -> None:
    """Refuse an ``out`` that holds something else than this sweep's folder: another sweep's
    runs (another scenario or other grid keys), or files that are not a sweep's."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise ScenarioError(f"--out {out}: is a file, not a folder; choose a folder for the sweep")
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ScenarioError(f"--out {out}: {MANIFEST} is not readable; choose another folder") from None
        if old.get("identity") != plan.identity:
            raise ScenarioError(
                f"--out {out}: holds the runs of another sweep ({old.get('source')}, grid "
                f"{', '.join(old.get('grid', {})) or 'none'}); this one ({plan.source}, grid "
                f"{', '.join(plan.grid) or 'none'}) differs in its scenario or grid keys: choose another --out")
        return
    entries = [e for e in out.iterdir() if not e.name.startswith(STAGE_PREFIX)]
    if entries:
        what = "runs of a netemu run" if (out / "summary.json").is_file() else "files"
        raise ScenarioError(f"--out {out}: the folder holds {what} and no {MANIFEST}, so it is not this "
                            f"sweep's folder; choose a new or empty folder")


def write_manifest(out: Path, plan) -> None:
    """``DIR/sweep.json``: what ``netemu report`` needs to redraw without the scenario file."""
    doc = {"netemu": __version__, "source": plan.source, "name": plan.name, "identity": plan.identity,
           "grid": plan.grid, "seeds": plan.seeds,
           "runs": [{"id": r.id, "values": r.values, "seed": r.seed} for r in plan.runs]}
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{STAGE_PREFIX}{MANIFEST}"
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out / MANIFEST)


def read_manifest(out: Path) -> dict:
    from netemu.errors import NetemuError

    path = Path(out) / MANIFEST
    if not path.is_file():
        raise NetemuError(f"{out}: no {MANIFEST}; give the --out folder of a 'netemu sweep'")
    return json.loads(path.read_text(encoding="utf-8"))


def run_dir(out: Path, rid: str) -> Path:
    return Path(out) / "runs" / rid


def finished(out: Path, rid: str) -> bool:
    return (run_dir(out, rid) / "summary.json").is_file()


def error_of(out: Path, rid: str) -> str | None:
    path = run_dir(out, rid) / "error.txt"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def write_files(out: Path, rid: str, files: dict) -> None:
    """A run's output files (name → bytes), put in place as a whole."""
    with staged(run_dir(out, rid)) as stage:
        for name, data in files.items():
            (stage / name).write_bytes(data)


def write_failure(out: Path, rid: str, message: str) -> None:
    write_files(out, rid, {"error.txt": (message.rstrip("\n") + "\n").encode("utf-8")})


def clean(out: Path) -> None:
    """Staging folders that an interrupted sweep left behind."""
    remove_stages(Path(out))
    remove_stages(Path(out) / "runs")


def collect(folder: Path) -> dict:
    """The files of a finished run's folder (name → bytes)."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
