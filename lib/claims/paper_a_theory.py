"""Paper A's lower bounds as executable checks (Thms 3.3, 3.7, 4.2, 4.5).

The paper's symbols were lost in extraction; the statements below are reconstructed from
the surrounding text, the proofs (App. C, D.1, D.3) and spec A.6. Logs are base 2 (bits).

Thm 3.7 (sliding-window Transformers). Let F be R-locally sensitive (Assumption 3.6): there
are x, x' of length L that agree on their last R-1 tokens and F(x) != F(x'). Then any stack of
k Transformer layers with windows W_1..W_k that computes F with probability 2/3 (spec A.6;
the argument needs only > 1/2) on the uniform distribution over {x, x'} has sum_i W_i >= R.
Argument: the last position of such a stack reads only the last sum_i (W_i - 1) + 1 <=
sum_i W_i tokens (our window W covers the query and W - 1 tokens before it, spec A.3), so
with sum_i W_i <= R - 1 it sees the same input on x and x', answers both the same and is
right on at most one. The count "R - 1 shared tokens" makes the conclusion exactly
sum W_i >= R (the paper's display may count the shared suffix as R, which would give > R).
Here R is, per task, the largest distance back from the last position (plus one) at which a
token can still change a *defined* target: `dependency_range`, `witness_pairs`.

Thm 3.3 (SSMs). F(u, v) with u in V^m (local context), v a control value (Def 3.1); Assumption
3.2: some q controls v^(1..q) make G(u) = (F(u, v^(1)), ..., F(u, v^(q))) injective on V^m.
Then (as displayed) any k-layer SSM with state spaces S_i that computes F with probability
1/2 (spec A.6) has sum_i log|S_i| >= Omega(m log|V| - q log|Y|). Audit (spec A, 3P): G
injective on V^m into Y^q needs |Y|^q >= |V|^m, i.e. q log|Y| >= m log|V|, so the displayed
right-hand side is <= 0: vacuous (`thm33_displayed`, `q_min_injective`). The proof's own steps
(Fano on each of the q queries) give the non-vacuous log|S| >= m log|V| - q (h(e) + e
log(|Y| - 1)) at mean error e <= 1/2 (`thm33_fano`: OUR re-derivation, not the paper's text).

Thm 4.2 (selective copy, V = N u M, N distances, M words): pure SSM sum log|S_i| >=
Omega(N log M); pure Transformer sum W_i >= Omega(L). Thm 4.5 (associative recall with
decoding, 2 bits + |W| words): pure SSM sum log|S_i| >= Omega(|W| log |W|) (the proof uses
m = q = |W|/2 keys and values); pure Transformer sum W_i >= Omega(L). The unknown constants
of Omega are set to 1 everywhere here, and said so in every table.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .paper_a import params_to
from .rules import INF, NOT_REPRODUCED, NOT_TESTED, REPRODUCED, Claim
from ..tasks import Task, rng_for
from ..tasks.paper_a import DecodeRecallLast, MultiKeyRecall, NeedleInHaystack, SelectiveCopy

WITNESS_SEED = 0
CONSTANT = 1.0  # the unknown constant of every Omega(.), stated as 1

# --------------------------------------------------------------------------- targets, support

def last_targets(task: Task, x: np.ndarray) -> np.ndarray:
    """The target at the LAST position of each row of x, recomputed from the inputs by the
    task's definition (task.null where there is none). tests/test_theory_a.py checks it
    against the generator's own targets."""
    x = np.atleast_2d(np.asarray(x))
    L, null = x.shape[1], task.null
    out = np.full(len(x), null)
    if isinstance(task, SelectiveCopy):
        V = task.num_vocab
        for b, row in enumerate(x):
            nums = np.where((row >= V) & (row < V + task.numbers))[0]
            if len(nums):
                v = int(row[nums[-1]]) - V + task.first_number
                if L - 1 - v >= 0:
                    out[b] = row[L - 1 - v]
    elif type(task) is DecodeRecallLast:
        V, nb = task.num_vocab, task.n_bits
        for b, row in enumerate(x):
            word = int(sum(int(t - V) << (nb - 1 - i) for i, t in enumerate(row[L - nb:])))
            hits = np.where(row[: L - nb - 1] == word)[0]  # occurrences with a context follower
            if len(hits):
                out[b] = row[hits[-1] + 1]
    elif isinstance(task, MultiKeyRecall):
        k = task.key_size
        for b, row in enumerate(x):
            store = {}
            for i in range(k + 1, L):  # the store at i (k-gram ending at i-1 -> x[i]), i > k
                store[tuple(row[i - k:i])] = row[i]
            out[b] = store.get(tuple(row[L - k:]), null)
    elif isinstance(task, NeedleInHaystack):
        for b, row in enumerate(x):
            pos = np.where(row == task.num_vocab)[0]
            if len(pos):
                out[b] = row[pos[0] + 1]
    else:
        raise TypeError(f"no dependency range for task {task.name!r}")
    return out


