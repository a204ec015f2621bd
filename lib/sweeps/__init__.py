from .runner import execute, load_results, results_table, run_sweep

__all__ = ["execute", "load_results", "results_table", "run_sweep"]
