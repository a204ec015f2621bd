"""Difficulty ladders: the `rung` grid axis of params.yaml, the examples-to-threshold table,
the power-law trend and its figure (lib.analysis.ladder, lib.plots.ladder)."""
import math

import matplotlib
import pandas as pd
import pytest

from lib.config import ConfigError, expand_runs, experiment_spec, load_params
from lib.analysis.ladder import examples_to, fit_trend, ladder_points, ladder_table

matplotlib.use("Agg")

PARAMS = """\
profile: quick
experiments:
  T:
    paper: B
    title: a ladder
    seeds: 2
    train: {steps: 10, batch_size: 4}
    task: {name: ngram, num_symbols: 30, n: 2, k: 3, min_len: 50, max_len: 100}
    eval: {n: 16, seed: 1, min_len: 100, max_len: 100}
    model: {family: paper_b, d_model: 16, heads: 2, depth: 0.1}
    grid: {name: [transformer], rung: RUNG_AXIS}
    tests: {extrapolation: {lengths: [100, 200], n: 8}}
    rungs:
      L10-20: {task.min_len: 10, task.max_len: 20, eval.min_len: 20, eval.max_len: 20,
               tests.extrapolation.lengths: [20, 80]}
      L50-100: {}
    profiles: {quick: {}, gpu: {}, paper: {}}
"""


def runs_for(tmp_path, rung_axis="[L10-20, L50-100]", text=PARAMS):
    (tmp_path / "params.yaml").write_text(text.replace("RUNG_AXIS", rung_axis))
    return expand_runs(experiment_spec("T", "quick", load_params(tmp_path / "params.yaml")))


def test_a_rung_overrides_task_eval_and_tests(tmp_path):
    runs = runs_for(tmp_path)
    easy = [r for r in runs if r.labels["rung"] == "L10-20"]
    assert len(easy) == 2 and len(runs) == 4
    r = easy[0]
    assert (r.task["min_len"], r.task["max_len"]) == (10, 20)
    assert (r.eval_task["min_len"], r.eval_task["max_len"]) == (20, 20)
    assert r.tests["extrapolation"] == {"lengths": [20, 80], "n": 8}
    hard = [r for r in runs if r.labels["rung"] == "L50-100"][0]
    assert hard.tests["extrapolation"]["lengths"] == [100, 200]  # one rung's override stays its own


def test_a_rung_without_overrides_keeps_the_run_ids(tmp_path):
    """Adding the axis to an experiment must not orphan its finished runs."""
    with_axis = {r.id for r in runs_for(tmp_path, "[L50-100]")}
    text = PARAMS.replace("grid: {name: [transformer], rung: RUNG_AXIS}", "grid: {name: [transformer]}")
    without = {r.id for r in runs_for(tmp_path, text=text)}
    assert with_axis == without


@pytest.mark.parametrize("change, message", [
    (("RUNG_AXIS", "[L10-30]"), "grid.rung names 'L10-30'"),
    (("task.max_len: 20, eval.min_len", "task.max_len: 20, train.steps: 5, eval.min_len"), "a rung sets"),
    (("tests.extrapolation.lengths", "tests.extrapolation.lenghts"), "a rung sets"),
])
def test_a_bad_ladder_fails_in_one_line(tmp_path, change, message):
    text = PARAMS.replace(*change).replace("RUNG_AXIS", "[L10-20]")
    with pytest.raises(ConfigError, match=message) as err:
        runs_for(tmp_path, text=text)
    assert "\n" not in str(err.value)


# -------------------------------------------------------------------- the table and the trend

