from .runner import collect, plan_runs, prune_stale, run_experiments, run_sweep, train_runs

__all__ = ["collect", "plan_runs", "prune_stale", "run_experiments", "run_sweep", "train_runs"]
