"""Paper B's retrieval results: the runs' records (validation curves and the tests of
lib.training.final_tests) and the choices every B figure shares.

A run record is data/results/<profile>/<experiment>/runs/<id>.json (lib.sweeps.runner.record):
labels (name, train.lr, d_state...), seed, params_non_embedding, final metrics, steps,
early_stopped, eval_curve [{step, examples, exact_match, token_acc, loss}], train_loss
(100 points), tests {extrapolation: {length: exact match}, duplicates: {s: {error, preference}}}.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..config import results_dir

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


def load_runs(profile: str, experiment: str) -> list[dict]:
    """Every finished run record of an experiment (empty if none)."""
    folder = results_dir(profile, experiment) / "runs"
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


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
    whose runs needed the fewest examples (mean) wins, then the smaller one."""
    by = [c for c in by if c in table.columns]
    t = table.assign(_score=table["exact_match"].astype(float))
    if threshold is not None:
        t["_score"] = t["_score"].clip(upper=threshold)
    score = t.groupby(by + ["lr"]).agg(_score=("_score", "mean"), _examples=("examples", "mean")).reset_index()
    score["_score"] = score["_score"].round(6)
    keys, ascending = ["_score", "lr"], [False, True]
    if threshold is not None:
        keys, ascending = ["_score", "_examples", "lr"], [False, True, True]
    score = score.sort_values(by + keys, ascending=[True] * len(by) + ascending)
    keep = score.groupby(by).head(1)[by + ["lr"]]
    return table.merge(keep, on=by + ["lr"])


# =========================================================================== n-gram figures
# Paper B's n-gram deliverables (spec B.5): data efficiency (Fig 3), extrapolation (Figs 4,
# 12), duplicated queries (Figs 5, 6, 14-16), and Tables 1-2. Every figure function takes
# the run tables of load_experiment (already reduced to best_lr) and returns a Figure;
# a missing series or test is drawn as far as it exists and reported by `note`.

EARLY_STOP = 0.99  # the n-gram runs' early-stop threshold (experiments.yaml train.early_stop)
TRAIN_MAX_LEN = 100  # n-gram training lengths are U{50..100}

# One colour per group (Transformer violet, SSM green, HybridI blue, Hybrid2S orange);
# the second variant of a group (NoPE, Mamba2) is dashed.
STYLES = {
    "transformer": ("tab:purple", "-"), "transformer_nope": ("tab:purple", ":"),
    "mamba": ("tab:green", "-"), "mamba2": ("tab:green", "--"),
    "hybridI_1m": ("tab:blue", "-"), "hybridI_1m2": ("tab:blue", "--"),
    "hybrid2s": ("tab:orange", "-"), "hybrid2s_m2": ("tab:orange", "--"),
    "hybrid2sr": ("tab:red", "-"), "hybrid2sr_m2": ("tab:red", "--"),  # reversed gates (position, Fig 19)
}
HYBRID_N_COLORS = {1: "tab:blue", 2: "#8f0da4", 3: "#d8576b", 4: "#f89540"}  # HybridI N Mamba : 1 attention
STATE_COLORS = {16: "#1b5e20", 32: "#43a047", 64: "#9ccc65"}  # SSM state 16 / 32 / 64
for _n, _c in HYBRID_N_COLORS.items():
    STYLES.setdefault(f"hybridI_{_n}m", (_c, "-"))
    STYLES.setdefault(f"hybridI_{_n}m2", (_c, "--"))

SUFFIX_FIG4 = ["transformer", "transformer_nope", "mamba2", "hybridI_1m2", "hybrid2s_m2"]
DUPLICATE_MODELS = ["transformer", "mamba2", "hybridI_1m2", "hybrid2s_m2"]
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


def _empty(ax, text: str = "no runs") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.5")


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


def lr_note(rows: pd.DataFrame) -> str:
    """", lr 3e-4" for the runs of one curve (best_lr leaves one rate per model), so every
    figure says which rate each curve used; empty when there are none or several."""
    lrs = sorted(set(rows["lr"])) if "lr" in getattr(rows, "columns", ()) and len(rows) else []
    return f", lr {lr_text(lrs[0])}" if len(lrs) == 1 else ""


def style(name: str, d_state: int | None = None) -> dict:
    """Line colour and style; with `d_state`, pure SSMs are coloured by their state size."""
    color, ls = STYLES.get(name, ("0.4", "-"))
    if name in ("mamba", "mamba2") and d_state is not None:
        color = STATE_COLORS.get(d_state, color)
    return {"color": color, "ls": ls}


def label(name: str, d_state: int | None = None) -> str:
    text = FAMILY_LABELS.get(name, name)
    return f"{text}, d_state {d_state}" if d_state is not None else text


