"""Paper B's position retrieval: the measures behind Figs 8-11 and 17-19 (lib/plots/position.py)
and the claim rules F4-F7 (lib/claims/paper_b_position.py), on hand-made embeddings and run records."""
import numpy as np
import pandas as pd
import pytest

import lib.claims.paper_b_position as C
from lib.claims.rules import NOT_REPRODUCED, NOT_TESTED, REPRODUCED
from lib.models import build_model
from lib.models.zoo import paper_b
from lib.analysis import position as P
from lib.analysis.retrieval import runs_table
from lib.plots import position as PF
from lib.results import write_snapshots
from lib.tasks import make_task
from lib.training import TrainConfig, train

N = 200                      # positions
BATCH, STEPS = 64, 10000     # a 640k-example budget
EVERY = 32000                # examples between evaluations


def spiral(n=N, d=16, seed=0):
    """Position embeddings on a smooth curve: neighbours in index are neighbours in space."""
    t = np.linspace(0, 3 * np.pi, n)
    x = np.zeros((n, d))
    x[:, 0], x[:, 1], x[:, 2] = np.cos(t) * (1 + t), np.sin(t) * (1 + t), t
    return x + 0.01 * np.random.default_rng(seed).standard_normal((n, d))


def noise(n=N, d=16, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


# ---- embedding geometry ---------------------------------------------------------------------------

def test_nearest_neighbours_of_a_curve_are_index_neighbours():
    k1, k4 = P.knn_index_distance(spiral(), (1, 4))
    assert k1 == pytest.approx(1.0, abs=0.05)   # the nearest neighbour is the next position
    assert k4 <= 2.5   # four neighbours within i-4..i+4, not scattered over 200
    # along an arc of less than half a turn, cosine distance grows with index distance
    t = np.linspace(0, 0.9 * np.pi, N)
    assert P.index_distance_correlation(np.stack([np.cos(t), np.sin(t)], 1)) > 0.99
    # a spiral winds back in angle: local, yet far positions can point the same way
    assert 0 < P.index_distance_correlation(spiral()) < 0.5


def test_unrelated_embeddings_give_the_random_baseline():
    assert P.random_knn_distance(N) == pytest.approx(67)
    assert P.knn_index_distance(noise(), (5,))[0] == pytest.approx(67, rel=0.1)
    assert abs(P.index_distance_correlation(noise())) < 0.05


def test_the_ideal_locality_is_what_an_ordered_table_reaches():
    # a table whose cosine neighbours are its index neighbours reaches the ideal at any size,
    # so a locality rule measured from it can pass on a small rung (and unrelated rows fail)
    for n in (16, 200):
        t = np.linspace(0, 0.9 * np.pi, n)
        line = np.stack([np.cos(t), np.sin(t)], 1)
        assert P.knn_index_distance(line, (5,))[0] == pytest.approx(P.ideal_knn_distance(n), abs=0.02)
    assert P.ideal_knn_distance(200) == pytest.approx(1.8, abs=0.05) and P.ideal_knn_distance(16) < 2.3


def test_pca_keeps_what_it_can():
    x = noise(d=8)
    full = P.pca(x, 8)  # all components: the centred rows, rotated
    centred = x - x.mean(0)
    np.testing.assert_allclose(full @ full.T, centred @ centred.T, atol=1e-9)
    assert P.pca(x, 2).shape == (N, 2) and P.pca(x, 64).shape == (N, 8)
    assert P.pca(x, None) is x


def test_edge_split_and_loss_points():
    acc = np.zeros((1, N))
    acc[0, :20], acc[0, -20:] = 1.0, 0.5
    first, last, middle = P.edge_split(acc)
    assert (first[0], last[0], middle[0]) == (1.0, 0.5, 0.0)
    rec = {"train_loss": [1.0] * 100, "steps": 1000, "run": {"train": {"batch_size": 8}}}
    x, _ = P.loss_points(rec)
    assert x[0] == pytest.approx(5.5 * 8) and x[-1] == pytest.approx(995.5 * 8)


# ---- run records ------------------------------------------------------------------------------------

def curve(at=None, edges_first=False, top=1.0):
    """Evaluations every EVERY examples: exact match 0 until `at`, then `top`; with
    `edges_first`, the first and last 20 positions are solved one evaluation earlier."""
    out = []
    for x in range(EVERY, BATCH * STEPS + 1, EVERY):
        on = at is not None and x >= at
        early = edges_first and at is not None and x >= at - EVERY
        per = [top if on or (early and (i < 20 or i >= N - 20)) else 0.0 for i in range(N)]
        out.append({"step": x // BATCH, "examples": x, "exact_match": float(np.mean(per)),
                    "exact_by_target_index": per})
    return out


def record(name, evals, *, seed=0, rid=None, loss=None, gates=None, d_state=16):
    if gates is not None:
        evals = [{**e, "gates": gates} for e in evals]
    steps = evals[-1]["step"]
    return {"id": rid or f"{name}-{seed}-{d_state}", "experiment": "B-position", "labels": {"name": name, "train.lr": 1e-3},
            "seed": seed, "lr": 1e-3, "params_non_embedding": 1000,
            "final": {"exact_match": evals[-1]["exact_match"], "examples": evals[-1]["examples"]},
            "steps": steps, "early_stopped": False, "eval_curve": evals,
            "train_loss": loss or [P.CHANCE_LOSS] * 100,
            "run": {"train": {"steps": STEPS, "batch_size": BATCH}, "task": {"num_symbols": N},
                    "model": {"d_state": d_state}}}


def table(*records, profile="quick"):
    t = runs_table(list(records))
    t["d_state"] = [r["run"]["model"]["d_state"] for r in records]
    t["profile"], t["experiment"] = profile, "B-position"
    return t


def test_f4_follows_the_paper_when_tf_rope_is_fastest():
    runs = [record("transformer", curve(160000)), record("transformer_nope", curve(320000)),
            record("mamba", curve(None)), record("mamba2", curve(None)),
            *(record(n, curve(352000)) for n in ("hybridI_1m", "hybridI_1m2", "hybrid2s", "hybrid2s_m2")),
            record("hybridI_4m", curve(480000)), record("hybridI_4m2", curve(544000))]
    ours, verdict = C.f4(table(*runs))
    assert verdict == REPRODUCED, ours
    assert "gap to TF-RoPE" in ours and "+0.19M" in ours
    # a hybrid faster than TF-RoPE breaks (a); a pure SSM reaching 0.95 breaks (c)
    runs[4] = record("hybridI_1m", curve(96000))
    runs[2] = record("mamba", curve(600000))
    ours, verdict = C.f4(table(*runs))
    assert "(a)" in ours and "-> fails" in ours.split("(b)")[0]
    assert "fails" in ours.split("(c)")[1].split("(d)")[0]
    # nothing learns: "SSMs never reach 0.95" is not a finding
    idle = [record(n, curve(None)) for n in ("transformer", "transformer_nope", "mamba", "mamba2", "hybridI_1m")]
    assert "no other model reached 0.95 either -> not tested" in C.f4(table(*idle))[0]


def test_f5_edges_first_and_the_transformer_plateau():
    loss = [P.CHANCE_LOSS] * 40 + [0.1] * 60   # 40% of the run on the plateau, then solved
    runs = [record("transformer", curve(320000), loss=loss), record("mamba2", curve(None)),
            record("hybridI_1m2", curve(352000, edges_first=True)),
            record("hybrid2s_m2", curve(416000, edges_first=True))]
    ours, verdict = C.f5(table(*runs))
    assert verdict == REPRODUCED, ours
    assert "never learned: Mamba2" in ours  # listed, not judged
    # a hybrid that learns every position at once fails (a)
    runs[2] = record("hybridI_1m2", curve(352000))
    ours, verdict = C.f5(table(*runs))
    assert "(a)" in ours and ours.split("(b)")[0].endswith("fails; ")
    # a Transformer that never leaves chance: (c) fails, (b) holds
    ours, _ = C.f5(table(record("transformer", curve(None), loss=[P.CHANCE_LOSS] * 100)))
    assert "never switched" in ours and "(a) no per-position records" in ours


def test_f6_needs_snapshots_and_judges_the_input_table(tmp_path, monkeypatch):
    import torch
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    runs = [record("transformer", curve(None)), record("mamba2", curve(None)), record("hybridI_1m2", curve(None))]
    tables = {"transformer": (noise(seed=1), spiral()), "mamba2": (spiral(seed=2), None),
              "hybridI_1m2": (spiral(seed=3), None)}
    folder = tmp_path / "data" / "results" / "quick" / "B-position" / "runs"
    for rec in runs:
        inp, out = tables[rec["labels"]["name"]]
        snap = {"rows": torch.tensor(inp, dtype=torch.float32)}
        if out is not None:
            snap["out_rows"] = torch.tensor(out, dtype=torch.float32)
        write_snapshots(folder / f"{rec['id']}.npz", {"1": {"step": 10, **snap}})
    ours, verdict = C.f6(table(*runs))
    assert verdict == REPRODUCED, ours
    assert "output heads (not judged): Transformer (RoPE) knn 5.8" in ours
    loc = P.locality_table(table(*runs), "quick")
    assert list(loc["table"]) == ["input", "output head", "input", "input", "-"]
    # when no model with SSM blocks lays positions out, the Transformers' lack of it is not judged
    for rec in runs[1:]:
        write_snapshots(folder / f"{rec['id']}.npz", {"1": {"step": 10, "rows": torch.tensor(noise(seed=4))}})
    ours, verdict = C.f6(table(*runs))
    assert verdict == NOT_REPRODUCED and "(b)" in ours and ours.endswith("not tested"), ours
    # without snapshot files there is nothing to judge
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path / "empty"))
    assert C.f6(table(*runs))[1] == NOT_TESTED


