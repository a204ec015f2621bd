"""Paper B's n-gram retrieval claims (F1-F3), each decided by explicit rules over our runs.

A rule takes run tables (lib.analysis.retrieval.runs_table or load_experiment: one row per
run, its record in the `record` column) and returns (ours, verdict), following
lib.claims.rules: `ours` states the numbers the verdict rests on, and the rule's docstring is
the rule, printed as such in the claims table. Each claim is split into sub-statements
(a), (b), ...; each is checked by a quantitative test on the models it names. Per model,
only the runs of its best learning rate count, chosen as B's figures choose them
(lib.analysis.retrieval.best_lr with the early-stop threshold), averaged over their seeds.

A sub-statement is "not tested" when a model it names has no runs at this profile (for a
group such as "hybrids", when none of the group has); the claim's verdict is then
reproduced if every sub-statement was tested and holds, partly if at least one holds,
not reproduced if none holds, and not tested if none could be tested. Missing data never
makes a rule fail or raise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..analysis.retrieval import EARLY_STOP, LEVEL, Efficiency, best_lr, efficiency, label
from .rules import INF, NOT_REPRODUCED, NOT_TESTED, PARTLY, REPRODUCED, Claim, rules_table

__all__ = ["CLAIMS", "EXPERIMENTS", "claims_table", "f1", "f2", "f3",
           "more_efficient", "extrapolation", "duplicates", "bias",
           "REPRODUCED", "PARTLY", "NOT_REPRODUCED", "NOT_TESTED"]

# ---- the thresholds of the rules (their docstrings state them in words) ------------------------

AUC_MARGIN = 0.01     # tie-break when neither model reaches LEVEL: mean exact match over training
CLEAR_FACTOR = 2.0    # "as inefficient as": not needing fewer than half the examples ...
CLEAR_AUC = 0.1       # ... nor, neither reaching LEVEL, a mean exact match over training 0.1 higher
NEAR_PERFECT = 0.95   # greedy exact match at 4x the training length
TRAIN_LEN, TEST_LEN = 100, 400
DEGRADE = 0.1         # drop in greedy exact match from L = 100 to L = 400
PREFIX_GAIN = 0.05    # Mamba2: prefix minus suffix exact match, averaged over the lengths > 100
LAST_SHARE = 0.8      # "> 80% of the cases": last segment's share of the retrieved outputs
MAX_BIAS = 0.15       # no positional bias: distance of the segment shares from uniform
MIN_RETRIEVED = 0.1   # segment shares are measured only where >= 10% of the outputs match a segment
ERR_MARGIN = 0.02     # "lowest error": lower by at least this (the test sets' noise at n = 1000)

TRANSFORMERS = ("transformer", "transformer_nope")
SSMS = ("mamba", "mamba2")
FIG3A_HYBRIDS = ("hybridI_1m", "hybridI_1m2", "hybrid2s", "hybrid2s_m2")
FIG4_HYBRIDS = ("hybridI_1m2", "hybrid2s_m2")
HYBRID_I = tuple(f"hybridI_{n}{b}" for b in ("m", "m2") for n in (1, 2, 3, 4))


def interleave_n(name: str) -> int:
    """N of HybridI M/T N/1 (SSM blocks per Transformer block)."""
    return int(name.split("_")[1][0])


# ---- from run tables to each model's records ----------------------------------------------------

def by_model(table: pd.DataFrame | None, by: tuple[str, ...] = ("name",), threshold: float = EARLY_STOP) -> dict:
    """{model key: [records of its best learning rate]}; the key is the name, or a tuple of
    the `by` columns. Empty for a missing or empty table. `threshold`: the runs' early-stop
    level (best_lr)."""
    if table is None or table.empty or "name" not in table.columns:
        return {}
    by = tuple(c for c in by if c in table.columns)
    chosen = best_lr(table, by, threshold=threshold)
    out = {}
    for key, group in chosen.groupby(list(by), sort=True):
        key = key if len(by) > 1 else (key[0] if isinstance(key, tuple) else key)
        out[key] = list(group["record"])
    return out


def state_models(ngram: pd.DataFrame | None, state: pd.DataFrame | None, threshold: float = EARLY_STOP) -> dict:
    """{(ssm name, d_state): records}: state 16 from the main sweep (its default), the larger
    states from B-ngram-state (or B-position-state)."""
    out = {(n, 16): r for n, r in by_model(ngram, threshold=threshold).items() if n in SSMS}
    for key, r in by_model(state, ("name", "d_state"), threshold).items():
        if isinstance(key, tuple):  # (a table without a d_state column has no larger states)
            out[(key[0], int(key[1]))] = r
    return out


def trained(models: dict, level: float = EARLY_STOP) -> tuple[dict, dict]:
    """Split {model: records} into the runs whose final weights (those the tests ran on)
    reached `level` and, for each model none of whose runs got there, its best final exact
    match. Paper B runs its extrapolation and duplicate-query tests on models trained to 99%
    (Figs 4-6, 12, 14-16); the same tests of a model still on the loss plateau measure
    nothing, so F2 and F3 read only those runs (issue 21), and a model without one is "not
    tested". The criterion is drawn_rung's: final exact match >= the early-stop level."""
    kept, never = {}, {}
    for name, records in models.items():
        final = [float(r["final"]["exact_match"]) for r in records]
        reached = [r for r, f in zip(records, final) if f >= level]
        if reached:
            kept[name] = reached
        else:
            never[name] = max(final)
    return kept, never


