"""Tests of the task generators of both papers (lib/tasks) against the spec.

Every generator is checked against an *independent* brute-force reading of its
definition in `/work/shared/spec/papers.md` (A.2 for paper A, B.2 for paper B),
written here with plain Python loops over the decoded token strings: none of
the generators' own helpers (distance, sym, format, _draw, ...) is used.

Further: the loss/score masks and the next-token shift, loose distribution
checks, seeding/determinism, settings validation, and the eval-set cache.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch

from lib.tasks import TASKS, Batch, TaskError, eval_set, make_task

N = 300  # examples per configuration in the oracle tests

NULL, PAD, BOS, QUERY = "<null>", "<pad>", "<bos>", "<query>"


# ---------------------------------------------------------------------------
# small helpers (token-string level, independent of the generators' id maths)
# ---------------------------------------------------------------------------
def is_number(tok: str) -> bool:
    return re.fullmatch(r"#\d+", tok) is not None


def is_word(tok: str) -> bool:
    return re.fullmatch(r"V\d+", tok) is not None


def is_symbol(tok: str) -> bool:
    return re.fullmatch(r"<s\d+>", tok) is not None


def rows(task, tensor) -> list[list[str]]:
    return [task.decode(r.tolist()) for r in tensor]


def occurrences(seq: list, gram: list) -> list[int]:
    """Start positions of `gram` in `seq`, by a plain scan."""
    w = len(gram)
    return [i for i in range(len(seq) - w + 1) if seq[i:i + w] == gram]


def same_batch(a: Batch, b: Batch) -> bool:
    if a.inputs.shape != b.inputs.shape:
        return False
    same = (torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
            and torch.equal(a.mask, b.mask) and torch.equal(a.score, b.score))
    return same and a.meta.keys() == b.meta.keys() and all(
        np.array_equal(a.meta[k], b.meta[k]) for k in a.meta)


# ---------------------------------------------------------------------------
# Paper A oracles: (task, input tokens, meta of the row) -> target tokens
# ---------------------------------------------------------------------------
def oracle_selective_copy(task, x, meta):
    """A.2.1 [CODE]: v = value of the most recent number token at or before t;
    target x[t - v], <null> if no number yet or t - v < 0."""
    out = []
    for t in range(len(x)):
        v = None
        for j in range(t, -1, -1):
            if is_number(x[j]):
                v = int(x[j][1:])
                break
        out.append(x[t - v] if v is not None and t - v >= 0 else NULL)
    assert meta["has_number"] == any(is_number(tok) for tok in x)
    return out


def oracle_decode_recall_last(task, x, meta):
    """A.2.2 decode-recall-last: words, then log2(V) bits (#0/#1, MSB first) naming a
    word; the last position outputs the follower of the word's last occurrence among
    positions 0..L-2-n_bits (followers stay in the word context)."""
    nb = 0
    while 2 ** nb < task.num_vocab:
        nb += 1
    ctx, bits = x[:-nb], x[-nb:]
    assert all(is_word(tok) for tok in ctx), "context must be words only"
    assert all(tok in ("#0", "#1") for tok in bits)
    index = 0
    for tok in bits:  # most significant bit first
        index = 2 * index + int(tok[1:])
    word = f"V{index}"
    out = [NULL] * len(x)
    for j in range(len(ctx) - 2, -1, -1):
        if ctx[j] == word:
            out[-1] = ctx[j + 1]
            break
    assert meta["word"] == index
    assert meta["found"] == (out[-1] != NULL)
    return out


def oracle_decode_recall(task, x, meta):
    """A.2.2 decode-recall (dense) as in the DecodeRecall docstring: the query word is
    named by the last n_bits bits seen at or before t (zero-filled shift register);
    target = the token right after the most recent occurrence j < t of that word."""
    nb = 0
    while 2 ** nb < task.num_vocab:
        nb += 1
    out = []
    for t in range(len(x)):
        bits = [int(tok[1:]) for tok in x[:t + 1] if is_number(tok)]
        bits = ([0] * nb + bits)[-nb:]
        word = "V" + str(int("".join(map(str, bits)), 2))
        target = NULL
        for j in range(t - 1, -1, -1):
            if x[j] == word:
                target = x[j + 1]
                break
        out.append(target)
    return out


def oracle_mkar(task, x, meta):
    """A.2.3 [CODE]: at i >= k-1 the query is x[i-k+1..i]; target = follower of its
    last earlier occurrence. Quirks: (i) store before lookup, so an occurrence whose
    follower is x[i] itself counts; (ii) the k-gram starting at 0 is never stored."""
    k = task.key_size
    assert all(is_word(tok) for tok in x)
    out = [NULL] * len(x)
    for i in range(k - 1, len(x)):
        q = x[i - k + 1:i + 1]
        for j in range(i - k, 0, -1):  # occurrence x[j..j+k-1], follower x[j+k] <= i; j >= 1
            if x[j:j + k] == q:
                out[i] = x[j + k]
                break
    return out


def oracle_needle(task, x, meta):
    """A.2.4 [CODE]: one #0 in the first half, #1 last; from #0 on every position
    outputs the needle (the word after #0), <null> before."""
    L = len(x)
    marks = [i for i, tok in enumerate(x) if tok == "#0"]
    assert len(marks) == 1
    pos = marks[0]
    assert 0 <= pos < L // 2
    assert x[-1] == "#1" and x.count("#1") == 1
    assert all(is_word(tok) for i, tok in enumerate(x) if i not in (pos, L - 1))
    assert meta["needle_pos"] == pos
    needle = x[pos + 1]
    return [needle if t >= pos else NULL for t in range(L)]


PAPER_A = [
    ("selective_copy", {}, oracle_selective_copy),
    # num_vocab=200 (Fig 11) and mixed=True (Fig 13) guard a fixed bug: positions before the
    # first number once made the generator gather x[t - v] past the end (IndexError).
    ("selective_copy", {"num_vocab": 200}, oracle_selective_copy),
    ("selective_copy", {"length": 30, "numbers": 3, "p": 0.5}, oracle_selective_copy),
    ("selective_copy", {"mixed": True}, oracle_selective_copy),
    ("decode_recall_last", {}, oracle_decode_recall_last),
    ("decode_recall_last", {"num_vocab": 16, "length": 12}, oracle_decode_recall_last),
    ("decode_recall_last", {"num_vocab": 2, "length": 5}, oracle_decode_recall_last),
    ("decode_recall", {}, oracle_decode_recall),
    ("decode_recall", {"num_vocab": 4, "length": 40, "p": 0.5}, oracle_decode_recall),
    ("mkar", {}, oracle_mkar),
    ("mkar", {"num_vocab": 3, "key_size": 1, "length": 30}, oracle_mkar),
    ("mkar", {"num_vocab": 4, "key_size": 3, "length": 60}, oracle_mkar),
    ("needle", {}, oracle_needle),
    ("needle", {"num_vocab": 5, "length": 9}, oracle_needle),
]


def _id(name, settings):
    return name + "".join(f"-{k}={v}" for k, v in settings.items())


def params(cases, n_id=2):
    """pytest params from plain tuples or pytest.param entries (keeping their marks)."""
    out = []
    for c in cases:
        values, marks = (c.values, c.marks) if hasattr(c, "values") else (c, ())
        out.append(pytest.param(*values, marks=marks, id=_id(*values[:n_id])))
    return out


@pytest.mark.parametrize("name,settings,oracle", params(PAPER_A))
def test_paper_a_targets_match_oracle(name, settings, oracle):
    task = make_task(name, **settings)
    b = task.build(seed=3, n=N)
    assert b.inputs.shape == b.targets.shape == b.mask.shape == (N, task.length)
    assert b.inputs.dtype == b.targets.dtype == torch.long and b.mask.dtype == torch.bool
    for r, (x, y) in enumerate(zip(rows(task, b.inputs), rows(task, b.targets))):
        meta = {k: v[r] for k, v in b.meta.items()}
        assert y == oracle(task, x, meta), f"row {r}: {x}"
    # loss mask exactly where the target is defined; accuracy on the same positions
    assert torch.equal(b.mask, b.targets != task.token_id(NULL))
    assert torch.equal(b.score, b.mask)
    assert b.mask.any(), "oracle test never exercised a defined target"


# ---------------------------------------------------------------------------
# Paper B oracles: (task, full token sequence, meta row) ->
#     (prompt length, expected response, number of scored response tokens)
# ---------------------------------------------------------------------------
def parse_ngram(task, full, n):
    """B.2 formats. suffix: <bos> seq <bos> <query> q <query> | response;
    prefix: <query> q <bos> seq <bos> <query> | response. Returns (seq, q, prompt_len)."""
    if task.prefix:
        assert full[0] == QUERY and full[n + 1] == BOS
        q = full[1:n + 1]
        end = full.index(BOS, n + 2)
        seq = full[n + 2:end]
        assert full[end + 1] == QUERY
        plen = end + 2
    else:
        assert full[0] == BOS
        end = full.index(BOS, 1)
        seq = full[1:end]
        assert full[end + 1] == QUERY and full[end + 2 + n] == QUERY
        q = full[end + 2:end + 2 + n]
        plen = end + 3 + n
    assert all(is_symbol(tok) for tok in seq + q + full[plen:])
    return seq, q, plen


def oracle_ngram(task, full, meta):
    """B.2 n-gram retrieval: the query n-gram occurs exactly once in seq; the response
    is the k symbols right after it; L in [min_len, max_len]."""
    seq, q, plen = parse_ngram(task, full, task.n)
    assert task.min_len <= len(seq) <= task.max_len
    assert meta["length"] == len(seq)
    hits = occurrences(seq, q)
    assert len(hits) == 1, f"query {q} occurs {len(hits)} times"
    i = hits[0]
    assert meta["target_pos"] == i
    assert i + task.n + task.k <= len(seq)
    return plen, seq[i + task.n:i + task.n + task.k], task.k


def oracle_ngram_duplicates(task, full, meta):
    """B.2 duplicate-query test: s equal segments of length//s symbols; the query
    (distinct symbols) occurs in each, followed there by that segment's continuation;
    continuations pairwise distinct; query+continuation unique within its segment.
    The response (for bookkeeping) is segment 0's continuation."""
    seq, q, plen = parse_ngram(task, full, task.n)
    s, k = task.segments, task.k
    w = task.length // s
    assert len(seq) == s * w
    assert len(set(q)) == len(q)
    conts = [task.decode(c) for c in meta["segment_targets"]]
    assert len(conts) == s and all(len(c) == k for c in conts)
    assert len({tuple(c) for c in conts}) == s, "continuations must be pairwise distinct"
    for j in range(s):
        seg = seq[j * w:(j + 1) * w]
        assert occurrences(seg, q), f"query missing from segment {j}"
        assert len(occurrences(seg, q + conts[j])) == 1, f"query+continuation not unique in segment {j}"
    return plen, conts[0], k


def oracle_position(task, full, meta):
    """B.2 position retrieval (permutation variant): seq is a permutation of all S
    symbols; response <p_i> <bos> with i the query's index in seq; only <p_i> scored.
    suffix: <bos> seq <query> q; prefix: <query> q <bos> seq."""
    S = task.num_symbols
    if task.prefix:
        assert full[0] == QUERY and full[2] == BOS
        q, seq = full[1], full[3:3 + S]
        plen = 3 + S
    else:
        assert full[0] == BOS and full[S + 1] == QUERY
        seq, q = full[1:S + 1], full[S + 2]
        plen = S + 3
    assert sorted(seq) == sorted(f"<s{v}>" for v in range(S)), "not a permutation"
    i = seq.index(q)
    assert meta["target_index"] == i
    return plen, [f"<p{i}>", BOS], 1


PAPER_B = [
    ("ngram", {}, oracle_ngram),
    ("ngram", {"prefix": True}, oracle_ngram),
    ("ngram", {"min_len": 100, "max_len": 100}, oracle_ngram),
    ("ngram", {"num_symbols": 10, "n": 3, "k": 2, "min_len": 20, "max_len": 40}, oracle_ngram),
    ("ngram", {"num_symbols": 10, "n": 3, "k": 2, "min_len": 20, "max_len": 40, "prefix": True}, oracle_ngram),
    ("ngram_duplicates", {"segments": 2}, oracle_ngram_duplicates),
    ("ngram_duplicates", {"segments": 3}, oracle_ngram_duplicates),
    ("ngram_duplicates", {"segments": 4, "prefix": True}, oracle_ngram_duplicates),
    ("ngram_duplicates", {"segments": 10}, oracle_ngram_duplicates),
    ("ngram_duplicates", {"segments": 1, "length": 37}, oracle_ngram_duplicates),
    ("position", {}, oracle_position),
    ("position", {"prefix": True}, oracle_position),
    ("position", {"num_symbols": 7}, oracle_position),
    ("position", {"num_symbols": 7, "prefix": True}, oracle_position),
]


@pytest.mark.parametrize("name,settings,oracle", params(PAPER_B))
def test_paper_b_layout_and_response_match_oracle(name, settings, oracle):
    """Next-token layout: full = prompt + response, inputs = full[:-1], targets = full[1:],
    right-padded with <pad> (id 0); mask exactly on the positions predicting the response."""
    task = make_task(name, **settings)
    b = task.build(seed=5, n=N)
    pad = task.token_id(PAD)
    assert pad == 0
    assert b.inputs.shape == b.targets.shape == b.mask.shape == b.score.shape
    assert b.inputs.shape[1] <= task.seq_len
    x_all, y_all = b.inputs.tolist(), b.targets.tolist()
    for r in range(len(b)):
        x, y = x_all[r], y_all[r]
        T = len(x)
        length = sum(tok != pad for tok in x)
        # padding only on the right, in both inputs and targets
        assert all(tok != pad for tok in x[:length]) and all(tok == pad for tok in x[length:])
        assert all(tok != pad for tok in y[:length]) and all(tok == pad for tok in y[length:])
        # the shift: targets[t] == inputs[t + 1] wherever both are real tokens
        assert y[:length - 1] == x[1:length]
        full = task.decode(x[:length] + [y[length - 1]])
        meta = {k: v[r] for k, v in b.meta.items()}
        plen, response, n_scored = oracle(task, full, meta)
        assert full[plen:] == response, f"row {r}: {full}"
        assert meta["prompt_len"] == plen
        want_mask = [plen - 1 <= t < plen - 1 + len(response) for t in range(T)]
        want_score = [plen - 1 <= t < plen - 1 + n_scored for t in range(T)]
        assert b.mask[r].tolist() == want_mask
        assert b.score[r].tolist() == want_score
    # never a loss on padding; exactly len(response) loss positions per example
    assert not (b.mask & (b.targets == pad)).any()
    assert not (b.mask & (b.inputs == pad)).any()
    # batch-level shift check, written with tensors
    both = (b.inputs[:, 1:] != pad) & (b.targets[:, :-1] != pad)
    assert torch.equal(b.targets[:, :-1][both], b.inputs[:, 1:][both])


# ---------------------------------------------------------------------------
# vocabularies (spec A.2 / B.2 sizes and orders)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,settings,size,probe", [
    ("selective_copy", {}, 34, {"V0": 0, "#5": 26, "#9": 30, "<bos>": 31, "<eos>": 32, "<null>": 33}),
    ("decode_recall_last", {}, 37, {"V31": 31, "#0": 32, "#1": 33, "<null>": 36}),
    ("decode_recall", {}, 37, {"#0": 32, "#1": 33, "<null>": 36}),
    ("mkar", {}, 11, {"V7": 7, "<bos>": 8, "<null>": 10}),
    ("needle", {}, 105, {"#0": 100, "#1": 101, "<null>": 104}),
    ("ngram", {}, 33, {"<pad>": 0, "<bos>": 1, "<query>": 2, "<s0>": 3, "<s29>": 32}),
    ("position", {}, 403, {"<pad>": 0, "<s199>": 202, "<p0>": 203, "<p199>": 402}),
])
def test_vocabulary(name, settings, size, probe):
    task = make_task(name, **settings)
    toks = task.tokens()
    assert len(toks) == task.vocab_size == size == len(set(toks))
    for tok, i in probe.items():
        assert task.token_id(tok) == i and toks[i] == tok


