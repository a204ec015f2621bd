"""Paper A's lower bounds (lib/claims/paper_a_theory.py; the witness pairs in lib/tasks/witness.py,
the models on them in lib/training/witness.py): the Thm 3.7 witness pairs against their
definition and against brute force (R is exactly the largest range that still changes a
defined target), windowed Transformers that must stay at or below 1/2 on them and models
that must not be bound, the final test `witness` of trained runs (its record, its refusal on
tasks without pairs, a tiny sweep end to end), the bound formulas on hand-computed values, and
the claim rules flipping on perturbed data. A few seconds on 2 CPU cores."""
from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import lib.claims.paper_a_theory as T
from lib.claims.rules import NOT_REPRODUCED, NOT_TESTED, REPRODUCED
from lib.constructions import build_decode_recall, build_selective_copy
from lib.models import build_model, micro
from lib.tasks import TaskError, make_task
from lib.training import TrainConfig, final_tests, train

PAPER = {"selective_copy": dict(num_vocab=26, numbers=5, p=0.2, length=100),
         "decode_recall_last": dict(num_vocab=32, length=100),
         "mkar": dict(num_vocab=8, key_size=2, length=100),
         "needle": dict(num_vocab=100, length=100)}
EXPECTED_R = {"selective_copy": lambda t: t.length, "decode_recall_last": lambda t: t.length - 1,
              "mkar": lambda t: t.length - 2, "needle": lambda t: t.length - 1}
SMALL = {"selective_copy": dict(num_vocab=6, numbers=3, length=24),
         "decode_recall_last": dict(num_vocab=8, length=20),
         "mkar": dict(num_vocab=4, key_size=2, length=20),
         "needle": dict(num_vocab=10, length=20)}


def all_tasks():
    for name in PAPER:
        yield make_task(name, **PAPER[name])
        yield make_task(name, **SMALL[name])
    yield make_task("selective_copy", **{**PAPER["selective_copy"], "mixed": True})
    yield make_task("mkar", num_vocab=8, key_size=3, length=60)
    yield make_task("mkar", num_vocab=5, key_size=1, length=30)


@pytest.mark.parametrize("task", list(all_tasks()), ids=lambda t: f"{t.name}-L{t.length}")
def test_reference_targets_and_support_match_the_generator(task):
    b = task.build(seed=5, n=400)
    x = b.inputs.numpy()
    assert (T.last_targets(task, x) == b.targets[:, -1].numpy()).all()
    assert T.in_support(task, x).all()


@pytest.mark.parametrize("task", list(all_tasks()), ids=lambda t: f"{t.name}-L{t.length}")
def test_witness_pairs_satisfy_their_definition(task):
    pairs = T.witness_pairs(task, 200)
    R, L = pairs.R, task.length
    assert R == T.dependency_range(task) == EXPECTED_R[task.name](task)
    assert (pairs.x[:, L - R + 1:] == pairs.x2[:, L - R + 1:]).all()  # the last R - 1 tokens shared
    assert (pairs.x[:, L - R] != pairs.x2[:, L - R]).all()            # and they differ just before
    assert (pairs.x[:, : L - R] == pairs.x2[:, : L - R]).all()        # (nowhere else)
    assert (pairs.y != task.null).all() and (pairs.y2 != task.null).all() and (pairs.y != pairs.y2).all()
    assert T.in_support(task, pairs.x).all() and T.in_support(task, pairs.x2).all()
    assert all(T.check_witness_pairs(task, pairs).values())
    assert (T.witness_pairs(task, 200).x == pairs.x).all()  # seeded
    assert T.range_reason(task).startswith(f"R = ")


def brute_force_R(task, xs: np.ndarray) -> int:
    """The largest R such that two inputs of the support share their last R - 1 tokens and
    have different defined targets at the last position."""
    y = T.last_targets(task, xs)
    xs, y = xs[y != task.null], y[y != task.null]
    L, best = task.length, 0
    for s in range(L):  # a shared suffix of s tokens
        groups: dict[bytes, int] = {}
        for row, t in zip(xs, y):
            key = row[L - s:].tobytes()
            if groups.setdefault(key, t) != t:
                best = s + 1
                break
        else:
            break
    return best


