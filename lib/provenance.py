"""Where a result came from: profile, device, commit, library versions, wall time. It is kept
in provenance.json beside the results; the figures' footers (lib.plots.accuracy.footer) carry
only what does not change from one machine or run to the next."""
from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess

import torch

from .config import ROOT


# What a result depends on: the code and the settings (pipeline outputs change as stages run)
SOURCES = ("lib", "notebooks", "pyproject.toml", "params.yaml", "experiments.yaml")


def git_commit(root=ROOT) -> str:
    """The checkout's commit (+dirty where SOURCES have uncommitted changes), or
    $COMPANION_COMMIT where there is no .git (a copy of the tree on a GPU machine)."""
    if os.environ.get("COMPANION_COMMIT"):
        return os.environ["COMPANION_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *SOURCES],
                               cwd=root, capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(profile: str, device, wall_s: float) -> dict:
    return {"profile": profile, "device": device_name(device), "commit": git_commit(),
            "torch": torch.__version__, "python": platform.python_version(),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(wall_s, 1)}


def machines(provs) -> str:
    """The provenances' devices, each once. A table trained over several sweeps lists its
    machines already ("4x H100, H100"); a CPU's name has a comma inside its brackets."""
    names = (d for p in provs for d in re.split(r", (?![^()]*\))", p["device"]))
    return ", ".join(dict.fromkeys(names))


def combine(*provs: dict) -> dict:
    """One provenance for a figure or table drawn from several experiments' results: their runs
    and training time added up, their devices and commits listed once each."""
    profiles = sorted({p["profile"] for p in provs})
    if len(profiles) != 1:
        raise ValueError(f"results from different profiles: {profiles}")
    unique = lambda xs: list(dict.fromkeys(xs))  # noqa: E731  (ordered, no repeats)
    return {"profile": profiles[0], "device": machines(provs),
            "commit": ", ".join(unique(p["commit"] for p in provs)),
            "wall_s": sum(p["wall_s"] for p in provs), "runs": sum(p.get("runs", 0) for p in provs),
            "runs_finished": sum(p.get("runs_finished", p.get("runs", 0)) for p in provs),
            "train_wall_s": sum(p.get("train_wall_s", p["wall_s"]) for p in provs),
            "run_commits": sorted({c for p in provs for c in p.get("run_commits", [p["commit"]])}),
            # experiments of one profile share their sweeps: the longest log, not a sum
            **({"sweep_wall_s": max(p["sweep_wall_s"] for p in provs if "sweep_wall_s" in p)}
               if any("sweep_wall_s" in p for p in provs) else {})}