def in_support(task: Task, x: np.ndarray) -> np.ndarray:
    """Per row: could the task's generator have drawn it (probability > 0)?"""
    x = np.atleast_2d(np.asarray(x))
    L, V = x.shape[1], task.num_vocab
    words = (x >= 0) & (x < V)
    if isinstance(task, SelectiveCopy):  # every position iid over words and numbers (mixed too)
        return ((x >= 0) & (x < V + task.numbers)).all(1)
    if type(task) is DecodeRecallLast:
        nb = task.n_bits
        return words[:, : L - nb].all(1) & ((x[:, L - nb:] == V) | (x[:, L - nb:] == V + 1)).all(1)
    if isinstance(task, MultiKeyRecall):
        return words.all(1)
    if isinstance(task, NeedleInHaystack):
        marker = x == V
        one = marker.sum(1) == 1
        first_half = marker[:, : L // 2].any(1)
        return one & first_half & (x[:, -1] == V + 1) & (words | marker)[:, :-1].all(1)
    raise TypeError(f"no dependency range for task {task.name!r}")


# --------------------------------------------------------------------------- dependency range

def dependency_range(task: Task) -> int:
    """R: the witness pairs differ at position L - R (0-indexed), i.e. R - 1 positions before the
    last one, agree on the last R - 1 tokens, and have different defined targets."""
    return task.length - _first_differing(task)


def _first_differing(task: Task) -> int:
    """The earliest position that can still change a defined target at the last position."""
    if isinstance(task, SelectiveCopy):
        return 0  # the only number token, at position 0, sets the distance
    if type(task) is DecodeRecallLast:
        return 1  # the follower of the query word's only occurrence, at position 0
    if isinstance(task, MultiKeyRecall):
        return 2  # position 2 moves the final key's last stored occurrence (see range_reason)
    if isinstance(task, NeedleInHaystack):
        return 1  # the needle, after the marker at position 0
    raise TypeError(f"no dependency range for task {getattr(task, 'name', task)!r} (dense decode_recall has no "
                    "last-position theorem; paper B's tasks are not paper A's)")


def range_reason(task: Task) -> str:
    """How R follows from the generator (lib/tasks/paper_a.py), in one sentence."""
    L, R = task.length, dependency_range(task)
    if isinstance(task, SelectiveCopy):
        return (f"R = L = {R}: the last target is x[L-1-v] with v the value of the most recent number token; "
                f"when the only number sits at position 0 (the generator draws every position iid, so this has "
                f"probability > 0), changing it from #a to #b moves the target, and position 0 is L-1 back")
    if type(task) is DecodeRecallLast:
        return (f"R = L-1 = {R}: the last target is the token after the last occurrence of the queried word among "
                f"positions 0..L-{task.n_bits}-2; if that word occurs only at position 0, the target is x[1], "
                f"L-2 back (changing x[0] itself only removes the target)")
    if isinstance(task, MultiKeyRecall):
        k = task.key_size
        if k == 1:
            return (f"R = L-2 = {R}: the generator stores x[i-1] -> x[i] only for i > 1, so the earliest stored "
                    f"pair is x[1] -> x[2]; when the final key occurs only at position 1, the target is x[2], L-3 "
                    f"back (changing x[1] only removes the target)")
        return (f"R = L-2 = {R}: the generator stores key x[i-k:i] -> x[i] only for i > k, so x[0] never matters "
                f"and a change at position 1 alone can only add or remove the oldest stored key; at position 2 a key "
                f"q = (a, b, .., b) can sit at 1..k in x' (value x[k+1] = b) and at 2..k+1 in x (value x[k+2] = c "
                f"!= b), the two inputs differing only in x[2] (b vs a), L-3 back. The value of the first stored "
                f"key, x[k+1], would give only L-k-1 (found by brute force, tests/test_theory_a.py)")
    if isinstance(task, NeedleInHaystack):
        return (f"R = L-1 = {R}: the target is the word after the marker #0, drawn in 0..L/2-1; with the marker "
                f"at 0 the needle x[1] is L-2 back (moving the marker is impossible without changing the suffix)")
    raise TypeError(task)


@dataclass
class WitnessPairs:
    x: np.ndarray    # [n, L] first members
    x2: np.ndarray   # [n, L] second members: equal to x on the last R - 1 tokens
    y: np.ndarray    # [n] target at the last position of x
    y2: np.ndarray   # [n] ... of x2 (!= y)
    R: int

    def __len__(self) -> int:
        return len(self.x)


def witness_pairs(task: Task, n: int, seed: int = WITNESS_SEED) -> WitnessPairs:
    """n pairs that agree on their last R - 1 tokens, differ at position L - R and have
    different defined targets at the last position; both members are in the task's support."""
    rng = rng_for(seed, f"{task.key()}/witness")
    L, V = task.length, task.num_vocab
    if isinstance(task, SelectiveCopy):
        if task.numbers < 2:
            raise ValueError("selective copy needs two number tokens for a witness pair")
        if L - task.first_number - task.numbers < 1:
            raise ValueError("selective copy witnesses need the largest distance below L - 1")
        x = rng.integers(0, V, (n, L))
        ab = np.stack([rng.choice(task.numbers, 2, replace=False) for _ in range(n)])
        x2 = x.copy()
        x[:, 0], x2[:, 0] = V + ab[:, 0], V + ab[:, 1]
        rows = np.arange(n)
        src = L - 1 - (task.first_number + ab)  # the two targets' positions
        pair_words = np.stack([rng.choice(V, 2, replace=False) for _ in range(n)])
        for j in range(2):
            x[rows, src[:, j]] = pair_words[:, j]
            x2[rows, src[:, j]] = pair_words[:, j]
    elif type(task) is DecodeRecallLast:
        nb = task.n_bits
        word = rng.integers(0, V, n)
        others = rng.integers(0, V - 1, (n, L))
        x = others + (others >= word[:, None])  # words other than the query
        x[:, 0] = word
        x[:, L - nb:] = V + ((word[:, None] >> np.arange(nb - 1, -1, -1)) & 1)
        cc = np.stack([rng.choice(V - 1, 2, replace=False) for _ in range(n)])
        cc = cc + (cc >= word[:, None])
        x2 = x.copy()
        x[:, 1], x2[:, 1] = cc[:, 0], cc[:, 1]
    elif isinstance(task, MultiKeyRecall):
        x, x2 = _mkar_pairs(task, n, rng)
    elif isinstance(task, NeedleInHaystack):
        x = rng.integers(0, V, (n, L))
        x[:, 0], x[:, -1] = V, V + 1
        cc = np.stack([rng.choice(V, 2, replace=False) for _ in range(n)])
        x2 = x.copy()
        x[:, 1], x2[:, 1] = cc[:, 0], cc[:, 1]
    else:
        _first_differing(task)  # raises with the reason
    return WitnessPairs(x, x2, last_targets(task, x), last_targets(task, x2), dependency_range(task))


def _mkar_pairs(task: MultiKeyRecall, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Pairs differing only at position 2 (range_reason). k = 1: the final key q = a at position 1
    only, its value x[2] = c or c'. k >= 2: q = (a, b, .., b); x' holds q at 1..k (value x[k+1] = b),
    x holds it at 2..k+1 (value x[k+2] = c != b). The final key sits at L-k..L-1; the rest is
    filled left to right never completing q, then checked (rare overlaps redrawn)."""
    L, V, k = task.length, task.num_vocab, task.key_size
    if L < 2 * k + 4 or V < (3 if k == 1 else 2):
        raise ValueError("mkar witnesses need length >= 2k + 4 and two words (three for k = 1)")
    xs, x2s = [], []
    while len(xs) < n:
        a, b = rng.choice(V, 2, replace=False)
        row = rng.integers(0, V, L)
        if k == 1:
            q = np.array([a])
            c = rng.choice(np.setdiff1d(np.arange(V), [a]), 2, replace=False)
            row[1] = a
            first_free = 3
        else:
            q = np.array([a] + [b] * (k - 1))
            row[1], row[3:k + 2] = a, b
            row[k + 2] = rng.choice(np.setdiff1d(np.arange(V), [b]))
            first_free = k + 3
        row[L - k:] = q
        for i in range(first_free, L - k):  # free positions: never end a copy of q
            if np.array_equal(row[i - k + 1:i], q[:-1]) and row[i] == q[-1]:
                row[i] = (q[-1] + 1 + rng.integers(0, V - 1)) % V
        x, x2 = row.copy(), row.copy()
        if k == 1:
            x[2], x2[2] = c
        else:
            x[2], x2[2] = a, b
        tx, tx2 = last_targets(task, np.stack([x, x2]))
        want = (c[0], c[1]) if k == 1 else (row[k + 2], b)
        if (tx, tx2) == want:
            xs.append(x), x2s.append(x2)
    return np.stack(xs), np.stack(x2s)


def check_witness_pairs(task: Task, pairs: WitnessPairs) -> dict:
    """The definition, checked: shared suffix of exactly R - 1 tokens (they differ at L - R),
    defined and different targets, both members in the task's support."""
    L, R = task.length, pairs.R
    same_suffix = (pairs.x[:, L - R + 1:] == pairs.x2[:, L - R + 1:]).all(1)
    differ_at = pairs.x[:, L - R] != pairs.x2[:, L - R]
    defined = (pairs.y != task.null) & (pairs.y2 != task.null)
    return {"n": len(pairs), "shared_suffix": bool(same_suffix.all()), "differ_at_L_minus_R": bool(differ_at.all()),
            "targets_defined": bool(defined.all()), "targets_differ": bool((pairs.y != pairs.y2).all()),
            "in_support": bool(in_support(task, pairs.x).all() and in_support(task, pairs.x2).all())}


# --------------------------------------------------------------------------- models on the pairs

def attention_only(cfg) -> bool:
    return all(name == "attn" for name in cfg.layers)


def sum_windows(cfg, length: int) -> int | None:
    """sum_i W_i over attention layers (a full-attention layer counts L); None with an SSM layer."""
    if not attention_only(cfg):
        return None
    w = length if cfg.window is None else min(cfg.window, length)
    return len(cfg.layers) * w


def receptive_field(cfg, length: int) -> int | None:
    """Tokens the last position of an attention-only stack can read: sum_i (W_i - 1) + 1
    (capped at L); None (unbounded) as soon as one layer is an SSM."""
    if not attention_only(cfg):
        return None
    w = length if cfg.window is None else min(cfg.window, length)
    return min(length, len(cfg.layers) * (w - 1) + 1)


def is_bound(cfg, task: Task) -> bool:
    """Thm 3.7 applies: attention only, and the last position reads at most the shared R - 1 tokens."""
    rf = receptive_field(cfg, task.length)
    return rf is not None and rf <= dependency_range(task) - 1


@torch.no_grad()
def _last_logits(model, x: np.ndarray, batch: int, dtype) -> torch.Tensor:
    was = model.training
    model.eval()
    p = next(model.parameters())
    out = []
    for i in range(0, len(x), batch):
        ids = torch.as_tensor(x[i:i + batch], dtype=torch.long, device=p.device)
        with torch.autocast(p.device.type, enabled=False):
            out.append(model(ids)[:, -1].to(dtype).cpu())
    model.train(was)
    return torch.cat(out)


def witness_eval(model, task: Task, pairs: WitnessPairs, batch: int = 500) -> dict:
    """A model's answers at the last position of both members of every pair. Each member set is
    run as its own batch, row i at the same place in both, so a model that reads only the shared
    suffix computes bit-identical logits on the two. acc: the mean over both members; se: its
    standard error over pairs (per-pair score 0, 1/2 or 1); agree: pairs answered alike."""
    dtype = next(model.parameters()).dtype
    la, lb = _last_logits(model, pairs.x, batch, dtype), _last_logits(model, pairs.x2, batch, dtype)
    pa, pb = la.argmax(-1).numpy(), lb.argmax(-1).numpy()
    score = ((pa == pairs.y).astype(float) + (pb == pairs.y2)) / 2
    n = len(pairs)
    cfg = model.cfg
    return {"n_pairs": n, "acc": float(score.mean()),
            "se": float(score.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
            "agree": float((pa == pb).mean()), "both_right": float(((pa == pairs.y) & (pb == pairs.y2)).mean()),
            "max_logit_gap": float((la - lb).abs().max()), "R": pairs.R,
            "sum_windows": sum_windows(cfg, task.length), "receptive_field": receptive_field(cfg, task.length),
            "bound": is_bound(cfg, task)}


def witness_test(model, task: Task, data_dir: Path | None = None, *, n: int = 1000, device=None) -> dict:
    """A final test (lib.training.final_tests signature) for the trained runs of A-fig14/A-fig15:
    the model's accuracy on n witness pairs of its task, and whether Thm 3.7 binds it. Not wired
    into final_tests.TESTS or experiments.yaml (see notebooks/A-theory.ipynb)."""
    if device is not None:
        model = model.to(device)
    return witness_eval(model, task, witness_pairs(task, n))


WINDOW_EXPERIMENTS = ("A-fig14", "A-fig15")  # the sliding-window sweeps (selective copy, MKAR)
WIDTH_EXPERIMENTS = ("A-fig4", "A-fig5", "A-fig6", "A-fig7")  # each task's pure Transformer at its window


def witness_table(n: int = 1000, seed: int = 0, params: dict | None = None, constructions: bool = True) -> pd.DataFrame:
    """Untrained models on their task's witness pairs (run records keep no weights): every
    architecture of A-fig14/A-fig15 at every window of their (paper-protocol) grid, each task's
    pure Transformer of A-fig4..A-fig7 at its window and smallest width, and the constructed
    hybrids of Thms 4.3/4.6. One row per model: R, windows, whether Thm 3.7 binds it, accuracy
    on the pairs with its standard error, pairs answered alike, and whether any pair's logits differ."""
    from ..config import experiment_spec, model_config
    from ..models import build_model
    from ..tasks import make_task

    jobs = []
    for name in WINDOW_EXPERIMENTS:
        spec = experiment_spec(name, "paper", params)
        for arch in spec["grid"]["arch"]:
            for w in spec["grid"]["window"]:
                jobs.append((name, spec["task"], {**spec["model"], "arch": arch, "window": w}))
    for name in WIDTH_EXPERIMENTS:
        spec = experiment_spec(name, "paper", params)
        arch = _pure(spec["grid"]["arch"])["TF"]
        jobs.append((name, spec["task"], {**spec["model"], "arch": arch, "d_model": min(spec["grid"]["d_model"])}))
    rows, pairs_of = [], {}
    for name, task_spec, mspec in jobs:
        task = make_task(**task_spec)
        key = task.key()
        if key not in pairs_of:
            pairs_of[key] = witness_pairs(task, n, seed)
        model = build_model(model_config(mspec), task.vocab_size, task.seq_len, seed=seed)
        r = witness_eval(model, task, pairs_of[key])
        rows.append({"experiment": name, "task": task.name, "model": mspec["arch"], "d_model": mspec["d_model"],
                     "window": mspec["window"], "trained": False, **r})
    if constructions:
        from ..constructions import build_decode_recall, build_selective_copy
        for name, build in (("A-fig4", build_selective_copy), ("A-fig5", build_decode_recall)):
            task = make_task(**experiment_spec(name, "paper", params)["task"])
            model = build(task=task)
            r = witness_eval(model, task, pairs_of.get(task.key()) or witness_pairs(task, n, seed))
            rows.append({"experiment": name, "task": task.name, "model": "construction " + "-".join(
                "SSM" if x == "mamba" else "TF" for x in model.cfg.layers), "d_model": model.cfg.d_model,
                "window": model.cfg.window, "trained": False, **r})
    out = pd.DataFrame(rows)
    out["differs"] = out.pop("max_logit_gap") > 0  # the model's logits tell some pair apart
    return out


# --------------------------------------------------------------------------- the bounds

def log2(x: float) -> float:
    return math.log2(x) if x > 0 else float("nan")


def q_min_injective(m: int, V: int, Y: int) -> int:
    """The fewest controls q for which G: V^m -> Y^q can be injective: |Y|^q >= |V|^m."""
    q = max(0, math.ceil(m * math.log(V) / math.log(Y) - 1e-12))
    while Y ** q < V ** m:
        q += 1
    return q


def thm33_displayed(m: int, V: int, q: int, Y: int) -> float:
    """Thm 3.3 as displayed, constant 1: m log|V| - q log|Y| bits (<= 0 whenever G is injective)."""
    return CONSTANT * (m * log2(V) - q * log2(Y))


def binary_entropy(e: float) -> float:
    return 0.0 if e in (0.0, 1.0) else -e * math.log2(e) - (1 - e) * math.log2(1 - e)


def thm33_fano(m: int, V: int, q: int, Y: int, error: float = 0.5) -> float:
    """OUR re-derivation from the proof's steps, not the paper's display: u uniform on V^m, state S
    after u; H(u|S) = H(G(u)|S) <= sum_j H(F(u, v_j)|S) <= q (h(e) + e log(|Y|-1)) by Fano and
    concavity at mean error e <= 1/2, so log|S| >= I(u; S) >= m log|V| - q (h(e) + e log(|Y|-1))."""
    return m * log2(V) - q * (binary_entropy(error) + error * (log2(Y - 1) if Y > 1 else 0.0))


def thm42(L: int, N: int, M: int) -> dict:
    """Selective copy (N distances, M words, length L), constants 1: SSM bits, TF sum of windows."""
    return {"ssm_bits": CONSTANT * N * log2(M), "tf_sum_windows": CONSTANT * L}


def thm45(L: int, W: int) -> dict:
    """Associative recall with decoding (|W| words, length L), constants 1."""
    return {"ssm_bits": CONSTANT * W * log2(W), "tf_sum_windows": CONSTANT * L}


def thm33_instance(task: Task) -> dict:
    """(m, |V_u|, q, |Y|) of the proofs' hard distributions (App. D.1, D.3); m = 0 where the paper
    takes u empty (MKAR, NH: Sec. 5.2, 'no hardness criterion for SSMs')."""
    if isinstance(task, SelectiveCopy):
        # u: the N words at the N possible distances (uniform over M^N); v: the last number; Y = M
        N, M = task.numbers, task.num_vocab
        return {"m": N, "V_u": M, "q": N, "Y": M, "instance": "u = the N words at distances, v = the number"}
    if type(task) is DecodeRecallLast:
        half = task.num_vocab // 2  # W split into keys W1 and values W2
        return {"m": half, "V_u": half, "q": half, "Y": half,
                "instance": "u = a value in W2 for each key in W1, v = the key's bits"}
    if isinstance(task, (MultiKeyRecall, NeedleInHaystack)):
        return {"m": 0, "V_u": task.num_vocab, "q": 0, "Y": task.num_vocab, "instance": "u empty (Sec. 5.2)"}
    raise TypeError(task)


def task_bounds(task: Task) -> dict:
    """Every bound's value for one task setting (constants 1, bits)."""
    inst = thm33_instance(task)
    m, Vu, q, Y = inst["m"], inst["V_u"], inst["q"], inst["Y"]
    row = {**inst, "q_min": q_min_injective(m, Vu, Y) if m else 0,
           "m_logV": m * log2(Vu), "q_logY": q * log2(Y),
           "thm33_displayed": thm33_displayed(m, Vu, q, Y) if m else float("nan"),
           "thm33_fano_ours": thm33_fano(m, Vu, q, Y) if m else float("nan")}
    if isinstance(task, SelectiveCopy):
        b, thm = thm42(task.length, task.numbers, task.num_vocab), "4.2"
    elif type(task) is DecodeRecallLast:
        b, thm = thm45(task.length, task.num_vocab), "4.5"
    else:
        b, thm = {"ssm_bits": float("nan"), "tf_sum_windows": float("nan")}, "none"
    return {**row, "theorem": thm, "ssm_bound_bits": b["ssm_bits"], "tf_bound_sum_windows": b["tf_sum_windows"],
            "R": dependency_range(task)}


# --------------------------------------------------------------------------- the table

# the d_model sweeps of each task, and the accuracy threshold of the paper's claim on it
THEORY_EXPERIMENTS = ("A-fig4", "A-fig11", "A-fig13", "A-fig5", "A-fig6", "A-fig7")
THRESHOLDS = {"selective_copy": 0.9, "decode_recall_last": 0.5, "mkar": 0.6, "needle": 0.9}
THRESHOLD_SOURCE = {"selective_copy": "C2-copy: pure models ~0.9", "decode_recall_last": "C2-ard: hybrid > 0.5",
                    "mkar": "C2-mkar: 60%", "needle": "C2-nh rule: 0.9"}


def state_floats(cfg, length: int) -> int:
    """Working memory at inference, in floats: per Mamba layer d_inner x (d_state + d_conv - 1)
    (scan state and conv buffer); per attention layer the key/value cache, 2 d x min(W, L)."""
    total = 0
    for name in cfg.layers:
        if name == "attn":
            w = length if cfg.window is None else min(cfg.window, length)
            total += 2 * cfg.d_model * w
        elif name == "mamba":
            total += cfg.expand * cfg.d_model * (cfg.d_state + cfg.d_conv - 1)
        else:
            raise ValueError(f"state_floats: layer {name!r} is not paper A's")
    return total


def _settings(spec: dict) -> list[dict]:
    """The task settings of an experiment: its task, once per value of each task.* grid axis."""
    axes = {k[5:]: v for k, v in (spec.get("grid") or {}).items() if k.startswith("task.")}
    out = [dict(spec["task"])]
    for key, values in axes.items():
        out = [{**s, key: v} for s in out for v in values]
    return out


def _pure(archs) -> dict[str, str]:
    out = {}
    for a in archs:
        parts = set(a.split("-"))
        if parts == {"SSM"}:
            out["SSM"] = a
        elif parts == {"TF"}:
            out["TF"] = a
    return out


def first_reach(df: pd.DataFrame, arch: str, level: float, model_spec: dict, length: int) -> dict:
    """Fewest parameters (and the width, state floats and sum of windows there) at which the
    arch's mean accuracy over seeds reaches `level`; 'never' with the best mean otherwise."""
    from ..config import model_config

    sub = df[df["arch"] == arch]
    if sub.empty:
        return {"params": None, "d_model": None, "state_floats": None, "text": "not run"}
    p = params_to(df, arch, level)
    by_p = sub.groupby("params").agg(d_model=("d_model", "first"), acc=("token_acc", "mean"))
    if p == INF:
        best = by_p["acc"].idxmax()
        widths = sorted(sub["d_model"].unique())
        return {"params": None, "d_model": None, "state_floats": None,
                "text": f"never (d {widths[0]}-{widths[-1]}; best {by_p['acc'].max():.3f} at {best:,.0f})"}
    d = int(by_p.loc[p, "d_model"])
    cfg = model_config({**model_spec, "arch": arch, "d_model": d})
    s = state_floats(cfg, length)
    return {"params": int(p), "d_model": d, "state_floats": s,
            "text": f"{int(p):,} params (d {d}), state {s:,} floats ({by_p.loc[p, 'acc']:.3f})"}


def committed_results(name: str, results_profile: str = "gpu") -> Path:
    """The results committed with the repository (data/results/<profile>/<experiment>), read
    where they were committed, not under COMPANION_WORKDIR."""
    from ..config import ROOT
    return ROOT / "data" / "results" / results_profile / name


def theory_table(profile: str = "quick", results_profile: str = "gpu", experiments=THEORY_EXPERIMENTS,
                 params: dict | None = None) -> pd.DataFrame:
    """A-tab-theory: per experiment and task setting (experiments.yaml at `profile`), each bound's value
    (constants 1, bits), the audit's q log|Y| - m log|V| >= 0, our dependency range R against the
    pure Transformer's windows, and the smallest parameters and state at which our pure SSM and
    pure Transformer first reach the paper's accuracy threshold in the `results_profile` results."""
    from ..config import experiment_spec
    from ..tasks import make_task

    rows = []
    for name in experiments:
        spec = experiment_spec(name, profile, params)
        try:
            df = pd.read_parquet(committed_results(name, results_profile) / "results.parquet")
        except FileNotFoundError:
            df = None
        for settings in _settings(spec):
            task = make_task(**settings)
            level = THRESHOLDS[task.name]
            b = task_bounds(task)
            sub = df
            if df is not None and "task.num_vocab" in df.columns:
                sub = df[df["task.num_vocab"] == task.num_vocab]
            pure = _pure(spec["grid"]["arch"])
            tf_cfg = None
            if "TF" in pure:
                from ..config import model_config
                tf_cfg = model_config({**spec["model"], "arch": pure["TF"],
                                       "d_model": spec["model"].get("d_model", spec["grid"].get("d_model", [12])[0])})
            reach = {}
            for kind in ("SSM", "TF"):
                if kind not in pure:
                    reach[kind] = "not in the experiment"
                elif sub is None:
                    reach[kind] = f"no {results_profile} results"
                else:
                    reach[kind] = first_reach(sub, pure[kind], level, spec["model"], task.length)["text"]
            rows.append({
                "experiment": name, "task": task.name, "L": task.length, "vocab": task.vocab_size,
                "words": task.num_vocab, "m": b["m"], "#V_u": b["V_u"], "q": b["q"], "#Y": b["Y"],
                "q_min": b["q_min"], "m log #V": b["m_logV"], "q log #Y": b["q_logY"],
                "Thm 3.3 displayed (bits)": b["thm33_displayed"], "Thm 3.3 Fano, ours (bits)": b["thm33_fano_ours"],
                "theorem": b["theorem"], "SSM bound (bits)": b["ssm_bound_bits"],
                "TF bound sum W": b["tf_bound_sum_windows"], "R (ours)": b["R"],
                "pure TF": pure.get("TF", "-"), "TF window": spec["model"].get("window"),
                "TF sum W": sum_windows(tf_cfg, task.length) if tf_cfg else None,
                "TF receptive field": receptive_field(tf_cfg, task.length) if tf_cfg else None,
                "TF bound by 3.7": is_bound(tf_cfg, task) if tf_cfg else None,
                "threshold": level, "pure SSM first reaches": reach["SSM"], "pure TF first reaches": reach["TF"],
                "results": results_profile})
    return pd.DataFrame(rows)


def results_provenance(profile: str, results_profile: str = "gpu", experiments=THEORY_EXPERIMENTS) -> dict:
    """The provenance of A-tab-theory: the committed results' runs, devices and commits (combined),
    labelled with the notebook's profile, whose experiments.yaml settings give the bounds."""
    import json

    from ..provenance import combine

    provs = [json.loads((committed_results(e, results_profile) / "provenance.json").read_text())
             for e in experiments if (committed_results(e, results_profile) / "provenance.json").exists()]
    if not provs:
        return {"profile": profile, "device": "cpu", "commit": "unknown", "wall_s": 0.0, "runs": 0}
    prov = combine(*provs)
    prov["profile"] = f"{profile} (bounds from its settings; first-solving sizes from the {results_profile} results)"
    return prov


def injectivity_demo(N: int = 3, M: int = 3) -> pd.DataFrame:
    """The audit's observation by enumeration, on a tiny selective copy: u in M^N (the words at
    the N distances), F(u, n) = u_n. For each q (using distances 1..q), is G injective on all
    M^N contexts, and the displayed bound m log M - q log M."""
    import itertools

    us = list(itertools.product(range(M), repeat=N))
    rows = []
    for q in range(0, N + 1):
        images = {tuple(u[j] for j in range(q)) for u in us}
        rows.append({"q": q, "contexts": len(us), "distinct G(u)": len(images), "injective": len(images) == len(us),
                     "displayed bound (bits)": round(thm33_displayed(N, M, q, M), 6)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- claim rules

def z_margin(se: float, z: float = 2.0) -> float:
    return z * (0.0 if se != se else se)


def thm37_witness(witness: pd.DataFrame) -> tuple[str, str]:
    """Reproduced if every evaluated model that Thm 3.7 binds (attention only, receptive field
    below R) has witness accuracy at most 1/2 + 2 standard errors (over pairs), and at least one
    model is bound; not reproduced if any bound model exceeds it (a bug in the model or its
    window); not tested without a bound model."""
    if witness is None or witness.empty or not witness["bound"].any():
        return "no model bound by Thm 3.7 evaluated", NOT_TESTED
    bound = witness[witness["bound"].astype(bool)]
    over = bound[bound["acc"] > 0.5 + bound["se"].map(z_margin)]
    free = witness[~witness["bound"].astype(bool)]
    trained = int(bound["trained"].sum()) if "trained" in bound else 0
    ours = (f"{len(bound)} bound models ({trained} trained): max witness accuracy {bound['acc'].max():.3f}, "
            f"answers agree on {bound['agree'].min():.3f}+ of pairs; {len(over)} above 1/2 + 2 se")
    if len(free):
        ours += f"; {len(free)} unbound models: max accuracy {free['acc'].max():.3f}"
    return ours, REPRODUCED if over.empty else NOT_REPRODUCED


def thm33_vacuous(table: pd.DataFrame) -> tuple[str, str]:
    """Reproduced (the audit's observation holds) if at every setting where Thm 3.3 is
    instantiated (m > 0) with an injective G (q >= q_min), q log #Y >= m log #V, so the displayed
    bound is <= 0; not reproduced if one such setting has a positive displayed bound; not tested
    without an instantiated setting."""
    if table is None or table.empty:
        return "no settings", NOT_TESTED
    inst = table[(table["m"] > 0) & (table["q"] >= table["q_min"])]
    if inst.empty:
        return "no setting instantiates Thm 3.3", NOT_TESTED
    pos = inst[inst["Thm 3.3 displayed (bits)"] > 1e-9]
    ours = (f"{len(inst)} settings: displayed bound max {inst['Thm 3.3 displayed (bits)'].max():+.3f} bits "
            f"(q log #Y - m log #V min {(inst['q log #Y'] - inst['m log #V']).min():+.3f}); "
            f"our Fano form {inst['Thm 3.3 Fano, ours (bits)'].min():.1f}-{inst['Thm 3.3 Fano, ours (bits)'].max():.1f} bits")
    return ours, REPRODUCED if pos.empty else NOT_REPRODUCED


# A-claims-theory's rows. Their texts write a set's size #Y, not |Y|: '|' would split the
# markdown table's cells.
CLAIMS_THEORY = [
    Claim("A-thm3.7", "any sliding-window Transformer (no SSM layer) with sum of windows below R cannot beat "
          "1/2 on R-locally-sensitive pairs (Thm 3.7).", "Thm 3.7: sum_i W_i >= R; Thms 4.2, 4.5: >= Omega(L)",
          ("witness",), thm37_witness),
    Claim("A-thm3.3-vacuous", "audit (3P): Thm 3.3's injectivity assumption forces q log #Y >= m log #V, so its "
          "displayed bound is vacuous.", "Thm 3.3: sum_i log #S_i >= Omega(m log #V - q log #Y)",
          ("A-tab-theory",), thm33_vacuous),
]


__all__ = ["WitnessPairs", "CLAIMS_THEORY", "THEORY_EXPERIMENTS", "THRESHOLDS", "check_witness_pairs",
           "dependency_range", "in_support", "injectivity_demo", "is_bound", "last_targets", "q_min_injective",
           "range_reason", "receptive_field", "results_provenance", "state_floats", "sum_windows", "task_bounds", "theory_table",
           "thm33_displayed", "thm33_fano", "thm33_instance", "thm37_witness", "thm33_vacuous", "thm42", "thm45",
           "witness_eval", "witness_pairs", "witness_table", "witness_test"]
