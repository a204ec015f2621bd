"""Paper A at larger scale (spec A.5, the "mini" setting) as numbers: Fig 8 (length
generalization) and Table 1 (bit-proportion OOD), from the runs of the `A-scale`
experiment; lib.plots.scale draws them, lib.claims.paper_a_scale judges them.

A run (lib.sweeps.runner.record) trained at bit proportion p (`task.p`) on examples of
20-50 tokens packed into 220; its final validation (`final.token_acc`) is at p = 0.2, the
test set of Table 1; its `tests.lengths` holds the token accuracy of its final weights on
single examples of each length 10-190 (Fig 8 draws the runs trained at p = 0.2), and
`tests.in_distribution` its token accuracy on a test set at its own training proportion
(Table 1's second evaluation; runs trained before it existed lack it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..results import load_runs

ARCHS = ["T_rope", "mamba", "hybrid"]
TABLE1_COLUMNS = {"mamba": "SSM", "T_rope": "TF", "hybrid": "Hybrid"}
FIG8_P = 0.2                 # the bit proportion of Fig 8's runs (the task's default)
# Table 1's two evaluations: the caption's test set at p = 0.2 (the runs' validation set),
# and a test set at the run's own training proportion (one version of the authors' code)
EVALUATIONS = {"test p = 0.2": "token_acc", "test p = training p": "token_acc_in_distribution"}
TRAIN_LENGTHS = (20, 50)     # training examples' lengths


def load(profile: str, experiment: str = "A-scale") -> pd.DataFrame:
    """One row per finished run: arch, p (training bit proportion), seed, params, token_acc
    (final validation at p = 0.2), token_acc_in_distribution (at the training p; NaN where
    the run lacks that test) and the record."""
    recs = load_runs(profile, experiment)
    def in_distribution(r: dict) -> float:
        return ((r.get("tests") or {}).get("in_distribution") or {}).get("token_acc", np.nan)

    rows = [{"arch": r["labels"]["arch"], "p": float(r["run"]["task"]["p"]), "seed": r["seed"],
             "params": r["params"], "token_acc": r["final"].get("token_acc"),
             "token_acc_in_distribution": in_distribution(r), "record": r} for r in recs]
    return pd.DataFrame(rows, columns=["arch", "p", "seed", "params", "token_acc", "token_acc_in_distribution",
                                       "record"])


def length_curves(table: pd.DataFrame, p: float = FIG8_P) -> pd.DataFrame:
    """Long table: arch, seed, length, acc (tests.lengths of the runs trained at `p`)."""
    rows = []
    for _, r in table[np.isclose(table["p"].astype(float), p)].iterrows() if not table.empty else []:
        for length, acc in (r["record"].get("tests") or {}).get("lengths", {}).items():
            rows.append({"arch": r["arch"], "seed": r["seed"], "length": int(length), "acc": float(acc)})
    return pd.DataFrame(rows, columns=["arch", "seed", "length", "acc"])


def length_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Per arch and length: mean, min and max over runs (Fig 8's line and band)."""
    if curves.empty:
        return pd.DataFrame(columns=["arch", "length", "mean", "min", "max", "runs"])
    return (curves.groupby(["arch", "length"])["acc"].agg(["mean", "min", "max", "count"])
            .rename(columns={"count": "runs"}).reset_index())


def ood_table(table: pd.DataFrame, evaluation: str = "test p = 0.2") -> pd.DataFrame:
    """A-tab1: token accuracy (mean over seeds) under one of Table 1's EVALUATIONS for each
    training proportion (rows) and model (columns SSM, TF, Hybrid, as the paper's Table 1).
    Empty where no run has that evaluation."""
    column = EVALUATIONS[evaluation]
    if table.empty or column not in table or table[column].isna().all():
        return pd.DataFrame(columns=["train proportion", *TABLE1_COLUMNS.values()])
    t = table.groupby(["p", "arch"])[column].mean().unstack("arch")
    t = t.reindex(columns=[a for a in TABLE1_COLUMNS if a in t.columns]).rename(columns=TABLE1_COLUMNS)
    return t.reset_index().rename(columns={"p": "train proportion"}).round(3)


def table1(table: pd.DataFrame) -> pd.DataFrame:
    """A-tab1: Table 1 under both EVALUATIONS, one column per (model, evaluation), "at 0.2"
    and "at train p" (NaN where the runs lack that evaluation)."""
    out = pd.DataFrame({"train proportion": sorted(table["p"].unique()) if not table.empty else []})
    for name, suffix in zip(EVALUATIONS, ("at 0.2", "at train p")):
        t = ood_table(table, name).set_index("train proportion")
        for c in TABLE1_COLUMNS.values():
            out[f"{c} {suffix}"] = (t[c].reindex(out["train proportion"]).to_numpy(dtype=float) if c in t
                                     else np.nan)
    return out


def describe(profile: str, experiment: str = "A-scale") -> str:
    """The experiment's settings at a profile, in a few lines."""
    from ..config import expand_runs, experiment_spec

    s = experiment_spec(experiment, profile)
    t, m = s["train"], s["model"]
    lengths = (s.get("tests") or {}).get("lengths", {})
    return "\n".join([
        f"{experiment}: {s.get('title', '')} ({len(expand_runs(s))} runs)",
        f"  task {s['task']}",
        f"  models {s['grid']['arch']}: {m['layers']} layers, width {m['d_model']}, {m['heads']} heads, "
        f"state {m['d_state']}, attention window {m['window']}",
        f"  training bit proportions {s['grid']['task.p']}, {s['seeds']} seeds each",
        f"  {t['steps']:,} steps x batch {t['batch_size']}, lr {t['lr']:g}, {t['schedule']} schedule after "
        f"{t['warmup']} warm-up steps, weight decay {t['weight_decay']}, clip {t['clip']}",
        f"  validation at p = {s['eval'].get('p')} on {s['eval']['n']:,} packed sequences; length test at "
        f"{lengths.get('lengths', [])[:3]}...{lengths.get('lengths', [])[-1:]} ({len(lengths.get('lengths', []))} "
        f"lengths), {lengths.get('n', 0):,} examples each"])
