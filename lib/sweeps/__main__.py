"""Train experiments from the command line, outside DVC and papermill:

    python -m lib.sweeps --profile gpu --experiments A-fig4,A-fig6 [--time-budget 500]

A campaign may train part of a grid first (its tables hold every finished run):

    python -m lib.sweeps --profile gpu --experiments B-ngram --only rung=L10-20 --only seed=0

With --plan nothing trains: it lists, per configuration of the selection, the runs finished
and left and whether the learning-rate trials are still to run, to plan the next chunk.
With --prune nothing trains either: it deletes the records that earlier settings left in the
results folders (after a change of the quick settings, before `dvc repro`, so that the
outputs DVC records match a fresh clone's). At the gpu profile that includes runs the
committed figures may still show until their experiments are retrained.

Runs of all named experiments train together (shared ensembles). With a time budget no
new ensemble starts after that many seconds; run the same command again to go on.

On several GPUs, one process per GPU through torchrun; each trains its share of the
ensembles and the first writes the tables (a cluster: torchrun's --nnodes/--rdzv-* flags,
with data/results on a shared file system or gathered to the first process):

    torchrun --nproc-per-node 4 -m lib.sweeps --profile gpu --experiments all

On a CPU, ensembles train side by side in worker processes of one thread each, one per
core (--cpu-workers N): a micro model's ops are too small to gain from torch's threads.

Paper B's models are trained one per ensemble, each from its own thread; threads of one
process share the Python interpreter, so several processes per GPU keep the GPUs busier
(two: at four, an 80 GB H100 ran out of memory in two of three sweeps):

    COMPANION_CONCURRENT=4 torchrun --nproc-per-node 8 -m lib.sweeps ...   # 4 GPUs x 2 processes
"""
import argparse
import datetime
import json
import os
import sys

import torch
import torch.distributed as dist

from . import EnsemblesFailed, plan_runs, prune_stale, run_experiments
from .runner import prepare_cuda
from ..config import ConfigError, load_params

ap = argparse.ArgumentParser(
    prog="python -m lib.sweeps", formatter_class=argparse.RawDescriptionHelpFormatter,
    description="Train experiments of experiments.yaml (runs of all named experiments share ensembles) and\n"
                "write their results tables. Finished runs are skipped: the same command resumes.\n"
                "An option marked [VARIABLE] may also be set through that environment variable.",
    epilog="usage in full:\n\n" + __doc__)
ap.add_argument("--profile", default=None, help="quick | gpu | paper (default: params.yaml's)")
ap.add_argument("--experiments", default="all", help="comma-separated names, or 'all'")
ap.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
ap.add_argument("--time-budget", type=float, default=None, help="seconds after which no ensemble starts")
ap.add_argument("--plan", action="store_true", help="list what the selection would train (runs finished and "
                "left per configuration), train nothing")
ap.add_argument("--prune", action="store_true", help="delete run records and learning-rate choices that the "
                "current settings no longer make, train nothing")
ap.add_argument("--only", action="append", default=[], metavar="LABEL=V1,V2",
                help="train only the runs whose grid label (or seed) takes one of these values; repeatable")
KNOBS = {  # option -> the environment variable the library reads
    "workdir": "COMPANION_WORKDIR", "concurrent": "COMPANION_CONCURRENT",
    "checkpoints": "COMPANION_CHECKPOINTS", "data_processes": "COMPANION_DATA_PROCESSES",
    "cpu_workers": "COMPANION_CPU_WORKERS"}
ap.add_argument("--workdir", metavar="DIR", help="where data/ and figures/ are written (default: the repository) "
                "[COMPANION_WORKDIR]")
ap.add_argument("--concurrent", type=int, metavar="N", help="ensembles training at once on one GPU (default 16) "
                "[COMPANION_CONCURRENT]")
ap.add_argument("--checkpoints", metavar="DIR", help="save ensembles' state every ~500 steps there, so a killed "
                "sweep resumes mid-ensemble [COMPANION_CHECKPOINTS]")
ap.add_argument("--data-processes", type=int, metavar="N", help="worker processes making training batches "
                "(default 0: in the training threads) [COMPANION_DATA_PROCESSES]")
ap.add_argument("--cpu-workers", type=int, metavar="N", help="processes training ensembles side by side on a CPU, "
                "one thread each (default: one per core) [COMPANION_CPU_WORKERS]")
args = ap.parse_args()
for option, variable in KNOBS.items():
    if getattr(args, option) is not None:
        os.environ[variable] = str(getattr(args, option))
prepare_cuda()  # before CUDA starts (torchrun's set_device below)
only = {}
for item in args.only:
    key, sep, values = item.partition("=")
    if not sep or not key.strip() or not values.strip():
        sys.exit(f"{ap.prog}: --only {item!r}: expected LABEL=VALUE[,VALUE...], e.g. rung=L10-20")
    only.setdefault(key.strip(), []).extend(v.strip() for v in values.split(",") if v.strip())
if int(os.environ.get("WORLD_SIZE", 1)) > 1:  # started by torchrun: one process per GPU
    if torch.cuda.is_available():
        # several processes may share a GPU (--nproc-per-node a multiple of the GPUs): each
        # process's threads share one Python interpreter, so more processes, less GIL waiting
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    # gloo, also on GPUs: processes exchange only small Python objects (trial losses, run
    # records), and may wait long for each other between phases
    dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))
try:
    params = load_params()
    names = list(params["experiments"]) if args.experiments == "all" else \
        list(dict.fromkeys(n.strip() for n in args.experiments.split(",") if n.strip()))
    if args.prune:
        removed = prune_stale(names, args.profile or params["profile"])
        print(json.dumps(removed))
        sys.exit(0)
    if args.plan:
        import pandas as pd
        plan = plan_runs(names, args.profile or params["profile"], only or None)
        if plan.empty:
            sys.exit(f"{ap.prog}: the selection holds no runs")
        with pd.option_context("display.max_rows", None, "display.width", 200):
            print(plan.astype(object).fillna("").to_string(index=False))
        print(f"{plan['left'].sum()} of {plan['selected'].sum()} selected runs left to train; "
              f"{plan['lr trials'].sum()} configurations still need learning-rate trials")
        sys.exit(0)
    tables = run_experiments(names, args.profile or params["profile"], device=args.device,
                             time_budget_s=args.time_budget, only=only or None)
except ConfigError as e:  # a mistake in the settings or the arguments: one line, no traceback
    sys.exit(f"{ap.prog}: {e}")
except EnsemblesFailed as e:  # the other runs are recorded; say which failed and why, no traceback
    sys.exit(f"{ap.prog}: {e}")
if tables:
    print(json.dumps({n: len(t) for n, t in tables.items()}))
if dist.is_initialized():
    dist.destroy_process_group()