# ---------------------------------------------------------------------------
# distribution sanity (loose bounds: > 4 standard deviations)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.2, 0.05, 0.5])
def test_selective_copy_number_frequency(p):
    task = make_task("selective_copy", p=p)
    x = rows(task, task.build(seed=11, n=400).inputs)
    flat = [tok for row in x for tok in row]
    nums = [tok for tok in flat if is_number(tok)]
    assert abs(len(nums) / len(flat) - p) < 0.02
    # split uniformly over #5..#9
    for v in range(5, 10):
        assert abs(nums.count(f"#{v}") / len(nums) - 0.2) < 0.05
    words = [tok for tok in flat if is_word(tok)]
    assert len(set(words)) == 26


def test_selective_copy_mixed_distribution():
    """A.2.1 mixed: w.p. 1/2 sparse numbers (p=0.03), else p=0.2 with a number last."""
    task = make_task("selective_copy", mixed=True)
    b = task.build(seed=12, n=800)
    kind = b.meta["kind"]
    x = rows(task, b.inputs)
    assert set(kind.tolist()) <= {1, 2}
    assert abs((kind == 2).mean() - 0.5) < 0.08
    last_is_number = np.array([is_number(r[-1]) for r in x])
    assert last_is_number[kind == 2].all()
    assert abs(last_is_number.mean() - 0.5) < 0.1  # ~0.5 + 0.5 * 0.03
    for k, p in ((1, 0.03), (2, 0.2)):
        body = [tok for r, kk in zip(x, kind) if kk == k for tok in r[:-1]]
        assert abs(sum(map(is_number, body)) / len(body) - p) < 0.015
    # the unmixed task marks every example kind 0
    assert (make_task("selective_copy").build(0, 10).meta["kind"] == 0).all()


