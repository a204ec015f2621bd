"""Paper B's position retrieval (spec B.2-B.5) as numbers: what the runs recorded during
training, reduced to the tables that B's figures (lib.plots.position) and claims
(lib.claims.paper_b_position) share. No drawing here.

A B-position run record (lib.sweeps.runner.record) holds, at every evaluation, the
validation exact match overall and per target position (`exact_by_target_index`) and,
for two-stream hybrids, |tanh(gate)| per layer (`gates`); its snapshots of the position
tokens' embedding rows at 25/50/75/100% of its own steps sit beside it in runs/<id>.npz
(lib.results.load_snapshots; an untied head's rows are kept too).

Choices the paper leaves open, made here once (INFERRED):
- per-run pictures (heatmaps, PCA, similarity matrices, gates) draw the lowest seed of
  each model's chosen learning rate (lib.analysis.retrieval.best_lr at the 0.95 threshold);
- embedding geometry uses cosine similarity on the full rows unless a PCA size is named;
  PCA centres the rows first; "nearest neighbours" are by cosine similarity;
- "start and end of the sequence" are the first and last 10% of target positions.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from ..config import results_dir
from ..results import load_snapshots
from .retrieval import choose_runs, label

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


MODEL_ORDER = ["transformer", "transformer_nope", "mamba", "mamba2", "hybridI_1m", "hybridI_2m", "hybridI_3m",
               "hybridI_4m", "hybridI_1m2", "hybridI_2m2", "hybridI_3m2", "hybridI_4m2", "hybrid2s", "hybrid2s_m2",
               "hybrid2sr", "hybrid2sr_m2"]  # the rows of the tables


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


# --------------------------------------------------------------------------- training loss and gates

def loss_points(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(examples, training loss) of a run's 100 stored loss points, each the mean of a
    contiguous block of steps (lib.sweeps.runner._downsample), placed at the block's middle."""
    loss = np.asarray(rec["train_loss"], dtype=float)
    steps = np.array([b.mean() for b in np.array_split(np.arange(1, rec["steps"] + 1), len(loss))])
    return steps * rec["run"]["train"]["batch_size"], loss


def gates(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(examples [E], |tanh(beta)| [E, layers]) of a two-stream run; empty if it has none."""
    curve = [e for e in rec["eval_curve"] if e.get("gates")]
    if not curve:
        return np.zeros(0), np.zeros((0, 0))
    return np.array([e["examples"] for e in curve], dtype=float), np.array([e["gates"] for e in curve])
