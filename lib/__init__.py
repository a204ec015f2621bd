"""Shared library of the hybrid-models companion: tasks, models, training, sweeps, plots."""