@pytest.mark.parametrize("length", [100, 9])
def test_needle_position_in_first_half(length):
    task = make_task("needle", length=length)
    pos = task.build(seed=13, n=1000).meta["needle_pos"]
    half = length // 2
    assert pos.min() >= 0 and pos.max() < half
    if half <= 20:
        assert set(pos.tolist()) == set(range(half))  # every slot of the first half is used
    assert abs(pos.mean() - (half - 1) / 2) < 0.1 * half + 0.5


def test_decode_recall_bit_frequency_and_found_rate():
    task = make_task("decode_recall", p=0.3)
    flat = [tok for r in rows(task, task.build(seed=14, n=300).inputs) for tok in r]
    assert abs(sum(map(is_number, flat)) / len(flat) - 0.3) < 0.02
    last = make_task("decode_recall_last")  # miss rate (31/32)^94 ~ 5% (spec A.2.2)
    found = last.build(seed=15, n=1000).meta["found"]
    assert 0.9 < found.mean() < 0.99


def test_ngram_lengths_spread_over_range():
    task = make_task("ngram")
    lengths = task.build(seed=16, n=600, stream="train").meta["length"]
    assert lengths.min() >= 50 and lengths.max() <= 100
    assert lengths.min() <= 53 and lengths.max() >= 97
    assert abs(lengths.mean() - 75) < 3


