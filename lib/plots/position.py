"""Paper B's position retrieval (spec B.2-B.5): what the runs recorded during training,
and the figures and numbers made from it.

A B-position run record (lib.sweeps.runner.record) holds, at every evaluation, the
validation exact match overall and per target position (`exact_by_target_index`) and,
for two-stream hybrids, |tanh(gate)| per layer (`gates`); its snapshots of the position
tokens' embedding rows at 25/50/75/100% of its own steps sit beside it in runs/<id>.npz
(load_snapshots; an untied head's rows are kept too).

Choices the paper leaves open, made here once (INFERRED):
- per-run pictures (heatmaps, PCA, similarity matrices, gates) draw the lowest seed of
  each model's chosen learning rate (lib.plots.retrieval.best_lr at the 0.95 threshold);
- embedding geometry uses cosine similarity on the full rows unless a PCA size is named;
  PCA centres the rows first; "nearest neighbours" are by cosine similarity;
- "start and end of the sequence" are the first and last 10% of target positions.
"""
from __future__ import annotations

import math
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ..config import results_dir
from ..sweeps.runner import load_snapshots
from .retrieval import (HYBRID_M2, _curve_axes, _empty, _legend, _pick, choose_runs, curve_grid, examples_scale,
                        label, lr_note, lr_text, note, note_missing, plot_curve, style)

THRESHOLD = 0.95                  # the position runs' early-stop level (experiments.yaml)
CHANCE_LOSS = math.log(200) / 2   # 2.65: a uniform guess over 200 positions, the <bos> after it free


def chance_loss(symbols: int = 200) -> float:
    """The loss of a uniform guess over the positions (the <bos> after it is free):
    log(S)/2, 2.65 at the paper's 200 symbols (a ladder rung has fewer)."""
    return math.log(symbols) / 2


def symbols_of(*tables: pd.DataFrame) -> int:
    """The runs' number of symbols (one rung at a time; 200 without runs)."""
    found = {int(r["run"]["task"]["num_symbols"]) for t in tables if t is not None and not t.empty
             for r in t["record"]}
    return max(found) if found else 200
EDGE = 0.1                        # the first and last 10% of target positions
FRACTIONS = ("0.25", "0.5", "0.75", "1")
KS = tuple(range(1, 51))          # neighbours for Fig 11
LOCALITY_K = 5                    # the K of the locality number in the tables and claims

FIG8 = ["transformer", "mamba2", "hybridI_1m2", "hybrid2s_m2"]
FIG9 = ["transformer", "transformer_nope", "mamba2", "hybridI_1m2"]
FIG11 = ["transformer", "hybridI_1m2"]
FIG17 = ["transformer", "mamba", "mamba2", "hybridI_1m", "hybridI_1m2", "hybrid2s", "hybrid2s_m2"]
FIG18 = ["hybrid2s", "hybrid2s_m2", "hybrid2sr", "hybrid2sr_m2"]
FIG19 = ["hybrid2s", "hybrid2s_m2", "hybrid2sr", "hybrid2sr_m2"]
FIG20 = HYBRID_M2 + ["hybrid2s_m2"]
FIG22 = ["transformer", "transformer_nope", "mamba2", "hybrid2s_m2"]
MODEL_ORDER = ["transformer", "transformer_nope", "mamba", "mamba2", "hybridI_1m", "hybridI_2m", "hybridI_3m",
               "hybridI_4m", "hybridI_1m2", "hybridI_2m2", "hybridI_3m2", "hybridI_4m2", "hybrid2s", "hybrid2s_m2",
               "hybrid2sr", "hybrid2sr_m2"]  # the rows of the tables
POSITION_CMAP = sns.color_palette("rocket_r", as_cmap=True)  # warm = early positions, as the paper


# --------------------------------------------------------------------------- runs

def representatives(table: pd.DataFrame) -> dict[str, dict]:
    """{model name: the record drawn for it}: the lowest seed of its chosen learning rate
    (d_state 16 only)."""
    chosen = choose_runs(table[table["d_state"] == 16] if not table.empty else table, threshold=THRESHOLD)
    if chosen.empty:
        return {}
    first = chosen.sort_values("seed").groupby("name").head(1)
    return {row["name"]: row["record"] for _, row in first.iterrows()}


def snapshots(rec: dict, profile: str, table: str = "input") -> dict[str, tuple[int, np.ndarray]]:
    """{fraction: (step, rows [positions, d])} of a run (empty where none were written)."""
    return load_snapshots(results_dir(profile, rec["experiment"]) / "runs" / f"{rec['id']}.json", table=table)


def position_accuracy(rec: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps [E], examples [E], accuracy [E, positions]) over a run's evaluations; NaN
    where a position had no validation example."""
    curve = [e for e in rec["eval_curve"] if e.get("exact_by_target_index") is not None]
    if not curve:
        return np.zeros(0), np.zeros(0), np.zeros((0, 0))
    acc = np.array([[np.nan if a is None else a for a in e["exact_by_target_index"]] for e in curve], dtype=float)
    return (np.array([e["step"] for e in curve]), np.array([e["examples"] for e in curve], dtype=float), acc)


def edge_split(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first 10%, last 10%, middle) mean accuracy of each row of a [E, positions] matrix."""
    n = acc.shape[1]
    k = max(1, round(EDGE * n))
    with warnings.catch_warnings():  # an all-NaN slice (no validation example there) is simply NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(acc[:, :k], 1), np.nanmean(acc[:, -k:], 1), np.nanmean(acc[:, k:-k], 1)


