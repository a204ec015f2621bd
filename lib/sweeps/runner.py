"""Run an experiment's runs, one JSON per finished run; a rerun skips what is done.

    data/results/<profile>/<experiment>/runs/<run id>.json   one per run
    data/results/<profile>/<experiment>/lrs.json             learning rates chosen per configuration
    data/results/<profile>/<experiment>/results.parquet      one row per run
    data/results/<profile>/<experiment>/provenance.json      profile, device, commit, wall time
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..config import Run, data_dir as default_data_dir
from ..models import build_model
from ..provenance import git_commit, provenance
from ..tasks import eval_set
from ..training import TrainConfig, choose_lr, resolve_device, train


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    tmp.replace(path)  # atomic: an interrupted sweep never leaves half a result


def _downsample(xs: list[float], points: int = 100) -> list[float]:
    if len(xs) <= points:
        return [float(x) for x in xs]
    return [float(np.mean(c)) for c in np.array_split(np.asarray(xs), points)]


def learning_rate(run: Run, out_dir: Path, device, progress: bool) -> float:
    """The run's learning rate: fixed, or chosen once per configuration (all seeds share it)."""
    grid = run.lr.get("grid") or [run.train.get("lr", 1e-3)]
    if len(grid) == 1:
        return float(grid[0])
    key = json.dumps({"task": run.task, "model": run.model, "train": run.train, "lr": run.lr}, sort_keys=True)
    cache_path = out_dir / "lrs.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if key not in cache:
        task, cfg = run.make_task(), run.model_config()
        lr, losses = choose_lr(lambda s: build_model(cfg, task.vocab_size, seed=s), task,
                               TrainConfig(**run.train), grid, trial_steps=int(run.lr["trial_steps"]),
                               repeats=int(run.lr.get("repeats", 1)), device=device, progress=progress)
        cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
        cache[key] = {"lr": lr, "trial_losses": losses, "labels": run.labels}
        _write_json(cache_path, cache)
    return float(cache[key]["lr"])


def execute(run: Run, out_dir: Path, data_dir: Path, device, progress: bool = False) -> dict:
    """Train and evaluate one run; returns its result record."""
    task, eval_task = run.make_task(), run.make_eval_task()
    ev = eval_set(eval_task, run.eval["n"], run.eval["seed"], data_dir)
    lr = learning_rate(run, out_dir, device, progress)
    cfg = run.model_config()
    model = build_model(cfg, task.vocab_size, seq_len=max(task.seq_len, eval_task.seq_len), seed=run.seed)
    tcfg = TrainConfig(**{**run.train, "lr": lr})
    ckpt = out_dir / "checkpoints" / f"{run.id}.pt" if tcfg.checkpoint_every else None
    out = train(model, task, tcfg, seed=run.seed, eval_batch=ev, device=device, checkpoint=ckpt,
                progress=progress, desc=f"{run.labels}")
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()
    return {"id": run.id, "experiment": run.experiment, "labels": run.labels, "seed": run.seed,
            "params": model.num_params(), "params_non_embedding": model.num_params(non_embedding=True),
            "lr": lr, "final": out["final"], "steps": out["steps"], "early_stopped": out["early_stopped"],
            "wall_s": out["wall_s"], "device": str(resolve_device(device)), "commit": git_commit(),
            "eval_curve": out["history"]["eval"], "train_loss": _downsample(out["history"]["train_loss"]),
            "run": {k: v for k, v in run.__dict__.items() if k != "labels"}}


def run_sweep(runs: list[Run], out_dir: str | Path, *, profile: str, data_dir: str | Path | None = None,
              device="auto", progress: bool = True) -> pd.DataFrame:
    """Run every run not already finished under out_dir; return the table of all of them."""
    out_dir, data_dir = Path(out_dir), Path(data_dir or default_data_dir())
    t0, done_before = time.time(), 0
    records = []
    for run in tqdm(runs, desc=runs[0].experiment if runs else "sweep", disable=not progress):
        path = out_dir / "runs" / f"{run.id}.json"
        if path.exists():
            done_before += 1
        else:
            _write_json(path, execute(run, out_dir, data_dir, device))
        records.append(json.loads(path.read_text()))
    table = results_table(records)
    table.to_parquet(out_dir / "results.parquet", index=False)
    prov = provenance(profile=profile, device=resolve_device(device), wall_s=time.time() - t0)
    prov.update(runs=len(runs), resumed=done_before,
                train_wall_s=float(sum(r["wall_s"] for r in records)),
                run_commits=sorted({r.get("commit", "unrecorded") for r in records}))
    _write_json(out_dir / "provenance.json", prov)
    return table


def results_table(records: list[dict]) -> pd.DataFrame:
    rows = [{"experiment": r["experiment"], "id": r["id"], **r["labels"], "seed": r["seed"],
             "params": r["params"], "params_non_embedding": r["params_non_embedding"], "lr": r["lr"],
             **r["final"], "steps": r["steps"], "wall_s": r["wall_s"], "device": r["device"]}
            for r in records]
    return pd.DataFrame(rows)


def load_results(out_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    out_dir = Path(out_dir)
    return pd.read_parquet(out_dir / "results.parquet"), json.loads((out_dir / "provenance.json").read_text())
