"""The claims' machinery, shared by every claims table: a claim, its verdicts, and the
table that judges a list of claims by their rules.

A rule is a function of result tables returning (ours, verdict): `ours` states the numbers
the verdict rests on; its docstring is the rule, printed as such in the claims table. The
claims themselves: lib.claims.paper_a (A's C2), paper_a_scale (A's C3), paper_a_theory
(A's theorems), paper_b_ngram (B's F1-F3), paper_b_position (B's F4-F7).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import pandas as pd

REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED = "reproduced", "partly", "not reproduced", "not tested"
INF = float("inf")
NO_AUDIT = "–"  # the audit cell of a claim no external result speaks to (lib.claims.external)


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str  # deliverables.md
    paper: str      # the paper's numbers, for comparison only
    experiments: tuple[str, ...]
    rule: Callable[..., tuple[str, str]]


def rule_text(claim: Claim) -> str:
    return " ".join(inspect.cleandoc(claim.rule.__doc__).split())


def judge(claim: Claim, frames: dict[str, pd.DataFrame]) -> tuple[str, str]:
    """(ours, verdict) of one claim; 'not tested' when an experiment it needs has no results."""
    missing = [e for e in claim.experiments if e not in frames or frames[e].empty]
    if missing:
        return f"no results for {', '.join(missing)}", NOT_TESTED
    return claim.rule(*(frames[e] for e in claim.experiments))


def rules_table(claims: list[Claim], tables: dict[str, pd.DataFrame],
                audits: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per claim (claim, statement, paper, ours, verdict, rule) for rules that
    judge missing data themselves: an experiment without results reaches its rule as an
    empty table, and the rule says what it could not test (paper B's claims, paper A's C3).
    With `audits` (claim -> cell, lib.claims.external.audit_texts) an `audit` column sits between
    paper and ours ('–' for a claim it lacks); paper B, which no audit covers, passes none."""
    rows = []
    for c in claims:
        ours, v = c.rule(*(tables.get(e, pd.DataFrame()) for e in c.experiments))
        audit = {} if audits is None else {"audit": audits.get(c.id, NO_AUDIT)}
        rows.append({"claim": c.id, "statement": c.statement, "paper": c.paper, **audit, "ours": ours,
                     "verdict": v, "rule": rule_text(c)})
    return pd.DataFrame(rows)
