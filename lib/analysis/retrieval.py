"""Paper B's retrieval results as numbers: the runs' records (validation curves and the
tests of lib.training.final_tests) reduced to the tables and choices that B's figures
(lib.plots.retrieval), claims (lib.claims.paper_b_ngram) and ladders (lib.analysis.ladder)
share. No drawing here.

A run record is data/results/<profile>/<experiment>/runs/<id>.json (lib.sweeps.runner.record):
labels (name, train.lr, d_state...), seed, params_non_embedding, final metrics, steps,
early_stopped, eval_curve [{step, examples, exact_match, token_acc, loss}], train_loss
(100 points), tests {extrapolation: {length: exact match}, duplicates: {s: {error, preference}}}.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import results_dir
from ..results import load_results, load_runs, read_machine

FAMILY_LABELS = {
    "transformer": "Transformer (RoPE)", "transformer_nope": "Transformer (NoPE)",
    "mamba": "Mamba", "mamba2": "Mamba2",
    "hybridI_1m": "HybridI M/T 1/1", "hybridI_2m": "HybridI M/T 2/1", "hybridI_3m": "HybridI M/T 3/1",
    "hybridI_4m": "HybridI M/T 4/1",
    "hybridI_1m2": "HybridI M2/T 1/1", "hybridI_2m2": "HybridI M2/T 2/1", "hybridI_3m2": "HybridI M2/T 3/1",
    "hybridI_4m2": "HybridI M2/T 4/1",
    "hybrid2s": "Hybrid2S M‖T", "hybrid2s_m2": "Hybrid2S M2‖T",
    "hybrid2sr": "Hybrid2SR M‖T", "hybrid2sr_m2": "Hybrid2SR M2‖T",
}


def runs_table(records: list[dict]) -> pd.DataFrame:
    """One row per run: labels, seed, lr, final metrics, steps and the record itself."""
    rows = [{**r["labels"], "name": r["labels"]["name"], "seed": r["seed"], "lr": r["lr"],
             "params": r["params_non_embedding"], **r["final"], "steps": r["steps"],
             "early_stopped": r["early_stopped"], "record": r} for r in records]
    return pd.DataFrame(rows)


def best_lr(table: pd.DataFrame, by: tuple[str, ...] = ("name",), threshold: float | None = None) -> pd.DataFrame:
    """INFERRED (paper B plots one curve per model from 3 seeds x 3 learning rates and does
    not say how): per model, the runs of the learning rate whose seeds reach the highest
    mean final exact match; ties go to the smaller learning rate. With `threshold` (the
    early-stop level), a final exact match at or above it counts as the threshold (where a
    run stopped above it is chance), and among learning rates tied on that score the one
    whose runs needed the fewest examples (mean) wins, then the smaller one.

    The rates are compared on the seeds that every rate of the model has run (all its seeds
    if none is common): a campaign trains the further seeds at the rate that learned first,
    and a mean over three seeds against one seed's result would decide by seed luck. The
    chosen rate keeps all its seeds."""
    by = [c for c in by if c in table.columns]
    t = table.assign(_score=table["exact_match"].astype(float))
    if threshold is not None:
        t["_score"] = t["_score"].clip(upper=threshold)
    if "seed" in t.columns:
        keys = [tuple(None if pd.isna(v) else v for v in row) for row in t[by].itertuples(index=False)]
        seeds: dict[tuple, dict[float, set]] = {}
        for key, lr, seed in zip(keys, t["lr"], t["seed"]):
            seeds.setdefault(key, {}).setdefault(lr, set()).add(seed)
        common = {key: set.intersection(*rates.values()) for key, rates in seeds.items()}
        t = t[[not common[key] or seed in common[key] for key, seed in zip(keys, t["seed"])]]
    score = t.groupby(by + ["lr"]).agg(_score=("_score", "mean"), _examples=("examples", "mean")).reset_index()
    score["_score"] = score["_score"].round(6)
    keys, ascending = ["_score", "lr"], [False, True]
    if threshold is not None:
        keys, ascending = ["_score", "_examples", "lr"], [False, True, True]
    score = score.sort_values(by + keys, ascending=[True] * len(by) + ascending)
    keep = score.groupby(by).head(1)[by + ["lr"]]
    return table.merge(keep, on=by + ["lr"])


EARLY_STOP = 0.99  # the n-gram runs' early-stop threshold (experiments.yaml train.early_stop)
TRAIN_MAX_LEN = 100  # n-gram training lengths are U{50..100}

# model orders of the figures and tables
HYBRID_M = [f"hybridI_{n}m" for n in (1, 2, 3, 4)]
HYBRID_M2 = [f"hybridI_{n}m2" for n in (1, 2, 3, 4)]
FIG3A = ["transformer", "transformer_nope", "mamba", "mamba2", "hybridI_1m", "hybridI_1m2", "hybrid2s",
         "hybrid2s_m2"]


def note(message: str) -> None:
    """A missing series or test: said, not fatal (every profile must render)."""
    print(f"note: {message}")


def note_missing(where: str, what: str, names: list[str]) -> None:
    if names:
        note(f"{where}: no {what} of {', '.join(names)}")


def merge_provenance(*provs: dict) -> dict:
    """lib.provenance.combine, naming only the devices of experiments that have runs."""
    from ..provenance import combine, machines

    out = combine(*provs)
    trained = [p for p in provs if p.get("runs_finished", p.get("runs", 1))]
    if trained:
        out["device"] = machines(trained)
    return out


def lr_text(lr: float) -> str:
    """3e-4, not 0.0003: how the figures name a learning rate."""
    mant, exp = f"{lr:.0e}".split("e")
    return f"{mant}e{int(exp)}"


def label(name: str, d_state: int | None = None) -> str:
    text = FAMILY_LABELS.get(name, name)
    return f"{text}, d_state {d_state}" if d_state is not None else text


def _provenance_from_records(profile: str, experiment: str, records: list[dict]) -> dict:
    """A provenance for runs whose experiment has no provenance.json yet (a sweep cut short),
    from their machine facts (lib.results.read_machine: sidecar or old inline record); the
    run counts are load_experiment's."""
    from ..provenance import git_commit

    machine = [read_machine(results_dir(profile, experiment), r) for r in records]
    wall = float(sum(m.get("wall_s", 0.0) for m in machine))
    devices = sorted({m["device"] for m in machine if "device" in m})
    return {"profile": profile, "device": ", ".join(devices) or "no runs",
            "commit": git_commit(), "wall_s": wall, "train_wall_s": wall,
            "run_commits": sorted({m.get("commit", "unrecorded") for m in machine})}


