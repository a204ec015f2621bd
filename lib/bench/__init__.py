"""Measurements beside the sweeps, each a `python -m` entry point with its own JSON under
data/benchmarks/: throughput benchmarks (benchmark: paper A's ensembles; benchmark_b: paper
B's models), cost projections of a profile's sweeps (cost), paper B's probes (probe_b) and
the position toy (position_toy).

At the level of lib.sweeps: they may import lib.sweeps and what lies below it, and
position_toy reads embedding geometry from lib.analysis.position (tests/test_layering.py).
"""
