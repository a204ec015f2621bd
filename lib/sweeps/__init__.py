from .runner import collect, load_results, results_table, run_experiments, run_sweep, train_runs

__all__ = ["collect", "load_results", "results_table", "run_experiments", "run_sweep", "train_runs"]