def never_text(name: str, fmt: str, never: dict) -> str:
    return f"{label(name)} {fmt} never trained to {EARLY_STOP:.0%} (best {never[name]:.3f})"


# ---- data efficiency (validation curves) ---------------------------------------------------------

def more_efficient(a: Efficiency, b: Efficiency) -> bool:
    """A reaches LEVEL with fewer examples than B (B never reaching counts as more), or,
    neither reaching it, A's mean exact match over training is higher by >= AUC_MARGIN."""
    if a.examples < INF or b.examples < INF:
        return a.examples < b.examples
    return a.auc >= b.auc + AUC_MARGIN


def clearly_more_efficient(a: Efficiency, b: Efficiency) -> bool:
    """A needs fewer than 1/CLEAR_FACTOR of B's examples (or reaches LEVEL where B never
    does), or, neither reaching it, has a mean exact match over training > CLEAR_AUC higher."""
    if a.examples < INF or b.examples < INF:
        return a.examples * CLEAR_FACTOR < b.examples
    return a.auc > b.auc + CLEAR_AUC


# ---- test-time extrapolation and duplicate queries (tests of the final weights) ----------------

def extrapolation(records: list[dict]) -> dict[int, float]:
    """{test length: greedy exact match, mean over seeds}, over the lengths every run tested."""
    tests = [r.get("tests", {}).get("extrapolation") for r in records]
    tests = [t for t in tests if t]
    if not tests:
        return {}
    lengths = sorted(set.intersection(*(set(map(int, t)) for t in tests)))
    return {L: float(np.mean([t[str(L)] for t in tests])) for L in lengths}


def duplicates(records: list[dict]) -> dict[int, tuple[float, np.ndarray]]:
    """{s: (error, preference per segment)}, means over seeds."""
    tests = [r.get("tests", {}).get("duplicates") for r in records]
    tests = [t for t in tests if t]
    if not tests:
        return {}
    segments = sorted(set.intersection(*(set(map(int, t)) for t in tests)))
    return {s: (float(np.mean([t[str(s)]["error"] for t in tests])),
                np.mean([np.asarray(t[str(s)]["preference"], float) for t in tests], axis=0))
            for s in segments}


def shares(preference: np.ndarray) -> np.ndarray | None:
    """Each segment's share of the retrieved (non-missed) outputs; None if fewer than
    MIN_RETRIEVED of the outputs were retrieved (too few to measure a preference)."""
    total = float(np.sum(preference))
    return None if total < MIN_RETRIEVED else np.asarray(preference, float) / total


def bias(preference: np.ndarray) -> float:
    """Total-variation distance between the segment shares and uniform: 0 = no positional
    preference, 1 - 1/s = always one segment; inf when too little was retrieved (`shares`)."""
    p = shares(preference)
    return INF if p is None else float(0.5 * np.abs(p - 1 / len(p)).sum())


# ---- verdicts over sub-statements -------------------------------------------------------------

@dataclass
class Check:
    tag: str
    held: bool | None  # None: not tested
    text: str


def combine_checks(checks: list[Check]) -> tuple[str, str]:
    parts = [f"({c.tag}) {c.text} -> {'not tested' if c.held is None else 'holds' if c.held else 'fails'}"
             for c in checks]
    held = [c.held for c in checks]
    if all(h is None for h in held):
        v = NOT_TESTED
    elif all(h is True for h in held):
        v = REPRODUCED
    elif any(h is True for h in held):
        v = PARTLY
    else:
        v = NOT_REPRODUCED
    return "; ".join(parts), v