def _provenance_from_records(profile: str, experiment: str, records: list[dict], planned: int) -> dict:
    """A provenance for runs whose experiment has no provenance.json yet (a sweep cut short),
    from their machine facts (lib.sweeps.runner.read_machine: sidecar or old inline record)."""
    from ..provenance import git_commit
    from ..sweeps.runner import read_machine

    machine = [read_machine(results_dir(profile, experiment), r) for r in records]
    wall = float(sum(m.get("wall_s", 0.0) for m in machine))
    devices = sorted({m["device"] for m in machine if "device" in m})
    return {"profile": profile, "device": ", ".join(devices) or "no runs",
            "commit": git_commit(), "wall_s": wall, "runs": planned,
            "runs_finished": len(records), "train_wall_s": wall,
            "run_commits": sorted({m.get("commit", "unrecorded") for m in machine})}


def load_experiment(profile: str, experiment: str, current_only: bool = True) -> tuple[pd.DataFrame, dict]:
    """The finished runs of an experiment as of experiments.yaml now, one row each (runs_table,
    plus d_state and format), and the experiment's provenance (provenance.json, written by
    the sweep; assembled from the run records when the sweep has not written it). Records
    of other settings left in runs/ (a run is keyed by its settings) are skipped unless
    `current_only` is False."""
    from ..config import expand_runs, experiment_spec
    from ..sweeps.runner import load_results

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
        prov = _provenance_from_records(profile, experiment, current, len(planned))
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


def drawn_rung(table: pd.DataFrame, order: list[str], threshold: float = EARLY_STOP) -> str | None:
    """The rung the figures draw (INFERRED, issue 21): the hardest one where some model's
    runs at its best learning rate all reached `threshold`; where none did, the hardest
    rung trained (the paper's setting when it was). None without a rung axis."""
    if table.empty or "rung" not in table or table["rung"].isna().all():
        return None
    trained = [r for r in order if r in set(table["rung"])]
    for rung in reversed(trained):
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


def _pick(table: pd.DataFrame, name: str, d_state: int = 16) -> pd.DataFrame:
    if table.empty:
        return table
    return table[(table["name"] == name) & (table["d_state"] == d_state)]


# --------------------------------------------------------------------------- curves

def examples_scale(x_max: float) -> tuple[float, str]:
    if x_max >= 2e6:
        return 1e6, "training examples (millions)"
    if x_max >= 2e3:
        return 1e3, "training examples (thousands)"
    return 1.0, "training examples"


def held_curves(rows: pd.DataFrame, grid: np.ndarray, metric: str = "exact_match") -> np.ndarray:
    """[runs, grid] validation `metric` of each run at each number of examples: its last
    evaluation at or before that point (NaN before its first), so a run that stopped
    early stays at its last value up to the end of the grid. (The claims interpolate
    instead, lib.claims_b.mean_curve, to place a threshold crossing between evaluations.)"""
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


def plot_curve(ax, rows: pd.DataFrame, grid: np.ndarray, scale: float, lbl: str, **kw) -> bool:
    """Mean over seeds with a min-max band; False (and nothing drawn) without runs."""
    if rows.empty or not len(grid):
        return False
    ys = held_curves(rows, grid)
    ok = ~np.isnan(ys).all(0)
    with np.errstate(all="ignore"):
        mean, lo, hi = np.nanmean(ys[:, ok], 0), np.nanmin(ys[:, ok], 0), np.nanmax(ys[:, ok], 0)
    x = grid[ok] / scale
    marker = "o" if len(x) <= 30 else None
    ax.plot(x, mean, lw=2, marker=marker, ms=4, label=f"{lbl}{lr_note(rows)} ({len(rows)})", **kw)
    ax.fill_between(x, lo, hi, color=kw.get("color"), alpha=0.15, lw=0)
    return True


def _curve_axes(ax, title: str, xlabel: str, threshold: float | None = EARLY_STOP, length: int = TRAIN_MAX_LEN,
                chance: float | None = None):
    if threshold is not None:
        ax.axhline(threshold, color="0.5", lw=0.8, ls=":")
    if chance is not None:
        ax.axhline(chance, color="0.3", lw=0.9, ls="--", label=f"chance ({chance:.3g})")
    ax.set(title=title, xlabel=xlabel, ylabel=f"validation exact match (L = {length})", ylim=(-0.02, 1.02))
    ax.set_xlim(left=0)
    ax.grid(ls="--", alpha=0.4)
    _legend(ax)


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False,
                  title="(runs)", title_fontsize=7)
    else:
        _empty(ax)


