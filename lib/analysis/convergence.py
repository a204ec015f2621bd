"""Paper A's runs trained "to convergence, with 4x the compute after the loss plateaus"
(experiments A-fig5-converge, A-fig5-converge-dense, A-fig7-converge; the rule is
lib.training.loop.plateau_step) as numbers: how each run ended and what it reached.

A run's record (lib.results.results_table) holds `steps` (the steps it trained) and
`plateau_at` (the step its training loss plateaued below 0.9 x chance; empty if never).
It was stopped by the rule when it trained plateau_factor x `plateau_at` more steps;
otherwise the cap (`train.steps`) cut it, possibly after a late plateau.
"""
from __future__ import annotations

import pandas as pd

from ..config import experiment_spec


def stopped_by_rule(df: pd.DataFrame) -> pd.Series:
    """Per run: True where the plateau rule stopped it, False where the cap cut it."""
    if "plateau_at" not in df or df.empty:
        return pd.Series(False, index=df.index)
    factor = df["experiment"].map(lambda e: experiment_spec(e, "paper")["train"]["plateau_factor"])
    found = df["plateau_at"].notna()
    return found & (df["steps"] >= df["plateau_at"].fillna(0) * (1 + factor))


def convergence_table(df: pd.DataFrame, x: str = "d_model") -> pd.DataFrame:
    """One row per (arch, width): parameters, mean accuracy and validation loss over seeds,
    the median steps taken and how many runs the rule stopped (the rest reached the cap)."""
    d = df.assign(stopped=stopped_by_rule(df))
    g = d.groupby(["arch", x])
    out = pd.DataFrame({"params": g["params"].first(), "token_acc": g["token_acc"].mean().round(3),
                        "loss": g["loss"].mean().round(3), "median steps": g["steps"].median().round().astype(int),
                        "stopped by the rule": g["stopped"].sum().astype(int).astype(str) + " of "
                        + g["stopped"].size().astype(str)})
    return out.reset_index()
