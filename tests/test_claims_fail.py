"""Rules that can fail (issue 23, section 5): every claim rule of both papers, from a small
synthetic result set it judges "reproduced", must change its verdict when the data it
reads is perturbed: two architectures' results swapped, a curve shifted across one of
its thresholds, one sub-statement broken at a time. A rule that cannot flip tests nothing.

Paper A: lib/claims/paper_a.py (C2-*), lib/claims/paper_a_scale.py (C3-*) and lib/claims/paper_a_theory.py
(A-thm3.7, A-thm3.3-vacuous, on real models and bounds). Paper B: lib/claims/paper_b_ngram.py (F1-F3,
n-gram retrieval) and lib/claims/paper_b_position.py (F4-F7, position retrieval). The paper B
builders of run records are the ones of tests/test_paper_b_ngram.py and tests/test_position.py.
"""
from __future__ import annotations

import math
import re

import pandas as pd
import pytest

import test_paper_b_ngram as NB  # paper B run records (n-gram)
import test_position as PB  # paper B run records (position)
import test_scale as SC  # paper A A-scale run records
from lib.analysis import position as P
import lib.claims.paper_a as claims
import lib.claims.paper_a_scale as paper_a_scale
import lib.claims.paper_a_theory as theory_a
import lib.claims.paper_b_ngram as paper_b_ngram
import lib.claims.paper_b_position as paper_b_position
from lib.claims.rules import NOT_REPRODUCED, PARTLY, REPRODUCED


def outcomes(ours: str) -> list[str]:
    """'holds' / 'fails' / 'not tested' of each sub-statement (a), (b), ... in order."""
    return re.findall(r"-> (holds|fails|not tested)(?=; \([a-d]\) |$)", ours)


def flips(rule, base: tuple, perturbed: tuple, to: str | None = None, fails: str | None = None) -> str:
    """The rule reproduces the claim on `base` and not on `perturbed` (verdict `to` when
    given; `fails`: the sub-statements, by letter, that fail, the others holding)."""
    ours, v = rule(*base)
    assert v == REPRODUCED, ours
    ours2, v2 = rule(*perturbed)
    assert v2 != REPRODUCED, ours2
    if to is not None:
        assert v2 == to, ours2
    if fails is not None:
        got = outcomes(ours2)
        assert len(got) >= 2 and all("abcd".index(t) < len(got) for t in fails), ours2
        assert got == ["fails" if "abcd"[i] in fails else "holds" for i in range(len(got))], ours2
    return ours2


# ==== paper A: C2 (lib/claims/paper_a.py) ==========================================================

WIDTHS = (4, 8, 16, 24)
PARAMS = {"TF-TF": (488, 1488, 5024, 10608), "TF-SSM": (872, 2192, 6176, 12048),
          "SSM-TF": (872, 2192, 6176, 12048), "SSM-SSM": (1256, 2896, 7328, 13488)}
PARAMS3 = {"TF-TF-TF": (15552, 58752, 228096), "SSM-SSM-SSM": (19872, 61056, 208512),
           "SSM-SSM-TF": (18432, 60288, 215040)}
TWO = ("TF-TF", "TF-SSM", "SSM-TF", "SSM-SSM")


def frame(acc: dict[str, list[float]], x: str = "d_model", xs=WIDTHS, params=PARAMS, **const) -> pd.DataFrame:
    """Rows per (arch, x, seed), 3 seeds at +-0.001 around each mean; params by width."""
    rows = []
    for arch, values in acc.items():
        for i, (v, a) in enumerate(zip(xs, values)):
            p = params[arch][i] if x == "d_model" and arch in params else 1000
            rows += [{"arch": arch, x: v, "seed": s, "params": p, "token_acc": a + 0.001 * (s - 1), **const}
                     for s in range(3)]
    return pd.DataFrame(rows)


def swap(df: pd.DataFrame, a: str, b: str, col: str = "arch") -> pd.DataFrame:
    """The results of `a` and `b` exchanged (their rows relabelled)."""
    out = df.copy()
    out[col] = df[col].map(lambda v: b if v == a else a if v == b else v)
    return out


def shift(df: pd.DataFrame, arch: str, by: float, where=None) -> pd.DataFrame:
    """`arch`'s accuracies moved by `by` (optionally only on rows where `where(df)`)."""
    out = df.copy()
    rows = out["arch"] == arch
    if where is not None:
        rows &= where(out)
    out.loc[rows, "token_acc"] += by
    return out


