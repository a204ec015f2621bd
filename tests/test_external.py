"""External results beside ours (issue 23, section 4): data/external/audits.yaml parses, names
only claims its tables have, and shows as the `audit` column between the paper's column
and ours; a bad entry fails in one line; the stages that read it depend on it."""
from __future__ import annotations

import pandas as pd
import pytest
import yaml

import lib.claims.external as external
import lib.claims.paper_a as claims
import lib.claims.paper_a_scale as paper_a_scale
import lib.claims.paper_a_theory as theory_a
from lib.claims.rules import NO_AUDIT, rules_table
from lib.config import ROOT

TABLES = {"A-claims-expressivity": claims.CLAIMS, "A-claims-scale": paper_a_scale.CLAIMS,
          "A-claims-theory": theory_a.CLAIMS_THEORY}
AUDIT = "github.com/MachineLearning-Nerd/icml26-hybrid-sequence-models"


def test_the_file_parses_and_every_claim_exists():
    data = external.load()
    assert set(external.TABLES) == set(TABLES)
    assert set(data["tables"]) <= set(TABLES)
    for table, entries in data["tables"].items():
        ids = {c.id for c in TABLES[table]}
        assert {e["claim"] for e in entries} <= ids, table
        pairs = [(e["claim"], e["source"]) for e in entries]
        assert len(pairs) == len(set(pairs)), f"{table}: one entry per (claim, source)"


def test_the_audit_numbers_agree_with_its_ratios():
    """The transcription is consistent: the ratios the audit states follow from its counts."""
    by = {(t, e["claim"]): e["numbers"] for t, es in external.load()["tables"].items() for e in es}
    copy = by["A-claims-expressivity", "C2-copy"]
    to90 = copy["params to 0.9"]
    assert to90["TF-TF"] / to90["SSM-TF"] == pytest.approx(copy["ratio to SSM-TF"]["TF-TF"], abs=1e-3)
    assert to90["SSM-SSM"] / to90["SSM-TF"] == pytest.approx(copy["ratio to SSM-TF"]["SSM-SSM"], abs=1e-3)
    mkar = by["A-claims-expressivity", "C2-mkar"]
    assert mkar["params to 0.6"]["TF-TF"] / mkar["params to 0.6"]["SSM-TF"] == pytest.approx(mkar["ratio"], abs=1e-3)


def test_the_column_sits_between_the_paper_and_ours():
    t = claims.claims_table({}, external.audit_texts("A-claims-expressivity", [c.id for c in claims.CLAIMS]))
    assert list(t.columns) == ["claim", "paper statement", "paper numbers", "audit", "ours", "verdict", "rule"]
    cells = dict(zip(t["claim"], t["audit"]))
    assert cells["C2-copy"].startswith("MachineLearning-Nerd: ") and AUDIT in cells["C2-copy"]
    assert "3,684" in cells["C2-mkar"] and "7,100" in cells["C2-mkar"]
    assert cells["C2-nh"] == NO_AUDIT
    assert claims.claims_table({})["audit"].eq(NO_AUDIT).all()  # no audits given: '–' throughout
    scale = paper_a_scale.claims_table({}, external.audit_texts("A-claims-scale", ["C3-length", "C3-ood"]))
    assert list(scale.columns) == ["claim", "statement", "paper", "audit", "ours", "verdict", "rule"]
    assert scale["audit"].eq(NO_AUDIT).all()
    # paper B: no audit is known, its tables keep their columns
    assert "audit" not in rules_table(theory_a.CLAIMS_THEORY, {}).columns


@pytest.mark.parametrize("csv", sorted(ROOT.glob("figures/gpu/A-claims-*.csv")), ids=lambda p: p.stem)
def test_committed_gpu_tables_have_the_column(csv):
    cols = list(pd.read_csv(csv).columns)
    assert cols.index("audit") == cols.index("ours") - 1 and cols.index("audit") > cols.index("claim")


def test_theory_claims_have_the_columns_of_the_other_a_claims():
    scale = pd.read_csv(ROOT / "figures/gpu/A-claims-scale.csv")
    for profile in ("gpu", "quick"):
        theory = pd.read_csv(ROOT / f"figures/{profile}/A-claims-theory.csv")
        assert list(theory.columns) == list(scale.columns)
        assert list(theory["claim"]) == ["A-thm3.7", "A-thm3.3-vacuous"]
        # no '|' in a cell: it would split the markdown table's row
        assert not theory.astype(str).apply(lambda c: c.str.contains("|", regex=False)).any().any()


def bad(tmp_path, mutate) -> str:
    data = yaml.safe_load(external.AUDITS.read_text())
    mutate(data)
    path = tmp_path / "audits.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(external.AuditError) as err:
        for table, entries in TABLES.items():
            external.audit_texts(table, [c.id for c in entries], path)
    message = str(err.value)
    assert "\n" not in message and message.startswith("audits.yaml: ")
    return message


def test_a_bad_file_fails_in_one_line(tmp_path):
    def entry(d):
        return d["tables"]["A-claims-expressivity"][0]
    assert "unknown claim id 'C2-cpoy' under A-claims-expressivity" in bad(
        tmp_path, lambda d: entry(d).update(claim="C2-cpoy"))
    assert "unknown claims table 'A-claims-expresivity'" in bad(
        tmp_path, lambda d: d["tables"].update({"A-claims-expresivity": d["tables"].pop("A-claims-expressivity")}))
    assert "keys ['text'] missing" in bad(tmp_path, lambda d: entry(d).pop("text"))
    assert "source 'someone' is not under `sources`" in bad(tmp_path, lambda d: entry(d).update(source="someone"))
    assert "'|'" in bad(tmp_path, lambda d: entry(d).update(text="q log|Y|"))


def test_stages_that_read_the_audits_depend_on_them():
    from lib.notebook_imports import notebook_lib_files
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        notebook = ROOT / stage["cmd"].split()[1]
        deps = [d if isinstance(d, str) else next(iter(d)) for d in stage["deps"]]
        reads = "audit_texts(" in notebook.read_text()
        assert ("data/external/audits.yaml" in deps) == reads, name
        if reads:
            assert "lib/claims/external.py" in {f.as_posix() for f in notebook_lib_files(notebook)}
