"""Paper A's constructed hybrids (Thms 4.3, 4.6): hand-set weights, no training, checked
against brute-force oracles. Runs in well under a minute on 2 CPU cores."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from lib.constructions import (build_decode_recall, build_selective_copy, eval_decode_recall, eval_selective_copy,
                               last_position_logits, last_position_predictions, selective_copy_adversarial,
                               selective_copy_oracle)
from lib.models import Mamba, SequenceModel
from lib.models.attention import AttentionLayer
from lib.models.lm import SSMBlock
from lib.tasks import make_task

F64 = torch.float64


@pytest.fixture(scope="module")
def paper_copy():
    task = make_task("selective_copy", num_vocab=26, numbers=5, length=100, p=0.2)
    return task, build_selective_copy(task=task)


def test_selective_copy_is_an_ordinary_hybrid(paper_copy):
    task, model = paper_copy
    assert isinstance(model, SequenceModel) and model.cfg.layers == ["mamba", "attn"]
    assert isinstance(model.layers[0], SSMBlock) and isinstance(model.layers[0].mixer, Mamba)
    assert isinstance(model.layers[1], AttentionLayer)
    assert model.cfg.window == 10  # distances up to N = 9, plus the current position
    V = task.vocab_size
    assert model.cfg.d_model == 7 + 2 * math.ceil(math.log2(V))  # O(log |V|), no L
    assert model.construction["state_size"] <= V
    assert not any(p.requires_grad is False for p in model.parameters())


def test_selective_copy_exhaustive_small():
    """Every sequence over 2 words + 2 numbers (#5, #6) of length 7 with a number token."""
    task = make_task("selective_copy", num_vocab=2, numbers=2, length=7)
    model = build_selective_copy(task=task)
    x = np.array(list(itertools.product(range(4), repeat=7)))
    target = selective_copy_oracle(task, x)
    has = target >= 0
    assert has.sum() == 4 ** 7 - 2 ** 7
    pred = last_position_predictions(model, torch.as_tensor(x), batch=8192, dtype=F64).numpy()
    assert (pred[has] == target[has]).all()


def test_selective_copy_random_paper_size(paper_copy):
    task, model = paper_copy
    b = task.build(seed=0, n=10_000)
    assert (selective_copy_oracle(task, b.inputs.numpy()) == np.where(b.mask[:, -1], b.targets[:, -1], -1)).all()
    r = eval_selective_copy(model, task, b.inputs)  # float32: margins are far above its rounding
    assert r["n"] == 10_000 and r["acc"] == 1.0
    assert eval_selective_copy(model, task, b.inputs[:2000], dtype=F64)["acc"] == 1.0


def test_selective_copy_adversarial(paper_copy):
    task, model = paper_copy
    for kind, x in selective_copy_adversarial(task, 300, seed=1).items():
        r = eval_selective_copy(model, task, x)
        assert r["n"] == 300 and r["acc"] == 1.0, kind
    # the one number at the very start, max distance, every other token a word
    x = np.zeros((1, 100), int)
    x[0, 0] = 26 + 4
    x[0, 1:] = np.arange(99) % 26
    assert eval_selective_copy(model, task, x, dtype=F64)["acc"] == 1.0


@pytest.mark.parametrize("num_vocab,length", [(128, 300), (1024, 1000)])
def test_selective_copy_other_sizes(num_vocab, length):
    task = make_task("selective_copy", num_vocab=num_vocab, length=length)
    model = build_selective_copy(task=task)
    assert eval_selective_copy(model, task, task.build(seed=2, n=300).inputs)["acc"] == 1.0


def test_selective_copy_ssm_state_is_the_latest_distance(paper_copy):
    """The Mamba block writes exactly (cos v theta, sin v theta) of the latest number (rows 5, 6)."""
    task, model = paper_copy
    b = task.build(seed=3, n=50)
    acts = {}
    hook = model.layers[0].register_forward_hook(lambda m, i, o: acts.__setitem__("h1", o))
    with torch.no_grad():
        model.double()(b.inputs)
    hook.remove()
    x = b.inputs.numpy()
    is_num = x >= task.num_vocab
    t = np.arange(task.length)
    last = np.maximum.accumulate(np.where(is_num, t, -1), axis=1)
    v = task.distance(np.take_along_axis(x, np.maximum(last, 0), axis=1))
    th = model.construction["theta"]
    want = np.stack([np.cos(v * th), np.sin(v * th)], -1) * (last >= 0)[..., None]
    got = acts["h1"][..., 5:7].numpy()
    assert np.abs(got - want).max() < 1e-12


def test_last_position_shortcut_matches_forward(paper_copy):
    task, model = paper_copy
    x = task.build(seed=4, n=64).inputs
    with torch.no_grad():
        full = model.double()(x)[:, -1]
        short = last_position_logits(model, x)
    assert torch.allclose(full, short, rtol=1e-9, atol=1e-9)
    task = make_task("decode_recall_last", num_vocab=32, length=300)
    model = build_decode_recall(task=task)
    x = task.build(seed=4, n=16).inputs
    with torch.no_grad():
        assert torch.allclose(model(x)[:, -1], last_position_logits(model, x), rtol=1e-9, atol=1e-6)


def test_decode_recall_paper_size():
    task = make_task("decode_recall_last", num_vocab=32, length=100)
    model = build_decode_recall(task=task)
    assert model.cfg.layers == ["mamba", "attn"] and isinstance(model.layers[0].mixer, Mamba)
    assert model.construction["state_size"] <= task.vocab_size
    r = eval_decode_recall(model, task, 10_000, seed=0)
    assert r["acc"] >= 0.99 and r["failures"] == r["failures_allowed"] == 0
    r64 = eval_decode_recall(model, task, 1_000, seed=1, dtype=F64)
    assert r64["failures"] == 0


@pytest.mark.parametrize("num_vocab,length", [(32, 1000), (64, 600)])
def test_decode_recall_window_smaller_than_context(num_vocab, length):
    """Window O~(|V|) < L: >= 99% and every failure is a word absent from the window."""
    task = make_task("decode_recall_last", num_vocab=num_vocab, length=length)
    model = build_decode_recall(task=task)
    assert model.cfg.window < length - 1
    r = eval_decode_recall(model, task, 1_500 if length >= 1000 else 800, seed=5)
    assert r["acc"] >= 0.99 and r["failures"] == r["failures_allowed"]
    assert r["acc_in_window"] == 1.0