FIG4 = frame({"TF-TF": [.056, .352, .727, .923], "SSM-SSM": [.084, .305, .485, .931],
              "TF-SSM": [.100, .433, .822, .908], "SSM-TF": [.087, .999, 1.0, 1.0]})  # the paper's table


@pytest.mark.parametrize("perturb, to", [
    (lambda d: swap(d, "SSM-TF", "TF-TF"), NOT_REPRODUCED),                        # architectures swapped
    (lambda d: shift(d, "SSM-TF", -0.05, lambda d: d["d_model"] == 8), PARTLY),    # 0.99 only at ~6k
    (lambda d: shift(d, "TF-TF", +0.2, lambda d: d["d_model"] == 16), PARTLY),    # TF-TF 0.9 at < 3x
    (lambda d: shift(d, "TF-SSM", +0.5, lambda d: d["d_model"] == 8), PARTLY),    # TF-SSM unlike the pure ones
])
def test_c2_copy_flips(perturb, to):
    flips(claims.c2_copy, (FIG4,), (perturb(FIG4),), to)


FIG5 = frame({"TF-TF-TF": [.2, .3, .38], "SSM-SSM-SSM": [.15, .25, .35], "SSM-SSM-TF": [.3, .55, .6]},
             xs=(24, 48, 96), params=PARAMS3)


@pytest.mark.parametrize("perturb, to", [
    (lambda d: swap(d, "SSM-SSM-TF", "TF-TF-TF"), NOT_REPRODUCED),
    (lambda d: shift(d, "SSM-SSM-TF", -0.15), PARTLY),       # the hybrid below 0.5, still the best
    (lambda d: shift(d, "TF-TF-TF", +0.05), PARTLY),         # a pure model above 0.4
    (lambda d: shift(d, "SSM-SSM-SSM", +0.1), PARTLY),
])
def test_c2_ard_flips(perturb, to):
    flips(claims.c2_ard, (FIG5,), (perturb(FIG5),), to)


def converged(df: pd.DataFrame, experiment: str, cap: int = 24000) -> pd.DataFrame:
    """`df` as runs trained to convergence: every run stopped by the plateau rule but the
    pure models' last width, cut at the cap."""
    out = df.assign(experiment=experiment, plateau_at=1000.0, steps=5000)
    last = out["d_model"] == out["d_model"].max()
    out.loc[last & (out["arch"] != out["arch"].iloc[-1]), ["plateau_at", "steps"]] = (float("nan"), cap)
    return out


@pytest.mark.parametrize("perturb, to", [
    (lambda d: swap(d, "SSM-SSM-TF", "TF-TF-TF"), NOT_REPRODUCED),
    (lambda d: shift(d, "SSM-SSM-TF", -0.15), PARTLY),
    (lambda d: shift(d, "TF-TF-TF", +0.05), PARTLY),
])
def test_c2_ard_converged_flips_only_when_both_generators_fail(perturb, to):
    """The better of the two generators decides: one perturbed generator leaves the claim
    reproduced, both perturbed flip it."""
    last, dense = converged(FIG5, "A-fig5-converge"), converged(FIG5, "A-fig5-converge-dense")
    assert claims.c2_ard_converged(last, converged(perturb(FIG5), "A-fig5-converge-dense"))[1] == REPRODUCED
    ours = flips(claims.c2_ard_converged, (last, dense),
                 (converged(perturb(FIG5), "A-fig5-converge"), converged(perturb(FIG5), "A-fig5-converge-dense")), to)
    assert "last-position:" in ours and "dense:" in ours and "cut at the cap" in ours


FIG6 = frame({"TF-TF": [.12, .16, .23, .55], "SSM-SSM": [.16, .17, .36, .52],
              "TF-SSM": [.13, .18, .29, .52], "SSM-TF": [.14, .7, .99, .99]})


@pytest.mark.parametrize("perturb, to", [
    (lambda d: swap(d, "SSM-TF", "TF-TF"), NOT_REPRODUCED),
    (lambda d: shift(d, "TF-TF", +0.4, lambda d: d["d_model"] == 16), PARTLY),   # TF-TF 0.6 at 2.3x
    (lambda d: shift(d, "SSM-TF", -0.45), NOT_REPRODUCED),                        # SSM-TF never reaches 0.6
])
def test_c2_mkar_flips(perturb, to):
    flips(claims.c2_mkar, (FIG6,), (perturb(FIG6),), to)


