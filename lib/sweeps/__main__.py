"""Train experiments from the command line, outside DVC and papermill:

    python -m lib.sweeps --profile gpu --experiments A-fig4,A-fig6 [--time-budget 500]

Runs of all named experiments train together (shared ensembles). With a time budget no
new ensemble starts after that many seconds; run the same command again to go on.
"""
import argparse
import json

from . import run_experiments
from ..config import load_params

ap = argparse.ArgumentParser(prog="python -m lib.sweeps")
ap.add_argument("--profile", default=None, help="quick | gpu | paper (default: params.yaml's)")
ap.add_argument("--experiments", default="all", help="comma-separated names, or 'all'")
ap.add_argument("--device", default="auto")
ap.add_argument("--time-budget", type=float, default=None, help="seconds after which no ensemble starts")
args = ap.parse_args()
params = load_params()
names = list(params["experiments"]) if args.experiments == "all" else args.experiments.split(",")
tables = run_experiments(names, args.profile or params["profile"], device=args.device,
                         time_budget_s=args.time_budget)
print(json.dumps({n: len(t) for n, t in tables.items()}))