def test_position_query_index_uniform():
    task = make_task("position")
    idx = task.build(seed=17, n=2000).meta["target_index"]
    assert idx.min() >= 0 and idx.max() < 200
    assert abs(idx.mean() - 99.5) < 6
    assert len(set(idx.tolist())) > 150


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------
ALL_CONFIGS = [pytest.param(*p.values[:2], marks=p.marks, id=p.id) for p in params(PAPER_A + PAPER_B)]


@pytest.mark.parametrize("name,settings", ALL_CONFIGS)
def test_seeding(name, settings):
    task = make_task(name, **settings)
    a = task.build(seed=0, n=16)
    assert same_batch(a, task.build(seed=0, n=16))
    assert same_batch(a, make_task(name, **settings).build(seed=0, n=16))  # fresh instance
    assert same_batch(a, task.build(seed=0, n=16, stream="eval"))  # eval is the default stream
    assert not same_batch(a, task.build(seed=1, n=16))
    assert not same_batch(a, task.build(seed=0, n=16, stream="train"))
    # sample() from equal numpy generators is deterministic too
    assert same_batch(task.sample(np.random.default_rng(7), 8), task.sample(np.random.default_rng(7), 8))


def test_different_settings_draw_different_streams():
    a = make_task("selective_copy").build(0, 8)
    b = make_task("selective_copy", num_vocab=27).build(0, 8)
    assert not torch.equal(a.inputs, b.inputs)