FIG7 = frame({"SSM-TF": [.5, .95, 1, 1], "SSM-SSM": [.4, .92, .99, 1], "TF-TF": [.2, .4, .7, .95]})


@pytest.mark.parametrize("perturb, to", [
    (lambda d: swap(d, "SSM-TF", "TF-TF"), NOT_REPRODUCED),
    (lambda d: shift(d, "TF-TF", +0.7, lambda d: d["d_model"] == 4), NOT_REPRODUCED),  # TF-TF first
    (lambda d: shift(d, "SSM-SSM", +0.2, lambda d: d["d_model"] == 4), PARTLY),        # SSM-SSM better on average
    (lambda d: shift(d, "SSM-SSM", -0.1, lambda d: d["d_model"] >= 8), PARTLY),        # SSM-SSM 0.9 only after TF-TF
])
def test_c2_nh_flips(perturb, to):
    flips(claims.c2_nh, (FIG7,), (perturb(FIG7),), to)


@pytest.mark.parametrize("perturb, to", [
    (lambda d: swap(d, "SSM-TF", "TF-TF"), NOT_REPRODUCED),
    (lambda d: shift(d, "SSM-SSM", +0.2, lambda d: d["d_model"] == 4), PARTLY),
])
def test_c2_nh_converged_flips(perturb, to):
    ours = flips(claims.c2_nh_converged, (converged(FIG7, "A-fig7-converge", 40000),),
                 (converged(perturb(FIG7), "A-fig7-converge", 40000),), to)
    assert "steps taken: median" in ours and "stopped by the rule" in ours


VOCAB_CURVES = {"TF-TF": [.1, .3, .6, .8], "TF-SSM": [.1, .3, .6, .8], "SSM-TF": [.3, .9, 1, 1],
                "SSM-SSM": [.1, .2, .5, .8]}
FIG11 = pd.concat([frame(VOCAB_CURVES, **{"task.num_vocab": 200}), frame(VOCAB_CURVES, **{"task.num_vocab": 1000})])
AT_1000 = lambda d: d["task.num_vocab"] == 1000  # noqa: E731


@pytest.mark.parametrize("perturb, to", [
    (lambda d: pd.concat([d[~AT_1000(d)], swap(d[AT_1000(d)], "SSM-TF", "TF-TF")]),
     NOT_REPRODUCED),                                         # SSM-TF and TF-TF swapped at 1000 only
    (lambda d: shift(d, "SSM-SSM", -0.15, AT_1000), PARTLY),  # one architecture 0.15 lower at 1000
])
def test_c2_vocab_flips(perturb, to):
    flips(claims.c2_vocab, (FIG11,), (perturb(FIG11),), to)


def test_c2_vocab_best_architecture_alone_flips():
    """Only the best architecture changes (gaps all <= 0.1): partly."""
    close = {**VOCAB_CURVES, "TF-TF": [.25, .85, .95, .95]}  # 0.05 below SSM-TF at 200 ...
    at200 = frame(close, **{"task.num_vocab": 200})
    at1000 = frame({**close, "TF-TF": [.32, .92, 1, 1]}, **{"task.num_vocab": 1000})  # ... above it at 1000
    flips(claims.c2_vocab, (pd.concat([at200, frame(close, **{"task.num_vocab": 1000})]),),
          (pd.concat([at200, at1000]),), PARTLY)


HEADS_DOWN = frame({a: [.9, .7, .6, .5] for a in TWO}, x="heads", xs=(1, 2, 3, 4))
FLAT = frame({a: [.90, .93, .89, .92, .90, .94, .88, .91, .93, .89, .92, .90] for a in TWO[1:]},
             x="d_state", xs=range(1, 13))
RISING = frame({a: [.1 + .07 * i for i in range(12)] for a in TWO[1:]}, x="d_state", xs=range(1, 13))
HEADS_BASE = (HEADS_DOWN, FLAT, HEADS_DOWN, FLAT)


