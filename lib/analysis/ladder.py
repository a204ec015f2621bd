"""Difficulty ladders: a claim tested on rungs where the models learn, and the trend
across rungs carried to the paper's setting.

At one GPU's budget most of paper B's families never leave the loss plateau at the
paper's difficulty (n-gram retrieval at L 50-100, position retrieval over 200 symbols),
and the examples they need grow steeply with it. An experiment's grid axis `rung` (its
`rungs` in experiments.yaml, lib.config) trains the same families on easier settings. This
module reduces such runs to one row per (model, rung): the examples each needed to reach
a threshold, and a trend per model fitted over the rungs it reached, extrapolated to the
paper's setting.

Choices (INFERRED; the papers have no ladder):
- one learning rate per (model, rung), by lib.analysis.retrieval.best_lr at the threshold;
- a run's examples to a level: its first crossing, linear between evaluations (as the
  claims' lib.analysis.retrieval.efficiency, over one run); "never" when it did not reach it;
- the trend is a power law, examples = a * difficulty^b, fitted by least squares on
  log-log over the medians of the rungs where every run of the model reached the level,
  at least two of them; with fewer there is no trend, and the table says so.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .retrieval import best_lr, efficiency, lr_text

LEVELS = (0.95, 0.99)


def examples_to(record: dict, level: float) -> float:
    """Training examples at which one run's validation exact match first reached `level`
    (math.inf if never)."""
    return efficiency([record], level).examples


def ladder_table(table: pd.DataFrame, difficulty: dict[str, float], threshold: float,
                 levels: tuple[float, ...] = LEVELS) -> pd.DataFrame:
    """One row per (model, rung) of the run table (columns name, rung, seed, lr, record):
    the rung's difficulty (e.g. the longest training length), the learning rate kept,
    the runs, their budget, and per level the median, min and max examples over the runs
    that reached it, and how many did ("2/3"). Rungs not in `difficulty` are left out."""
    cols = ["name", "d_state", "rung", "difficulty", "lr", "runs", "budget"] + [
        f"{stat}_{level:g}" for level in levels for stat in ("median", "min", "max", "reached")]
    if table.empty or "rung" not in table:
        return pd.DataFrame(columns=cols)
    table = table[table["rung"].isin(list(difficulty))]
    if table.empty:
        return pd.DataFrame(columns=cols)
    if "d_state" not in table:  # the SSM state size tells models of one family apart
        table = table.assign(d_state=16)
    kept = best_lr(table, by=("name", "d_state", "rung"), threshold=threshold)
    rows = []
    for (name, d_state, rung), g in kept.groupby(["name", "d_state", "rung"], sort=False):
        recs = list(g["record"])
        train = [(r.get("run") or {}).get("train") or {} for r in recs]
        row = {"name": name, "d_state": int(d_state), "rung": rung, "difficulty": float(difficulty[rung]), "lr": float(g["lr"].iloc[0]),
               "runs": len(recs), "budget": max((t.get("steps", 0) * t.get("batch_size", 0) for t in train),
                                                default=0)}
        for level in levels:
            got = [x for x in (examples_to(r, level) for r in recs) if math.isfinite(x)]
            row.update({f"median_{level:g}": float(np.median(got)) if got else math.inf,
                        f"min_{level:g}": min(got, default=math.inf), f"max_{level:g}": max(got, default=math.inf),
                        f"reached_{level:g}": f"{len(got)}/{len(recs)}"})
        rows.append(row)
    return pd.DataFrame(rows, columns=cols).sort_values(["name", "d_state", "difficulty"], kind="stable"
                                                        ).reset_index(drop=True)


def _all_reached(count: str) -> bool:
    got, runs = map(int, count.split("/"))
    return got == runs > 0


def fit_trend(ladder: pd.DataFrame, level: float, target: float) -> pd.DataFrame:
    """Per model: the power law examples = a * difficulty^b through the medians of the rungs
    where all its runs reached `level` (at least two), and its value at `target` (the
    paper's setting). Models with fewer such rungs get no trend (NaN) and say why; so does
    a model with a harder rung where some run never reached `level` (the measurement there
    refutes the trend)."""
    rows = []
    for (name, d_state), g in ladder.groupby(["name", "d_state"], sort=False):
        full = g[g[f"reached_{level:g}"].map(_all_reached)]
        row = {"name": name, "d_state": d_state, "rungs_used": len(full), "exponent": math.nan, "at_target": math.nan,
               "note": ""}
        # a harder rung where some run never reached the level refutes a trend through the easier ones
        refuted = g[(g["difficulty"] > full["difficulty"].max()) & ~g[f"reached_{level:g}"].map(_all_reached)]
        if len(full) >= 2 and full["difficulty"].nunique() >= 2:
            b, log_a = np.polyfit(np.log(full["difficulty"]), np.log(full[f"median_{level:g}"]), 1)
            row.update(exponent=float(b), at_target=float(math.exp(log_a) * target ** b))
            if not refuted.empty:
                row["note"] = (f"no trend: {'/'.join(refuted['reached_' + f'{level:g}'])} runs reached {level:g} at "
                               f"{', '.join(map(str, refuted['rung']))}, against the {row['at_target'] / 1e3:,.0f}k "
                               f"at the target of a trend through {len(full)} easier rungs")
                row.update(exponent=math.nan, at_target=math.nan)
            elif target > full["difficulty"].max():
                row["note"] = f"extrapolated from {len(full)} rungs"
        else:
            row["note"] = f"no trend: {len(full)} rung(s) where every run reached {level:g}"
        rows.append(row)
    return pd.DataFrame(rows, columns=["name", "d_state", "rungs_used", "exponent", "at_target", "note"])


def _examples(row: pd.Series, level: float) -> str:
    key = f"{level:g}"
    if not math.isfinite(row[f"median_{key}"]):
        return f"never ({row[f'reached_{key}']}, budget {row['budget'] / 1e3:,.0f}k)"
    text = f"{row[f'median_{key}'] / 1e3:,.0f}k"
    if row[f"min_{key}"] != row[f"max_{key}"]:
        text += f" [{row[f'min_{key}'] / 1e3:,.0f}k-{row[f'max_{key}'] / 1e3:,.0f}k]"
    got, runs = row[f"reached_{key}"].split("/")
    return text + ("" if got == runs else f" ({got}/{runs} runs)")


def _model(row: pd.Series, label) -> str:
    """The model's label, with its state size where an SSM's differs from the default 16."""
    return label(row["name"]) + (f" state {row['d_state']}" if row["name"] in ("mamba", "mamba2") and row["d_state"] != 16
                                 else "")


def ladder_points(ladder: pd.DataFrame, levels=LEVELS, label=str) -> pd.DataFrame:
    """The ladder's curves as numbers, for `dvc plots`: one row per (model, rung), the
    median examples to each level, left empty where no run reached it."""
    points = pd.DataFrame({"model": [_model(r, label) for _, r in ladder.iterrows()],
                           "rung": ladder["rung"], "difficulty": ladder["difficulty"]})
    for level in levels:
        examples = ladder[f"median_{level:g}"].astype(float)
        points[f"examples to {level:.0%}"] = examples.where(np.isfinite(examples))
    return points


def ladder_summary(ladder: pd.DataFrame, trends: dict[float, pd.DataFrame], label=str) -> pd.DataFrame:
    """The ladder as a table: one row per (model, rung), examples to each level (median
    [min-max] over the runs that reached it, "never" with the budget), and per model the
    trend's exponent and its value at the target, for each level in `trends`."""
    rows = []
    for _, r in ladder.iterrows():
        row = {"model": _model(r, label), "rung": r["rung"], "difficulty": r["difficulty"], "lr": lr_text(r["lr"]),
               "runs": r["runs"]}
        for level, trend in trends.items():
            row[f"examples to {level:.0%}"] = _examples(r, level)
            t = trend[(trend["name"] == r["name"]) & (trend["d_state"] == r["d_state"])]
            fitted = not t.empty and math.isfinite(t["exponent"].iloc[0])
            row[f"trend exponent ({level:.0%})"] = f"{t['exponent'].iloc[0]:.2f}" if fitted else "-"
            row[f"trend at target ({level:.0%})"] = f"{t['at_target'].iloc[0] / 1e3:,.0f}k" if fitted else (
                t["note"].iloc[0] if not t.empty else "-")
        rows.append(row)
    return pd.DataFrame(rows)
