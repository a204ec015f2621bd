from .runner import EnsemblesFailed, collect, plan_runs, prune_stale, run_experiments, run_sweep, train_runs

__all__ = ["EnsemblesFailed", "collect", "plan_runs", "prune_stale", "run_experiments", "run_sweep", "train_runs"]