def edge_table(table: pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    """F5's numbers: per model (its drawn run) and snapshot fraction, validation exact match
    on the first 10%, last 10% and middle 80% of target positions at the evaluation
    nearest that fraction of the run's steps, and the edges' advantage over the middle."""
    reps = representatives(table)
    rows = []
    for name in names or [m for m in MODEL_ORDER if m in reps]:
        if name not in reps:
            continue
        rec = reps[name]
        steps, examples, acc = position_accuracy(rec)
        if not len(steps):
            continue
        first, last, middle = edge_split(acc)
        for f in FRACTIONS:
            i = int(np.argmin(np.abs(steps - float(f) * rec["steps"])))
            rows.append({"model": label(name), "fraction": float(f), "step": int(steps[i]),
                         "examples": int(examples[i]), "overall": rec["eval_curve"][i]["exact_match"],
                         "first 10%": first[i], "last 10%": last[i], "middle": middle[i],
                         "edge advantage": (first[i] + last[i]) / 2 - middle[i]})
    return pd.DataFrame(rows).round(3)


# --------------------------------------------------------------------------- embedding geometry

def pca(x: np.ndarray, k: int | None) -> np.ndarray:
    """Rows projected on their top-k principal components (centred; k=None keeps the rows
    as they are; k at or above the rank only centres and rotates them)."""
    if k is None:
        return x
    xc = x - x.mean(0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:k].T


def cosine_matrix(x: np.ndarray) -> np.ndarray:
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return u @ u.T


def knn_index_distance(x: np.ndarray, ks=KS) -> np.ndarray:
    """Mean |i - j| between each position i and its K nearest neighbours j (cosine) in
    embedding space, for each K of `ks` (Fig 11)."""
    sim = cosine_matrix(x)
    np.fill_diagonal(sim, -np.inf)
    order = np.argsort(-sim, axis=1, kind="stable")
    dist = np.abs(order - np.arange(len(x))[:, None]).astype(float)
    cum = np.cumsum(dist, axis=1).mean(0)
    return np.array([cum[k - 1] / k for k in ks])


def random_knn_distance(n: int) -> float:
    """Mean |i - j| when neighbours are unrelated to positions: (n + 1) / 3."""
    return (n + 1) / 3


def ideal_knn_distance(n: int, k: int = LOCALITY_K) -> float:
    """The least mean |i - j| of k neighbours any table of n positions can have: each
    position's neighbours are its k nearest indices (1.8 for k = 5 inside a long line; the
    ends, with neighbours on one side only, sit higher). At small n it is far from 0: 2.0
    at 16 positions, against 5.7 for unrelated embeddings."""
    i = np.arange(n)
    dist = np.sort(np.abs(i[:, None] - i[None, :]), axis=1)[:, 1:k + 1]
    return float(dist.mean())


def index_distance_correlation(x: np.ndarray) -> float:
    """Spearman correlation, over all pairs i < j, between |i - j| and the cosine distance
    of their embeddings: near 1 when embedding distance grows with index distance, near 0
    for unrelated (e.g. random) embeddings."""
    n = len(x)
    i, j = np.triu_indices(n, 1)
    d_idx = pd.Series((j - i).astype(float)).rank().to_numpy()
    d_emb = pd.Series(1 - cosine_matrix(x)[i, j]).rank().to_numpy()
    return float(np.corrcoef(d_idx, d_emb)[0, 1])


def locality(x: np.ndarray) -> dict:
    return {f"mean |i-j| of {LOCALITY_K} nearest": float(knn_index_distance(x, (LOCALITY_K,))[0]),
            "rank correlation": index_distance_correlation(x)}


def locality_table(table: pd.DataFrame, profile: str, names: list[str] | None = None) -> pd.DataFrame:
    """F6's numbers: per model (its drawn run) at the final snapshot, for the input
    embedding (what the paper draws) and the output head (the rows that predicting <p_i>
    trains; listed only where untied), the mean |i-j| of each position's 5 nearest
    neighbours and the rank correlation of index and embedding distance; then what
    unrelated embeddings give (Gaussian rows, seed 0; (n + 1) / 3 = 67 for the first)."""
    reps = representatives(table)
    rows, shape = [], None
    for name in names or [m for m in MODEL_ORDER if m in reps]:
        inp, out = (snapshots(reps[name], profile, t) if name in reps else {} for t in ("input", "output"))
        if "1" not in inp:
            continue
        shape = inp["1"][1].shape
        rows.append({"model": label(name), "name": name, "table": "input", "step": inp["1"][0],
                     **locality(inp["1"][1])})
        if not np.array_equal(inp["1"][1], out["1"][1]):  # an untied head: its rows too
            rows.append({"model": label(name), "name": name, "table": "output head", "step": out["1"][0],
                         **locality(out["1"][1])})
    if shape:
        rows.append({"model": "unrelated (random) embedding", "name": "random", "table": "-", "step": 0,
                     **locality(np.random.default_rng(0).standard_normal(shape))})
    return pd.DataFrame(rows).round(3)


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


def loss_points(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(examples, training loss) of a run's 100 stored loss points, each the mean of a
    contiguous block of steps (lib.sweeps.runner._downsample), placed at the block's middle."""
    loss = np.asarray(rec["train_loss"], dtype=float)
    steps = np.array([b.mean() for b in np.array_split(np.arange(1, rec["steps"] + 1), len(loss))])
    return steps * rec["run"]["train"]["batch_size"], loss


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


def gates(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(examples [E], |tanh(beta)| [E, layers]) of a two-stream run; empty if it has none."""
    curve = [e for e in rec["eval_curve"] if e.get("gates")]
    if not curve:
        return np.zeros(0), np.zeros((0, 0))
    return np.array([e["examples"] for e in curve], dtype=float), np.array([e["gates"] for e in curve])


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