def test_tasks_are_frozen():
    task = make_task("mkar")
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.length = 5


# ---------------------------------------------------------------------------
# validation: TaskError (a ValueError) with a helpful message, before any data
# ---------------------------------------------------------------------------
def test_task_error_is_value_error():
    assert issubclass(TaskError, ValueError)


def test_unknown_task_lists_known_tasks():
    with pytest.raises(TaskError) as err:
        make_task("selective_cpy")
    msg = str(err.value)
    assert "selective_cpy" in msg
    for name in ("selective_copy", "decode_recall_last", "decode_recall", "mkar", "needle",
                 "ngram", "ngram_duplicates", "position"):
        assert name in msg and name in TASKS


def test_unknown_setting_names_it_and_lists_settings():
    with pytest.raises(TaskError) as err:
        make_task("ngram", query_size=2)
    msg = str(err.value)
    assert "query_size" in msg
    for field in ("num_symbols", "n", "k", "min_len", "max_len", "prefix"):
        assert field in msg


BAD = [
    ("selective_copy", {"length": 9}, r"distance 9 .*length 9"),
    ("selective_copy", {"length": 20, "numbers": 16}, r"distance 20"),
    ("selective_copy", {"numbers": 0}, r"number token"),
    ("selective_copy", {"p": 0.0}, r"p must be"),
    ("selective_copy", {"p": 1.5}, r"p must be"),
    ("selective_copy", {"num_vocab": 0}, r"num_vocab"),
    ("decode_recall_last", {"num_vocab": 26}, r"power of two.*26"),
    ("decode_recall_last", {"num_vocab": 1}, r"power of two"),
    ("decode_recall_last", {"num_vocab": 32, "length": 6}, r"no room"),
    ("decode_recall", {"num_vocab": 24}, r"power of two"),
    ("mkar", {"key_size": 0}, r"key_size"),
    ("mkar", {"key_size": 10, "length": 10}, r"key_size"),
    ("needle", {"length": 3}, r"at least 4"),
    ("ngram", {"num_symbols": 5}, r"too small"),
    ("ngram", {"min_len": 60, "max_len": 50}, r"min_len"),
    ("ngram", {"min_len": 4, "max_len": 10, "num_symbols": 30}, r"cannot hold"),
    ("ngram_duplicates", {"segments": 20}, r"20 segments"),
    ("ngram_duplicates", {"segments": 0}, r"segments"),
    ("ngram_duplicates", {"num_symbols": 5}, r"too small"),
    ("position", {"num_symbols": 1}, r"at least 2"),
    ("ngram_duplicates", {"num_symbols": 20, "k": 1, "segments": 25}, r"distinct .*continuations"),
    ("decode_recall", {"p": 1.5}, r"p must be"),
]


