"""What would a sweep cost? Measures, on this device, the training speed of every kind of
ensemble an experiment's sweep would form, and projects the sweep's GPU time from it.

    python -m lib.bench.cost --profile paper --experiments A-scale,B-position [--steps 30] [--json out.json]

The sweep's own planning decides what is timed: its runs (and learning-rate trials) are
packed into ensembles exactly as `lib.sweeps` packs them. For each kind of ensemble (one
pack key: model shape, training settings) the largest one trains, first alone for one
data block (warming up kernels, measuring its peak memory), then as many copies at once
as train together in a sweep (COMPANION_CONCURRENT, fewer if memory would not hold them),
each in its own thread and CUDA stream, for `--short` and `--short + --steps` steps. The
difference of the two wall times gives the seconds per step of those concurrent ensembles,
start-up, graph capture and clean-up cancelled.

The projection assumes every run trains its full budget (no early stop) and that smaller
ensembles of a kind cost in proportion to their members; evaluations, final tests and
set-up are not counted. It is a measured rate times a planned amount of work, not a run.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import tempfile
import threading
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

import torch

from ..config import expand_runs, experiment_spec
from ..provenance import device_name, git_commit
from ..training import TrainConfig, resolve_device, train_ensemble
from ..training.loop import lr_trials, trial_config
from ..sweeps.runner import Member, concurrent_ensembles, learning_rate, memory_budget, pack


def plan(names: list[str], profile: str, device, out_dir: Path) -> dict[str, list[list[Member]]]:
    """Each experiment's ensembles as the sweep would pack them (runs and lr trials)."""
    out = {}
    for name in names:
        members = []
        for run in expand_runs(experiment_spec(name, profile)):
            grid = run.lr.get("grid") or []
            if len(grid) > 1:
                trial = dataclasses.asdict(trial_config(TrainConfig(**run.train), int(run.lr["trial_steps"])))
                members += [Member(run, lr, seed, trial, out_dir, trial=True)
                            for lr, seed in lr_trials(grid, int(run.lr.get("repeats", 1)))]
                lr = float(grid[0])  # any: the speed does not depend on it
            else:
                lr = learning_rate(run, out_dir)
            members.append(Member(run, lr, run.seed, run.train, out_dir))
        out[name] = pack(members, *memory_budget(device))
    return out


def _short(cfg: TrainConfig, steps: int) -> TrainConfig:
    return dataclasses.replace(cfg, steps=steps, eval_every=0, early_stop=None, checkpoint_every=0,
                               snapshot_embeddings=False, data_block=min(cfg.data_block, steps))