@pytest.mark.parametrize("which, data", [
    (0, shift(HEADS_DOWN, "SSM-TF", +0.45, lambda d: d["heads"] == 4)),  # 4 heads better than 1 (copy)
    (1, swap(RISING, "SSM-SSM", "TF-SSM")),                               # a clear trend in d_state (copy)
    (2, shift(HEADS_DOWN, "TF-TF", +0.25, lambda d: d["heads"] == 2)),   # 2 heads above 1 (MKAR)
    (3, shift(FLAT, "SSM-TF", +0.3, lambda d: d["d_state"] >= 7)),        # a step up in d_state (MKAR)
])
def test_c2_heads_flips_on_each_of_its_four_checks(which, data):
    perturbed = list(HEADS_BASE)
    perturbed[which] = data
    ours = flips(claims.c2_heads, HEADS_BASE, tuple(perturbed), PARTLY)
    got = re.findall(r"-> (holds|fails)", ours)
    assert got == ["fails" if i == which else "holds" for i in range(4)], ours


UNIFORM = frame({a: [.1, .3, .5, .7] for a in TWO})
FIG13 = frame({"TF-TF": [.1, .3, .5, .7], "TF-SSM": [.1, .3, .5, .7], "SSM-TF": [.5, .9, 1, 1],
               "SSM-SSM": [.2, .4, .6, .8]})


@pytest.mark.parametrize("perturb, to", [
    (lambda m, u: (swap(m, "SSM-TF", "TF-SSM"), u), PARTLY),            # the hybrid no longer first
    (lambda m, u: (shift(m, "SSM-SSM", -0.1), u), PARTLY),              # mixed no easier for the SSM
    (lambda m, u: (m, shift(u, "SSM-SSM", +0.09)), PARTLY),             # uniform 0.01 below mixed: < 0.02
    (lambda m, u: (swap(m, "SSM-TF", "TF-TF"), shift(u, "SSM-SSM", +0.2)), NOT_REPRODUCED),
])
def test_c2_adversarial_flips(perturb, to):
    flips(claims.c2_adversarial, (FIG13, UNIFORM), perturb(FIG13, UNIFORM), to)


WINDOWS = (1, 20, 50, 100)
WORSE = frame({"TF-TF": [.6, .5, .4, .3], "SSM-TF": [1, 1, .95, .85]}, x="window", xs=WINDOWS)


@pytest.mark.parametrize("perturb, to", [
    (lambda c, m: (shift(c, "SSM-TF", +0.11, lambda d: d["window"] == 100), m), PARTLY),  # drop 0.04 < 0.05
    (lambda c, m: (c, shift(m, "TF-TF", +0.3, lambda d: d["window"] == 100)), PARTLY),    # no drop at all
    (lambda c, m: (swap(c, 1, 100, "window"), swap(m, 1, 100, "window")), NOT_REPRODUCED),  # windows reversed
])
def test_c2_window_flips(perturb, to):
    flips(claims.c2_window, (WORSE, WORSE), perturb(WORSE, WORSE), to)


# ==== paper A: C3 (lib/claims/paper_a_scale.py) ========================================================

