"""What a run records besides its metrics (paper B's position retrieval, spec B.5 Figs 8-11, 18):
accuracy per target position, the two-stream gates, and embedding snapshots at fixed
fractions of training, written beside the run's record."""
import json

import numpy as np
import pytest
import torch

from lib.config import expand_runs, experiment_spec
from lib.models import build_model, paper_b
from lib.results import load_snapshots
from lib.sweeps.runner import train_runs
from lib.tasks import make_task
from lib.training import TrainConfig, train
from lib.training.loop import pick_snapshots
from lib.training.metrics import per_value


def test_per_value_means():
    assert per_value([0, 2, 2, 0, 3], [1, 0, 1, 0, 1]) == [0.5, None, 0.5, 1.0]


def test_training_records_positions_gates_and_snapshots():
    task = make_task("position", num_symbols=12)
    model = build_model(paper_b("hybrid2s", d_model=16, heads=2, repeats=2), task.vocab_size, seed=0)
    cfg = TrainConfig(steps=40, batch_size=4, lr=3e-3, eval_every=10, data_block=10, eval_by="target_index",
                      snapshot_embeddings=True, warmup=0.1, schedule="cosine")
    evalb = task.build(seed=1, n=60)
    out = train(model, task, cfg, seed=0, eval_batch=evalb, progress=False)
    curve = out["history"]["eval"]
    assert [e["step"] for e in curve] == [10, 20, 30, 40]
    for e in curve:
        per_pos = e["exact_by_target_index"]
        assert len(per_pos) == 12
        # the per-position accuracies average back to the overall one
        idx = evalb.meta["target_index"]
        counts = np.bincount(idx, minlength=12)
        mean = sum(c * a for c, a in zip(counts, per_pos) if a is not None) / counts.sum()
        assert mean == pytest.approx(e["exact_match"], abs=1e-5)
        assert len(e["gates"]) == 2 and all(0 <= g < 1 for g in e["gates"])
    assert curve[0]["gates"] != [0.0, 0.0]  # the gates start at 0 and move
    snaps = out["snapshots"]
    assert {k: v["step"] for k, v in snaps.items()} == {"0.25": 10, "0.5": 20, "0.75": 30, "1": 40}
    final_rows = model.embed.weight.detach()[task.snapshot_tokens()]
    torch.testing.assert_close(snaps["1"]["rows"], final_rows)


def test_snapshots_follow_a_runs_own_length():
    """A run that stops early at step 200 has its 25% snapshot near step 50."""
    kept = [(s, torch.zeros(1)) for s in range(25, 201, 25)]
    assert {k: v["step"] for k, v in pick_snapshots(kept, 200, (0.25, 0.5, 1.0)).items()} == \
        {"0.25": 50, "0.5": 100, "1": 200}
    assert pick_snapshots([], 200, (0.25,)) == {}


def test_runner_writes_snapshots_beside_the_record(tmp_path):
    spec = experiment_spec("B-position", "quick")
    spec = {**spec, "eval": {"n": 30, "seed": 1},  # quick's rung: 16 symbols
            "grid": {**spec["grid"], "name": ["hybrid2s_m2"]},
            "train": {**spec["train"], "steps": 20, "eval_every": 10, "data_block": 10}}
    runs = expand_runs(spec)
    train_runs([(r, tmp_path) for r in runs], device="cpu", data_dir=tmp_path / "eval", progress=False)
    path = tmp_path / "runs" / f"{runs[0].id}.json"
    rec = json.loads(path.read_text())
    assert rec["snapshot_steps"] == {"0.25": 10, "0.5": 10, "0.75": 10, "1": 20}  # ties: the earlier
    snaps = load_snapshots(path)
    assert set(snaps) == {"0.25", "0.5", "0.75", "1"}
    step, rows = snaps["1"]
    assert step == 20 and rows.shape == (16, 32)
    assert len(rec["eval_curve"][-1]["exact_by_target_index"]) == 16
    assert len(rec["eval_curve"][-1]["gates"]) == 2  # quick depth: 8 blocks x 0.17, rounded up


def test_an_untied_transformer_keeps_its_output_rows_too(tmp_path):
    """Paper B's Transformer has an untied head: the position tokens' input rows (what the
    paper draws) and output rows (what predicting them trains) are both kept."""
    spec = experiment_spec("B-position", "quick")
    spec = {**spec, "eval": {"n": 30, "seed": 1},  # quick's rung: 16 symbols
            "grid": {**spec["grid"], "name": ["transformer", "hybridI_1m"]},
            "train": {**spec["train"], "steps": 20, "eval_every": 10, "data_block": 10}}
    runs = expand_runs(spec)
    train_runs([(r, tmp_path) for r in runs], device="cpu", data_dir=tmp_path / "eval", progress=False)
    for run in runs:
        path = tmp_path / "runs" / f"{run.id}.json"
        inp, out = load_snapshots(path)["1"][1], load_snapshots(path, table="output")["1"][1]
        assert inp.shape == out.shape == (16, 32)
        assert np.array_equal(inp, out) == (run.labels["name"] != "transformer")  # tied elsewhere
    with pytest.raises(ValueError, match="input' or 'output"):
        load_snapshots(path, table="head")
