"""Results I/O: the files a sweep writes and everything after it reads, nothing else.

    data/results/<profile>/<experiment>/runs/<run id>.json   one per run: what it learnt
    data/results/<profile>/<experiment>/runs/<run id>.npz    its embedding snapshots, if any
    data/results/<profile>/<experiment>/machine/<run id>.json where and how fast it trained
    data/results/<profile>/<experiment>/results.parquet      one row per run
    data/results/<profile>/<experiment>/provenance.json      profile, device, commit, wall time
    data/results/<profile>/sweeps.jsonl                      one line per sweep that trained

lib.sweeps.runner writes them (through the writers here); lib.analysis, lib.claims,
lib.plots and the notebooks read them. Every file is written atomically; a JSON file that
does not read back is set aside, renamed, and counts as missing.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Run, expand_runs, experiment_spec, results_dir
from .tasks.base import save_npz
from .training.loop import TRIAL_RULE


def atomic_write(path: Path, write) -> None:
    """write(tmp), then rename it over `path`: an interrupted sweep never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
    try:
        write(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1, sort_keys=True)))


def read_json(path: Path) -> dict:
    """A JSON file's content, {} if there is none. One that does not parse (cut short by a
    full disk or a bad copy) is set aside, renamed, not deleted, and counts as missing: its
    run trains again, its learning rates are chosen again."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            path.replace(aside)
        except FileNotFoundError:  # another process of this sweep set it aside first
            return {}
        print(f"warning: {path} does not parse ({e}); set aside as {aside.name}, it will be made again",
              file=sys.stderr, flush=True)
        return {}


# What changes from one machine, checkout or sweep to the next: kept out of a run's record
# (whose bytes DVC hashes) in its machine sidecar, machine/<run id>.json
MACHINE_FIELDS = ("wall_s", "ensemble_wall_s", "ensemble_members", "device", "rank", "commit", "finished")


def machine_path(out_dir: Path, run_id: str) -> Path:
    return Path(out_dir) / "machine" / f"{run_id}.json"


def read_machine(out_dir: Path, record: dict) -> dict:
    """A run's machine facts (MACHINE_FIELDS): its sidecar, or, for a record written before
    sidecars existed (the committed gpu results), the fields inside the record."""
    inline = {k: record[k] for k in MACHINE_FIELDS if k in record}
    return {**inline, **read_json(machine_path(out_dir, record["id"]))}


def results_table(records: list[dict]) -> pd.DataFrame:
    """One row per run, of what it learnt only (no wall time or device: MACHINE_FIELDS)."""
    rows = [{"experiment": r["experiment"], "id": r["id"], **r["labels"], "seed": r["seed"],
             "params": r["params"], "params_non_embedding": r["params_non_embedding"], "lr": r["lr"],
             **r["final"], "steps": r["steps"],
             # runs trained to convergence (paper A's plateau rule) also say where their loss plateaued
             **({"plateau_at": r.get("plateau_at")} if r["run"]["train"].get("plateau_window") else {})}
            for r in records]
    return pd.DataFrame(rows)


def load_results(out_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    out_dir = Path(out_dir)
    return pd.read_parquet(out_dir / "results.parquet"), json.loads((out_dir / "provenance.json").read_text())


def write_snapshots(path: Path, snapshots: dict) -> None:
    """A run's embedding snapshots, runs/<id>.npz: `rows_<fraction>` [tokens, d] of the
    input embedding, `out_<fraction>` of an untied output head, in float16, and
    `step_<fraction>` (too large for the JSON record; only on the writing process's disk)."""
    arrays = {}
    for frac, snap in snapshots.items():
        arrays[f"rows_{frac}"] = snap["rows"].numpy().astype(np.float16)
        if snap.get("out_rows") is not None:
            arrays[f"out_{frac}"] = snap["out_rows"].numpy().astype(np.float16)
        arrays[f"step_{frac}"] = np.int64(snap["step"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npz")
    save_npz(tmp, **arrays)  # no write time inside: the same rows, the same bytes (DVC hashes them)
    tmp.replace(path)


def load_snapshots(run_json: str | Path, table: str = "input") -> dict[str, tuple[int, np.ndarray]]:
    """{fraction: (step, rows)} of a run's snapshots; {} if it has none. `table` "output"
    gives the output head's rows, which are the input rows where the two are tied."""
    if table not in ("input", "output"):
        raise ValueError(f"table is 'input' or 'output', not {table!r}")
    path = Path(run_json).with_suffix(".npz")
    if not path.exists():
        return {}
    z = np.load(path)
    fracs = [k[5:] for k in z.files if k.startswith("rows_")]
    pick = lambda f: f"out_{f}" if table == "output" and f"out_{f}" in z.files else f"rows_{f}"  # noqa: E731
    return {f: (int(z[f"step_{f}"]), z[pick(f)].astype(np.float32)) for f in fracs}


def log_sweep(profile_dir: Path, entry: dict) -> None:
    """Append one sweep (a call that trained something) to <profile dir>/sweeps.jsonl."""
    profile_dir.mkdir(parents=True, exist_ok=True)
    with open(profile_dir / "sweeps.jsonl", "a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


def read_sweep_log(profile_dir: Path) -> list[dict]:
    """The log's entries; a line that does not parse (a sweep killed while appending it) is
    skipped with a warning rather than blocking every table."""
    path = Path(profile_dir) / "sweeps.jsonl"
    entries = []
    for i, line in enumerate(path.read_text().splitlines() if path.exists() else [], 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {path}, line {i} does not parse; skipped", file=sys.stderr, flush=True)
    return entries


def load_runs(profile: str, experiment: str) -> list[dict]:
    """Every finished run record of an experiment (empty if none)."""
    return read_runs(results_dir(profile, experiment))


def read_runs(out_dir: str | Path) -> list[dict]:
    """Every run record in one results folder (empty if none)."""
    return [json.loads(p.read_text()) for p in sorted((Path(out_dir) / "runs").glob("*.json"))]


def lr_key(run: Run) -> str:
    """A configuration's key in lrs.json: runs that differ only in their seed share a learning
    rate (spec A.4); the trial rule is part of the key, so a changed rule chooses anew."""
    return json.dumps({"task": run.task, "model": run.model, "train": run.train, "lr": run.lr,
                       "trials": TRIAL_RULE}, sort_keys=True)


def chosen_lrs(experiment: str, profile: str, earlier_rule: bool = False) -> dict[str, dict]:
    """The learning-rate choices (lrs.json entries: labels, lr, trial losses) of an
    experiment's current configurations. A results folder keeps the choices of earlier
    settings too (it persists, so that a changed sweep loses no finished work); those are
    left out here. With `earlier_rule`, a configuration not yet tried under the current
    trial rule gets the choice made before the rule entered the key (marked
    `"trial rule": "earlier"`): the one its committed runs trained with, until they rerun."""
    entries = read_json(results_dir(profile, experiment) / "lrs.json")
    out = {}
    for run in expand_runs(experiment_spec(experiment, profile)):
        key = lr_key(run)
        if key in entries:
            out[key] = entries[key]
        elif earlier_rule:
            before = {k: v for k, v in json.loads(key).items() if k != "trials"}
            if (old := entries.get(json.dumps(before, sort_keys=True))) is not None:
                out[key] = {**old, "trial rule": "earlier"}
    return out