def load_experiment(profile: str, experiment: str, current_only: bool = True) -> tuple[pd.DataFrame, dict]:
    """The finished runs of an experiment as of experiments.yaml now, one row each (runs_table,
    plus d_state and format), and the experiment's provenance (provenance.json, written by
    the sweep; assembled from the run records when the sweep has not written it). Records
    of other settings left in runs/ (a run is keyed by its settings) are skipped unless
    `current_only` is False."""
    from ..config import expand_runs, experiment_spec

    planned = {r.id: r.labels for r in expand_runs(experiment_spec(experiment, profile))}
    records = load_runs(profile, experiment)
    current = [r for r in records if r["id"] in planned or not current_only]
    if len(current) < len(records):
        note(f"{experiment}: {len(records) - len(current)} run records of other settings skipped")
    if len(current) < len(planned):
        note(f"{experiment}: {len(current)} of {len(planned)} runs finished at the {profile} profile")
    folder = results_dir(profile, experiment)
    if (folder / "provenance.json").exists() and (folder / "results.parquet").exists():
        prov = load_results(folder)[1]
    elif (folder / "provenance.json").exists():
        prov = json.loads((folder / "provenance.json").read_text())
    else:
        prov = _provenance_from_records(profile, experiment, current)
    # the run counts as of experiments.yaml now, whatever the provenance's source: a sweep's
    # provenance.json counts the grid it ran under, which a grid grown since (another seed,
    # say) would make the footers understate
    prov = {**prov, "runs": len(planned), "runs_finished": len(current)}
    table = runs_table(current)
    if table.empty:
        table = pd.DataFrame(columns=["name", "seed", "lr", "params", "exact_match", "examples", "steps",
                                      "early_stopped", "record"])
    table["d_state"] = [int(r["run"]["model"].get("d_state", 16)) for r in table["record"]]
    table["format"] = ["prefix" if r["run"]["task"].get("prefix") else "suffix" for r in table["record"]]
    # the ladder's rung as experiments.yaml names it now (records written before the axis existed lack it)
    table["rung"] = [planned.get(r["id"], r["labels"]).get("rung") for r in table["record"]]
    table["experiment"] = experiment
    table["profile"] = profile  # where the runs' snapshot files are
    return table, prov