def _missing(names) -> str:
    return ", ".join(label(n) for n in names)


def listing(items) -> str:
    """'A x, B y' from (name, value) pairs; names sharing a value are listed once ('A, B: x')
    when every value is shared by several names, which keeps untrained sweeps readable."""
    items = list(items)
    groups: dict[str, list[str]] = {}
    for name, value in items:
        groups.setdefault(value, []).append(name)
    if len(groups) < len(items) and all(len(g) > 1 for g in groups.values()):
        return "; ".join(f"{', '.join(g)}: {v}" for v, g in groups.items())
    return ", ".join(f"{name} {value}" for name, value in items)


# ---- the rules --------------------------------------------------------------------------------

def f1(ngram: pd.DataFrame, state: pd.DataFrame | None = None) -> tuple[str, str]:
    """Data efficiency (suffix runs, B-ngram; states 32/64 from B-ngram-state) = training
    examples at which the validation exact match, mean over seeds, first reaches 0.95
    (linearly interpolated between evaluations; a run that stopped early keeps its last
    value; infinite if never). A is more efficient than B if it needs fewer examples, or,
    neither reaching 0.95, if its area under the exact-match-vs-examples curve divided by
    the budget (its mean exact match over training) is higher by >= 0.01.
    (a) every hybrid of Fig 3a (HybridI M/T and M2/T 1/1, Hybrid2S M and M2) is more
    efficient than both SSMs (Mamba, Mamba2), and the most efficient of them is more
    efficient than both Transformers (RoPE, NoPE; the abstract: hybrids 'outperform SSMs and
    match or exceed Transformers');
    (b) NoPE as inefficient as SSMs: TF-RoPE is more efficient than TF-NoPE, and TF-NoPE is
    not clearly more efficient than the better SSM, clearly meaning fewer than half its
    examples to 0.95 (or reaching 0.95 where it never does) or, neither reaching it, a
    mean exact match over training more than 0.1 higher;
    (c) for Mamba and Mamba2 each, the largest state (64) is more efficient than state 16,
    and TF-RoPE is more efficient than each SSM at every state;
    (d) every HybridI with N < 4 (M/T and M2/T 1/1, 2/1, 3/1) is more efficient than TF-RoPE.
    Reproduced if all four hold; partly if at least one holds; not reproduced if none does;
    a sub-statement whose models have no runs is not tested."""
    models = by_model(ngram)
    eff = {n: efficiency(r) for n, r in models.items()}
    st = {k: efficiency(r) for k, r in state_models(ngram, state).items()}
    checks = []

    # (a) hybrids vs SSMs and Transformers
    hyb = [n for n in FIG3A_HYBRIDS if n in eff]
    ssm = [n for n in SSMS if n in eff]
    tfs = [n for n in TRANSFORMERS if n in eff]
    if hyb and ssm and tfs:
        best = min(hyb, key=lambda n: (eff[n].examples, -eff[n].auc))
        held = (all(more_efficient(eff[h], eff[s]) for h in hyb for s in ssm)
                and all(more_efficient(eff[best], eff[t]) for t in tfs))
        text = "examples to 0.95: " + listing((label(n), eff[n].text()) for n in hyb + ssm + tfs)
        better_ssm = min(ssm, key=lambda n: (eff[n].examples, -eff[n].auc))
        if eff[best].examples < INF:
            ratio = eff[better_ssm].examples / eff[best].examples
            text += (f"; better SSM / best hybrid = {ratio:.1f}x" if ratio < INF
                     else "; the SSMs never reach 0.95")
        checks.append(Check("a", held, text))
    else:
        groups = {"a Fig 3a hybrid": FIG3A_HYBRIDS, "an SSM": SSMS, "a Transformer": TRANSFORMERS}
        checks.append(Check("a", None, "no runs of " + ", ".join(g for g, names in groups.items()
                                                               if not set(names) & set(eff))))

    # (b) NoPE as inefficient as SSMs
    if set(TRANSFORMERS) <= set(eff) and ssm:
        better_ssm = min(ssm, key=lambda n: (eff[n].examples, -eff[n].auc))
        rope, nope = eff["transformer"], eff["transformer_nope"]
        held = more_efficient(rope, nope) and not clearly_more_efficient(nope, eff[better_ssm])
        checks.append(Check("b", held, f"TF-RoPE {rope.text()}, TF-NoPE {nope.text()}, "
                                       f"better SSM {label(better_ssm)} {eff[better_ssm].text()}"))
    else:
        checks.append(Check("b", None, "no runs of " + _missing(
            [n for n in TRANSFORMERS if n not in eff] + ([] if ssm else list(SSMS)))))

    # (c) state dimension
    variants = [n for n in SSMS if (n, 16) in st and any(k[0] == n and k[1] > 16 for k in st)]
    if variants and "transformer" in eff:
        parts, held = [], True
        for n in variants:
            states = sorted(s for m, s in st if m == n)
            helps = more_efficient(st[(n, states[-1])], st[(n, 16)])
            below = all(more_efficient(eff["transformer"], st[(n, s)]) for s in states)
            held &= helps and below
            parts.append(f"{label(n)} " + ", ".join(f"state {s} {st[(n, s)].text()}" for s in states)
                         + ("" if helps else " (larger state not more efficient)")
                         + ("" if below else " (not below TF-RoPE)"))
        checks.append(Check("c", held, "; ".join(parts) + f"; TF-RoPE {eff['transformer'].text()}"))
    else:
        why = [] if "transformer" in eff else ["Transformer (RoPE)"]
        why += [] if variants else ["the SSMs at state 16 and a larger state"]
        checks.append(Check("c", None, "no runs of " + ", ".join(why)))

    # (d) HybridI with N < 4 vs TF-RoPE
    small = [n for n in HYBRID_I if n in eff and interleave_n(n) < 4]
    if small and "transformer" in eff:
        held = all(more_efficient(eff[n], eff["transformer"]) for n in small)
        n4 = [n for n in HYBRID_I if n in eff and interleave_n(n) == 4]
        checks.append(Check("d", held, listing((label(n), eff[n].text()) for n in small + n4)
                            + f" vs TF-RoPE {eff['transformer'].text()}"))
    else:
        checks.append(Check("d", None, "no runs of " + ("Transformer (RoPE)" if small else "HybridI with N < 4")))
    return combine_checks(checks)