def length_table(curves: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return SC.table(*(SC.record(a, 0.2, SC.curve(s, l)) for a, (s, l) in curves.items()))


LENGTH_OK = {"T_rope": (0.80, 0.60), "mamba": (0.60, 0.30), "hybrid": (0.82, 0.70)}


@pytest.mark.parametrize("curves, fails", [
    ({**LENGTH_OK, "mamba": (0.60, 0.55)}, "a"),                        # the SSM loses accuracy slowest
    ({**LENGTH_OK, "hybrid": (0.90, 0.78)}, "b"),                       # short: hybrid 0.1 above TF
    ({**LENGTH_OK, "hybrid": (0.82, 0.64)}, "c"),                       # long: hybrid only 0.04 ahead
    ({"T_rope": LENGTH_OK["hybrid"], "hybrid": LENGTH_OK["T_rope"], "mamba": LENGTH_OK["mamba"]}, "ac"),  # swapped
])
def test_c3_length_flips(curves, fails):
    base = paper_a_scale.c3_length(length_table(LENGTH_OK))
    assert base[1] == REPRODUCED, base[0]
    ours, v = paper_a_scale.c3_length(length_table(curves))
    assert v == PARTLY, ours
    # the rule's text gives no per-check outcome: recompute which of (a)-(c) the data breaks
    s = {a: c[0] for a, c in curves.items()}
    lo = {a: c[1] for a, c in curves.items()}
    drop = {a: s[a] - lo[a] for a in curves}
    held = {"a": drop["hybrid"] <= min(drop.values()), "b": abs(s["hybrid"] - s["T_rope"]) <= 0.05,
            "c": lo["hybrid"] - lo["T_rope"] >= 0.05}
    assert {k for k, h in held.items() if not h} == set(fails)


PAPER = paper_a_scale.PAPER_TABLE1
COLS = (("mamba", "SSM"), ("T_rope", "TF"), ("hybrid", "Hybrid"))


def ood_table(acc: pd.DataFrame) -> pd.DataFrame:
    return SC.table(*(SC.record(a, p, acc=acc.loc[i, col]) for i, p in enumerate(acc["train proportion"])
                      for a, col in COLS))


def _with(**cols) -> pd.DataFrame:
    t = PAPER.copy()
    for c, v in cols.items():
        t[c] = v
    return t


@pytest.mark.parametrize("table, to", [
    (_with(Hybrid=PAPER["TF"], TF=PAPER["Hybrid"]), NOT_REPRODUCED),            # Hybrid and TF swapped
    (_with(Hybrid=PAPER["Hybrid"] - [0, 0.15, 0.15, 0.15, 0.15, 0]), PARTLY),  # hybrid best at 2 of 6 only
    (_with(SSM=[0.24, 0.34, 0.17, 0.46, 0.5, 0.5]), PARTLY),                    # SSM gains less than the hybrid
    (_with(TF=[0.47, 0.40, 0.64, 0.63, 0.63, 0.47 + 0.34]), PARTLY),            # TF gains more than the hybrid
])
def test_c3_ood_flips(table, to):
    flips(paper_a_scale.c3_ood, (ood_table(PAPER),), (ood_table(table),), to)


# ==== paper A: A-claims-theory (lib/claims/paper_a_theory.py) ================================================

def witness_rows(leak: bool = False) -> pd.DataFrame:
    """Real models on real witness pairs (selective copy, L 24, R 24): a TF-TF of windows 4
    (receptive field 7, bound) and the hand-built SSM-TF (unbound, right on both members).
    leak: the hybrid taken for a windowed Transformer, as a window mask that lets the last
    position see position 0 would make it: a bound model at accuracy 1."""
    from lib.constructions import build_selective_copy
    from lib.models import build_model, micro
    from lib.tasks import make_task
    task = make_task("selective_copy", num_vocab=6, numbers=3, length=24)
    pairs = theory_a.witness_pairs(task, 200)
    tf = build_model(micro("TF-TF", 8, window=4), task.vocab_size, task.seq_len, seed=0)
    rows = pd.DataFrame([theory_a.witness_eval(m, task, pairs) for m in (tf, build_selective_copy(task=task))])
    rows["trained"] = False
    if leak:
        rows.loc[1, "bound"] = True
    return rows


def test_thm37_witness_flips_when_a_bound_model_beats_one_half():
    flips(theory_a.thm37_witness, (witness_rows(),), (witness_rows(leak=True),), NOT_REPRODUCED)


def bounds_rows() -> pd.DataFrame:
    """Thm 3.3 at the fewest injective controls q = q_min, in A-tab-theory's columns: paper A's
    selective copy (5 distances, 26 words), recall with decoding (16 keys, 16 values) and the
    audit's case (m 4, #V 4, #Y 2)."""
    rows = []
    for m, V, Y in ((5, 26, 26), (16, 16, 16), (4, 4, 2)):
        q = theory_a.q_min_injective(m, V, Y)
        rows.append({"m": m, "q": q, "q_min": q, "m log #V": m * math.log2(V), "q log #Y": q * math.log2(Y),
                     "Thm 3.3 displayed (bits)": theory_a.thm33_displayed(m, V, q, Y),
                     "Thm 3.3 Fano, ours (bits)": theory_a.thm33_fano(m, V, q, Y)})
    return pd.DataFrame(rows)


def test_thm33_vacuous_flips_when_fewer_controls_count_as_injective(monkeypatch):
    """A q_min one short (G taken as injective with too few controls) gives a positive display."""
    base = bounds_rows()
    q_min = theory_a.q_min_injective
    monkeypatch.setattr(theory_a, "q_min_injective", lambda m, V, Y: q_min(m, V, Y) - 1)
    flips(theory_a.thm33_vacuous, (base,), (bounds_rows(),), NOT_REPRODUCED)


# ==== paper B: F1-F3 (lib/claims/paper_b_ngram.py) ===========================================================

F1_AUC = {"transformer_nope": 0.1, "mamba": 0.1}


def f1_args(at=None, state=None):
    return NB.f1_tables(NB.PAPER_F1 | (at or {}), NB.PAPER_STATE | (state or {}), auc=F1_AUC)


def test_f1_swapping_a_hybrid_and_an_ssm_breaks_a_and_c():
    """Hybrid2S M2 and Mamba2 exchange their results: (a) fails, and Mamba2's state 16 now
    beats its states 32/64, so (c) fails too."""
    swapped = {"hybrid2s_m2": NB.PAPER_F1["mamba2"], "mamba2": NB.PAPER_F1["hybrid2s_m2"]}
    flips(paper_b_ngram.f1, f1_args(), f1_args(swapped), PARTLY, fails="ac")


@pytest.mark.parametrize("at, state, fails", [
    ({"hybrid2s": 700000}, None, "a"),                             # one hybrid never reaches 0.95 (as the SSMs)
    ({"transformer": 60000}, None, "ad"),                          # TF-RoPE ahead of every hybrid
    ({"transformer_nope": 190000}, None, "b"),                     # NoPE more efficient than RoPE
    (None, {("mamba", 64): None}, "c"),                            # the largest Mamba state does not help
    (None, {("mamba2", 64): 150000}, "c"),                         # Mamba2 at state 64 beats TF-RoPE
    ({"hybridI_2m": 250000}, None, "d"),                           # a HybridI with N < 4 slower than TF-RoPE
])
def test_f1_flips_on_each_sub_statement(at, state, fails):
    flips(paper_b_ngram.f1, f1_args(), f1_args(at, state), PARTLY, fails=fails)


def f2_args(suffix=None, prefix=None):
    return NB.f2_tables(NB.PAPER_F2_SUFFIX | (suffix or {}), NB.PAPER_F2_PREFIX | (prefix or {}))


@pytest.mark.parametrize("suffix, prefix, fails", [
    (None, {"hybrid2s_m2": NB.flat(0.99) | {400: 0.94}}, "a"),                  # 0.94 at L = 400: below 0.95
    ({"transformer": {100: 1.0, 200: 0.97, 300: 0.95, 400: 0.91}}, None, "b"),  # drop 0.09 < 0.1
    (None, {"mamba2": {100: 1.0, 200: 0.74, 300: 0.54, 400: 0.44}}, "c"),       # prefix only 0.04 above suffix
    ({"transformer": NB.PAPER_F2_SUFFIX["hybridI_1m2"],
      "hybridI_1m2": NB.PAPER_F2_SUFFIX["transformer"]}, None, "ab"),           # TF and HybridI swapped
])
def test_f2_flips_on_each_sub_statement(suffix, prefix, fails):
    flips(paper_b_ngram.f2, f2_args(), f2_args(suffix, prefix), PARTLY, fails=fails)


def test_f2_everything_swapped_is_not_reproduced():
    s, p = NB.PAPER_F2_SUFFIX, NB.PAPER_F2_PREFIX
    suffix = s | {"transformer": s["hybridI_1m2"], "hybridI_1m2": s["transformer"], "hybrid2s_m2": s["transformer"]}
    prefix = p | {"mamba2": s["mamba2"], "hybridI_1m2": p["transformer"], "hybrid2s_m2": p["transformer"]}
    flips(paper_b_ngram.f2, f2_args(), f2_args(suffix, prefix), NOT_REPRODUCED, fails="abc")


def f3_args(suffix=None, prefix=None):
    return NB.f3_tables(NB.PAPER_F3_SUFFIX | (suffix or {}), NB.PAPER_F3_PREFIX | (prefix or {}))


@pytest.mark.parametrize("suffix, prefix, fails", [
    ({"transformer": NB.PAPER_F3_SUFFIX["hybridI_1m2"], "hybridI_1m2": NB.PAPER_F3_SUFFIX["transformer"]},
     None, "a"),                                                                  # TF and HybridI 1/1 swapped
    (None, {"mamba2": NB.last(0.5, 0.79)}, "b"),                                  # 79% on the last segment
    (None, {"hybridI_1m2": NB.last(0.06, 0.75)}, "c"),                            # a biased HybridI (prefix)
])
def test_f3_flips_on_each_sub_statement(suffix, prefix, fails):
    flips(paper_b_ngram.f3, f3_args(), f3_args(suffix, prefix), PARTLY, fails=fails)


def test_f3_mamba2_and_hybrid_swapped_is_not_reproduced():
    s, p = NB.PAPER_F3_SUFFIX, NB.PAPER_F3_PREFIX
    swapped = (s | {"hybridI_1m2": s["mamba2"], "hybridI_4m2": s["mamba2"], "mamba2": s["hybridI_1m2"]},
               p | {"hybridI_1m2": p["mamba2"], "mamba2": p["hybridI_1m2"]})
    flips(paper_b_ngram.f3, f3_args(), f3_args(*swapped), NOT_REPRODUCED, fails="abc")


# ==== paper B: F4-F7 (lib/claims/paper_b_position.py) =================================================

F4_AT = {"transformer": 160000, "transformer_nope": 320000, "mamba": None, "mamba2": None,
         "hybridI_1m": 352000, "hybridI_1m2": 352000, "hybrid2s": 352000, "hybrid2s_m2": 352000,
         "hybridI_4m": 480000, "hybridI_4m2": 544000}


def f4_table(at: dict) -> tuple[pd.DataFrame]:
    return (PB.table(*(PB.record(n, PB.curve(x)) for n, x in at.items())),)


@pytest.mark.parametrize("change, fails", [
    ({"transformer": 360000}, "a"),       # TF-RoPE behind the hybrids
    ({"mamba": 320000}, "c"),             # a pure SSM reaches 0.95 (after TF-RoPE)
    ({"mamba2": 600000}, "c"),            # ... late, but within the budget
    ({"hybridI_1m2": 96000}, "ab"),       # a hybrid faster than TF-RoPE, and clearly faster than NoPE
    ({"transformer_nope": None}, "b"),    # NoPE never reaches 0.95: the hybrids clearly ahead of it
    ({"hybrid2s": None}, "b"),            # a Fig 7a hybrid never reaches 0.95
    ({"hybridI_4m2": 320000}, "d"),       # HybridI 4/1 (Mamba2) faster than 1/1
])
def test_f4_flips_on_each_sub_statement(change, fails):
    flips(paper_b_position.f4, f4_table(F4_AT), f4_table(F4_AT | change), PARTLY, fails=fails)


def test_f4_tf_rope_and_mamba_swapped_is_not_reproduced_in_a_and_c():
    swapped = F4_AT | {"transformer": None, "mamba": F4_AT["transformer"]}
    ours = flips(paper_b_position.f4, f4_table(F4_AT), f4_table(swapped))
    assert outcomes(ours)[0] == "fails" and outcomes(ours)[2] == "fails", ours


PLATEAU = [P.CHANCE_LOSS] * 40 + [0.1] * 60


def f5_table(tf_evals=None, tf_loss=None, hybrid_edges=True) -> tuple[pd.DataFrame]:
    return (PB.table(PB.record("transformer", tf_evals or PB.curve(320000), loss=tf_loss or PLATEAU),
                     PB.record("mamba2", PB.curve(None)),
                     PB.record("hybridI_1m2", PB.curve(352000, edges_first=hybrid_edges)),
                     PB.record("hybrid2s_m2", PB.curve(416000, edges_first=True))),)


def gradual() -> list[dict]:
    """Exact match rising by 0.05 per evaluation, evenly over the positions: not sharp."""
    out = []
    for k, x in enumerate(range(PB.EVERY, PB.BATCH * PB.STEPS + 1, PB.EVERY)):
        v = min(1.0, 0.05 * (k + 1))
        out.append({"step": x // PB.BATCH, "examples": x, "exact_match": v, "exact_by_target_index": [v] * PB.N})
    return out


@pytest.mark.parametrize("perturbed, fails", [
    (dict(hybrid_edges=False), "a"),                                  # a hybrid learns every position at once
    (dict(tf_loss=[0.1] * 100), "b"),                                 # the Transformer never sits at chance
    (dict(tf_loss=[P.CHANCE_LOSS + 0.2] * 100), "b"),                 # ... or only just outside the band
    (dict(tf_evals=gradual()), "c"),                                  # it rises slowly, not sharply
    (dict(tf_evals=PB.curve(320000, edges_first=True)), "c"),         # it solves the edges first
])
def test_f5_flips_on_each_sub_statement(perturbed, fails):
    flips(paper_b_position.f5, f5_table(), f5_table(**perturbed), PARTLY, fails=fails)


def _snapshot_runs(tmp_path, monkeypatch, rows: dict):
    import torch

    from lib.results import write_snapshots
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    runs = [PB.record(n, PB.curve(None)) for n in rows]
    folder = tmp_path / "data" / "results" / "quick" / "B-position" / "runs"
    for rec in runs:
        write_snapshots(folder / f"{rec['id']}.npz",
                        {"1": {"step": 10, "rows": torch.tensor(rows[rec["labels"]["name"]], dtype=torch.float32)}})
    return (PB.table(*runs),)


@pytest.mark.parametrize("change, to, fails", [
    ({"transformer": "spiral"}, PARTLY, "b"),                         # a Transformer's positions laid out too
    ({"hybridI_1m2": "noise"}, PARTLY, "a"),                          # a hybrid's are not
    ({"transformer": "spiral", "mamba2": "noise"}, NOT_REPRODUCED, "ab"),  # Transformer and Mamba2 swapped
])
def test_f6_flips_on_each_sub_statement(tmp_path, monkeypatch, change, to, fails):
    make = {"spiral": PB.spiral, "noise": PB.noise}
    base = {"transformer": "noise", "mamba2": "spiral", "hybridI_1m2": "spiral"}
    pick = lambda d: {n: make[k](seed=i + 1) for i, (n, k) in enumerate(d.items())}  # noqa: E731
    ours, v = paper_b_position.f6(*_snapshot_runs(tmp_path / "base", monkeypatch, pick(base)))
    assert v == REPRODUCED, ours
    ours, v = paper_b_position.f6(*_snapshot_runs(tmp_path / "perturbed", monkeypatch, pick(base | change)))
    assert v == to and outcomes(ours) == ["fails" if t in fails else "holds" for t in "ab"], ours


DEEP, SHALLOW = [0.01, 0.02, 0.3, 0.5], [0.5, 0.3, 0.02, 0.01]


def f7_table(gates=(DEEP, DEEP), at=None) -> tuple[pd.DataFrame]:
    at = {"hybrid2s": None, "hybrid2s_m2": None, "hybrid2sr": 224000, "hybrid2sr_m2": 256000,
          "transformer": 192000} | (at or {})
    g = dict(zip(("hybrid2s", "hybrid2s_m2"), gates))
    return (PB.table(*(PB.record(n, PB.curve(x), gates=g.get(n)) for n, x in at.items())),)


@pytest.mark.parametrize("perturbed, fails", [
    (dict(gates=(DEEP, SHALLOW)), "a"),                                       # one Hybrid2S opens shallow gates
    (dict(gates=(DEEP, [0.2, 0.2, 0.22, 0.22])), "a"),                        # deeper by 0.02 only
    (dict(at={"hybrid2s": 224000, "hybrid2sr": None}), "b"),                  # Hybrid2S and Hybrid2SR swapped
    (dict(at={"transformer": 96000}), "b"),                                   # TF-RoPE clearly faster than 2SR
])
def test_f7_flips_on_each_sub_statement(perturbed, fails):
    flips(paper_b_position.f7, f7_table(), f7_table(**perturbed), PARTLY, fails=fails)


# ==== every rule is covered ======================================================================

def test_every_claim_rule_has_a_perturbation_test():
    """A rule added to a claims table fails this test until it gets its perturbations here."""
    covered = {"c2_copy": test_c2_copy_flips, "c2_ard": test_c2_ard_flips, "c2_mkar": test_c2_mkar_flips,
               "c2_nh": test_c2_nh_flips, "c2_vocab": test_c2_vocab_flips,
               "c2_ard_converged": test_c2_ard_converged_flips_only_when_both_generators_fail,
               "c2_nh_converged": test_c2_nh_converged_flips,
               "c2_heads": test_c2_heads_flips_on_each_of_its_four_checks,
               "c2_adversarial": test_c2_adversarial_flips, "c2_window": test_c2_window_flips,
               "c3_length": test_c3_length_flips, "c3_ood": test_c3_ood_flips,
               "f1": test_f1_flips_on_each_sub_statement, "f2": test_f2_flips_on_each_sub_statement,
               "f3": test_f3_flips_on_each_sub_statement, "f4": test_f4_flips_on_each_sub_statement,
               "f5": test_f5_flips_on_each_sub_statement, "f6": test_f6_flips_on_each_sub_statement,
               "f7": test_f7_flips_on_each_sub_statement}
    rules = {c.rule.__name__ for mod in (claims, paper_a_scale, paper_b_ngram, paper_b_position) for c in mod.CLAIMS}
    assert rules == set(covered)
