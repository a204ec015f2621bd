"""A claims table as DVC metrics: `figures/<profile>/metrics-<table>.json` holds how many
claims got each verdict and one key number per claim, so that `dvc metrics show` (and
`dvc metrics diff` between two commits or experiments) says what reproduced at a glance.

The key number is read from the claim's `ours` text, where the rule states the numbers its
verdict rests on: paper A's claims name one measurement each (KEY_NUMBERS); paper B's are
made of sub-statements (a), (b), ... each marked "-> holds" or "-> fails", so their key
number is how many of the tested ones hold.

    python -m lib.claims.metrics [--profile quick]   # metrics of the claims tables already written
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from .rules import NOT_REPRODUCED, NOT_TESTED, PARTLY, REPRODUCED
from ..config import ROOT

VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED)
NUMBER = r"(never|[+-]?[\d,]*\.?\d+)"
OVER = r"(?: \(over the [^)]*\))?"  # "(over the d_model all ran: ...)" where an average leaves widths out

# claim -> (what the number is, where `ours` states it); the claim's subject is SSM-TF, the
# hybrid the paper credits, wherever the rule compares several architectures
KEY_NUMBERS = {
    "C2-copy": ("SSM-TF params to 0.99", rf"params to 0\.99: SSM-TF {NUMBER}"),
    "C2-ard": ("SSM-SSM-TF best mean accuracy", rf"best mean: SSM-SSM-TF {NUMBER}"),
    "C2-ard-converged": ("SSM-SSM-TF best mean accuracy, last-position generator, to convergence",
                         rf"last-position: best mean: SSM-SSM-TF {NUMBER}"),
    "C2-nh-converged": ("SSM-TF accuracy averaged over widths, to convergence",
                        rf"averaged over widths{OVER}: .*?SSM-TF {NUMBER}"),
    "C2-mkar": ("SSM-TF params to 0.6", rf"params to 0\.6: .*?SSM-TF {NUMBER}"),
    "C2-nh": ("SSM-TF accuracy averaged over widths", rf"averaged over widths{OVER}: .*?SSM-TF {NUMBER}"),
    "C2-vocab": ("SSM-TF mean |acc(200) - acc(1000)|", rf"over widths: .*?SSM-TF {NUMBER}"),
    "C2-heads": ("SSM-TF copy accuracy at 1 head", rf"copy heads: .*?SSM-TF {NUMBER}/"),
    "C2-adversarial": ("SSM-TF mixed accuracy averaged over widths", rf"mixed, averaged over widths{OVER}: .*?SSM-TF {NUMBER}"),
    "C2-window": ("SSM-TF copy accuracy at window 100", rf"copy SSM-TF: best [\d.]+ \(window \d+\), {NUMBER} at window 100"),
    "C3-length": ("hybrid - TF accuracy at long lengths", rf"hybrid - TF: short [+-]?[\d.]+, long {NUMBER}"),
    "C3-ood": ("training proportions where the hybrid is best", rf"hybrid best at {NUMBER} of"),
    # A-claims-theory (lib/claims/paper_a_theory.py): the numbers each rule compares with its limit
    "A-thm3.7": ("max witness accuracy of the models Thm 3.7 binds", rf"max witness accuracy {NUMBER}"),
    "A-thm3.3-vacuous": ("Thm 3.3 displayed bound, max over settings (bits)", rf"displayed bound max {NUMBER} bits"),
}


def _number(text: str):
    if text == "never":
        return "never"
    value = float(text.replace(",", ""))
    return int(value) if value.is_integer() and "." not in text else value


def key_number(claim: str, ours: str) -> tuple[str, object] | None:
    """(label, value) of a claim's key number, or None where `ours` does not state it."""
    if claim in KEY_NUMBERS:
        label, pattern = KEY_NUMBERS[claim]
        found = re.search(pattern, ours)
        return (label, _number(found.group(1))) if found else None
    marks = re.findall(r"-> (holds|fails|not tested)", ours)
    if marks:  # "0 of 0" where every sub-statement is untested (a rung that lacks the models)
        tested = marks.count("holds") + marks.count("fails")
        return "tested sub-statements that hold", f"{marks.count('holds')} of {tested}"
    return None


def table_metrics(table: pd.DataFrame) -> dict:
    """Verdict counts (every verdict, 0 included), then each claim's key number; a table with
    rungs names each claim with its rung (F1 L10-20). Flat and short, since `dvc metrics show`
    prints one column per key: the numbers' meanings are KEY_NUMBERS' labels."""
    counts = table["verdict"].value_counts()
    metrics = {v: int(counts.get(v, 0)) for v in VERDICTS}
    for row in table.to_dict("records"):
        rung = row.get("rung")
        name = f"{row['claim']} {rung}" if isinstance(rung, str) and rung != "-" else row["claim"]
        key = key_number(row["claim"], str(row["ours"]))
        if key is not None:
            metrics[name] = key[1]
    return metrics


def metrics_path(table_id: str, figures_dir: str | Path) -> Path:
    return Path(figures_dir) / f"metrics-{table_id}.json"


def write_metrics(table: pd.DataFrame, table_id: str, figures_dir: str | Path) -> Path:
    path = metrics_path(table_id, figures_dir)
    path.write_text(json.dumps(table_metrics(table), indent=1, ensure_ascii=False) + "\n")
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lib.claims.metrics", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="quick")
    args = ap.parse_args(argv)
    figures = ROOT / "figures" / args.profile
    for csv in sorted(figures.glob("*-claims-*.csv")):
        print(write_metrics(pd.read_csv(csv), csv.stem, figures).relative_to(ROOT))


if __name__ == "__main__":
    main()