def support(task) -> np.ndarray:
    """Every input of a tiny task's support."""
    L, V = task.length, task.num_vocab
    if task.name == "selective_copy":
        xs = np.array(list(itertools.product(range(V + task.numbers), repeat=L)))
    elif task.name == "decode_recall_last":
        nb = task.n_bits
        ctx = np.array(list(itertools.product(range(V), repeat=L - nb)))
        bits = np.array(list(itertools.product((V, V + 1), repeat=nb)))
        xs = np.concatenate([np.repeat(ctx, len(bits), 0), np.tile(bits, (len(ctx), 1))], 1)
    elif task.name == "mkar":
        xs = np.array(list(itertools.product(range(V), repeat=L)))
    else:  # needle: marker in the first half, the query marker last
        rows = []
        for pos in range(L // 2):
            for w in itertools.product(range(V), repeat=L - 2):
                r = list(w)
                r.insert(pos, V)
                rows.append(r + [V + 1])
        xs = np.array(rows)
    assert T.in_support(task, xs).all()
    return xs


@pytest.mark.parametrize("task", [make_task("selective_copy", num_vocab=2, numbers=2, length=8),
                                  make_task("decode_recall_last", num_vocab=4, length=8),
                                  make_task("mkar", num_vocab=2, key_size=2, length=9),
                                  make_task("mkar", num_vocab=2, key_size=3, length=10),
                                  make_task("mkar", num_vocab=3, key_size=1, length=7),
                                  make_task("needle", num_vocab=3, length=8)], ids=lambda t: t.name)
def test_R_is_exactly_the_largest_range_by_brute_force(task):
    """Over every input of a tiny task: no pair sharing R tokens has different targets, some
    pair sharing R - 1 does, so Thm 3.7's count is exactly right."""
    assert brute_force_R(task, support(task)) == T.dependency_range(task)


def test_receptive_field_counts():
    L = 100
    assert T.receptive_field(micro("TF-TF", 12, window=20), L) == 39
    assert T.sum_windows(micro("TF-TF", 12, window=20), L) == 40
    assert T.receptive_field(micro("TF-TF-TF", 24, window=20), L) == 58
    assert T.receptive_field(micro("TF", 12, window=None), L) == L
    assert T.receptive_field(micro("SSM-TF", 12, window=5), L) is None
    sc = make_task("selective_copy", **PAPER["selective_copy"])
    assert T.is_bound(micro("TF-TF", 12, window=50), sc) and not T.is_bound(micro("TF-TF", 12, window=51), sc)
    assert not T.is_bound(micro("SSM-SSM", 12, window=None), sc)


def test_tiny_windowed_transformer_stays_at_or_below_one_half():
    """A briefly trained TF-TF whose windows sum below R sees the same input on both members:
    bit-identical logits, the same answer on every pair, accuracy <= 1/2. At the edge
    (receptive field R - 1) it is still bound; one more token and it is not."""
    task = make_task("selective_copy", num_vocab=6, numbers=3, length=32)
    R = T.dependency_range(task)
    assert R == 32
    torch.manual_seed(0)
    model = build_model(micro("TF-TF", 8, window=10), task.vocab_size, task.seq_len, seed=0)
    assert T.sum_windows(model.cfg, task.length) == 20 < R
    train(model, task, TrainConfig(steps=30, lr=1e-2, warmup=5), seed=0, device="cpu", progress=False)
    pairs = T.witness_pairs(task, 300)
    r = T.witness_eval(model, task, pairs)
    assert r["bound"] and r["agree"] == 1.0 and r["max_logit_gap"] == 0.0
    assert r["acc"] <= 0.5 and r["both_right"] == 0.0
    for window, bound in ((16, True), (17, False)):  # receptive field 2w - 1: 31 = R - 1, then 33
        m = build_model(micro("TF-TF", 8, window=window), task.vocab_size, task.seq_len, seed=1).double()
        r = T.witness_eval(m, task, pairs)
        assert r["bound"] is bound
        if bound:
            assert r["agree"] == 1.0 and r["max_logit_gap"] == 0.0
        else:
            assert r["max_logit_gap"] > 1e-9  # it reads position 0: the pair's members differ


@pytest.mark.parametrize("name", list(PAPER))
def test_models_with_an_ssm_layer_or_a_large_window_are_not_bound(name):
    """Untrained is enough to tell the members apart: an SSM-TF whose Mamba barely decays (A_log
    set to -10; at the micro init the memory of position 0 underflows after ~100 steps) and a
    full-window TF-TF give different logits on some pair. Float64 keeps the gap far above rounding."""
    task = make_task(name, **PAPER[name])
    pairs = T.witness_pairs(task, 100)
    ssm = build_model(micro("SSM-TF", 8, window=5), task.vocab_size, task.seq_len, seed=0).double()
    with torch.no_grad():
        ssm.layers[0].mixer.A_log.fill_(-10.0)
    full = build_model(micro("TF-TF", 8, window=100), task.vocab_size, task.seq_len, seed=0).double()
    for model in (ssm, full):
        r = T.witness_eval(model, task, pairs)
        assert not r["bound"] and r["max_logit_gap"] > 1e-12


def test_constructed_hybrids_beat_one_half():
    """The constructions (an SSM layer first) answer both members of every pair: Thm 3.7 does
    not bind them, and the evaluator does see accuracy above 1/2 when it is there."""
    for name, build in (("selective_copy", build_selective_copy), ("decode_recall_last", build_decode_recall)):
        task = make_task(name, **PAPER[name])
        r = T.witness_eval(build(task=task), task, T.witness_pairs(task, 200))
        assert not r["bound"] and r["acc"] == 1.0 and r["both_right"] == 1.0 and r["agree"] == 0.0


def test_bounds_on_hand_computed_values():
    assert T.thm42(L=100, N=5, M=26) == pytest.approx({"ssm_bits": 5 * 4.700439718141092, "tf_sum_windows": 100})
    assert T.thm45(L=100, W=32) == {"ssm_bits": 160.0, "tf_sum_windows": 100.0}
    assert T.thm33_displayed(5, 26, 5, 26) == 0.0
    assert T.thm33_displayed(3, 4, 6, 2) == 0.0  # 3 * 2 - 6 * 1
    assert T.thm33_displayed(2, 8, 1, 2) == pytest.approx(5.0)  # q = 1 is not injective there
    assert T.q_min_injective(5, 26, 26) == 5
    assert T.q_min_injective(3, 4, 2) == 6
    assert T.q_min_injective(2, 10, 3) == 5  # 3^4 = 81 < 100 <= 243
    assert T.q_min_injective(16, 16, 16) == 16
    # Fano form at error 1/2: m log V - q (1 + log2(Y - 1) / 2)
    assert T.thm33_fano(16, 16, 16, 16) == pytest.approx(64 - 16 - 8 * math.log2(15))
    assert T.thm33_fano(5, 26, 5, 26, error=0.0) == pytest.approx(5 * math.log2(26))
    assert T.binary_entropy(0.5) == 1.0
    # the audit's observation: at every injective q the displayed bound is <= 0
    for m, V, Y in itertools.product(range(1, 6), range(2, 9), range(2, 9)):
        q = T.q_min_injective(m, V, Y)
        assert Y ** q >= V ** m and (q == 0 or Y ** (q - 1) < V ** m)
        assert T.thm33_displayed(m, V, q, Y) <= 1e-9
    demo = T.injectivity_demo(N=3, M=3)
    assert demo["injective"].tolist() == [False, False, False, True]
    assert demo.loc[demo["injective"], "displayed bound (bits)"].max() <= 0


def test_task_bounds_per_task():
    b = T.task_bounds(make_task("selective_copy", **PAPER["selective_copy"]))
    assert (b["m"], b["q"], b["V_u"], b["Y"], b["theorem"], b["R"]) == (5, 5, 26, 26, "4.2", 100)
    b = T.task_bounds(make_task("decode_recall_last", **PAPER["decode_recall_last"]))
    assert (b["m"], b["q"], b["V_u"], b["Y"], b["theorem"], b["R"]) == (16, 16, 16, 16, "4.5", 99)
    assert b["ssm_bound_bits"] == 160.0 and b["thm33_displayed"] == 0.0
    b = T.task_bounds(make_task("mkar", **PAPER["mkar"]))
    assert b["m"] == 0 and b["theorem"] == "none" and b["R"] == 98


def test_theory_table_on_the_committed_gpu_results():
    table = T.theory_table("quick")
    assert list(table["experiment"]) == ["A-fig4", "A-fig11", "A-fig11", "A-fig13", "A-fig5", "A-fig6", "A-fig7"]
    row = table.iloc[0]
    assert row["R (ours)"] == 100 and row["TF receptive field"] == 39 and row["TF bound by 3.7"]
    assert row["Thm 3.3 displayed (bits)"] == 0.0
    assert row["pure TF first reaches"].startswith("10,608 params (d 24)")
    assert row["pure SSM first reaches"].startswith("13,488 params (d 24)")
    assert table.set_index("experiment").loc["A-fig7", "pure TF first reaches"].startswith("never")
    none = T.theory_table("quick", results_profile="paper", experiments=("A-fig4",))
    assert none["pure TF first reaches"].iloc[0] == "no paper results"


def witness_rows() -> pd.DataFrame:
    rows = [{"model": f"TF-TF w{w}", "bound": w <= 50, "acc": 0.3 if w <= 50 else 0.9, "se": 0.02,
             "agree": 1.0 if w <= 50 else 0.2, "trained": True} for w in (5, 20, 50, 60, 100)]
    return pd.DataFrame(rows)


def test_witness_rule_flips_on_perturbed_data():
    base = witness_rows()
    ours, v = T.thm37_witness(base)
    assert v == REPRODUCED, ours
    over = base.copy()
    over.loc[1, "acc"] = 0.55  # a bound model above 1/2 + 2 se (0.54): a window bug
    assert T.thm37_witness(over)[1] == NOT_REPRODUCED
    within = base.copy()
    within.loc[1, "acc"] = 0.53  # within its sampling error
    assert T.thm37_witness(within)[1] == REPRODUCED
    assert T.thm37_witness(base[~base["bound"]])[1] == NOT_TESTED
    assert T.thm37_witness(pd.DataFrame())[1] == NOT_TESTED
    # trained runs' rows, where given, decide; without them the untrained ones do
    assert T.thm37_witness(over, base)[1] == REPRODUCED and T.thm37_witness(base, over)[1] == NOT_REPRODUCED
    assert T.thm37_witness(over, pd.DataFrame())[1] == NOT_REPRODUCED


def test_vacuity_rule_flips_on_perturbed_data():
    table = T.theory_table("quick")
    ours, v = T.thm33_vacuous(table)
    assert v == REPRODUCED, ours
    bad = table.copy()
    bad.loc[0, "Thm 3.3 displayed (bits)"] = 3.0  # a positive bound at an injective q
    assert T.thm33_vacuous(bad)[1] == NOT_REPRODUCED
    assert T.thm33_vacuous(table[table["m"] == 0])[1] == NOT_TESTED


def test_witness_final_test_on_a_bound_transformer_stays_at_or_below_one_half(tmp_path):
    """The final test `witness` (what each trained run of A-fig14/A-fig15 records), on a briefly
    trained TF-TF whose receptive field (19) is below R (32): bit-identical logits on both members
    in fp32, the same answer on every pair, accuracy <= 1/2; a small JSON-able record."""
    task = make_task("selective_copy", num_vocab=6, numbers=3, length=32)
    model = build_model(micro("TF-TF", 8, window=10), task.vocab_size, task.seq_len, seed=0)
    train(model, task, TrainConfig(steps=30, lr=1e-2, warmup=5), seed=0, device="cpu", progress=False)
    assert next(model.parameters()).dtype == torch.float32
    r = final_tests.run_tests(model, task, {"witness": {"n": 200}}, tmp_path, device="cpu")["witness"]
    assert set(r) == {"n_pairs", "acc", "se", "agree", "both_right", "R", "sum_windows", "receptive_field",
                      "bound", "max_logit_gap"}
    assert r["n_pairs"] == 200 and r["R"] == 32 and r["receptive_field"] == 19 and r["sum_windows"] == 20
    assert r["bound"] is True and r["max_logit_gap"] == 0.0 and r["agree"] == 1.0
    assert r["acc"] <= 0.5 and r["both_right"] == 0.0
    assert json.loads(json.dumps(r, allow_nan=False)) == r  # small, plain JSON
    # the pairs are WITNESS_SEED's whatever the run's seed: another model sees the same pairs
    assert (T.witness_pairs(task, 200).x == T.witness_pairs(task, 200, T.WITNESS_SEED).x).all()


def test_the_witness_test_is_refused_on_a_task_without_witness_pairs():
    """Before any training, in one line: paper B's n-gram task, the dense decode-recall task (no
    last-position theorem), a setting the test does not take, fewer than two pairs."""
    ngram = make_task("ngram", num_symbols=30, n=2, k=3, min_len=10, max_len=20)
    for task, match in ((ngram, "the witness test needs one of the tasks selective_copy, decode_recall_last, "
                                 "mkar, needle, not 'ngram'"),
                        (make_task("decode_recall", num_vocab=32, length=100), "not 'decode_recall'")):
        with pytest.raises(TaskError, match=match) as e:
            final_tests.check({"witness": {"n": 100}}, task)
        assert "\n" not in str(e.value)
    mkar = make_task("mkar", **PAPER["mkar"])
    final_tests.check({"witness": {"n": 100}}, mkar)
    with pytest.raises(TaskError, match="test 'witness' has no setting lengths"):
        final_tests.check({"witness": {"lengths": [10]}}, mkar)
    with pytest.raises(TaskError, match="needs n >= 2 pairs"):
        final_tests.check({"witness": {"n": 1}}, mkar)
    with pytest.raises(TaskError, match="the lengths test needs the decode_recall task, not 'mkar'"):
        final_tests.check({"lengths": {"lengths": [10]}}, mkar)


def test_a_sweep_records_the_witness_test_and_the_claim_reads_it(tmp_path, monkeypatch):
    """End to end on a tiny window sweep: each run record holds `tests.witness`; witness_runs reads
    them back through results.parquet (here as the 'quick' results of A-fig14), trained_witness
    sums them per window, and the claim rule prefers them to the untrained models."""
    from lib import config
    from lib.config import expand_runs
    from lib.sweeps import run_sweep

    spec = {"name": "A-fig14", "profile": "quick", "task": {"name": "selective_copy", "length": 24},
            "eval": {"n": 32, "seed": 1}, "model": {"family": "micro", "d_model": 4},
            "grid": {"arch": ["TF-TF"], "window": [4, 24]}, "seeds": 1,
            "train": {"steps": 6, "batch_size": 4, "warmup": 2}, "lr": {"grid": [1e-2]},
            "tests": {"witness": {"n": 50}}}
    runs = expand_runs(spec)
    monkeypatch.setattr(config, "ROOT", tmp_path)  # committed_results reads <ROOT>/data/results
    out = tmp_path / "data" / "results" / "quick" / "A-fig14"
    run_sweep(runs, out, profile="quick", data_dir=tmp_path / "eval", progress=False)
    for run in runs:
        w = json.loads((out / "runs" / f"{run.id}.json").read_text())["tests"]["witness"]
        assert w["n_pairs"] == 50 and w["bound"] is (run.model["window"] == 4)
    got = T.witness_runs("quick")
    assert len(got) == 2 and got["trained"].all() and got.set_index("window").loc[4, "max_logit_gap"] == 0.0
    summary = T.trained_witness(got)
    assert summary["window"].tolist() == [4, 24] and summary["bound"].tolist() == [True, False]
    bound = summary.iloc[0]
    assert bound["acc_max"] <= 0.5 < bound["limit"] and bound["above"] == 0
    ours, verdict = T.thm37_witness(witness_rows(), got)
    assert verdict == REPRODUCED and ours.startswith("1 bound models (1 trained)"), ours
    assert T.witness_runs("gpu").empty  # no results there: the notebook then uses the untrained models
