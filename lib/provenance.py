"""Where a result came from: profile, device, commit, library versions, wall time."""
from __future__ import annotations

import datetime
import os
import platform
import subprocess

import torch

from .config import ROOT


def git_commit() -> str:
    """The checkout's commit (+dirty), or $COMPANION_COMMIT where there is no .git
    (a copy of the tree on a GPU machine)."""
    if os.environ.get("COMPANION_COMMIT"):
        return os.environ["COMPANION_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        # dirty = uncommitted changes to the code (pipeline outputs change as stages run)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "lib",
                                "notebooks", "pyproject.toml"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
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


def footer(prov: dict) -> str:
    """One line for a figure: which profile made it, where, from which commit."""
    commits = [c for c in prov.get("run_commits", []) if c != "unrecorded"] or [prov["commit"]]
    head = f"profile: {prov['profile']} · {prov['device']} · commit {', '.join(commits)} · "
    if prov.get("runs") == 0:
        return head + f"weights set by hand, no training · {prov['wall_s']:.0f} s"
    minutes = prov.get("train_wall_s", prov["wall_s"]) / 60
    return head + f"{prov.get('runs', '?')} runs, {minutes:.1f} min of training"