def rung_difficulty(experiment: str, profile: str) -> dict[str, float]:
    """{rung: its difficulty} in ladder order (easiest first): the longest training length
    of an n-gram rung, the number of symbols of a position rung."""
    from ..config import expand_runs, experiment_spec

    out = {}
    for r in expand_runs(experiment_spec(experiment, profile)):
        rung = r.labels.get("rung")
        if rung is not None and rung not in out:
            out[rung] = float(r.task.get("max_len", r.task.get("num_symbols", 0)))
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def drawn_rung(table: pd.DataFrame | dict[str, pd.DataFrame], order: list[str],
               threshold: float = EARLY_STOP) -> str | None:
    """The rung the figures draw (INFERRED, issue 21): the hardest one where some model's
    runs at its best learning rate all reached `threshold` and every model that ran on an
    easier rung ran too (a figure never loses a family by moving up while a campaign is
    partway through a rung); where none qualifies, the hardest rung trained (the paper's
    setting when it was). None without a rung axis. `table` may be a dict of the tables
    that a notebook's figures draw side by side ({"suffix": ..., "prefix": ...}): a model is
    then its table and its name, so that no panel is left empty because one experiment has
    not reached the rung another has."""
    if isinstance(table, dict):
        parts = [t.assign(name=f"{key}:" + t["name"].astype(str)) for key, t in table.items()
                 if not t.empty and "name" in t]
        table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if table.empty or "rung" not in table or table["rung"].isna().all():
        return None
    # a model is its name and state size; a table without sizes counts as one size (-1), never
    # as NaN, which grouping would drop
    table = table.assign(d_state=table["d_state"].fillna(-1) if "d_state" in table else -1)
    trained = [r for r in order if r in set(table["rung"])]
    ids = table["name"].astype(str) + "/" + table["d_state"].astype(str)
    models = {r: set(ids[table["rung"] == r]) for r in trained}
    for i in range(len(trained) - 1, -1, -1):
        rung = trained[i]
        if any(not models[easier] <= models[rung] for easier in trained[:i]):
            continue
        kept = best_lr(table[table["rung"] == rung], by=("name", "d_state"), threshold=threshold)
        reached = kept.assign(ok=kept["exact_match"].astype(float) >= threshold).groupby(["name", "d_state"])["ok"].all()
        if reached.any():
            return rung
    return trained[-1] if trained else None


def at_rung(table: pd.DataFrame, rung: str | None) -> pd.DataFrame:
    """The runs of one rung (all runs when there is no rung axis)."""
    if rung is None or table.empty or "rung" not in table:
        return table
    return table[table["rung"] == rung].reset_index(drop=True)


