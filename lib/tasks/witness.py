"""Paper A's Thm 3.7 witness pairs: for each task with a dependency range R (selective copy,
associative recall with decoding at the last position, MKAR, needle in a haystack), pairs of
inputs of the task's generator that agree on their last R - 1 tokens and have different
defined targets at the last position.

Thm 3.7 (sliding-window Transformers; statement and argument: lib/claims/paper_a_theory.py)
says that a stack of attention layers whose last position reads at most those R - 1 shared
tokens answers both members of such a pair alike, so it is right on at most one: accuracy
<= 1/2 on the pairs. R is, per task, the largest distance back from the last position (plus
one) at which a token can still change a *defined* target (`dependency_range`, with the
reason in `range_reason`; tests/test_theory_a.py confirms it by brute force).

Where the parts live: the pairs and the task-side definitions here (numpy only); the models
on the pairs (receptive field, whether Thm 3.7 binds, accuracy on the pairs in fp32) in
lib/training/witness.py, run on every trained run of A-fig14/A-fig15 as the final test
`witness` (lib/training/final_tests.py); the untrained-model table, the bounds and the claim
rule in lib/claims/paper_a_theory.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Task, rng_for
from .paper_a import DecodeRecallLast, MultiKeyRecall, NeedleInHaystack, SelectiveCopy

WITNESS_SEED = 0  # the pairs' seed: every run of a task sees the same pairs, whatever its own seed
WITNESS_TASKS = (SelectiveCopy, DecodeRecallLast, MultiKeyRecall, NeedleInHaystack)  # exact types


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


__all__ = ["WITNESS_SEED", "WITNESS_TASKS", "WitnessPairs", "check_witness_pairs", "dependency_range", "in_support",
           "last_targets", "range_reason", "witness_pairs"]
