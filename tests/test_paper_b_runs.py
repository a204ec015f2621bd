"""Paper B's n-gram runs: what the sweep adds for them.

- grid axes may set training settings (`train.lr`), and runs without tests keep their ids;
- the reduced-scale families keep their layer patterns (`depth`);
- paper B's attention/Mamba families train batched: the ensemble forward equals each model's;
- the final tests score greedy outputs right: a model that solves the task exactly gets 1.0
  at every length, and on duplicated queries its preference is where it looks;
- bad test settings fail before any work.
"""
import dataclasses
import json

import pytest
import torch

from lib.config import ROOT, ConfigError, expand_runs, experiment_spec
from lib.models import build_model, paper_b
from lib.models.ensemble import Ensemble
from lib.models.lm import ModelError
from lib.tasks import TaskError, make_task
from lib.training.final_tests import check, run_tests


def test_train_axis_sets_the_learning_rate():
    runs = expand_runs(experiment_spec("B-ngram", "paper"))
    assert {r.train["lr"] for r in runs} == {1e-5, 5e-5, 1e-4}
    assert all(r.labels["train.lr"] == r.train["lr"] for r in runs)
    assert len(runs) == 14 * 3 * 3  # families x learning rates x seeds (paper Table 2)


def test_runs_without_tests_keep_their_ids():
    """The committed paper A results are found by id: adding `tests` to runs changed no id."""
    runs = expand_runs(experiment_spec("A-fig4", "gpu"))
    done = ROOT / "data" / "results" / "gpu" / "A-fig4" / "runs"  # the repository's, whatever the workdir
    assert all((done / f"{r.id}.json").exists() for r in runs)


def test_bad_train_settings_and_tests_fail_early():
    spec = experiment_spec("B-ngram", "quick")
    with pytest.raises(ConfigError, match="unknown key 'train.stepz' \\(did you mean 'steps'\\?\\)"):
        expand_runs({**spec, "train": {**spec["train"], "stepz": 3}})
    with pytest.raises(ConfigError, match="unknown key 'tests.extrapolate'"):
        expand_runs({**spec, "tests": {"extrapolate": {}}})
    task = make_task("ngram")
    with pytest.raises(TaskError, match="too small"):
        check({"extrapolation": {"lengths": [100, 2000]}}, task)
    with pytest.raises(TaskError, match="needs the ngram task"):
        check({"duplicates": {"segments": [2]}}, make_task("position"))


def test_depth_scales_every_family_keeping_its_pattern():
    assert len(paper_b("transformer", depth=0.5).layers) == 6
    assert len(paper_b("mamba2", depth=0.5).layers) == 12
    assert paper_b("hybridI_3m", depth=0.5).layers == ["mamba"] * 3 + ["attn"] + ["mamba"] * 3 + ["attn"] \
        + ["mamba"] * 3 + ["attn"]  # 5 repeats x 0.5, rounded up
    assert len(paper_b("hybrid2s", depth=0.01).layers) == 1
    with pytest.raises(ModelError, match="depth"):
        paper_b("mamba", depth=2)


@pytest.mark.parametrize("family", ["transformer", "transformer_nope", "mamba", "hybridI_2m"])
def test_paper_b_families_run_batched_as_themselves(family):
    models = [build_model(paper_b(family, d_model=16, heads=2, repeats=1), 33, seed=s) for s in range(3)]
    ens = Ensemble(models).eval()
    assert ens.batched
    ids = torch.randint(0, 33, (3, 4, 30), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = ens(ids)
        ref = torch.stack([m.eval()(ids[i]) for i, m in enumerate(models)])
    torch.testing.assert_close(out, ref, atol=2e-5, rtol=1e-4)


class NGramOracle(torch.nn.Module):
    """Solves n-gram retrieval by lookup: finds the query n-gram in the sequence and
    predicts the token after its `which` occurrence ('first' or 'last') plus the tokens
    already decoded. Suffix format only."""

    def __init__(self, task, which="first"):
        super().__init__()
        self.task, self.which, self.w = task, which, torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids):
        n, V = self.task.n, self.task.vocab_size
        out = torch.zeros(*ids.shape, V)
        for b, row in enumerate(ids.tolist()):
            q_end = row.index(2, row.index(2) + 1)  # second <query> closes the query
            query, body = row[q_end - n:q_end], row[1:row.index(1, 1)]
            done = len(row) - 1 - q_end  # response tokens decoded so far
            hits = [i for i in range(len(body) - n + 1) if body[i:i + n] == query]
            i = hits[0] if self.which == "first" else hits[-1]
            out[b, -1, body[i + n + done]] = 1.0
        return out


def test_extrapolation_of_an_exact_model_is_perfect_at_every_length(tmp_path):
    task = make_task("ngram")
    res = run_tests(NGramOracle(task), task, {"extrapolation": {"lengths": [100, 250, 400], "n": 40}}, tmp_path)
    assert res["extrapolation"] == {"100": 1.0, "250": 1.0, "400": 1.0}
    # the test sets are cached in a subfolder, never beside the data stage's validation sets
    assert [p.name for p in tmp_path.iterdir()] == ["tests"]


@pytest.mark.parametrize("which,segment", [("first", 0), ("last", -1)])
def test_duplicates_measure_where_a_model_looks(tmp_path, which, segment):
    task = make_task("ngram")
    res = run_tests(NGramOracle(task, which), task, {"duplicates": {"segments": [2, 4], "n": 30}}, tmp_path)
    for s in ("2", "4"):
        # the generator keeps each segment's query + continuation unique, not the query
        # itself (spec B.2): an accidental copy of the query elsewhere can mislead the lookup
        pref = res["duplicates"][s]["preference"]
        assert len(pref) == int(s) and pref[segment] >= 0.9
        assert res["duplicates"][s]["error"] == pytest.approx(1 - sum(pref), abs=1e-5)


def test_runner_records_the_tests(tmp_path, monkeypatch):
    """A quick-profile run of one family trains, then stores its tests in the record."""
    from lib.sweeps.runner import train_runs
    spec = experiment_spec("B-ngram", "quick")
    # the paper's rung: a rung sets its own test lengths, and quick trains the easiest one
    spec = {**spec, "grid": {**spec["grid"], "name": ["transformer"], "rung": ["L50-100"]}, "train": {**spec["train"], "steps": 20,
            "eval_every": 10, "data_block": 10},
            "tests": {"extrapolation": {"lengths": [100, 150], "n": 8}, "duplicates": {"segments": [2], "n": 8}}}
    runs = expand_runs(spec)
    train_runs([(r, tmp_path) for r in runs], device="cpu", data_dir=tmp_path / "eval", progress=False)
    rec = json.loads((tmp_path / "runs" / f"{runs[0].id}.json").read_text())
    assert set(rec["tests"]["extrapolation"]) == {"100", "150"}
    assert len(rec["tests"]["duplicates"]["2"]["preference"]) == 2
    assert [e["step"] for e in rec["eval_curve"]] == [10, 20]
