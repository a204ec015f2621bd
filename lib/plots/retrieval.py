"""Paper B's retrieval figures: the drawing of B's n-gram deliverables (spec B.5), data
efficiency (Fig 3), extrapolation (Figs 4, 12) and duplicated queries (Figs 5, 6, 14-16).
Every figure function takes the run tables of lib.analysis.retrieval.load_experiment
(already reduced to best_lr) and returns a Figure; a missing series or test is drawn as far
as it exists and reported by `note`. The numbers come from lib.analysis.retrieval.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..analysis.retrieval import (EARLY_STOP, FIG3A, HYBRID_M, HYBRID_M2, TRAIN_MAX_LEN, curve_grid, duplicates_long,
                                  extrapolation_long, held_curves, label, lr_text, note_missing, preference_matrix)

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


def _empty(ax, text: str = "no runs") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.5")


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


# --------------------------------------------------------------------------- extrapolation

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


# --------------------------------------------------------------------------- duplicated queries

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