def describe(experiment: str, profile: str) -> str:
    """A B experiment's settings at a profile, in a few lines."""
    from ..config import expand_runs, experiment_spec

    s = experiment_spec(experiment, profile)
    t, m, g = s["train"], s["model"], dict(s["grid"])
    lrs = g.pop("train.lr", [t.get("lr")])
    lines = [f"{experiment}: {s.get('title', '')} ({len(expand_runs(s))} runs)",
             f"  task {s['task']}",
             f"  model scale: width {m.get('d_model', 1024)}, {m.get('heads', 16)} heads, "
             f"depth x{m.get('depth', 1.0)} of Table 1",
             f"  grid {g}",
             f"  {s['seeds']} seeds x learning rates {lrs}; {t['steps']:,} steps x batch {t['batch_size']} "
             f"= {t['steps'] * t['batch_size']:,} examples at most; {t['schedule']} schedule, warm-up "
             f"{t['warmup']}, weight decay {t['weight_decay']}",
             f"  validation every {t['eval_every']} steps on {s['eval']['n']:,} sequences of L = "
             f"{s['task'].get('max_len', s['task'].get('num_symbols'))}; "
             f"stop at {t['early_stop']} {t['early_stop_metric']}"]
    for name, test in (s.get("tests") or {}).items():
        what = test.get("lengths") or test.get("segments")
        lines.append(f"  test {name}: {what}, {test['n']:,} examples each")
    return "\n".join(lines)


def choose_runs(table: pd.DataFrame, threshold: float | None = None) -> pd.DataFrame:
    """The runs drawn: best_lr per model (name and d_state), with the runs' early-stop
    threshold (unless `threshold` is given)."""
    if table.empty:
        return table
    if threshold is None:
        threshold = table["record"].iloc[0]["run"]["train"].get("early_stop")
    return best_lr(table, by=("name", "d_state"), threshold=threshold)


# --------------------------------------------------------------------------- curves

def held_curves(rows: pd.DataFrame, grid: np.ndarray, metric: str = "exact_match") -> np.ndarray:
    """[runs, grid] validation `metric` of each run at each number of examples: its last
    evaluation at or before that point (NaN before its first), so a run that stopped
    early stays at its last value up to the end of the grid. (The claims interpolate
    instead, mean_curve, to place a threshold crossing between evaluations.)"""
    out = np.full((len(rows), len(grid)), np.nan)
    for i, rec in enumerate(rows["record"]):
        xs = np.array([p["examples"] for p in rec["eval_curve"]], dtype=float)
        ys = np.array([p[metric] for p in rec["eval_curve"]], dtype=float)
        if not len(xs):
            continue
        idx = np.searchsorted(xs, grid, side="right") - 1
        out[i] = np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan)
    return out


def curve_grid(tables: list[pd.DataFrame]) -> np.ndarray:
    """Every evaluation point of the runs, up to the longest run's last one."""
    xs = {p["examples"] for t in tables if not t.empty for rec in t["record"] for p in rec["eval_curve"]}
    return np.array(sorted(xs), dtype=float)


def examples_to(table: pd.DataFrame, level: float = EARLY_STOP) -> pd.DataFrame:
    """Per model: runs, their learning rate, how many reached `level` validation exact match,
    the examples they needed (mean, min, max over those that did) and the final exact match."""
    rows = []
    for (name, d_state), g in table.groupby(["name", "d_state"], sort=False):
        needed = []
        for rec in g["record"]:
            hit = [p["examples"] for p in rec["eval_curve"] if p["exact_match"] >= level]
            needed.append(hit[0] if hit else None)
        got = [x for x in needed if x is not None]
        rows.append({"model": label(name), "d_state": int(d_state), "lr": g["lr"].iloc[0], "runs": len(g),
                     f"reached {level}": len(got),
                     "examples (mean)": round(float(np.mean(got))) if got else None,
                     "examples (min)": min(got) if got else None, "examples (max)": max(got) if got else None,
                     "final exact match": round(float(g["exact_match"].mean()), 3)})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for col in ("examples (mean)", "examples (min)", "examples (max)"):
        out[col] = out[col].astype("Int64")  # blank where no run got there
    key = {label(n): i for i, n in enumerate(dict.fromkeys(FIG3A + HYBRID_M + HYBRID_M2))}
    return out.sort_values(["model", "d_state"], key=lambda c: c.map(key) if c.name == "model" else c
                           ).reset_index(drop=True)


# --------------------------------------------------------------------------- extrapolation and duplicated queries