def data_efficiency_figure(ngram: pd.DataFrame, state: pd.DataFrame, suptitle: str = "", *,
                           threshold: float = EARLY_STOP, length: int = TRAIN_MAX_LEN, fig_id: str = "B-fig3",
                           chance: float | None = None):
    """B-fig3 (and B-fig7, from the position runs): (a) the 8 families, (b) SSM state
    16/32/64 with the Transformer (RoPE) dashed violet, (c) HybridI M/T and M2/T 1/1..4/1
    with the pure SSMs in green. State 16 comes from `ngram` (B-ngram), 32 and 64 from
    `state` (B-ngram-state); `threshold` is the dotted line, `length` the validation length,
    `chance` (if given) a dashed line at a uniform guess's exact match."""
    grid = curve_grid([ngram, state])
    scale, xlabel = examples_scale(grid.max() if len(grid) else 0)
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.4), sharex=True, sharey=True)
    a, b, c = axes
    missing = [n for n in FIG3A if not plot_curve(a, _pick(ngram, n), grid, scale, label(n), **style(n))]
    note_missing(f"{fig_id} (a)", "runs", missing)
    missing = [f"{n} (d_state {d})" for n in ("mamba", "mamba2") for d in (16, 32, 64)
               if not plot_curve(b, _pick(ngram if d == 16 else state, n, d), grid, scale, label(n, d),
                                 **style(n, d))]  # coloured by state size
    if not plot_curve(b, _pick(ngram, "transformer"), grid, scale, label("transformer"),
                      color="tab:purple", ls="--"):
        missing.append("transformer")
    note_missing(f"{fig_id} (b)", "runs", missing)
    missing = [n for n in ("mamba", "mamba2", *HYBRID_M, *HYBRID_M2)
               if not plot_curve(c, _pick(ngram, n), grid, scale, label(n), **style(n))]
    note_missing(f"{fig_id} (c)", "runs", missing)
    _curve_axes(a, "(a) data efficiency", xlabel, threshold, length, chance)
    _curve_axes(b, "(b) SSM state dimension", xlabel, threshold, length, chance)
    _curve_axes(c, "(c) HybridI: Mamba layers per attention layer", xlabel, threshold, length, chance)
    fig.suptitle(suptitle)
    return fig


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


# --------------------------------------------------------------------------- extrapolation