def record(reach_at: float | None, budget: int = 100_000, every: int = 10_000) -> dict:
    """A run whose exact match jumps from 0 to 1 at `reach_at` examples (None: never)."""
    curve = [{"examples": x, "exact_match": 1.0 if reach_at is not None and x >= reach_at else 0.0}
             for x in range(every, budget + 1, every)]
    if reach_at is not None:
        curve = [p for p in curve if p["examples"] <= reach_at]
    return {"eval_curve": curve, "final": {"examples": curve[-1]["examples"], "exact_match": curve[-1]["exact_match"]},
            "run": {"train": {"steps": budget // 10, "batch_size": 10}}}


def table(rows) -> pd.DataFrame:
    out = []
    for name, rung, lr, seed, reach in rows:
        rec = record(reach)
        out.append({"name": name, "rung": rung, "lr": lr, "seed": seed, "record": rec,
                    "exact_match": rec["final"]["exact_match"], "examples": rec["final"]["examples"]})
    return pd.DataFrame(out)


DIFFICULTY = {"L10-20": 20, "L20-40": 40, "L50-100": 100}


def test_examples_to_is_the_first_crossing():
    assert examples_to(record(30_000), 0.95) == pytest.approx(20_000 + 0.95 * 10_000)
    assert examples_to(record(None), 0.95) == math.inf


def test_the_table_keeps_the_best_rate_and_counts_runs_that_never_got_there():
    t = table([("tf", "L10-20", 1e-3, 0, 20_000), ("tf", "L10-20", 1e-3, 1, 40_000),
               ("tf", "L10-20", 3e-4, 0, 80_000), ("tf", "L10-20", 3e-4, 1, 90_000),   # slower rate: dropped
               ("tf", "L20-40", 1e-3, 0, 60_000), ("tf", "L20-40", 1e-3, 1, None)])
    lad = ladder_table(t, DIFFICULTY, threshold=0.99)
    easy = lad[lad["rung"] == "L10-20"].iloc[0]
    assert easy["lr"] == 1e-3 and easy["runs"] == 2 and easy["reached_0.95"] == "2/2"
    assert easy["min_0.95"] < easy["median_0.95"] < easy["max_0.95"]
    hard = lad[lad["rung"] == "L20-40"].iloc[0]
    assert hard["reached_0.95"] == "1/2" and hard["budget"] == 100_000


def test_the_ladder_points_are_numbers_for_dvc_plots():
    """One row per (model, rung) with the median examples to each level, empty where no run
    reached it (so a plot leaves the point out instead of drawing infinity)."""
    t = table([("tf", "L10-20", 1e-3, 0, 20_000), ("tf", "L10-20", 1e-3, 1, 40_000),
               ("mamba", "L20-40", 1e-3, 0, None)])
    points = ladder_points(ladder_table(t, DIFFICULTY, threshold=0.99), label=str.upper)
    assert list(points.columns) == ["model", "rung", "difficulty", "examples to 95%", "examples to 99%"]
    median = (examples_to(record(20_000), 0.95) + examples_to(record(40_000), 0.95)) / 2
    assert points.set_index("model").loc["TF", "examples to 95%"] == pytest.approx(median)
    assert points.set_index("model")["examples to 95%"].isna().to_dict() == {"MAMBA": True, "TF": False}


def test_the_trend_recovers_a_power_law_and_needs_two_full_rungs():
    # examples = 50 * L^1.5, the crossing placed exactly on an evaluation
    rows = []
    for rung, L in DIFFICULTY.items():
        x = 50 * L ** 1.5
        for seed in (0, 1):
            rec = {"eval_curve": [{"examples": x / 2, "exact_match": 0.0}, {"examples": x, "exact_match": 1.0}],
                   "final": {"examples": x, "exact_match": 1.0}, "run": {"train": {"steps": 10**6, "batch_size": 1}}}
            rows.append({"name": "hy", "rung": rung, "lr": 1e-3, "seed": seed, "record": rec,
                         "exact_match": 1.0, "examples": x})
    t = pd.DataFrame(rows)
    lad = ladder_table(t, DIFFICULTY, threshold=0.99)
    trend = fit_trend(lad, 0.95, target=100).iloc[0]
    assert trend["rungs_used"] == 3
    assert trend["exponent"] == pytest.approx(1.5, rel=0.02)
    assert trend["at_target"] == pytest.approx(50 * 100 ** 1.5 * (1 - 0.05 / 2), rel=0.05)
    # the same model with only one rung where every run got there: no trend, said so
    one = lad[lad["rung"] == "L10-20"]
    t1 = fit_trend(one, 0.95, target=100).iloc[0]
    assert math.isnan(t1["exponent"]) and t1["note"].startswith("no trend")


def test_a_harder_rung_that_was_not_reached_refutes_the_trend():
    # two easy rungs give a trend, but the paper's rung was trained and never reached
    t = table([("tf", "L10-20", 1e-3, 0, 20_000), ("tf", "L20-40", 1e-3, 0, 40_000),
               ("tf", "L50-100", 1e-3, 0, None)])
    lad = ladder_table(t, DIFFICULTY, threshold=0.99)
    trend = fit_trend(lad, 0.95, target=100).iloc[0]
    assert math.isnan(trend["exponent"]) and math.isnan(trend["at_target"])
    assert trend["note"].startswith("no trend: 0/1 runs reached 0.95 at L50-100"), trend["note"]
    # reached there, the same points give a trend through all three rungs
    t = table([("tf", "L10-20", 1e-3, 0, 20_000), ("tf", "L20-40", 1e-3, 0, 40_000),
               ("tf", "L50-100", 1e-3, 0, 90_000)])
    trend = fit_trend(ladder_table(t, DIFFICULTY, threshold=0.99), 0.95, target=100).iloc[0]
    assert trend["rungs_used"] == 3 and math.isfinite(trend["at_target"])


def test_the_figure_draws_reached_and_never_reached_rungs():
    from lib.plots.ladder import ladder_figure
    t = table([("transformer", "L10-20", 1e-3, 0, 20_000), ("transformer", "L20-40", 1e-3, 0, 50_000),
               ("transformer", "L50-100", 1e-3, 0, None), ("mamba2", "L10-20", 3e-4, 0, None)])
    lad = ladder_table(t, DIFFICULTY, threshold=0.99)
    fig = ladder_figure(lad, fit_trend(lad, 0.95, target=100), 0.95, 100, xlabel="longest training length L")
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert any("lr 1e-3" in s for s in labels) and any("lr 3e-4" in s for s in labels)


def test_models_that_never_reached_a_rung_are_drawn_apart():
    # two models short on one rung share its budget point: each triangle must stay visible
    from lib.plots.ladder import ladder_figure
    t = table([("transformer", "L10-20", 1e-3, 0, None), ("mamba2", "L10-20", 3e-4, 0, None)])
    lad = ladder_table(t, DIFFICULTY, threshold=0.99)
    fig = ladder_figure(lad, fit_trend(lad, 0.95, target=100), 0.95, 100, xlabel="longest training length L")
    triangles = [line for line in fig.axes[0].get_lines() if line.get_marker() == "^"]
    assert len(triangles) == 2
    fig.canvas.draw()
    # on the screen, in points: at least a triangle's width (8) apart, either side of the rung
    (x1, _), (x2, _) = (line.get_transform().transform((line.get_xdata()[0], line.get_ydata()[0]))
                        for line in triangles)
    centre = fig.axes[0].transData.transform((20, 1))[0]
    assert abs(x1 - x2) * 72 / fig.dpi >= 8 and min(x1, x2) < centre < max(x1, x2)


def test_the_figures_draw_the_hardest_rung_where_a_model_learned():
    from lib.analysis.retrieval import at_rung, drawn_rung
    order = list(DIFFICULTY)
    t = table([("tf", "L10-20", 1e-3, 0, 20_000), ("tf", "L20-40", 1e-3, 0, None), ("tf", "L50-100", 1e-3, 0, None),
               ("hy", "L10-20", 1e-3, 0, 20_000), ("hy", "L20-40", 1e-3, 0, 50_000), ("hy", "L50-100", 1e-3, 0, None)])
    t["d_state"] = 16
    assert drawn_rung(t, order, threshold=0.99) == "L20-40"
    nobody = t.assign(exact_match=0.0)
    assert drawn_rung(nobody, order, threshold=0.99) == "L50-100"  # the paper's, when nothing learned
    assert set(at_rung(t, "L20-40")["rung"]) == {"L20-40"}
    assert drawn_rung(t.drop(columns="rung"), order) is None
    # partway through a rung: the hardest one stays drawn only once every family of the easier ones ran there
    partial = t[~((t["name"] == "tf") & (t["rung"] == "L20-40"))]
    assert drawn_rung(partial, order, threshold=0.99) == "L10-20"


def test_figures_of_two_experiments_side_by_side_draw_a_rung_both_reached():
    # suffix has both rungs, prefix only the easier one so far: the suffix figures alone would
    # move up to L20-40, but a figure with a prefix panel would then show no prefix runs
    from lib.analysis.retrieval import drawn_rung
    order = list(DIFFICULTY)
    suffix = table([("tf", "L10-20", 1e-3, 0, 20_000), ("tf", "L20-40", 1e-3, 0, 50_000)])
    prefix = table([("tf", "L10-20", 1e-3, 0, 20_000)])
    assert drawn_rung(suffix, order, threshold=0.99) == "L20-40"
    assert drawn_rung({"suffix": suffix, "prefix": prefix}, order, threshold=0.99) == "L10-20"
    caught_up = pd.concat([prefix, table([("tf", "L20-40", 1e-3, 0, 50_000)])])
    assert drawn_rung({"suffix": suffix, "prefix": caught_up}, order, threshold=0.99) == "L20-40"
    # an experiment with no runs yet constrains nothing
    assert drawn_rung({"suffix": suffix, "state": suffix.iloc[:0]}, order, threshold=0.99) == "L20-40"


def test_a_position_rung_sets_the_symbols_and_the_chance_loss_follows():
    from lib.analysis.position import chance_loss
    runs = expand_runs(experiment_spec("B-position", "gpu"))
    by_rung = {r.labels["rung"]: r for r in runs}
    assert by_rung["S16"].task["num_symbols"] == 16 and by_rung["S200"].task["num_symbols"] == 200
    assert by_rung["S16"].make_eval_task().vocab_size == by_rung["S16"].make_task().vocab_size
    assert chance_loss(200) == pytest.approx(2.649, abs=1e-3) and chance_loss(16) == pytest.approx(1.386, abs=1e-3)
    # quick trains the easiest rung only (short sequences keep the CPU test run short)
    quick = expand_runs(experiment_spec("B-position", "quick"))
    assert {r.labels["rung"] for r in quick} == {"S16"}


def test_a_campaign_selects_part_of_a_grid_and_refuses_what_selects_nothing():
    from lib.config import ConfigError, select_runs
    runs = expand_runs(experiment_spec("B-ngram", "gpu"))
    part = select_runs(runs, {"rung": ["L10-20"], "train.lr": ["3e-4", "0.001"], "seed": ["0"]})
    assert len(part) == len({r.labels["name"] for r in runs}) * 2
    assert {(r.labels["rung"], r.seed) for r in part} == {("L10-20", 0)}
    assert {r.labels["train.lr"] for r in part} == {3e-4, 1e-3}
    assert select_runs(runs, None) == runs
    with pytest.raises(ConfigError, match="allowed: L10-20, L20-40, L50-100"):
        select_runs(runs, {"rung": ["L99"]})
    with pytest.raises(ConfigError, match="not a grid label"):
        select_runs(runs, {"d_model": ["64"]})


def test_a_selection_over_several_experiments_needs_each_value_in_one_of_them():
    # one sweep of B-position and B-position-state: names of the first, states of the second
    from lib.config import ConfigError, select_runs
    from lib.sweeps.runner import plan_runs
    plan = plan_runs(["B-position", "B-position-state"], "gpu",
                     {"rung": ["S16"], "name": ["hybrid2s_m2", "mamba"], "train.lr": ["3e-4"]})
    assert set(zip(plan["experiment"], plan["name"])) == {
        ("B-position", "hybrid2s_m2"), ("B-position", "mamba"), ("B-position-state", "mamba")}
    state = expand_runs(experiment_spec("B-position-state", "gpu"))
    pool = state + expand_runs(experiment_spec("B-position", "gpu"))
    assert select_runs(state, {"name": ["hybrid2s_m2"]}, within=pool) == []
    with pytest.raises(ConfigError, match="name=nope: no such run"):
        select_runs(state, {"name": ["nope"]}, within=pool)
