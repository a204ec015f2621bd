"""The claims tables as DVC metrics (lib.claims.metrics): verdict counts and one key number
per claim, for `dvc metrics show`."""
import json

import pandas as pd
import pytest

from lib.claims.metrics import KEY_NUMBERS, key_number, metrics_path, table_metrics
from lib.config import ROOT

COMMITTED = sorted(ROOT.glob("figures/*/*-claims-*.csv"))


def test_key_numbers_read_from_the_rule_text():
    assert key_number("C2-copy", "params to 0.99: SSM-TF 2,192; params to 0.9: TF-TF 10,608") == \
        ("SSM-TF params to 0.99", 2192)
    assert key_number("C2-mkar", "params to 0.6: TF-TF 10,056, SSM-TF never (best 0.154 at 3,684)")[1] == "never"
    assert key_number("C3-length", "hybrid - TF: short -0.010, long -0.009")[1] == pytest.approx(-0.009)
    assert key_number("F5", "(a) ... -> not tested; (b) ... -> holds; (c) ... -> fails") == \
        ("tested sub-statements that hold", "1 of 2")
    assert key_number("F7", "(a) no gate records -> not tested; (b) no runs -> not tested") == \
        ("tested sub-statements that hold", "0 of 0")  # a rung the campaign has not reached for these models
    assert key_number("C2-copy", "no results") is None


def test_metrics_count_every_verdict_and_name_rungs():
    table = pd.DataFrame({"claim": ["F1", "F2", "F1"], "rung": ["L10-20", "L10-20", "L50-100"],
                          "ours": ["(a) x -> holds", "(a) y -> fails; (b) z -> holds", "(a) -> fails"],
                          "verdict": ["reproduced", "partly", "not reproduced"]})
    assert table_metrics(table) == {"reproduced": 1, "partly": 1, "not reproduced": 1, "not tested": 0,
                                     "F1 L10-20": "1 of 1", "F2 L10-20": "1 of 2", "F1 L50-100": "0 of 1"}


@pytest.mark.parametrize("csv", COMMITTED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_committed_claims_have_a_key_number_and_metrics(csv):
    """Every committed claim's key number is found (a rule whose text changed needs its
    KEY_NUMBERS pattern changed too), and the committed metrics file is up to date."""
    table = pd.read_csv(csv)
    tested = table[table["verdict"] != "not tested"]  # a claim without results states no number
    assert all(key_number(c, o) is not None for c, o in zip(tested["claim"], tested["ours"])), csv
    assert json.loads(metrics_path(csv.stem, csv.parent).read_text()) == table_metrics(table)


def test_every_paper_a_claim_has_a_key_number():
    from lib.claims.paper_a import CLAIMS
    from lib.claims.paper_a_scale import CLAIMS as SCALE
    from lib.claims.paper_a_theory import CLAIMS_THEORY
    assert {c.id for c in [*CLAIMS, *SCALE, *CLAIMS_THEORY]} <= set(KEY_NUMBERS)
    assert key_number("A-thm3.7", "17 bound models (0 trained): max witness accuracy 0.500, answers agree") == \
        ("max witness accuracy of the models Thm 3.7 binds", 0.5)
    assert key_number("A-thm3.3-vacuous", "5 settings: displayed bound max +0.000 bits (q log")[1] == 0.0
