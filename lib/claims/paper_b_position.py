"""Paper B's position retrieval claims (F4-F7), each decided by explicit rules over our runs.

The same conventions as lib/claims/paper_b_ngram.py (the n-gram claims): a rule takes run tables
(lib.analysis.retrieval.load_experiment) and returns (ours, verdict); its docstring is the
rule, printed in the claims table; a claim is split into sub-statements (a), (b), ...,
each "not tested" when the models it names have no runs (or no record of what it needs).
Per model, the runs of its best learning rate count (best_lr at the 0.95 threshold);
pictures-based quantities (per-position accuracy, embeddings, gates) use the run the
figures draw (lib.analysis.position.representatives: the lowest seed).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import position as P
from ..analysis.retrieval import LEVEL, efficiency, label
from .paper_b_ngram import (SSMS, TRANSFORMERS, Check, by_model, clearly_more_efficient, combine_checks, listing,
                            more_efficient, state_models)
from .rules import Claim, rules_table

__all__ = ["CLAIMS", "EXPERIMENTS", "claims_table", "f4", "f5", "f6", "f7"]

# ---- the thresholds of the rules (their docstrings state them in words) ------------------------

EDGE_MARGIN = 0.1      # edges "first": their accuracy above the middle's by at least this
LEARNED = 0.1          # a model is judged on F5 only once some evaluation reaches this on the edges or overall
PLATEAU_BAND = 0.15    # a training loss within this of log(200)/2 = 2.65 sits on the chance plateau
PLATEAU_SHARE = 0.2    # "stays near chance": at least this share of its training-loss points on it
SHARP = 0.25           # a sharp switch: from < 0.1 to >= 0.9 within this share of the examples it took
LOCAL_KNN = 0.25       # locality-aware: knn within the best quarter of the way from unrelated to ideal
DEEPER_MARGIN = 0.05   # gates "open mostly in deeper layers": deeper half above the shallower by this

FIG7A = ("transformer", "transformer_nope", "mamba", "mamba2", "hybridI_1m", "hybridI_1m2", "hybrid2s",
         "hybrid2s_m2")
FIG7A_HYBRIDS = ("hybridI_1m", "hybridI_1m2", "hybrid2s", "hybrid2s_m2")
F5_LEARNERS = ("mamba", "mamba2", "hybridI_1m", "hybridI_1m2", "hybrid2s", "hybrid2s_m2")
F6_SSM_MODELS = ("mamba2", "hybridI_1m2", "hybrid2s_m2", "mamba", "hybridI_1m", "hybrid2s")
TWO_STREAM = ("hybrid2s", "hybrid2s_m2")


def _budget(records: list[dict]) -> float:
    t = records[0]["run"]["train"]
    return float(t["steps"] * t["batch_size"])


def _signed_m(examples: float) -> str:
    """A difference of example counts with its sign: +65k (more than TF-RoPE) or -91k (fewer)."""
    return ("+" if examples >= 0 else "-") + _m(abs(examples))


def _m(x: float) -> str:
    return f"{x / 1e6:.2f}M" if x >= 1e5 else f"{x / 1e3:.0f}k"


# ---- the rules --------------------------------------------------------------------------------

def f4(position: pd.DataFrame, state: pd.DataFrame | None = None) -> tuple[str, str]:
    """Data efficiency as in F1 (examples at which the mean validation exact match over
    seeds first reaches 0.95; else the mean exact match over training, higher by >= 0.01),
    on the position runs (B-position; states 32/64 from B-position-state).
    (a) TF-RoPE converges fastest: it is more efficient than every other family of Fig 7a
    (TF-NoPE, Mamba, Mamba2, HybridI M/T and M2/T 1/1, Hybrid2S M and M2);
    (b) hybrids need more examples, like NoPE: every Fig 7a hybrid reaches 0.95 within the
    budget, and neither TF-NoPE nor the most efficient hybrid is clearly more efficient than
    the other (fewer than half the examples); the gaps to TF-RoPE are stated (paper: ~12M
    vs ~7M of a 20M budget);
    (c) pure SSMs (Mamba, Mamba2, every state) do not reach 0.95 within the budget, judged
    only where some other model does (else the budget taught no model the task);
    (d) denser attention helps: for each backbone (Mamba, Mamba2), HybridI 1/1 is more
    efficient than HybridI 4/1.
    Reproduced if all four hold; partly if at least one holds; not reproduced if none does."""
    models = by_model(position, threshold=LEVEL)
    eff = {n: efficiency(r) for n, r in models.items()}
    checks = []

    others = [n for n in FIG7A if n in eff and n != "transformer"]
    if "transformer" in eff and others:
        slower = [n for n in others if not more_efficient(eff["transformer"], eff[n])]
        checks.append(Check("a", not slower, f"TF-RoPE {eff['transformer'].text()} vs "
                            + listing((label(n), eff[n].text()) for n in others)
                            + (f" (not slower: {', '.join(label(n) for n in slower)})" if slower else "")))
    else:
        checks.append(Check("a", None, "no runs of TF-RoPE or of the families it is compared with"))

    hyb = [n for n in FIG7A_HYBRIDS if n in eff]
    if hyb and "transformer_nope" in eff:
        budget = _budget(models[hyb[0]])
        reached = all(eff[n].examples <= budget for n in hyb)
        best = min(hyb, key=lambda n: (eff[n].examples, -eff[n].auc))
        alike = not clearly_more_efficient(eff[best], eff["transformer_nope"]) and \
            not clearly_more_efficient(eff["transformer_nope"], eff[best])
        gaps = ""
        if "transformer" in eff and eff["transformer"].examples <= budget:
            gaps = "; gap to TF-RoPE " + listing(
                (label(n), _signed_m(eff[n].examples - eff["transformer"].examples) if eff[n].examples <= budget
                 else "n/a") for n in hyb)
        checks.append(Check("b", reached and alike,
                            f"budget {_m(budget)}: " + listing((label(n), eff[n].text()) for n in hyb)
                            + f"; TF-NoPE {eff['transformer_nope'].text()}"
                            + (" (a hybrid never reaches 0.95)" if not reached else "")
                            + ("" if alike else f" (best hybrid {label(best)} and TF-NoPE clearly differ)")
                            + gaps))
    else:
        checks.append(Check("b", None, "no runs of the Fig 7a hybrids or of TF-NoPE"))

    ssm_runs = state_models(position, state, threshold=LEVEL)
    if ssm_runs:
        st = {k: efficiency(r) for k, r in ssm_runs.items()}
        budget = _budget(next(iter(ssm_runs.values())))
        reached = [k for k, e in st.items() if e.examples <= budget]
        text = listing((f"{label(n)} state {s}", st[(n, s)].text()) for n, s in sorted(st))
        learners = [n for n, e in eff.items() if n not in SSMS and e.examples <= budget]
        checks.append(Check("c", not reached, text) if learners or reached
                      else Check("c", None, text + "; no other model reached 0.95 either"))
    else:
        checks.append(Check("c", None, "no runs of the pure SSMs"))

    pairs = [(f"hybridI_1{b}", f"hybridI_4{b}") for b in ("m", "m2") if f"hybridI_1{b}" in eff
             and f"hybridI_4{b}" in eff]
    if pairs:
        held = all(more_efficient(eff[a], eff[b]) for a, b in pairs)
        checks.append(Check("d", held, "; ".join(f"{label(a)} {eff[a].text()} vs {label(b)} {eff[b].text()}"
                                                 for a, b in pairs)))
    else:
        checks.append(Check("d", None, "no runs of HybridI 1/1 and 4/1"))
    return combine_checks(checks)


def _edge_profile(rec: dict) -> tuple[float, float, float] | None:
    """(best edge or overall accuracy, largest edge advantage while the middle is below
    0.9, at which examples) of a run; None without per-position records."""
    steps, examples, acc = P.position_accuracy(rec)
    if not len(steps):
        return None
    first, last, middle = P.edge_split(acc)
    edges = (first + last) / 2
    overall = np.array([e["exact_match"] for e in rec["eval_curve"] if e.get("exact_by_target_index") is not None])
    adv = np.where(np.nan_to_num(middle, nan=1.0) < 0.9, np.nan_to_num(edges - middle, nan=-1.0), -1.0)
    i = int(np.argmax(adv))
    return float(max(np.nanmax(edges), overall.max())), float(adv[i]), float(examples[i])


def f5(position: pd.DataFrame) -> tuple[str, str]:
    """Per-position validation accuracy (drawn run: lowest seed of the chosen learning
    rate); the edges are the first and last 10% of target positions, the middle the rest.
    (a) SSMs and hybrids solve the edges first: every SSM or Fig 7a hybrid that learned at
    all (edges or overall reaching 0.1 at some evaluation) has, at some evaluation where the
    middle is still below 0.9, an edge accuracy at least 0.1 above the middle's; models that
    never learned are listed, not judged;
    (b) the Transformer (RoPE) stays near chance: at least 20% of its training-loss points
    (mean over its seeds) lie within 0.15 of log(S)/2 (2.65 at S = 200 symbols);
    (c) then switches sharply and uniformly: it reaches 0.9 validation exact match; its
    exact match goes from below 0.1 to at least 0.9 within 25% of the examples it needed to
    reach 0.9; and at no evaluation are its edges 0.1 or more above its middle.
    Reproduced if all three hold; partly if at least one holds; not reproduced if none does."""
    reps = P.representatives(position) if not position.empty else {}
    checks = []

    judged, idle, texts = {}, [], []
    for n in F5_LEARNERS:
        if n not in reps:
            continue
        prof = _edge_profile(reps[n])
        if prof is None:
            continue
        if prof[0] < LEARNED:
            idle.append(label(n))
            continue
        judged[n] = prof[1] >= EDGE_MARGIN
        texts.append(f"{label(n)} edge advantage {prof[1]:+.2f} at {_m(prof[2])}")
    if judged:
        checks.append(Check("a", all(judged.values()), ", ".join(texts)
                            + (f"; never learned: {', '.join(idle)}" if idle else "")))
    else:
        checks.append(Check("a", None, "no SSM or hybrid learned (edges and overall below 0.1)" if idle
                            else "no per-position records of SSMs or hybrids"))

    tf = by_model(position, threshold=LEVEL).get("transformer")
    if tf:
        shares = []
        chance = P.chance_loss(P.symbols_of(position))  # 2.65 at 200 symbols, less on a ladder rung
        for rec in tf:
            _, loss = P.loss_points(rec)
            shares.append(float(np.mean(np.abs(loss - chance) <= PLATEAU_BAND)))
        share = float(np.mean(shares))
        checks.append(Check("b", share >= PLATEAU_SHARE,
                            f"TF-RoPE training loss within {PLATEAU_BAND} of {chance:.2f} at {share:.0%} of its points"))
    else:
        checks.append(Check("b", None, "no runs of TF-RoPE"))

    rec = reps.get("transformer")
    if rec is not None:
        ex = np.array([e["examples"] for e in rec["eval_curve"]], dtype=float)
        em = np.array([e["exact_match"] for e in rec["eval_curve"]], dtype=float)
        if not len(em) or em.max() < 0.9:
            checks.append(Check("c", False, f"TF-RoPE never switched (best {em.max() if len(em) else 0:.2f})"))
        else:
            hit = int(np.argmax(em >= 0.9))
            low = np.nonzero(em[:hit] < 0.1)[0]
            start = ex[low[-1]] if len(low) else 0.0
            sharp = (ex[hit] - start) <= SHARP * ex[hit]
            prof = _edge_profile(rec)
            uniform = prof is None or prof[1] < EDGE_MARGIN
            checks.append(Check("c", sharp and uniform,
                                f"TF-RoPE from <0.1 at {_m(start)} to >=0.9 at {_m(ex[hit])} "
                                f"({'sharp' if sharp else 'not sharp'}); largest edge advantage "
                                f"{'n/a' if prof is None else f'{prof[1]:+.2f}'} "
                                f"({'uniform' if uniform else 'not uniform'})"))
    else:
        checks.append(Check("c", None, "no runs of TF-RoPE"))
    return combine_checks(checks)


def f6(position: pd.DataFrame) -> tuple[str, str]:
    """Locality of the position tokens' input embeddings (what the paper draws) at the end
    of the drawn run: knn = mean |i-j| of each position's 5 nearest neighbours (cosine);
    unrelated embeddings give (n+1)/3 = 67 for 200 positions, and no table can go below
    the ideal (each position's neighbours its nearest indices: 1.8 for 200, 2.0 for 16).
    A table is locality-aware if knn is within the quarter of that range nearest the ideal
    (below 18 for 200 positions, 2.9 for 16; measured from the ideal, so that a small rung,
    where even unrelated embeddings have near neighbours, can pass). The rank correlation rho of index and embedding distance
    over all pairs is reported, not judged: a spiral is local yet winds back in angle.
    (a) every model with SSM blocks that ran (Mamba, Mamba2, HybridI M/T and M2/T 1/1,
    Hybrid2S M and M2) is locality-aware;
    (b) neither Transformer (RoPE, NoPE) is, judged only where some model with SSM blocks
    is (else no model laid its positions out to contrast with).
    The Transformers' output-head rows, untied from their input rows and the only ones that
    predicting a position trains directly, are reported but not judged.
    Reproduced if both hold; partly if one holds; not reproduced if neither does."""
    if position.empty:
        return combine_checks([Check("a", None, "no runs"), Check("b", None, "no runs")])
    profile = position["profile"].iloc[0]
    table = P.locality_table(position, profile)
    if table.empty:
        return combine_checks([Check("a", None, "no embedding snapshots"), Check("b", None, "no embedding snapshots")])
    knn_col = f"mean |i-j| of {P.LOCALITY_K} nearest"
    rand = table[table["name"] == "random"].iloc[0]
    n = position["record"].iloc[0]["run"]["task"]["num_symbols"]
    ideal = P.ideal_knn_distance(n)
    limit = ideal + LOCAL_KNN * (P.random_knn_distance(n) - ideal)
    inp = table[table["table"] == "input"].set_index("name")

    def aware(name):
        return bool(inp.loc[name, knn_col] < limit)

    def text(name, t=inp):
        return f"{label(name)} knn {t.loc[name, knn_col]:.1f}, rho {t.loc[name, 'rank correlation']:.2f}"

    checks = []
    ssm = [n for n in F6_SSM_MODELS if n in inp.index]
    checks.append(Check("a", all(aware(n) for n in ssm), "; ".join(text(n) for n in ssm)
                        + f" (locality-aware: knn < {limit:.1f})") if ssm
                  else Check("a", None, "no snapshots of models with SSM blocks"))
    tfs = [n for n in TRANSFORMERS if n in inp.index]
    heads = table[table["table"] == "output head"].set_index("name")
    extra = "; output heads (not judged): " + "; ".join(text(n, heads) for n in tfs if n in heads.index) \
        if any(n in heads.index for n in tfs) else ""
    contrast = any(aware(n) for n in ssm)
    if not tfs:
        checks.append(Check("b", None, "no snapshots of the Transformers"))
    else:
        checks.append(Check("b", not any(aware(n) for n in tfs) if contrast else None,
                            "; ".join(text(n) for n in tfs) + extra
                            + ("" if contrast else "; no model with SSM blocks is locality-aware either")))
    checks[0].text += f"; unrelated embeddings knn {rand[knn_col]:.1f}, rho {rand['rank correlation']:.2f}"
    return combine_checks(checks)


def f7(position: pd.DataFrame) -> tuple[str, str]:
    """(a) Hybrid2S's gates open mostly in deeper layers: for each Hybrid2S (Mamba, Mamba2
    backbone), at the drawn run's last evaluation, the mean |tanh(gate)| of the deeper half
    of its layers exceeds the shallower half's by at least 0.05;
    (b) reversed gating converges faster, close to TF-RoPE: for each backbone, Hybrid2SR is
    more efficient than Hybrid2S (as in F4), and TF-RoPE is not clearly more efficient than
    Hybrid2SR (fewer than half its examples to 0.95).
    Reproduced if both hold; partly if one holds; not reproduced if neither does."""
    reps = P.representatives(position) if not position.empty else {}
    checks = []
    texts, held = [], []
    for n in TWO_STREAM:
        if n not in reps:
            continue
        _, g = P.gates(reps[n])
        if not len(g):
            continue
        last = g[-1]
        half = len(last) // 2
        shallow, deep = (last[:half].mean(), last[half:].mean()) if half else (last.mean(), last.mean())
        held.append(deep >= shallow + DEEPER_MARGIN)
        texts.append(f"{label(n)} gates {', '.join(f'{x:.2f}' for x in last)} (shallower half {shallow:.2f}, "
                     f"deeper {deep:.2f})")
    checks.append(Check("a", all(held), "; ".join(texts)) if held
                  else Check("a", None, "no gate records of Hybrid2S"))

    eff = {n: efficiency(r) for n, r in by_model(position, threshold=LEVEL).items()}
    pairs = [(f"hybrid2s{b}", f"hybrid2sr{b}") for b in ("", "_m2") if f"hybrid2s{b}" in eff
             and f"hybrid2sr{b}" in eff]
    if pairs:
        faster = all(more_efficient(eff[r], eff[s]) for s, r in pairs)
        close = "transformer" not in eff or not any(clearly_more_efficient(eff["transformer"], eff[r])
                                                   for _, r in pairs)
        checks.append(Check("b", faster and close,
                            "; ".join(f"{label(r)} {eff[r].text()} vs {label(s)} {eff[s].text()}" for s, r in pairs)
                            + (f"; TF-RoPE {eff['transformer'].text()}" if "transformer" in eff else "")))
    else:
        checks.append(Check("b", None, "no runs of Hybrid2S and Hybrid2SR"))
    return combine_checks(checks)


# ---- the table ------------------------------------------------------------------------------

CLAIMS = [
    Claim("F4", "on position retrieval TF-RoPE converges fastest; hybrids need ~5M more examples (like NoPE); "
          "pure SSMs do not reach 95% within budget; denser attention in HybridI helps.",
          "Fig 7, Sec 5: hybrids need 'approximately 12M examples' (about 5M more than RoPE); SSMs never reach "
          ">=95% within 20M examples; HybridI with more attention converges faster",
          ("B-position", "B-position-state"), f4),
    Claim("F5", "SSMs and hybrids first solve queries at the start and end of the sequence; Transformers stay "
          "near chance (loss ~2.65) then switch sharply and uniformly.",
          "Figs 8, 13, 17: SSMs and hybrids learn the first and last positions first; SSMs 'start learning after "
          "about 2M examples'; the Transformer's loss stays at log(200)/2 = 2.65 until about 7M examples, then "
          "drops",
          ("B-position",), f5),
    Claim("F6", "models with SSM blocks learn locality-aware position embeddings (neighbours stay neighbours, a "
          "low-dimensional spiral); Transformers do not, with or without RoPE.",
          "Figs 9-11, 20-22 (pictures; no numbers in the text)",
          ("B-position",), f6),
    Claim("F7", "Hybrid2S gates open mostly in deeper layers; reversed gating (Hybrid2SR) converges faster, "
          "close to TF-RoPE.",
          "Figs 18, 19 (no numbers in the text)",
          ("B-position",), f7),
]

EXPERIMENTS = ["B-position", "B-position-state"]


def claims_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim: claim, statement, paper, ours, verdict, rule."""
    return rules_table(CLAIMS, tables)
