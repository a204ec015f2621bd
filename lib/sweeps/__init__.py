from .runner import collect, plan_runs, run_experiments, run_sweep, train_runs

__all__ = ["collect", "plan_runs", "run_experiments", "run_sweep", "train_runs"]