@pytest.mark.parametrize("name,settings,match", params(BAD))
def test_bad_settings_raise(name, settings, match, monkeypatch):
    """Raised at construction (also via the class directly), so no data is ever drawn."""
    def no_sampling(*args, **kwargs):
        raise AssertionError("data was drawn before validation")

    monkeypatch.setattr(TASKS[name], "_sample", no_sampling)
    with pytest.raises(TaskError, match=match):
        make_task(name, **settings)
    with pytest.raises(TaskError, match=match):
        TASKS[name](**settings)


def test_replace_revalidates():
    with pytest.raises(TaskError):
        dataclasses.replace(make_task("needle"), length=2)


# ---------------------------------------------------------------------------
# eval-set cache
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,settings", [
    ("selective_copy", {"mixed": True}),
    ("decode_recall_last", {}),
    ("needle", {}),
    ("ngram", {}),
    ("ngram_duplicates", {"segments": 3}),
    ("position", {"num_symbols": 7}),
])
def test_eval_set_cache_roundtrip(name, settings, tmp_path, monkeypatch):
    task = make_task(name, **settings)
    first = eval_set(task, 24, 2, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and task.key() in files[0].name
    # what was cached is the seeded eval stream
    assert same_batch(first, task.build(2, 24, stream="eval"))
    # the second call reads the file: drawing data now would fail
    monkeypatch.setattr(type(task), "_sample", lambda *a, **k: pytest.fail("eval set regenerated"))
    again = eval_set(task, 24, 2, tmp_path)
    assert same_batch(first, again)
    assert again.inputs.dtype == again.targets.dtype == torch.long
    assert again.mask.dtype == again.score.dtype == torch.bool
    monkeypatch.undo()
    # another seed or size is another file with other data
    other = eval_set(task, 24, 3, tmp_path)
    assert not same_batch(first, other)
    eval_set(task, 12, 2, tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 3


def test_eval_set_written_by_many_threads_at_once(tmp_path):
    """A sweep's threads finish ensembles together and may all write one test set: each
    must read a whole file (a shared temporary name once let one read another's half-write)."""
    from concurrent.futures import ThreadPoolExecutor
    task = make_task("decode_recall", length=60)
    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: eval_set(task, 400, 5, tmp_path), range(16)))
    assert all(same_batch(batches[0], b) for b in batches)
    assert len(list(tmp_path.glob("*.npz"))) == 1  # no temporary file left behind


def test_packed_decode_recall_is_independent_examples_back_to_back():
    """Paper A's mini training (spec A.5): examples of length 20-50 packed into 220 tokens,
    each one's targets those of the unpacked oracle on its own tokens, then <null> padding."""
    task = make_task("decode_recall", length=220, pack_min=20, pack_max=50)
    b = task.build(seed=5, n=50)
    lengths = []
    for r, (x, y) in enumerate(zip(rows(task, b.inputs), rows(task, b.targets))):
        bounds = [int(s) for s in b.meta["starts"][r] if s >= 0]  # example starts, then the padding's
        assert bounds[0] == 0 and 220 - 50 < bounds[-1] <= 220
        for a, e in zip(bounds, bounds[1:]):
            assert 20 <= e - a <= 50
            assert y[a:e] == oracle_decode_recall(task, x[a:e], {})
            lengths.append(e - a)
        assert x[bounds[-1]:] == y[bounds[-1]:] == [NULL] * (220 - bounds[-1])
    assert min(lengths) < 25 and max(lengths) > 45
    with pytest.raises(TaskError, match="packed example lengths"):
        make_task("decode_recall", length=40, pack_min=20, pack_max=50).validate()