def extrapolation_long(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run and test length: greedy exact match (tests.extrapolation)."""
    rows = [{"name": n, "d_state": d, "seed": s, "length": int(L), "exact_match": v}
            for n, d, s, rec in zip(table.get("name", []), table.get("d_state", []), table.get("seed", []),
                                     table.get("record", []))
            for L, v in (rec.get("tests") or {}).get("extrapolation", {}).items()]
    return pd.DataFrame(rows, columns=["name", "d_state", "seed", "length", "exact_match"])


def _wide_by_model(tables: dict[str, pd.DataFrame], names: list[str], long_of, column: str, value: str,
                   prefix: str) -> pd.DataFrame:
    """Mean `value` over seeds, one row per model and format (in `names` order), one column
    per value of `column` (headed `prefix`<value>)."""
    parts = []
    for fmt, table in tables.items():
        long = long_of(table)
        long = long[long["name"].isin(names)]
        if long.empty:
            continue
        w = long.groupby(["name", column])[value].mean().unstack(column).round(3)
        w.columns = [f"{prefix}{c}" for c in w.columns]
        w = w.reset_index()
        w.insert(1, "format", fmt)
        parts.append(w)
    if not parts:
        return pd.DataFrame(columns=["model", "format"])
    out = pd.concat(parts, ignore_index=True)
    out["order"] = out["name"].map({n: i for i, n in enumerate(names)})
    out["fmt"] = out["format"].map({f: i for i, f in enumerate(tables)})
    out = out.sort_values(["order", "fmt"], kind="stable").drop(columns=["order", "fmt"])
    out.insert(0, "model", out.pop("name").map(label))
    return out.reset_index(drop=True)


def extrapolation_table(tables: dict[str, pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Mean greedy exact match over seeds, one row per model and format, one column per length."""
    return _wide_by_model(tables, names, extrapolation_long, "length", "exact_match", "L=")


def duplicates_long(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run and segment count s: error rate and per-segment preference."""
    rows = [{"name": n, "seed": s, "segments": int(k), "error": v["error"], "preference": v["preference"]}
            for n, s, rec in zip(table.get("name", []), table.get("seed", []), table.get("record", []))
            for k, v in (rec.get("tests") or {}).get("duplicates", {}).items()]
    return pd.DataFrame(rows, columns=["name", "seed", "segments", "error", "preference"])


def preference_matrix(table: pd.DataFrame, name: str) -> tuple[np.ndarray, list[int]]:
    """[s values, 10 segments + missed]: mean share of answers that are segment j's
    continuation (NaN where j > s), and the error rate in the last column."""
    long = duplicates_long(table)
    part = long[long["name"] == name]
    segs = sorted(part["segments"].unique())
    width = max(segs + [10])
    out = np.full((len(segs), width + 1), np.nan)
    for i, s in enumerate(segs):
        rows = part[part["segments"] == s]
        out[i, :s] = np.mean(np.array(rows["preference"].tolist(), dtype=float), 0)
        out[i, -1] = rows["error"].mean()
    return out, segs


def error_table(tables: dict[str, pd.DataFrame], names: list[str]) -> pd.DataFrame:
    """Mean error rate over seeds, one row per model and format, one column per s."""
    return _wide_by_model(tables, names, duplicates_long, "segments", "error", "s=")


# --------------------------------------------------------------------------- tables

# Table 1 of the paper, non-embedding parameters in millions as printed
TABLE1_M = {("transformer", 16): 151, ("transformer_nope", 16): 151, ("mamba", 16): 160, ("mamba", 32): 162,
            ("mamba", 64): 167, ("mamba2", 16): 152, ("mamba2", 32): 153, ("mamba2", 64): 155,
            ("hybridI_1m", 16): 154, ("hybridI_2m", 16): 155, ("hybridI_3m", 16): 162, ("hybridI_4m", 16): 157,
            ("hybrid2s", 16): 154, ("hybridI_1m2", 16): 151, ("hybridI_2m2", 16): 152, ("hybridI_3m2", 16): 158,
            ("hybridI_4m2", 16): 152, ("hybrid2s_m2", 16): 151}


def _config_row(cfg) -> dict:
    attn = any(n == "attn" or n.startswith("twostream") for n in cfg.layers)
    ssm = any("mamba" in n for n in cfg.layers)
    return {"layers": len(cfg.layers), "dim": cfg.d_model, "heads": cfg.heads if attn else "–",
            "pos": ("RoPE" if cfg.rotary_pct > 0 else "NoPE") if attn else "–",
            "SSM dim": cfg.d_state if ssm else "–",
            "gate α init": 0 if any(n.startswith("twostream") for n in cfg.layers) else "–"}


def model_table(profile: str, experiment: str = "B-ngram") -> pd.DataFrame:
    """B-tab1: every Table 1 model built at the paper's scale (on the meta device: shapes
    only, no memory) and at the profile's scale (experiments.yaml's model settings of
    `experiment`), with non-embedding parameter counts (embedding and untied head excluded,
    as the paper's count_model_parameters)."""
    import torch

    from ..config import experiment_spec, model_config
    from ..models import build_model, paper_b
    from ..tasks import make_task

    spec = experiment_spec(experiment, profile)
    vocab = make_task(**spec["task"]).vocab_size
    rows = []
    for (name, d_state), printed in TABLE1_M.items():
        with torch.device("meta"):
            paper = build_model(paper_b(name, d_state=d_state), vocab)
            small = build_model(model_config({**spec["model"], "name": name, "d_state": d_state}), vocab)
        row = {"model": label(name, d_state if name in ("mamba", "mamba2") else None), **_config_row(paper.cfg),
               "params (M)": round(paper.num_params(non_embedding=True) / 1e6, 2), "Table 1 (M)": printed}
        small_row = _config_row(small.cfg)
        row.update({f"{profile}: layers": small_row["layers"], f"{profile}: dim": small_row["dim"],
                    f"{profile}: heads": small_row["heads"],
                    f"{profile}: params": small.num_params(non_embedding=True)})
        rows.append(row)
    return pd.DataFrame(rows)


TABLE2_PAPER = {  # paper B's Table 2 as stated (spec B.4)
    "training examples (steps x batch)": "20,000,000 (312,500 x 64)", "learning rates": "1e-05, 5e-05, 1e-04",
    "schedule": "cosine", "warm-up": "0.1", "optimizer": "AdamW (0.9, 0.999), eps 1e-08", "weight decay": "0.01",
    "max grad norm": "1.0", "precision": "–", "seeds": "3 (12345, 123456, 1234567)", "runs per model": "9",
    "validation": "10^5 examples", "early stop": "95% (position); 99% (extrapolation runs, code)",
    "extrapolation test": "L = 100..400, 500,000 each (code)", "duplicates test": "s = 2, 3, 4, 10 (L = 100)",
    "model scale": "Table 1 (width 1024, 16 heads)"}


def hyperparameter_table(experiment: str = "B-ngram") -> pd.DataFrame:
    """B-tab2: the n-gram training protocol of every profile (experiments.yaml), beside paper
    B's Table 2."""
    from ..config import PROFILES, expand_runs, experiment_spec
    from ..training import TrainConfig

    defaults = TrainConfig()
    cols = {}
    for profile in PROFILES:
        s = experiment_spec(experiment, profile)
        t = {**dataclasses.asdict(defaults), **s["train"]}
        lrs = s["grid"].get("train.lr", [t["lr"]])
        m = s["model"]
        warm = t["warmup"]
        tests = s.get("tests") or {}
        ex, du = tests.get("extrapolation"), tests.get("duplicates")
        cols[profile] = {
            "training examples (steps x batch)": f"{t['steps'] * t['batch_size']:,} ({t['steps']:,} x {t['batch_size']})",
            "learning rates": ", ".join(f"{lr:.0e}" for lr in lrs),
            "schedule": t["schedule"],
            "warm-up": f"{warm} ({int(warm * t['steps']) if warm < 1 else int(warm):,} steps)",
            "optimizer": f"AdamW {tuple(t['betas'])}, eps {t['eps']:.0e}",
            "weight decay": str(t["weight_decay"]), "max grad norm": str(t["clip"]),
            "precision": t["amp"] or "fp32",
            "seeds": f"{s['seeds']} ({', '.join(str(i) for i in range(s['seeds']))})",
            "runs per model": str(s["seeds"] * len(lrs)),
            "validation": f"every {t['eval_every']} steps ({t['eval_every'] * t['batch_size']:,} examples), "
                          f"{s['eval']['n']:,} examples at L = {s['eval'].get('max_len', 100)}",
            "early stop": f"{t['early_stop']} {t['early_stop_metric']}" if t["early_stop"] else "none",
            "extrapolation test": (f"L = {', '.join(map(str, ex['lengths']))}; {ex['n']:,} each" if ex else "none"),
            "duplicates test": (f"s = {', '.join(map(str, du['segments']))}; {du['n']:,} each (L = 100)"
                                if du else "none"),
            "model scale": f"width {m.get('d_model', 1024)}, {m.get('heads', 16)} heads, depth x{m.get('depth', 1.0)}",
            "runs (B-ngram, -prefix, -state)": ", ".join(
                str(len(expand_runs(experiment_spec(e, profile)))) for e in ("B-ngram", "B-ngram-prefix",
                                                                            "B-ngram-state")),
        }
    out = pd.DataFrame(cols)
    out["paper Table 2"] = pd.Series(TABLE2_PAPER)
    return out.fillna("–").rename_axis("setting").reset_index()


# --------------------------------------------------------------------------- data efficiency
# (the claims' measure, lib.claims.paper_b_ngram and paper_b_position, and the ladders')

LEVEL = 0.95          # "near-perfect accuracy (>= 95%)": the data-efficiency threshold of Fig 3


@dataclass(frozen=True)
class Efficiency:
    examples: float  # training examples at which the mean exact match first reaches LEVEL (inf: never)
    auc: float       # mean exact match over the training budget (area under the curve / budget)
    best: float      # highest mean exact match on the curve

    def text(self) -> str:
        if self.examples < math.inf:
            return f"{self.examples / 1e3:,.0f}k (AUC {self.auc:.3f})"
        return f"never (best {self.best:.3f}, AUC {self.auc:.3f})"


def _run_curve(rec: dict) -> tuple[np.ndarray, np.ndarray, float]:
    points = [(0.0, 0.0)] + [(float(e["examples"]), float(e["exact_match"])) for e in rec["eval_curve"]]
    final = rec.get("final") or {}
    if "examples" in final and "exact_match" in final and float(final["examples"]) > points[-1][0]:
        points.append((float(final["examples"]), float(final["exact_match"])))
    train = (rec.get("run") or {}).get("train") or {}
    budget = float(train["steps"] * train["batch_size"]) if "steps" in train and "batch_size" in train \
        else points[-1][0]
    x, y = map(np.asarray, zip(*points))
    return x, y, max(budget, x[-1])


def mean_curve(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Mean exact match over seeds against training examples, from 0 (counted as 0) to the
    training budget; a run that stopped early keeps its last value. Linear between
    evaluations, so that a crossing of the 0.95 level lands between them; the figures'
    curves (held_curves) hold each value until the next evaluation
    instead, drawing only what was measured. The two can differ between evaluations."""
    curves = [_run_curve(r) for r in records]
    budget = max(b for _, _, b in curves)
    grid = np.unique(np.concatenate([x for x, _, _ in curves] + [[budget]]))
    return grid, np.mean([np.interp(grid, x, y) for x, y, _ in curves], axis=0)


def efficiency(records: list[dict], level: float = LEVEL) -> Efficiency:
    x, y = mean_curve(records)
    hit = np.nonzero(y >= level)[0]
    if len(hit) == 0:
        examples = math.inf
    elif hit[0] == 0:
        examples = float(x[0])
    else:
        i = hit[0]
        examples = float(x[i - 1] + (level - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))
    auc = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / x[-1]) if x[-1] > 0 else 0.0
    return Efficiency(examples, auc, float(y.max()))
