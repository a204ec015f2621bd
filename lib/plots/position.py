"""Paper B's position retrieval figures (spec B.5: Figs 7-11, 13, 17-22): the drawing only;
the numbers, and the choices behind them, are lib.analysis.position's.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..analysis.position import (FRACTIONS, KS, THRESHOLD, chance_loss, cosine_matrix, gates, knn_index_distance,
                                 loss_points, pca, position_accuracy, random_knn_distance, representatives, snapshots,
                                 symbols_of)
from ..analysis.retrieval import HYBRID_M2, choose_runs, curve_grid, label, lr_text, note, note_missing
from .retrieval import _curve_axes, _empty, _legend, _pick, examples_scale, lr_note, plot_curve, style

FIG8 = ["transformer", "mamba2", "hybridI_1m2", "hybrid2s_m2"]
FIG9 = ["transformer", "transformer_nope", "mamba2", "hybridI_1m2"]
FIG11 = ["transformer", "hybridI_1m2"]
FIG17 = ["transformer", "mamba", "mamba2", "hybridI_1m", "hybridI_1m2", "hybrid2s", "hybrid2s_m2"]
FIG18 = ["hybrid2s", "hybrid2s_m2", "hybrid2sr", "hybrid2sr_m2"]
FIG19 = ["hybrid2s", "hybrid2s_m2", "hybrid2sr", "hybrid2sr_m2"]
FIG20 = HYBRID_M2 + ["hybrid2s_m2"]
FIG22 = ["transformer", "transformer_nope", "mamba2", "hybrid2s_m2"]
POSITION_CMAP = sns.color_palette("rocket_r", as_cmap=True)  # warm = early positions, as the paper


# --------------------------------------------------------------------------- figures

def data_efficiency_figure(position: pd.DataFrame, state: pd.DataFrame, suptitle: str = ""):
    """B-fig7: as B-fig3, from the position runs (threshold 0.95, L = 200), with the chance
    level 1/(number of symbols): there, unlike n-gram retrieval, a guess scores above 0."""
    from .retrieval import data_efficiency_figure as fig3
    symbols = [r["run"]["task"]["num_symbols"] for t in (position, state) if not t.empty for r in t["record"]]
    return fig3(position, state, suptitle, threshold=THRESHOLD, length=max(symbols, default=200), fig_id="B-fig7",
                chance=1 / max(symbols) if symbols else None)


def _panels(rows: int, cols: int, w: float, h: float, ratios=None):
    """A figure of rows x cols panels and, at the right, one colour-bar axis spanning them
    (a plain grid cell, so tight_layout can place it)."""
    fig = plt.figure(figsize=(w * cols + 1, h * rows))
    gs = fig.add_gridspec(rows, cols + 1, width_ratios=list(ratios or [1] * cols) + [0.05])
    axes = np.array([[fig.add_subplot(gs[r, c]) for c in range(cols)] for r in range(rows)])
    return fig, axes, fig.add_subplot(gs[:, -1])


def _colorbar(fig, mappable, cax, text: str):
    if mappable is None:
        cax.set_visible(False)
    else:
        fig.colorbar(mappable, cax=cax, label=text)


def _heatmap(ax, rec: dict | None, title: str):
    if rec is None:
        _empty(ax)
        ax.set_title(title)
        return None
    steps, examples, acc = position_accuracy(rec)
    if not len(steps):
        _empty(ax, "no per-position record")
        ax.set_title(title)
        return None
    scale, xlabel = examples_scale(examples.max())
    half = (examples[1] - examples[0]) / 2 if len(examples) > 1 else examples[0] / 2
    im = ax.imshow(acc.T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest",
                   extent=[(examples[0] - half) / scale, (examples[-1] + half) / scale, 0.5, acc.shape[1] + 0.5])
    ax.set(title=f"{title}\n(seed {rec['seed']}, lr {lr_text(rec['lr'])}, {rec['steps']:,} steps)", xlabel=xlabel,
           ylabel="target position")
    return im


def position_heatmaps_figure(table: pd.DataFrame, names: list[str], suptitle: str = "", fig_id: str = "B-fig8"):
    """B-fig8 / B-fig13: validation exact match per target position (rows) over training
    (columns), one panel per model."""
    reps = representatives(table)
    note_missing(fig_id, "runs", [n for n in names if n not in reps])
    fig, axes, cax = _panels(1, len(names), 4.6, 4.6)
    im = None
    for ax, name in zip(axes[0], names):
        im = _heatmap(ax, reps.get(name), label(name)) or im
    _colorbar(fig, im, cax, "exact match")
    fig.suptitle(suptitle)
    return fig


def loss_figure(table: pd.DataFrame, names: list[str] = FIG17, suptitle: str = ""):
    """B-fig17: training loss against examples, every run of each model's chosen learning
    rate, with the chance level log(S)/2 (2.65 at the paper's 200 symbols)."""
    chosen = choose_runs(table[table["d_state"] == 16] if not table.empty else table, threshold=THRESHOLD)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    x_max = max((r["steps"] * r["run"]["train"]["batch_size"] for r in chosen["record"]), default=1) \
        if not chosen.empty else 1
    scale, xlabel = examples_scale(x_max)
    missing = []
    for name in names:
        runs = _pick(chosen, name)
        if runs.empty:
            missing.append(name)
            continue
        for k, rec in enumerate(runs.sort_values("seed")["record"]):
            x, y = loss_points(rec)
            ax.plot(x / scale, y, lw=1.4, alpha=0.85, label=f"{label(name)}{lr_note(runs)} ({len(runs)})" if k == 0 else None,
                    **style(name))
    note_missing("B-fig17", "runs", missing)
    S = symbols_of(table)
    ax.axhline(chance_loss(S), color="0.5", lw=1.2, label=f"log({S})/2 = {chance_loss(S):.2f}")
    ax.set(xlabel=xlabel, ylabel="training loss", title="position retrieval: training loss")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(ls="--", alpha=0.4)
    _legend(ax)
    fig.suptitle(suptitle)
    return fig


def gates_figure(table: pd.DataFrame, names: list[str] = FIG18, suptitle: str = ""):
    """B-fig18: each two-stream hybrid's gate magnitude |tanh(beta)| per layer over training."""
    reps = representatives(table)
    note_missing("B-fig18", "runs", [n for n in names if n not in reps])
    fig, axes = plt.subplots(1, len(names), figsize=(4.4 * len(names), 4.4), squeeze=False, sharey=True)
    for ax, name in zip(axes[0], names):
        x, g = gates(reps[name]) if name in reps else (np.zeros(0), np.zeros((0, 0)))
        if not len(x):
            _empty(ax)
            ax.set_title(label(name))
            continue
        scale, xlabel = examples_scale(x.max())
        colors = plt.cm.viridis(np.linspace(0, 0.9, g.shape[1]))
        for layer in range(g.shape[1]):
            ax.plot(x / scale, g[:, layer], color=colors[layer], lw=1.6, label=f"layer {layer + 1}")
        ax.set(title=f"{label(name)} (seed {reps[name]['seed']}, lr {lr_text(reps[name]['lr'])})", xlabel=xlabel,
               ylim=(-0.02, 1.02))
        ax.grid(ls="--", alpha=0.4)
        ax.legend(fontsize=7, ncol=2, frameon=False)
    axes[0][0].set_ylabel("|tanh(gate)|")
    fig.suptitle(suptitle)
    return fig


def reversed_gating_figure(table: pd.DataFrame, suptitle: str = ""):
    """B-fig19: (left) data efficiency of Hybrid2S and Hybrid2SR (both backbones) with the
    Transformer (RoPE) dashed violet; (right) per-position accuracy of each Hybrid2SR."""
    fig, axes, cax = _panels(1, 3, 5.3, 5, ratios=[1.3, 1, 1])
    axes = axes[0]
    grid = curve_grid([table])
    scale, xlabel = examples_scale(grid.max() if len(grid) else 0)
    missing = [n for n in FIG19 if not plot_curve(axes[0], _pick(choose_runs(table, THRESHOLD), n), grid, scale,
                                                  label(n), **style(n))]
    if not plot_curve(axes[0], _pick(choose_runs(table, THRESHOLD), "transformer"), grid, scale,
                      label("transformer"), color="tab:purple", ls="--"):
        missing.append("transformer")
    note_missing("B-fig19", "runs", missing)
    _curve_axes(axes[0], "Hybrid2S vs Hybrid2SR", xlabel, THRESHOLD, symbols_of(table))
    reps = representatives(table)
    im = None
    for ax, name in zip(axes[1:], ("hybrid2sr", "hybrid2sr_m2")):
        im = _heatmap(ax, reps.get(name), label(name)) or im
    _colorbar(fig, im, cax, "exact match")
    fig.suptitle(suptitle)
    return fig


def _snapshot_grid(table, profile, names, rows, draw, fig_id, suptitle, bar: str, size=3.2):
    """A grid of per-run embedding pictures: `rows` is a list of (row title, fraction, k)."""
    reps = representatives(table)
    note_missing(fig_id, "runs", [n for n in names if n not in reps])
    fig, axes, cax = _panels(len(rows), len(names), size, size)
    mappable = None
    for c, name in enumerate(names):
        snaps = snapshots(reps[name], profile) if name in reps else {}
        for r, (title, frac, k) in enumerate(rows):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            if frac not in snaps:
                _empty(ax, "no snapshot")
            else:
                step, x = snaps[frac]
                mappable = draw(ax, x, k) or mappable
                ax.text(0.02, 0.02, f"step {step:,}", transform=ax.transAxes, fontsize=7, color="0.3")
            if r == 0:
                ax.set_title(f"{label(name)}, lr {lr_text(reps[name]['lr'])}" if name in reps else label(name),
                             fontsize=10)
            if c == 0:
                ax.set_ylabel(title)
    _colorbar(fig, mappable, cax, bar)
    fig.suptitle(suptitle)
    return fig


def _draw_pca2d(ax, x, k):
    y = pca(x, 2)
    return ax.scatter(y[:, 0], y[:, 1], c=np.arange(1, len(x) + 1), cmap=POSITION_CMAP, s=9, lw=0)


def _draw_cosine(ax, x, k):
    return ax.imshow(cosine_matrix(pca(x, k)), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")


def pca_figure(table: pd.DataFrame, profile: str, names: list[str] = FIG9, suptitle: str = "",
               fig_id: str = "B-fig9"):
    """B-fig9 / B-fig20: the position tokens' input embeddings projected on their first two
    principal components, at 25/50/75/100% of each run; colour = position (warm = early)."""
    rows = [(f"{float(f):.0%} of training", f, 2) for f in FRACTIONS]
    return _snapshot_grid(table, profile, names, rows, _draw_pca2d, fig_id, suptitle, "position")


def cosine_figure(table: pd.DataFrame, profile: str, names: list[str], rows: list[tuple[str, str, int | None]],
                  suptitle: str = "", fig_id: str = "B-fig10"):
    """B-fig10 / B-fig21 / B-fig22: cosine similarity of the 200 position embeddings, each
    row a (title, snapshot fraction, PCA size or None) (a PCA size at or above the width
    only centres the rows)."""
    return _snapshot_grid(table, profile, names, rows, _draw_cosine, fig_id, suptitle, "cosine similarity",
                          size=3.0)


def over_training_rows(k: int = 32) -> list[tuple[str, str, int]]:
    """Fig 10's rows: PCA to k at 25/50/75/100% of training."""
    return [(f"{float(f):.0%}, PCA {k}", f, k) for f in FRACTIONS]


def pca_size_rows(sizes=(32, 64, 128, None)) -> list[tuple[str, str, int | None]]:
    """Figs 21/22's rows: the final snapshot after PCA to each size, then unreduced."""
    return [("no reduction" if k is None else f"PCA {k}", "1", k) for k in sizes]


def knn_figure(table: pd.DataFrame, profile: str, names: list[str] = FIG11, suptitle: str = ""):
    """B-fig11: mean |i - j| to the K nearest neighbours (cosine) against K, at the final
    snapshot, for the input rows (solid) and, where untied, the output head's rows
    (dotted); the grey line is what unrelated embeddings give."""
    reps = representatives(table)
    note_missing("B-fig11", "runs", [n for n in names if n not in reps])
    fig, ax = plt.subplots(figsize=(7, 5))
    n = None
    for name in names:
        if name not in reps:
            continue
        inp, out = snapshots(reps[name], profile, "input"), snapshots(reps[name], profile, "output")
        if "1" not in inp:
            continue
        n = len(inp["1"][1])
        ks = [k for k in KS if k < n]
        ax.plot(ks, knn_index_distance(inp["1"][1], ks), lw=2, label=f"{label(name)}, input embedding", **style(name))
        if not np.array_equal(inp["1"][1], out["1"][1]):
            ax.plot(ks, knn_index_distance(out["1"][1], ks), lw=2, color=style(name)["color"], ls=":",
                    label=f"{label(name)}, output head")
    if n is None:
        _empty(ax, "no snapshots")
    else:
        ax.axhline(random_knn_distance(n), color="0.5", lw=1, label=f"unrelated embeddings, (n+1)/3 = "
                                                                     f"{random_knn_distance(n):.0f}")
    ax.set(xlabel="K nearest neighbours (cosine)", ylabel="mean |i - j|", ylim=(0, None),
           title="index distance to the nearest neighbours in embedding space")
    ax.grid(ls="--", alpha=0.4)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle(suptitle)
    return fig


def note_untrained_snapshots(table: pd.DataFrame) -> None:
    """Say when there is nothing to draw for the embedding figures."""
    if table.empty or not any(r.get("snapshot_steps") for r in table["record"]):
        note("B-position: no embedding snapshots (runs trained without snapshot_embeddings)")