def train_length(*tables: pd.DataFrame | None) -> int:
    """The runs' longest training length (a ladder rung's; 100 at the paper's setting)."""
    lengths = {int(rec["run"]["task"]["max_len"]) for t in tables if t is not None and not t.empty
               for rec in t["record"] if "max_len" in rec.get("run", {}).get("task", {})}
    return max(lengths) if lengths else TRAIN_LEN


def f2(ngram: pd.DataFrame, prefix: pd.DataFrame | None = None) -> tuple[str, str]:
    """Greedy exact match of the 3 response tokens at each test length (tests.extrapolation;
    trained on L <= 100, so L = 400 is 4x), mean over seeds.
    (a) near-perfect: Fig 4's hybrids (HybridI M2/T 1/1 and Hybrid2S M2) score >= 0.95 at
    L = 400 in each format (suffix, prefix) in which they ran;
    (b) TF-RoPE degrades: its suffix exact match drops by >= 0.1 from L = 100 to L = 400;
    (c) Mamba2's exact match averaged over the test lengths above 100 is >= 0.05 higher on
    prefix than on suffix.
    On a rung of the difficulty ladder, 100 and 400 read as the rung's longest training
    length and 4x it. Reproduced if all three hold; partly if at least one holds; not
    reproduced if none does; a sub-statement whose models or lengths have no results is
    not tested. Only runs trained to 99% count (`trained`): a named model none of whose
    runs got there leaves its sub-statement not tested."""
    TRAIN_LEN = train_length(ngram, prefix)
    TEST_LEN = 4 * TRAIN_LEN
    split = {"suffix": trained(by_model(ngram)), "prefix": trained(by_model(prefix))}
    never = {f: nv for f, (_, nv) in split.items()}
    fmts = {f: {n: extrapolation(r) for n, r in kept.items()} for f, (kept, _) in split.items()}
    fmts = {f: {n: e for n, e in m.items() if e} for f, m in fmts.items()}
    checks = []

    cells = [(f, n, m[n][TEST_LEN]) for f, m in fmts.items() for n in FIG4_HYBRIDS if TEST_LEN in m.get(n, {})]
    untrained = [never_text(n, f, never[f]) for f in never for n in FIG4_HYBRIDS if n in never[f]]
    if cells:
        held = all(v >= NEAR_PERFECT for _, _, v in cells)
        checks.append(Check("a", held, f"exact match at L={TEST_LEN}: "
                            + listing((f"{label(n)} {f}", f"{v:.3f}") for f, n, v in cells)
                            + "".join(f"; {t}" for t in untrained)))
    else:
        checks.append(Check("a", None, "; ".join(untrained) if untrained else
                            f"no L={TEST_LEN} tests of HybridI M2/T 1/1 or Hybrid2S M2"))

    tf = fmts["suffix"].get("transformer", {})
    if "transformer" in never["suffix"]:
        checks.append(Check("b", None, never_text("transformer", "suffix", never["suffix"])))
    elif TRAIN_LEN in tf and TEST_LEN in tf:
        drop = tf[TRAIN_LEN] - tf[TEST_LEN]
        pre = fmts["prefix"].get("transformer", {})
        text = f"TF-RoPE suffix {tf[TRAIN_LEN]:.3f} at L={TRAIN_LEN}, {tf[TEST_LEN]:.3f} at L={TEST_LEN} " \
               f"(drop {drop:+.3f})"
        if TRAIN_LEN in pre and TEST_LEN in pre:
            text += f"; prefix {pre[TRAIN_LEN]:.3f} -> {pre[TEST_LEN]:.3f}"
        checks.append(Check("b", drop >= DEGRADE, text))
    else:
        checks.append(Check("b", None, f"no suffix tests of Transformer (RoPE) at L={TRAIN_LEN} and {TEST_LEN}"))

    suf, pre = fmts["suffix"].get("mamba2", {}), fmts["prefix"].get("mamba2", {})
    longer = sorted(L for L in set(suf) & set(pre) if L > TRAIN_LEN)
    untrained = [never_text("mamba2", f, never[f]) for f in never if "mamba2" in never[f]]
    if untrained:
        checks.append(Check("c", None, "; ".join(untrained)))
    elif longer:
        s, p = np.mean([suf[L] for L in longer]), np.mean([pre[L] for L in longer])
        checks.append(Check("c", bool(p - s >= PREFIX_GAIN),
                            f"Mamba2 over L={'/'.join(map(str, longer))}: prefix {p:.3f}, suffix {s:.3f}"))
    else:
        checks.append(Check("c", None, f"no suffix and prefix tests of Mamba2 beyond L={TRAIN_LEN}"))
    return combine_checks(checks)


