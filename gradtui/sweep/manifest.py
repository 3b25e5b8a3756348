"""`manifest.json` in --out: what the sweep is (config, grid, steps, seeds, criterion) and what ran it.

Rerunning with the same --out resumes only when the sweep is the same: the manifest's `sweep`
part (config, grid, steps, seeds, threshold) must match, or the run is refused with the
difference named, so one table never mixes two experiments. `runs` lists every start, with the
versions of Python, gradtui, NumPy, Numba, Dask and distributed, and the scheduler.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

MANIFEST = "manifest.json"


def versions() -> dict:
    import dask
    import distributed
    import numba
    import numpy

    from gradtui import __version__

    return {"python": platform.python_version(), "gradtui": __version__, "numpy": numpy.__version__,
            "numba": numba.__version__, "dask": dask.__version__, "distributed": distributed.__version__}


def sweep_description(plan) -> dict:
    """The part of the manifest that must match for a resume (JSON-ready)."""
    return {
        "preset": plan.base.name,
        "config": plan.base.to_dict(),
        "grid": [{"key": a.key, "spec": a.spec, "values": list(a.values)} for a in plan.axes],
        "steps": plan.steps,
        "seeds": list(plan.seeds),
        "threshold": plan.threshold,
        "cells": len(plan.cells),
    }


def load_or_create(out_dir: Path, plan, scheduler: str) -> dict:
    """Write the manifest (or check it against an existing one) and log this start; returns it.

    Raises ValueError naming the first difference when --out holds another sweep."""
    path = Path(out_dir) / MANIFEST
    wanted = json.loads(json.dumps(sweep_description(plan)))
    if path.exists():
        manifest = json.loads(path.read_text(encoding="utf-8"))
        old = manifest.get("sweep", {})
        for k in wanted:
            if old.get(k) != wanted[k]:
                raise ValueError(f"{out_dir} holds another sweep ({k} differs: {_short(old.get(k))} there, "
                                 f"{_short(wanted[k])} now); choose another --out or repeat that sweep's arguments")
    else:
        manifest = {"format": 1, "sweep": wanted, "runs": []}
    manifest["runs"].append({"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                             "scheduler": scheduler, "versions": versions()})
    write(path, manifest)
    return manifest


def write(path: Path, manifest: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
