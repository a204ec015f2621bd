"""The papers' claims, each judged by an explicit rule over our results.

    rules             the machinery: Claim, verdicts, rules_table
    paper_a           paper A's expressivity claims (C2-*)
    paper_a_scale     paper A at larger scale (C3-length, C3-ood)
    paper_a_theory    paper A's theorems: witness tests, bounds (A-thm*)
    paper_b_ngram     paper B's n-gram retrieval claims (F1-F3)
    paper_b_position  paper B's position retrieval claims (F4-F7)
    external          the audit column: external audits of paper A's claims
    metrics           the claims tables' DVC metrics (verdict counts, key numbers)

Above lib.analysis, below lib.plots (tests/test_layering.py).
"""