def f3(ngram: pd.DataFrame, prefix: pd.DataFrame | None = None) -> tuple[str, str]:
    """Duplicate queries (tests.duplicates, L = 100: the query 2-gram in each of s = 2, 3,
    4, 10 segments, each time followed by another 3-gram), mean over seeds. Error = share
    of greedy outputs that match no segment's continuation; a segment's share = its
    preference / the share of outputs that match some segment, measured only where that
    is >= 0.1 (below, the model counts as failing (b) and (c) at that s).
    (a) HybridI lowest error: in each format (suffix, prefix), the HybridI configuration
    with the lowest error averaged over s has an averaged error at least 0.02 below every
    other model that ran (Transformers, SSMs, Hybrid2S: the paper's 'lowest error rates
    across all models');
    (b) Mamba2, prefix: the last segment's share, averaged over s, is > 0.8;
    (c) no positional bias: for TF-RoPE and each HybridI configuration, in each format,
    the total-variation distance between the segment shares and uniform (1/2 sum_j
    |share_j - 1/s|), averaged over s, is <= 0.15 (80% on the last segment is a distance
    >= 0.3 at s = 2, >= 0.7 at s = 10; an unbiased chooser over 1,000 answers sits near
    0.04 at s = 10 from sampling noise alone).
    Reproduced if all three hold; partly if at least one holds; not reproduced if none
    does; a sub-statement whose models have no results is not tested. Only runs trained to
    99% count (`trained`): a model none of whose runs got there is left out of (a) and
    leaves (b) or (c) not tested where it is the one named."""
    split = {"suffix": trained(by_model(ngram)), "prefix": trained(by_model(prefix))}
    never = {f: nv for f, (_, nv) in split.items()}
    fmts = {f: {n: duplicates(r) for n, r in kept.items()} for f, (kept, _) in split.items()}
    fmts = {f: {n: d for n, d in m.items() if d} for f, m in fmts.items()}
    err = {f: {n: float(np.mean([e for e, _ in d.values()])) for n, d in m.items()} for f, m in fmts.items()}
    checks = []

    parts, held = [], []
    for f, e in err.items():
        hi = [n for n in HYBRID_I if n in e]
        others = [n for n in e if n not in HYBRID_I]
        if hi and others:
            best = min(hi, key=lambda n: e[n])
            ok = all(e[best] <= e[n] - ERR_MARGIN for n in others)
            held.append(ok)
            parts.append(f"{f}: {label(best)} (best HybridI) {e[best]:.3f}; "
                         + listing((label(n), f"{e[n]:.3f}") for n in others)
                         + (f" (not trained to {EARLY_STOP:.0%}, left out: "
                            + ", ".join(f"{label(n)} {v:.3f}" for n, v in never[f].items()) + ")"
                            if never[f] else ""))
    checks.append(Check("a", all(held), "mean error over s, " + " | ".join(parts)) if held else
                  Check("a", None, "no duplicate tests of a HybridI and another model in either format"))

    m2 = fmts["prefix"].get("mamba2")
    if "mamba2" in never["prefix"]:
        checks.append(Check("b", None, never_text("mamba2", "prefix", never["prefix"])))
    elif m2:
        last = [shares(p) for _, p in m2.values()]
        share = float(np.mean([0.0 if p is None else p[-1] for p in last]))  # too few retrieved: 0
        checks.append(Check("b", share > LAST_SHARE, "Mamba2 prefix last-segment share "
                            + "/".join("-" if p is None else f"{p[-1]:.2f}" for p in last)
                            + f" at s={'/'.join(map(str, m2))}, mean {share:.3f}; "
                            f"error {err['prefix']['mamba2']:.3f}"))
    else:
        checks.append(Check("b", None, "no prefix duplicate tests of Mamba2"))

    parts, held = [], []
    have_tf = any("transformer" in m for m in fmts.values())
    for f, m in fmts.items():
        for n in ("transformer",) + HYBRID_I:
            if n in m:
                b = float(np.mean([bias(p) for _, p in m[n].values()]))
                held.append(b <= MAX_BIAS)
                parts.append((f"{label(n)} {f}", "too few retrieved at some s" if b == INF else f"{b:.3f}"))
    tf_never = [never_text("transformer", f, never[f]) for f in never if "transformer" in never[f]]
    if tf_never and not have_tf:
        checks.append(Check("c", None, "; ".join(tf_never) + (
            "; HybridI distance from uniform, mean over s: " + listing(parts) if parts else "")))
    elif have_tf and any(n in m for m in fmts.values() for n in HYBRID_I):
        checks.append(Check("c", all(held), "distance from uniform, mean over s: " + listing(parts)))
    else:
        checks.append(Check("c", None, "no duplicate tests of " + ("a HybridI" if have_tf else "Transformer (RoPE)")))
    return combine_checks(checks)


