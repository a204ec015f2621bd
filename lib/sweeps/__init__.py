from .runner import collect, run_experiments, run_sweep, train_runs

__all__ = ["collect", "run_experiments", "run_sweep", "train_runs"]
