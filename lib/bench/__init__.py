"""Measurements beside the sweeps, each a `python -m` entry point writing JSON (the committed
ones are in data/checks/): throughput benchmarks (benchmark: paper A's ensembles; benchmark_b: paper
B's models), cost projections of a profile's sweeps (cost), paper B's probes (probe_b) and
the position toy (position_toy).

Beside lib.sweeps, one layer up (tests/test_layering.py): they may import lib.sweeps and
what lies below it, and position_toy reads embedding geometry from lib.analysis.position;
only their command lines use them.
"""