def extrapolation_long(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run and test length: greedy exact match (tests.extrapolation)."""
    rows = [{"name": n, "d_state": d, "seed": s, "length": int(L), "exact_match": v}
            for n, d, s, rec in zip(table.get("name", []), table.get("d_state", []), table.get("seed", []),
                                     table.get("record", []))
            for L, v in (rec.get("tests") or {}).get("extrapolation", {}).items()]
    return pd.DataFrame(rows, columns=["name", "d_state", "seed", "length", "exact_match"])


def plot_extrapolation(ax, table: pd.DataFrame, names: list[str], title: str, what: str,
                       train_len: int = TRAIN_MAX_LEN):
    long = extrapolation_long(table)
    note_missing(what, "extrapolation test", [n for n in names if n not in set(long["name"])])
    for name in names:
        part = long[long["name"] == name]
        if part.empty:
            continue
        s = part.groupby("length")["exact_match"].agg(["mean", "min", "max", "size"]).reset_index()
        kw = style(name)
        lr = lr_note(table[table["name"] == name])
        ax.plot(s["length"], s["mean"], marker="o", ms=4, lw=2, label=f"{label(name)}{lr} ({s['size'].max()})",
                **kw)
        ax.fill_between(s["length"], s["min"], s["max"], color=kw["color"], alpha=0.15, lw=0)
    ax.axvline(train_len, color="0.3", lw=1, ls=":")
    ax.text(train_len, 0.02, " longest training\n sequence", fontsize=7.5, color="0.3", va="bottom")
    ax.set(title=title, xlabel="test sequence length L", ylabel="greedy exact match", ylim=(-0.02, 1.02))
    ax.grid(ls="--", alpha=0.4)
    _legend(ax)


def extrapolation_figure(suffix: pd.DataFrame, prefix: pd.DataFrame, names: list[str], titles: tuple[str, str],
                         what: str, suptitle: str = "", train_len: int = TRAIN_MAX_LEN):
    """B-fig4 (b, c) and B-fig12 (a, b): greedy exact match vs test length, suffix then
    prefix; `train_len` is the longest training length (a ladder rung's)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.8), sharey=True)
    plot_extrapolation(axes[0], suffix, names, titles[0], f"{what} suffix", train_len)
    plot_extrapolation(axes[1], prefix, names, titles[1], f"{what} prefix", train_len)
    fig.suptitle(suptitle)
    return fig


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


# --------------------------------------------------------------------------- duplicated queries

def duplicates_long(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run and segment count s: error rate and per-segment preference."""
    rows = [{"name": n, "seed": s, "segments": int(k), "error": v["error"], "preference": v["preference"]}
            for n, s, rec in zip(table.get("name", []), table.get("seed", []), table.get("record", []))
            for k, v in (rec.get("tests") or {}).get("duplicates", {}).items()]
    return pd.DataFrame(rows, columns=["name", "seed", "segments", "error", "preference"])


def plot_error_rates(ax, table: pd.DataFrame, name: str, title: str) -> bool:
    """Error rate per number of duplicated segments s: mean over seeds, min-max whiskers."""
    long = duplicates_long(table)
    part = long[long["name"] == name]
    ax.set(title=title, xlabel="segments with the query (s)", ylim=(0, 1.1))
    ax.grid(axis="y", ls="--", alpha=0.4)
    if part.empty:
        _empty(ax)
        return False
    s = part.groupby("segments")["error"].agg(["mean", "min", "max", "size"]).reset_index()
    x = np.arange(len(s))
    color = style(name)["color"]
    ax.bar(x, s["mean"], color=color, alpha=0.75, width=0.6)
    ax.errorbar(x, s["mean"], yerr=[s["mean"] - s["min"], s["max"] - s["mean"]], fmt="none", ecolor="0.2",
                capsize=3, lw=1)
    for xi, m, top in zip(x, s["mean"], s["max"]):
        ax.text(xi, top + 0.015, f"{m:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, [str(v) for v in s["segments"]])
    runs = s["size"].max()
    ax.set_xlabel(f"segments with the query (s); {runs} run{'s' if runs > 1 else ''}")
    return True


def _lr_of(table: pd.DataFrame, name: str) -> str:
    return lr_note(table[table["name"] == name]) if "name" in getattr(table, "columns", ()) else ""


def error_rates_figure(rows: dict[str, pd.DataFrame], names: list[str], what: str, suptitle: str = ""):
    """B-fig5 / 14 / 15: one panel per model, one row per format (dict key: row title)."""
    fig, axes = plt.subplots(len(rows), len(names), figsize=(3.6 * len(names), 3.6 * len(rows) + 0.6),
                             sharey=True, squeeze=False)
    letters = "abcdefghijklmnop"
    for i, (fmt, table) in enumerate(rows.items()):
        missing = [name for j, name in enumerate(names)
                   if not plot_error_rates(axes[i, j], table, name,
                                           f"({letters[i * len(names) + j]}) {label(name)}, {fmt}"
                                           f"{_lr_of(table, name)}")]
        note_missing(f"{what} {fmt}", "duplicates test", missing)
        axes[i, 0].set_ylabel("error rate (no segment's continuation)")
    fig.suptitle(suptitle)
    return fig


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


def plot_preferences(ax, table: pd.DataFrame, name: str, title: str, cmap: str = "Blues"):
    ax.set_title(title, fontsize=10)
    mat, segs = preference_matrix(table, name)
    if not segs:
        _empty(ax)
        ax.set_xticks([]), ax.set_yticks([])
        return None
    im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if not np.isnan(mat[i, j]):
                ax.text(j, i, f"{100 * mat[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if mat[i, j] > 0.55 else "0.1")
    ax.axvline(mat.shape[1] - 1.5, color="0.3", lw=1)
    ax.set_xticks(range(mat.shape[1]), [str(j + 1) for j in range(mat.shape[1] - 1)] + ["missed"], fontsize=7.5)
    ax.set_yticks(range(len(segs)), [str(s) for s in segs])
    ax.set_xlabel("segment (1 = first in the sequence)", fontsize=8.5)
    ax.set_ylabel("segments s", fontsize=8.5)
    return im


def preference_figure(rows: dict[str, pd.DataFrame], names: list[str], what: str, suptitle: str = ""):
    """B-fig6 / 16: preference heatmaps, one row per format, one column per model; cells
    are the % of test examples answered with segment j's continuation, last column the %
    matching none."""
    fig, axes = plt.subplots(len(rows), len(names) + 1, figsize=(4.4 * len(names) + 0.6, 3.3 * len(rows) + 0.8),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * len(names) + [0.06]})
    im = None
    for i, (fmt, table) in enumerate(rows.items()):
        missing = []
        for j, name in enumerate(names):
            got = plot_preferences(axes[i, j], table, name, f"{label(name)}, {fmt}{_lr_of(table, name)}")
            im = got or im
            if got is None:
                missing.append(name)
        note_missing(f"{what} {fmt}", "duplicates test", missing)
    for i in range(len(rows)):  # the last column holds the colour bar
        if im is not None:
            fig.colorbar(im, cax=axes[i, -1], label="% of answers")
            axes[i, -1].set_yticks([0, 0.25, 0.5, 0.75, 1], ["0", "25", "50", "75", "100"])
        else:
            axes[i, -1].axis("off")
    fig.suptitle(suptitle)
    return fig


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