def timed(ensembles: list[list[Member]], steps: int, device) -> float:
    """Wall seconds for these ensembles to train `steps` steps at once, each in its own
    thread (and CUDA stream), timed once their models are built (a repeated ensemble's
    models are copies of the first build)."""
    gc.collect()  # the previous timing's graphs and models, before this one allocates
    if device.type == "cuda":
        torch.cuda.empty_cache()
    built: dict[int, list] = {}
    models = []
    for ens in ensembles:
        models.append(copy.deepcopy(built[id(ens)]) if id(ens) in built else [m.build() for m in ens])
        built.setdefault(id(ens), models[-1])
    errors = []

    def one(ens, ms, stream):
        try:
            with torch.cuda.stream(stream) if stream is not None else nullcontext():
                train_ensemble(ms, [m.task for m in ens], _short(ens[0].cfg, steps), seeds=[m.seed for m in ens],
                               lrs=[m.lr for m in ens], device=device, progress=False)
                if stream is not None:
                    stream.synchronize()
        except Exception as e:  # noqa: BLE001 - raised in the caller's thread
            errors.append(e)

    streams = [torch.cuda.Stream(device) if device.type == "cuda" else None for _ in ensembles]
    threads = [threading.Thread(target=one, args=a) for a in zip(ensembles, models, streams)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def measure_kind(group: list[list[Member]], device, short: int, steps: int, concurrent: int) -> dict:
    """Seconds per step of `concurrent` copies of the group's largest ensemble at once."""
    sample = max(group, key=len)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    timed([sample], short, device)  # warm-up: kernels, autotuning; peak memory of one
    # reserved, not allocated: CUDA graphs keep private pools
    peak = torch.cuda.max_memory_reserved(device) if device.type == "cuda" else 0
    c = min(concurrent, len(group))
    if peak:
        c = max(1, min(c, int(0.7 * torch.cuda.get_device_properties(device).total_memory // peak)))
    t_short = timed([sample] * c, short, device)
    t_long = timed([sample] * c, short + steps, device)
    m, cfg = sample[0], sample[0].cfg
    model = " ".join(str(v) for k, v in m.run.labels.items() if not k.startswith(("train.", "task.")))
    return {"model": model, "depth": len(m.probe.cfg.layers), "d_model": m.probe.cfg.d_model,
            "params": m.probe.num_params(),
            "members": len(sample), "ensembles": len(group), "concurrent": c, "batch": cfg.batch_size,
            "seq_len": m.task.seq_len, "amp": cfg.amp, "peak_gb_one": round(peak / 2 ** 30, 2),
            "s_per_step": max(t_long - t_short, 1e-9) / steps,
            "member_steps": sum(len(e) * e[0].cfg.steps for e in group)}


def project(kinds: list[dict]) -> float:
    """GPU seconds: each kind's member-steps at its measured member-steps per second."""
    return sum(k["member_steps"] * k["s_per_step"] / (k["members"] * k["concurrent"]) for k in kinds)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lib.bench.cost")
    ap.add_argument("--profile", default="paper")
    ap.add_argument("--experiments", required=True, help="comma-separated names")
    ap.add_argument("--steps", type=int, default=30, help="timed steps (beyond --short)")
    ap.add_argument("--short", type=int, default=10, help="steps of the run whose time is subtracted")
    ap.add_argument("--concurrent", type=int, default=concurrent_ensembles(), help="ensembles at once (memory permitting)")
    ap.add_argument("--only", default=None, help="measure only the kinds whose label contains this")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    names = args.experiments.split(",")
    report = {"device": device_name(device), "commit": git_commit(), "profile": args.profile,
              "timed_steps": args.steps, "experiments": {}}
    with tempfile.TemporaryDirectory() as tmp:
        ensembles = plan(names, args.profile, device, Path(tmp))
        for name in names:
            groups = defaultdict(list)
            for ens in ensembles[name]:
                groups[ens[0].pack_key() if ens[0].pack_key()[0] != "alone" else
                       json.dumps([ens[0].run.model, ens[0].cfg.steps, ens[0].task.seq_len], sort_keys=True,
                                  default=str)].append(ens)
            kinds = []
            for group in groups.values():
                if args.only and args.only not in " ".join(
                        str(v) for k, v in group[0][0].run.labels.items() if not k.startswith(("train.", "task."))):
                    continue
                kinds.append(measure_kind(group, device, args.short, args.steps, args.concurrent))
                k = kinds[-1]
                print(f"{name}: {k['model']} ({k['depth']} layers, d={k['d_model']}, "
                      f"{k['params'] / 1e6:.1f}M parameters), "
                      f"{k['ensembles']} ensembles of {k['members']}, {k['concurrent']} at once: "
                      f"{k['s_per_step'] * 1e3:.1f} ms per step, peak {k['peak_gb_one']} GB alone", flush=True)
                if args.json:  # as it goes: a run cut short keeps what it measured
                    report["experiments"][name] = {"kinds": kinds}
                    Path(args.json).write_text(json.dumps(report, indent=1))
            gpu_s = project(kinds)
            report["experiments"][name] = {"runs": len(expand_runs(experiment_spec(name, args.profile))),
                                           "projected_gpu_hours": round(gpu_s / 3600, 2), "kinds": kinds}
            print(f"{name} at {args.profile}: projected {gpu_s / 3600:.2f} GPU-hours on {report['device']} "
                  f"(full budgets, no early stop)", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