def test_f7_gates_and_reversed_gating():
    deep = [0.01, 0.02, 0.3, 0.5]
    runs = [record("hybrid2s", curve(None), gates=deep), record("hybrid2s_m2", curve(None), gates=deep),
            record("hybrid2sr", curve(224000)), record("hybrid2sr_m2", curve(256000)),
            record("hybrid2s", curve(None), seed=1, gates=deep), record("transformer", curve(192000))]
    ours, verdict = C.f7(table(*runs))
    assert verdict == REPRODUCED, ours
    shallow = [0.5, 0.3, 0.02, 0.01]
    runs = [record("hybrid2s", curve(224000), gates=shallow), record("hybrid2sr", curve(None))]
    assert C.f7(table(*runs))[1] == NOT_REPRODUCED


def test_claims_table_without_runs_says_not_tested():
    out = C.claims_table({})
    assert list(out["claim"]) == ["F4", "F5", "F6", "F7"]
    assert set(out["verdict"]) == {NOT_TESTED}
    assert all(isinstance(r, str) and "Reproduced if" in r for r in out["rule"])


def test_figures_draw_from_records(tmp_path, monkeypatch):
    """Every position figure renders from hand-made records, with and without snapshots."""
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    runs = table(record("transformer", curve(320000)), record("hybrid2s_m2", curve(None), gates=[0.1, 0.2]),
                 record("hybrid2sr_m2", curve(192000, edges_first=True)))
    for fig in (PF.position_heatmaps_figure(runs, PF.FIG8), PF.loss_figure(runs), PF.gates_figure(runs),
                PF.reversed_gating_figure(runs), PF.pca_figure(runs, "quick"), PF.knn_figure(runs, "quick"),
                PF.cosine_figure(runs, "quick", PF.FIG22, PF.pca_size_rows()),
                PF.data_efficiency_figure(runs, pd.DataFrame(columns=runs.columns))):
        assert fig.axes
    fig7 = PF.data_efficiency_figure(runs, pd.DataFrame(columns=runs.columns))
    assert any(np.allclose(line.get_ydata(), 1 / N) for line in fig7.axes[0].get_lines())  # the chance level
    edges = P.edge_table(runs)
    assert set(edges["model"]) == {"Transformer (RoPE)", "Hybrid2S M2‖T", "Hybrid2SR M2‖T"}
    assert edges[edges["model"] == "Hybrid2SR M2‖T"]["edge advantage"].max() > 0


# ---- the task is learnable by our models and loop -------------------------------------------------

def test_a_small_transformer_learns_position_retrieval_at_four_symbols():
    """The generator, targets and scoring are consistent enough to learn: with 4 symbols,
    paper B's Transformer at width 64 reaches exact match 1 (a wrong alignment of targets
    and positions would leave it at 1/4)."""
    task = make_task("position", num_symbols=4)
    model = build_model(paper_b("transformer", d_model=64, heads=4, depth=0.17), task.vocab_size,
                        seq_len=task.seq_len, seed=0)
    out = train(model, task, TrainConfig(steps=600, lr=1e-3, batch_size=32, warmup=0.1, schedule="cosine",
                                         weight_decay=0.01), seed=0, eval_batch=task.build(seed=1, n=500),
                progress=False)
    assert out["final"]["exact_match"] == 1.0, out["final"]


def test_gap_to_tf_rope_keeps_its_sign():
    """A hybrid faster than TF-RoPE reads -91k, not '+-91k' (F4 (b)'s stated gaps)."""
    from lib.claims.paper_b_position import _signed_m
    assert _signed_m(-91_000) == "-91k" and _signed_m(190_000) == "+0.19M" and _signed_m(0) == "+0k"