# ---- the table ------------------------------------------------------------------------------

CLAIMS = [
    Claim("F1", "hybrids are more data-efficient than Transformers and SSMs on n-gram retrieval; NoPE is "
          "as inefficient as SSMs; larger SSM state helps but stays below TF-RoPE; HybridI with N<4 "
          "surpasses the Transformer.",
          "Fig 3 (no numbers in the text): hybrids, 'particularly those with a Mamba2 backbone', need 'an "
          "order of magnitude less data than standalone SSMs' to reach >=95%; TF-RoPE 'in between'; NoPE "
          "'as data-inefficient as SSMs'; states 16/32/64 all below TF-RoPE; N<4 'surpass the efficiency of "
          "a standalone Transformer' (~150M parameters, up to 20M examples)",
          ("B-ngram", "B-ngram-state"), f1),
    Claim("F2", "hybrids extrapolate near-perfectly to 4x the training length; TF-RoPE degrades; Mamba2 does "
          "better on prefix than suffix.",
          "Figs 4, 12 (no numbers in the text): trained on L <= 100 to 99%, tested up to L = 400 (4x training "
          "length); hybrids 'near-perfect generalization'; TF-RoPE 'poor generalization'; on prefix 'Mamba2 "
          "performs even better'",
          ("B-ngram", "B-ngram-prefix"), f2),
    Claim("F3", "with duplicate queries HybridI has the lowest error; Mamba2 picks the last segment in >80% "
          "of prefix cases; TF and HybridI show no positional bias.",
          "Figs 5, 6, 14-16: s = 2, 3, 4, 10 (at s = 10 duplicates are 50% of the tokens); HybridI 'the "
          "lowest error rates across all models'; >80% last-segment preference of Mamba2 (prefix); TF and "
          "HybridI 'uniformly select candidate k-grams from each segment' in both formats",
          ("B-ngram", "B-ngram-prefix"), f3),
]

EXPERIMENTS = ["B-ngram", "B-ngram-prefix", "B-ngram-state"]


def claims_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim: claim, statement, paper, ours, verdict, rule."""
    return rules_table(CLAIMS, tables)
