"""The plot helpers used by paper A's figure notebooks: reference levels, dashed
references, combined provenance."""
import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from lib.plots import ARCH_COLORS, accuracy_vs_setting, level  # noqa: E402
from lib.plots.accuracy import footer, to_markdown  # noqa: E402
from lib.provenance import combine  # noqa: E402


def runs():
    return pd.DataFrame({"arch": ["TF-TF"] * 4 + ["SSM-SSM"] * 2, "window": [5, 5, 20, 20, 0, 0],
                         "d_model": [12] * 6, "token_acc": [.2, .4, .6, .8, .5, .7]})


def test_level():
    df = runs()
    assert level(df, "SSM-SSM", d_model=12) == pytest.approx(0.6)
    assert level(df, "SSM-SSM", d_model=16) is None


def test_accuracy_vs_setting_draws_lines_and_dashed_references():
    df = runs()
    ax = accuracy_vs_setting(df[df["arch"] == "TF-TF"], "window", reference={"SSM-SSM": 0.6, "TF-SSM": None},
                             reference_note="d=12")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["TF-TF", "SSM-SSM (d=12)"]  # a None reference is skipped
    tf, ref = ax.get_lines()
    assert list(tf.get_ydata()) == pytest.approx([0.3, 0.7])
    assert ref.get_linestyle() == "--" and ref.get_color() == ARCH_COLORS["SSM-SSM"]
    assert ax.get_xlabel() == "window"


def test_combine_provenance():
    a = {"profile": "quick", "device": "cpu", "commit": "abc", "wall_s": 1, "runs": 3, "train_wall_s": 60,
         "run_commits": ["abc"]}
    b = {**a, "commit": "def", "runs": 2, "run_commits": ["def"]}
    c = combine(a, b)
    assert c["runs"] == 5 and c["train_wall_s"] == 120 and c["device"] == "cpu"
    assert c["commit"] == "abc, def" and footer(c).startswith("profile: quick · 5 runs")
    with pytest.raises(ValueError, match="different profiles"):
        combine(a, {**b, "profile": "gpu"})
    # each machine once, however many tables list it
    two = combine({**a, "device": "4x H100"}, {**b, "device": "4x H100, H100"})
    assert two["device"] == "4x H100, H100"
    cpus = combine({**a, "device": "cpu (x86_64, 2 threads)"}, {**b, "device": "cpu (x86_64, 1 threads)"})
    assert cpus["device"] == "cpu (x86_64, 2 threads), cpu (x86_64, 1 threads)"


def test_footer_is_the_same_on_any_machine():
    """Device, commits and wall times stay in provenance.json: the same results rendered on
    another machine or at another commit give the same footer, hence the same figure files."""
    here = {"profile": "quick", "device": "cpu (x86_64, 2 threads)", "commit": "abc+dirty", "wall_s": 61.0,
            "runs": 4, "runs_finished": 3, "train_wall_s": 60.0, "sweep_wall_s": 70.0}
    there = {**here, "device": "NVIDIA H100 80GB HBM3", "commit": "def", "wall_s": 5.0, "train_wall_s": 4.0,
             "sweep_wall_s": 6.0, "run_commits": ["def"]}
    assert footer(here) == footer(there) == ("profile: quick · 3 of 4 runs finished · "
                                             "device, commit and times: provenance.json beside the results")
    assert footer({**here, "runs": 0}) == "profile: quick · weights set by hand, no training"


@pytest.mark.parametrize("dtype", [object, "string", "str"])
def test_a_text_column_that_looks_like_a_number_stays_as_written(dtype):
    """A learning rate written '3e-4' in a text column (object, or pandas' string dtype, the
    default since pandas 3) must not be parsed and shown as 0.000 in a markdown table."""
    table = pd.DataFrame({"lr": pd.Series(["3e-4", "1e-3"], dtype=dtype), "acc": [0.51234, None]})
    rows = to_markdown(table).splitlines()[2:]
    assert "3e-4" in rows[0] and "0.512" in rows[0] and "1e-3" in rows[1] and "–" in rows[1]


def test_loaded_provenance_counts_the_runs_planned_now(tmp_path, monkeypatch):
    """A sweep's provenance.json counts the grid it ran under; a figure's footer must count
    the grid experiments.yaml plans now (a grid grown by a seed would be understated)."""
    import json
    from lib.analysis.retrieval import load_experiment
    from lib.config import expand_runs, experiment_spec, results_dir
    monkeypatch.setenv("COMPANION_WORKDIR", str(tmp_path))
    folder = results_dir("quick", "B-ngram")
    folder.mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({"profile": "quick", "runs": 999, "runs_finished": 5,
                                                        "device": "cpu", "wall_s": 1.0}))
    _, prov = load_experiment("quick", "B-ngram")
    assert prov["runs"] == len(expand_runs(experiment_spec("B-ngram", "quick")))
    assert prov["runs_finished"] == 0
