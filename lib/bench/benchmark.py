"""How much faster is training many tiny models as one ensemble? Prints model-steps per
second for paper A's two-layer width-12 models on selective copying (batch 8, L = 100),
trained one at a time and as ensembles of growing size, all through the same
`train_ensemble` code (data generation, CUDA graph capture and evaluation included).
Every member has its own seed, hence its own initialisation and, by default, its own data
stream: nothing is shared. `--streams K` has member i read stream i mod K instead, as a
paper-protocol sweep does (every configuration's 11 runs read the same 11 seeds' streams).

    python -m lib.bench.benchmark [--archs SSM-TF,TF-TF] [--members 1,64,256,1024] [--streams 11]
        [--steps 1000] [--compile] [--json out.json]

`--compile` probes kernel fusion: torch.compile on the ensemble's elementwise work, for
every row alike (one model and ensembles), each shape compiled before its timed run.
The sweeps do not compile: they train up to 16 ensembles from threads, of many shapes.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import time

import torch

from ..models import build_model, micro
from ..provenance import device_name, git_commit
from ..tasks import make_task
from ..training import TrainConfig, resolve_device, train_ensemble


def measure(arch: str, members: int, steps: int, device, cuda_graph: bool = True, d: int = 12,
            streams: int | None = None) -> dict:
    task = make_task("selective_copy")
    models = [build_model(micro(arch, d), task.vocab_size, seed=s) for s in range(members)]
    cfg = TrainConfig(steps=steps, batch_size=8, lr=1e-2, warmup=10, data_block=min(50, steps),
                      cuda_graph=cuda_graph)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.time()
    res = train_ensemble(models, [task] * members, cfg, seeds=[s % (streams or members) for s in range(members)],
                         device=device, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.time() - t0
    return {"arch": arch, "d_model": d, "members": members, "streams": min(streams or members, members),
            "steps": steps, "cuda_graph": cuda_graph,
            "wall_s": round(wall, 3), "model_steps_per_s": round(members * steps / wall, 1),
            "final_loss_mean": float(sum(r["history"]["train_loss"][-1] for r in res) / members),
            "peak_mem_gb": round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
            if device.type == "cuda" else None}


@contextlib.contextmanager
def compiled_ensemble_ops():
    """--compile: the norms, the dropout hash, the attention and Mamba blocks (mamba-ssm's
    scan left opaque) and the per-member loss under torch.compile while inside."""
    from ..models import ensemble
    from ..training import loop
    from .benchmark_b import opaque_mamba_kernels

    targets = [(ensemble, "_norm"), (ensemble, "keyed_keep"), (ensemble.Ensemble, "_attn"),
               (ensemble.Ensemble, "_mamba"), (loop, "member_losses")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    try:
        for owner, name, fn in saved:
            setattr(owner, name, torch.compile(fn, dynamic=False))  # one compilation per shape
        with torch._dynamo.config.patch(recompile_limit=64), opaque_mamba_kernels():
            yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="python -m lib.bench.benchmark")
    ap.add_argument("--archs", default="SSM-TF,TF-TF,SSM-SSM,TF-SSM")
    ap.add_argument("--members", default="1,64,256,1024")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--streams", type=int, default=None, help="distinct data streams (default: one per member)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--eager-baseline", action="store_true", help="also time one model without a CUDA graph")
    ap.add_argument("--compile", action="store_true", help="torch.compile the ensemble's elementwise work (a probe)")
    ap.add_argument("--data-processes", type=int, default=None,
                    help="draw training data in this many worker processes (COMPANION_DATA_PROCESSES)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.data_processes is not None:
        os.environ["COMPANION_DATA_PROCESSES"] = str(args.data_processes)
    device = resolve_device(args.device)
    # (mamba-ssm's scan grid caps an ensemble at 65,535 channels, but it runs only below
    # lib.models.ensemble_kernels.MIN_PROGRAMS (member, row) pairs; bigger ensembles use ours)
    members = [int(m) for m in args.members.split(",")]
    rows = []
    with compiled_ensemble_ops() if args.compile else contextlib.nullcontext():
        for arch in args.archs.split(","):
            measure(arch, 2, 20, device)  # warm-up: CUDA context, kernels, cuBLAS handles, first capture
            if args.eager_baseline and device.type == "cuda":
                rows.append(measure(arch, 1, args.steps, device, cuda_graph=False))
                print(rows[-1], flush=True)
            for m in members:
                if args.compile:  # compile this shape before the timed run
                    measure(arch, m, 30, device, streams=args.streams)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                rows.append(measure(arch, m, args.steps, device, streams=args.streams))
                print(rows[-1], flush=True)
    for r in rows:  # the --eager-baseline row too: it ran inside the same context
        r["compiled"] = args.compile
    print(f"\n{device_name(device)}: model-steps per second, width-12 two-layer models, batch 8, L = 100")
    print(f"{'arch':8s} {'members':>7s} {'streams':>7s} {'graph':>5s} {'steps/s':>10s} "
          f"{'x one-at-a-time':>16s} {'GB':>6s}")
    for arch in args.archs.split(","):
        base = next((r for r in rows if r["arch"] == arch and r["members"] == 1 and r["cuda_graph"]), None)
        for r in (r for r in rows if r["arch"] == arch):  # no ratio without a one-model row
            ratio = f"{r['model_steps_per_s'] / base['model_steps_per_s']:16.1f}" if base else f"{'-':>16s}"
            print(f"{arch:8s} {r['members']:7d} {r['streams']:7d} {str(r['cuda_graph']):>5s} "
                  f"{r['model_steps_per_s']:10.0f} {ratio} {r['peak_mem_gb'] or 0:6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device_name(device), "torch": torch.__version__, "commit": git_commit(),
                       "args": vars(args),
                       "data_processes": int(os.environ.get("COMPANION_DATA_PROCESSES", 0)), "rows": rows}, f,
                      indent=1)
    return rows


if __name__ == "__main__":
    main()
